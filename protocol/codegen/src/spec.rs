//! Parsing Kafka's JSON message specs into a checked model.
//!
//! The format is documented in the specs' README.md: JSON with `//` comments. Every key the
//! generator does not understand is an error, so that a new spec feature fails loudly instead
//! of producing subtly wrong code.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// An inclusive version range; `hi == i16::MAX` means open-ended ("N+"). Empty for "none".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Versions {
    pub lo: i16,
    pub hi: i16,
}

impl Versions {
    pub const NONE: Versions = Versions { lo: 1, hi: 0 };

    pub fn parse(s: &str) -> Result<Versions, String> {
        let s = s.trim();
        if s == "none" {
            return Ok(Versions::NONE);
        }
        let num = |t: &str| {
            t.trim()
                .parse::<i16>()
                .map_err(|e| format!("bad version '{s}': {e}"))
        };
        if let Some(lo) = s.strip_suffix('+') {
            return Ok(Versions {
                lo: num(lo)?,
                hi: i16::MAX,
            });
        }
        if let Some((lo, hi)) = s.split_once('-') {
            let v = Versions {
                lo: num(lo)?,
                hi: num(hi)?,
            };
            if v.lo > v.hi {
                return Err(format!("empty version range '{s}'"));
            }
            return Ok(v);
        }
        let v = num(s)?;
        Ok(Versions { lo: v, hi: v })
    }

    pub fn is_empty(&self) -> bool {
        self.lo > self.hi
    }

    pub fn intersect(&self, other: &Versions) -> Versions {
        let v = Versions {
            lo: self.lo.max(other.lo),
            hi: self.hi.min(other.hi),
        };
        if v.is_empty() {
            Versions::NONE
        } else {
            v
        }
    }

    pub fn contains_range(&self, other: &Versions) -> bool {
        other.is_empty() || (self.lo <= other.lo && self.hi >= other.hi)
    }

    pub fn describe(&self) -> String {
        if self.is_empty() {
            "none".into()
        } else if self.hi == i16::MAX {
            format!("{}+", self.lo)
        } else if self.lo == self.hi {
            format!("{}", self.lo)
        } else {
            format!("{}-{}", self.lo, self.hi)
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum FieldType {
    Bool,
    Int8,
    Int16,
    Uint16,
    Int32,
    Uint32,
    Int64,
    Float64,
    String,
    Bytes,
    Uuid,
    Records,
    Struct(String),
    Array(Box<FieldType>),
}

impl FieldType {
    fn parse(s: &str) -> FieldType {
        if let Some(inner) = s.strip_prefix("[]") {
            return FieldType::Array(Box::new(FieldType::parse(inner)));
        }
        match s {
            "bool" => FieldType::Bool,
            "int8" => FieldType::Int8,
            "int16" => FieldType::Int16,
            "uint16" => FieldType::Uint16,
            "int32" => FieldType::Int32,
            "uint32" => FieldType::Uint32,
            "int64" => FieldType::Int64,
            "float64" => FieldType::Float64,
            "string" => FieldType::String,
            "bytes" => FieldType::Bytes,
            "uuid" => FieldType::Uuid,
            "records" => FieldType::Records,
            other => FieldType::Struct(other.to_string()),
        }
    }

    pub fn is_struct(&self) -> bool {
        matches!(self, FieldType::Struct(_))
    }

    /// Types that may be null on the wire.
    pub fn can_be_nullable(&self) -> bool {
        matches!(
            self,
            FieldType::String
                | FieldType::Bytes
                | FieldType::Records
                | FieldType::Array(_)
                | FieldType::Struct(_)
        )
    }
}

#[derive(Clone, Debug)]
pub struct Field {
    pub name: String,
    pub ty: FieldType,
    pub versions: Versions,
    pub nullable: Versions,
    pub tagged: Versions,
    pub tag: Option<u32>,
    pub default: Option<Value>,
    pub ignorable: bool,
    /// Field-level `flexibleVersions` override (only "none" is used by Kafka's specs).
    pub flexible: Option<Versions>,
    pub about: Option<String>,
}

#[derive(Clone, Debug)]
pub struct StructDef {
    pub name: String,
    pub fields: Vec<Field>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Request,
    Response,
    Header,
    Data,
}

#[derive(Clone, Debug)]
pub struct Message {
    pub name: String,
    pub kind: Kind,
    pub api_key: Option<i16>,
    pub valid: Versions,
    pub flexible: Versions,
    pub deprecated: Versions,
    pub latest_unstable: bool,
    pub listeners: Vec<String>,
    pub fields: Vec<Field>,
    /// Every nested and common struct, in definition order, unique by name.
    pub structs: Vec<StructDef>,
}

/// Removes `//` comments outside string literals.
pub fn strip_comments(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut in_str = false;
    let mut escaped = false;
    let mut chars = src.chars().peekable();
    while let Some(c) = chars.next() {
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
            continue;
        }
        if c == '"' {
            in_str = true;
            out.push(c);
        } else if c == '/' && chars.peek() == Some(&'/') {
            for c2 in chars.by_ref() {
                if c2 == '\n' {
                    out.push('\n');
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn check_keys(obj: &Map<String, Value>, allowed: &[&str], ctx: &str) -> Result<(), String> {
    for k in obj.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(format!("{ctx}: unknown spec key '{k}'"));
        }
    }
    Ok(())
}

fn get_str<'a>(obj: &'a Map<String, Value>, key: &str, ctx: &str) -> Result<&'a str, String> {
    obj.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{ctx}: missing or non-string '{key}'"))
}

fn opt_versions(
    obj: &Map<String, Value>,
    key: &str,
    ctx: &str,
) -> Result<Option<Versions>, String> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Versions::parse(s)
            .map(Some)
            .map_err(|e| format!("{ctx}: {e}")),
        Some(other) => Err(format!("{ctx}: '{key}' must be a string, got {other}")),
    }
}

fn opt_bool(obj: &Map<String, Value>, key: &str, ctx: &str) -> Result<bool, String> {
    match obj.get(key) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(format!("{ctx}: '{key}' must be a bool, got {other}")),
    }
}

const FIELD_KEYS: &[&str] = &[
    "name",
    "type",
    "versions",
    "nullableVersions",
    "taggedVersions",
    "tag",
    "default",
    "ignorable",
    "mapKey",
    "entityType",
    "about",
    "zeroCopy",
    "flexibleVersions",
    "fields",
];

struct Ctx {
    structs: Vec<StructDef>,
    common: BTreeMap<String, Value>,
}

impl Ctx {
    fn add_struct(&mut self, def: StructDef, ctx: &str) -> Result<(), String> {
        if let Some(existing) = self.structs.iter().find(|s| s.name == def.name) {
            if format!("{:?}", existing.fields) != format!("{:?}", def.fields) {
                return Err(format!(
                    "{ctx}: struct '{}' defined twice differently",
                    def.name
                ));
            }
            return Ok(());
        }
        self.structs.push(def);
        Ok(())
    }
}

fn parse_fields(arr: &Value, cx: &mut Ctx, ctx: &str) -> Result<Vec<Field>, String> {
    let arr = arr
        .as_array()
        .ok_or_else(|| format!("{ctx}: 'fields' must be an array"))?;
    let mut out = Vec::new();
    for f in arr {
        out.push(parse_field(f, cx, ctx)?);
    }
    let mut tags = std::collections::BTreeSet::new();
    let mut names = std::collections::BTreeSet::new();
    for f in &out {
        if let Some(t) = f.tag {
            if !tags.insert(t) {
                return Err(format!("{ctx}: duplicate tag {t}"));
            }
        }
        if !names.insert(f.name.clone()) {
            return Err(format!("{ctx}: duplicate field {}", f.name));
        }
    }
    Ok(out)
}

fn parse_field(v: &Value, cx: &mut Ctx, ctx: &str) -> Result<Field, String> {
    let obj = v
        .as_object()
        .ok_or_else(|| format!("{ctx}: field must be an object"))?;
    let name = get_str(obj, "name", ctx)?.to_string();
    let ctx = format!("{ctx}.{name}");
    check_keys(obj, FIELD_KEYS, &ctx)?;
    let ty_str = get_str(obj, "type", &ctx)?;
    let ty = FieldType::parse(ty_str);
    let versions =
        opt_versions(obj, "versions", &ctx)?.ok_or_else(|| format!("{ctx}: missing 'versions'"))?;
    let nullable = opt_versions(obj, "nullableVersions", &ctx)?.unwrap_or(Versions::NONE);
    let tagged = opt_versions(obj, "taggedVersions", &ctx)?.unwrap_or(Versions::NONE);
    let tag = match obj.get("tag") {
        None => None,
        Some(Value::Number(n)) => Some(
            n.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| format!("{ctx}: bad tag {n}"))?,
        ),
        Some(Value::String(t)) => Some(
            t.parse::<u32>()
                .map_err(|e| format!("{ctx}: bad tag '{t}': {e}"))?,
        ),
        Some(other) => return Err(format!("{ctx}: 'tag' must be a number, got {other}")),
    };
    if tag.is_some() == tagged.is_empty() {
        return Err(format!(
            "{ctx}: 'tag' and 'taggedVersions' must come together"
        ));
    }
    if !tagged.is_empty() && tagged.hi != i16::MAX {
        return Err(format!("{ctx}: taggedVersions must be open-ended"));
    }
    if !nullable.is_empty() && !ty.can_be_nullable() {
        return Err(format!("{ctx}: type {ty_str} cannot be nullable"));
    }
    let default = obj.get("default").cloned();
    let flexible = opt_versions(obj, "flexibleVersions", &ctx)?;
    if let Some(f) = flexible {
        if !f.is_empty() {
            return Err(format!(
                "{ctx}: only field-level flexibleVersions \"none\" is supported"
            ));
        }
    }
    let _ = opt_bool(obj, "mapKey", &ctx)?;
    let _ = opt_bool(obj, "zeroCopy", &ctx)?;
    let ignorable = opt_bool(obj, "ignorable", &ctx)?;
    let about = match obj.get("about") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => return Err(format!("{ctx}: 'about' must be a string, got {other}")),
    };
    if let Some(e) = obj.get("entityType") {
        if !e.is_string() {
            return Err(format!("{ctx}: 'entityType' must be a string"));
        }
    }

    // Struct-typed fields (directly or as array elements) either define their fields inline
    // or refer to a commonStruct.
    let elem = match &ty {
        FieldType::Array(inner) => inner.as_ref(),
        other => other,
    };
    if let FieldType::Array(_) = elem {
        return Err(format!("{ctx}: arrays of arrays are not supported"));
    }
    match (elem, obj.get("fields")) {
        (FieldType::Struct(sname), Some(fields)) => {
            let fields = parse_fields(fields, cx, &ctx)?;
            cx.add_struct(
                StructDef {
                    name: sname.clone(),
                    fields,
                },
                &ctx,
            )?;
        }
        (FieldType::Struct(sname), None) => {
            let common = cx.common.get(sname).cloned().ok_or_else(|| {
                format!("{ctx}: struct type '{sname}' has no fields and no commonStruct")
            })?;
            if !cx.structs.iter().any(|s| &s.name == sname) {
                let cobj = common
                    .as_object()
                    .ok_or_else(|| format!("{ctx}: bad commonStruct"))?;
                let fields = parse_fields(
                    cobj.get("fields")
                        .ok_or_else(|| format!("{ctx}: commonStruct without fields"))?,
                    cx,
                    &format!("{ctx}<{sname}>"),
                )?;
                cx.add_struct(
                    StructDef {
                        name: sname.clone(),
                        fields,
                    },
                    &ctx,
                )?;
            }
        }
        (_, Some(_)) => return Err(format!("{ctx}: 'fields' on a non-struct type")),
        (_, None) => {}
    }

    Ok(Field {
        name,
        ty,
        versions,
        nullable,
        tagged,
        tag,
        default,
        ignorable,
        flexible,
        about,
    })
}

/// Parses one spec file (already stripped of comments).
pub fn parse_message(src: &str, file: &str) -> Result<Message, String> {
    let root: Value =
        serde_json::from_str(&strip_comments(src)).map_err(|e| format!("{file}: bad JSON: {e}"))?;
    let obj = root
        .as_object()
        .ok_or_else(|| format!("{file}: top level must be an object"))?;
    check_keys(
        obj,
        &[
            "apiKey",
            "type",
            "listeners",
            "name",
            "validVersions",
            "flexibleVersions",
            "deprecatedVersions",
            "latestVersionUnstable",
            "fields",
            "commonStructs",
        ],
        file,
    )?;
    let name = get_str(obj, "name", file)?.to_string();
    let kind = match get_str(obj, "type", file)? {
        "request" => Kind::Request,
        "response" => Kind::Response,
        "header" => Kind::Header,
        "data" => Kind::Data,
        other => return Err(format!("{file}: unknown message type '{other}'")),
    };
    let api_key = match obj.get("apiKey") {
        None => None,
        Some(v) => Some(
            v.as_i64()
                .and_then(|n| i16::try_from(n).ok())
                .ok_or_else(|| format!("{file}: bad apiKey"))?,
        ),
    };
    if matches!(kind, Kind::Request | Kind::Response) && api_key.is_none() {
        return Err(format!("{file}: request/response without apiKey"));
    }
    let valid = opt_versions(obj, "validVersions", file)?
        .ok_or_else(|| format!("{file}: missing validVersions"))?;
    let flexible = opt_versions(obj, "flexibleVersions", file)?
        .ok_or_else(|| format!("{file}: missing flexibleVersions"))?;
    if !flexible.is_empty() && flexible.hi != i16::MAX {
        return Err(format!("{file}: flexibleVersions must be open-ended"));
    }
    let deprecated = opt_versions(obj, "deprecatedVersions", file)?.unwrap_or(Versions::NONE);
    let latest_unstable = opt_bool(obj, "latestVersionUnstable", file)?;
    let listeners = match obj.get("listeners") {
        None => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("{file}: bad listener"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(format!("{file}: 'listeners' must be an array")),
    };
    let mut common = BTreeMap::new();
    if let Some(cs) = obj.get("commonStructs") {
        for c in cs
            .as_array()
            .ok_or_else(|| format!("{file}: commonStructs must be an array"))?
        {
            let cobj = c
                .as_object()
                .ok_or_else(|| format!("{file}: bad commonStruct"))?;
            check_keys(
                cobj,
                &["name", "versions", "fields"],
                &format!("{file} commonStructs"),
            )?;
            let cname = get_str(cobj, "name", file)?.to_string();
            common.insert(cname, c.clone());
        }
    }
    let mut cx = Ctx {
        structs: Vec::new(),
        common,
    };
    let fields = parse_fields(
        obj.get("fields")
            .ok_or_else(|| format!("{file}: missing fields"))?,
        &mut cx,
        &name,
    )?;
    // Common structs that no field refers to are still part of the message's public types.
    let names: Vec<String> = cx.common.keys().cloned().collect();
    for cname in names {
        if !cx.structs.iter().any(|s| s.name == cname) {
            let c = cx.common[&cname].clone();
            let fields = parse_fields(&c["fields"], &mut cx, &format!("{file}<{cname}>"))?;
            cx.add_struct(
                StructDef {
                    name: cname,
                    fields,
                },
                file,
            )?;
        }
    }
    if cx.structs.iter().any(|s| s.name == name) {
        return Err(format!(
            "{file}: a nested struct has the message's own name"
        ));
    }
    let msg = Message {
        name,
        kind,
        api_key,
        valid,
        flexible,
        deprecated,
        latest_unstable,
        listeners,
        fields,
        structs: cx.structs,
    };
    validate(&msg, file)?;
    Ok(msg)
}

fn validate(msg: &Message, file: &str) -> Result<(), String> {
    let mut all: Vec<(&str, &Field)> = msg.fields.iter().map(|f| (msg.name.as_str(), f)).collect();
    for s in &msg.structs {
        all.extend(s.fields.iter().map(|f| (s.name.as_str(), f)));
    }
    for (owner, f) in all {
        if !f.tagged.is_empty() && !msg.flexible.contains_range(&f.tagged.intersect(&msg.valid)) {
            return Err(format!(
                "{file}: {owner}.{}: tagged in non-flexible versions",
                f.name
            ));
        }
        if matches!(f.ty, FieldType::Uuid) && !f.nullable.is_empty() {
            return Err(format!(
                "{file}: {owner}.{}: nullable uuid is not supported",
                f.name
            ));
        }
    }
    Ok(())
}
