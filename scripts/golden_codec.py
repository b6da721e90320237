"""Minimal spec-driven Kafka protocol codec (decode + encode) in pure Python.

Used by capture_golden.py to verify that every captured frame is complete and
well-formed (decode consumes exactly all bytes, re-encode reproduces them), to
label frames, and by the CreateTopics stub broker to build responses.

It reads Kafka's JSON message specs (the same files kafka-wire's codegen uses,
default: <repo>/../shared/kafka-message-specs). It is deliberately small and
is not the project's codec -- it only exists to sanity-check golden vectors.

Decoded structs are dicts keyed by the spec field names. Two bookkeeping keys
keep byte-exact round trips possible:
  "_tagged": list of (tag, field-name-or-None, raw-bytes) in wire order; raw
             bytes are kept for unknown tags.
"""

import json
import os
import struct
import uuid as _uuid

# --------------------------------------------------------------------------
# spec loading


def _strip_comments(text):
    """Remove // comments outside of JSON strings."""
    out = []
    i, n = 0, len(text)
    in_str = False
    while i < n:
        c = text[i]
        if in_str:
            out.append(c)
            if c == "\\":
                out.append(text[i + 1])
                i += 2
                continue
            if c == '"':
                in_str = False
            i += 1
        elif c == '"':
            in_str = True
            out.append(c)
            i += 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        else:
            out.append(c)
            i += 1
    return "".join(out)


class Versions:
    """A spec version range: "0+", "3-5", "7", "none"."""

    __slots__ = ("lo", "hi")

    def __init__(self, s):
        s = (s or "none").strip()
        if s == "none":
            self.lo, self.hi = 1, 0
        elif s.endswith("+"):
            self.lo, self.hi = int(s[:-1]), 1 << 30
        elif "-" in s:
            a, b = s.split("-")
            self.lo, self.hi = int(a), int(b)
        else:
            self.lo = self.hi = int(s)

    def __contains__(self, v):
        return self.lo <= v <= self.hi

    def __repr__(self):
        return "Versions(%d..%d)" % (self.lo, self.hi)


class Field:
    def __init__(self, d, structs):
        self.name = d["name"]
        t = d["type"]
        self.is_array = t.startswith("[]")
        self.elem = t[2:] if self.is_array else t
        self.versions = Versions(d.get("versions"))
        self.nullable = Versions(d.get("nullableVersions"))
        self.tagged = Versions(d.get("taggedVersions"))
        self.tag = d.get("tag")
        fv = d.get("flexibleVersions")
        self.flex_override = Versions(fv) if fv is not None else None
        self.default = d.get("default")
        self._structs = structs
        self._inline = None
        if "fields" in d:
            self._inline = [Field(f, structs) for f in d["fields"]]

    @property
    def fields(self):
        # common structs are resolved lazily: they may reference each other
        if self._inline is not None:
            return self._inline
        return self._structs.get(self.elem)

    @property
    def is_struct(self):
        return self._inline is not None or self.elem in self._structs


class Message:
    def __init__(self, d):
        self.name = d["name"]
        self.type = d["type"]
        self.api_key = d.get("apiKey")
        self.valid = Versions(d.get("validVersions"))
        self.flexible = Versions(d.get("flexibleVersions"))
        raw_structs = {s["name"]: s for s in d.get("commonStructs", [])}
        structs = {}
        for name in raw_structs:
            structs[name] = None
        for name, s in raw_structs.items():
            structs[name] = [Field(f, structs) for f in s["fields"]]
        self.fields = [Field(f, structs) for f in d["fields"]]


class Specs:
    def __init__(self, spec_dir):
        self.dir = spec_dir
        self.by_key = {}  # (api_key, "request"|"response") -> Message
        self.headers = {}
        for fn in sorted(os.listdir(spec_dir)):
            if not fn.endswith(".json"):
                continue
            with open(os.path.join(spec_dir, fn), encoding="utf-8") as f:
                d = json.loads(_strip_comments(f.read()))
            m = Message(d)
            if m.type in ("request", "response"):
                self.by_key[(m.api_key, m.type)] = m
            elif m.type == "header":
                self.headers[m.name] = m

    def api_name(self, api_key):
        m = self.by_key.get((api_key, "request"))
        return m.name[: -len("Request")] if m else "Api%d" % api_key

    def message(self, api_key, direction):
        return self.by_key[(api_key, direction)]

    def is_flexible(self, api_key, version):
        return version in self.by_key[(api_key, "request")].flexible

    def request_header_version(self, api_key, version):
        if self.is_flexible(api_key, version):
            return 2
        if api_key == 7 and version == 0:  # ControlledShutdown v0
            return 0
        return 1

    def response_header_version(self, api_key, version):
        # ApiVersionsResponse always uses header v0 so that clients can parse
        # it whatever version they asked for (KIP-511).
        if api_key == 18:
            return 0
        return 1 if self.is_flexible(api_key, version) else 0

    def header(self, direction):
        return self.headers["RequestHeader" if direction == "request" else "ResponseHeader"]


# --------------------------------------------------------------------------
# primitives


class DecodeError(Exception):
    pass


class Reader:
    def __init__(self, buf, pos=0, end=None):
        self.buf = buf
        self.pos = pos
        self.end = len(buf) if end is None else end

    def take(self, n):
        if n < 0 or self.pos + n > self.end:
            raise DecodeError("need %d bytes at %d, have %d" % (n, self.pos, self.end - self.pos))
        b = self.buf[self.pos : self.pos + n]
        self.pos += n
        return b

    def unpack(self, fmt):
        size = struct.calcsize(fmt)
        return struct.unpack(fmt, self.take(size))[0]

    def uvarint(self):
        shift = 0
        result = 0
        while True:
            b = self.take(1)[0]
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 35:
                raise DecodeError("uvarint too long")

    def remaining(self):
        return self.end - self.pos


def uvarint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def varint(n):
    return uvarint((n << 1) ^ (n >> 63))


def read_varint(r):
    u = r.uvarint() if isinstance(r, Reader) else r
    return (u >> 1) ^ -(u & 1)


_FIXED = {
    "int8": ">b",
    "int16": ">h",
    "int32": ">i",
    "int64": ">q",
    "uint16": ">H",
    "uint32": ">I",
    "float64": ">d",
}


# --------------------------------------------------------------------------
# decoding


def _flex_for(field, flexible, version):
    if field.flex_override is not None:
        return version in field.flex_override
    return flexible


def _decode_value(r, field, elem, version, flexible, nullable):
    """Decode one value of (non-array) type `elem`."""
    if elem in _FIXED:
        return r.unpack(_FIXED[elem])
    if elem == "bool":
        b = r.take(1)[0]
        if b > 1:
            raise DecodeError("bad bool %d" % b)
        return bool(b)
    if elem == "uuid":
        return str(_uuid.UUID(bytes=r.take(16)))
    if elem == "string":
        if flexible:
            n = r.uvarint() - 1
        else:
            n = r.unpack(">h")
        if n < 0:
            if not nullable:
                raise DecodeError("null string for non-nullable %s" % field.name)
            return None
        raw = r.take(n)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError("invalid utf-8 in %s" % field.name)
    if elem in ("bytes", "records"):
        if flexible:
            n = r.uvarint() - 1
        else:
            n = r.unpack(">i")
        if n < 0:
            if not nullable:
                raise DecodeError("null bytes for non-nullable %s" % field.name)
            return None
        return bytes(r.take(n))
    if field.is_struct:
        if nullable:
            # nullable struct: int8 marker, -1 = null, 1 = present
            marker = r.unpack(">b")
            if marker < 0:
                return None
            if marker != 1:
                raise DecodeError("bad nullable struct marker %d for %s" % (marker, field.name))
        return _decode_struct(r, field.fields, version, flexible)
    raise DecodeError("unknown type %s" % elem)


def _decode_field(r, field, version, flexible):
    fflex = _flex_for(field, flexible, version)
    nullable = version in field.nullable
    if field.is_array:
        n = r.uvarint() - 1 if fflex else r.unpack(">i")
        if n < 0:
            if not nullable:
                raise DecodeError("null array for non-nullable %s" % field.name)
            return None
        if n > r.remaining():
            raise DecodeError("array %s count %d exceeds remaining bytes" % (field.name, n))
        return [_decode_value(r, field, field.elem, version, fflex, False) for _ in range(n)]
    return _decode_value(r, field, field.elem, version, fflex, nullable)


def _decode_struct(r, fields, version, flexible):
    out = {}
    tagged_fields = {}
    for f in fields:
        if version not in f.versions:
            continue
        if flexible and f.tag is not None and version in f.tagged:
            tagged_fields[f.tag] = f
            continue
        out[f.name] = _decode_field(r, f, version, flexible)
    if flexible:
        tags = []
        n = r.uvarint()
        for _ in range(n):
            tag = r.uvarint()
            size = r.uvarint()
            raw = bytes(r.take(size))
            f = tagged_fields.get(tag)
            if f is not None:
                sub = Reader(raw)
                out[f.name] = _decode_field(sub, f, version, True)
                if sub.remaining():
                    raise DecodeError("tagged field %s has %d trailing bytes" % (f.name, sub.remaining()))
                tags.append((tag, f.name, raw))
            else:
                tags.append((tag, None, raw))
        out["_tagged"] = tags
    return out


def decode_body(msg, version, buf, pos=0, flexible=None):
    """Decode a message body; returns (dict, end_pos)."""
    if flexible is None:
        flexible = version in msg.flexible
    r = Reader(buf, pos)
    d = _decode_struct(r, msg.fields, version, flexible)
    return d, r.pos


# --------------------------------------------------------------------------
# encoding


def _encode_value(out, field, elem, value, version, flexible, nullable):
    if elem in _FIXED:
        out += struct.pack(_FIXED[elem], value)
    elif elem == "bool":
        out.append(1 if value else 0)
    elif elem == "uuid":
        out += _uuid.UUID(value).bytes
    elif elem in ("string", "bytes", "records"):
        if value is None:
            if not nullable:
                raise ValueError("null for non-nullable %s" % field.name)
            if flexible:
                out += uvarint(0)
            else:
                out += struct.pack(">h" if elem == "string" else ">i", -1)
            return
        raw = value.encode("utf-8") if elem == "string" else value
        if flexible:
            out += uvarint(len(raw) + 1)
        else:
            out += struct.pack(">h" if elem == "string" else ">i", len(raw))
        out += raw
    elif field.is_struct:
        if nullable:
            if value is None:
                out += b"\xff"
                return
            out += b"\x01"
        _encode_struct(out, field.fields, value, version, flexible)
    else:
        raise ValueError("unknown type %s" % elem)


def _encode_field(out, field, value, version, flexible):
    fflex = _flex_for(field, flexible, version)
    nullable = version in field.nullable
    if field.is_array:
        if value is None:
            if not nullable:
                raise ValueError("null array for non-nullable %s" % field.name)
            out += uvarint(0) if fflex else struct.pack(">i", -1)
            return
        out += uvarint(len(value) + 1) if fflex else struct.pack(">i", len(value))
        for v in value:
            _encode_value(out, field, field.elem, v, version, fflex, False)
    else:
        _encode_value(out, field, field.elem, value, version, fflex, nullable)


def _default_for(f):
    if f.is_array:
        return []
    if f.is_struct:
        return {}
    if f.elem in ("string",):
        if f.default == "null":
            return None
        return f.default if isinstance(f.default, str) else ""
    if f.elem in ("bytes", "records"):
        return None if f.default == "null" else b""
    if f.elem == "bool":
        return f.default in (True, "true")
    if f.elem == "uuid":
        return "00000000-0000-0000-0000-000000000000"
    if f.elem == "float64":
        return float(f.default or 0)
    d = f.default
    if isinstance(d, str):
        d = int(d, 0) if d else 0
    return d or 0


def _encode_struct(out, fields, value, version, flexible):
    tagged_by_tag = {}
    for f in fields:
        if version not in f.versions:
            continue
        if flexible and f.tag is not None and version in f.tagged:
            tagged_by_tag[f.tag] = f
            continue
        v = value.get(f.name, _default_for(f)) if isinstance(value, dict) else _default_for(f)
        _encode_field(out, f, v, version, flexible)
    if flexible:
        tags = value.get("_tagged") if isinstance(value, dict) else None
        if tags is None:
            tags = [(t, f.name, None) for t, f in sorted(tagged_by_tag.items()) if f.name in value]
        out += uvarint(len(tags))
        for tag, name, raw in tags:
            if name is not None:
                sub = bytearray()
                _encode_field(sub, tagged_by_tag[tag], value[name], version, True)
                raw = bytes(sub)
            out += uvarint(tag)
            out += uvarint(len(raw))
            out += raw


def encode_body(msg, version, value, flexible=None):
    if flexible is None:
        flexible = version in msg.flexible
    out = bytearray()
    _encode_struct(out, msg.fields, value, version, flexible)
    return bytes(out)


# --------------------------------------------------------------------------
# frames


def decode_frame(specs, direction, payload, api_key=None, api_version=None, allow_trailing=False):
    """Decode a frame payload (no size prefix).

    For responses api_key/api_version (of the matching request) are required.
    Returns dict(header=..., body=..., header_version=..., api_key=...,
    api_version=..., flexible=..., trailing=...). Raises DecodeError if the
    bytes do not decode, or leave trailing bytes (unless allow_trailing).
    """
    if direction == "request":
        api_key, api_version = struct.unpack_from(">hh", payload, 0)
        hv = specs.request_header_version(api_key, api_version)
    else:
        hv = specs.response_header_version(api_key, api_version)
    hmsg = specs.header(direction)
    header, pos = decode_body(hmsg, hv, payload, 0, flexible=hv in hmsg.flexible)
    msg = specs.message(api_key, direction)
    body, end = decode_body(msg, api_version, payload, pos)
    if end != len(payload) and not allow_trailing:
        raise DecodeError("%d trailing bytes after %s v%d %s body"
                          % (len(payload) - end, msg.name, api_version, direction))
    return {
        "trailing": len(payload) - end,
        "header": header,
        "header_version": hv,
        "body": body,
        "body_offset": pos,
        "api_key": api_key,
        "api_version": api_version,
        "flexible": api_version in msg.flexible,
        "in_spec": api_version in msg.valid,
    }


def encode_frame(specs, direction, header, header_version, api_key, api_version, body):
    hmsg = specs.header(direction)
    out = encode_body(hmsg, header_version, header, flexible=header_version in hmsg.flexible)
    out += encode_body(specs.message(api_key, direction), api_version, body)
    return out


def default_spec_dir():
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.normpath(os.path.join(here, "..", "..", "shared", "kafka-message-specs"))
