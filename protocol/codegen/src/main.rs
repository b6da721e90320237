//! `kafka-wire-codegen`: generates `protocol/src/generated/` from Kafka's JSON message specs.
//!
//! ```text
//! cargo run -p kafka-wire-codegen -- [--specs DIR] [--out DIR] [--check]
//! ```
//!
//! `--specs` defaults to `../shared/kafka-message-specs` (relative to the workspace root),
//! `--out` to `protocol/src/generated`. With `--check` nothing is written: the command exits
//! non-zero when the committed output differs from what the specs produce (CI runs this).

mod emit;
mod spec;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn workspace_root() -> PathBuf {
    // protocol/codegen -> workspace root
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kafka-wire-codegen: error: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<ExitCode, String> {
    let root = workspace_root();
    let mut specs = root.join("../shared/kafka-message-specs");
    let mut out = root.join("protocol/src/generated");
    let mut check = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--specs" => specs = PathBuf::from(args.next().ok_or("--specs needs a directory")?),
            "--out" => out = PathBuf::from(args.next().ok_or("--out needs a directory")?),
            "--check" => check = true,
            "-h" | "--help" => {
                println!("usage: kafka-wire-codegen [--specs DIR] [--out DIR] [--check]");
                return Ok(ExitCode::SUCCESS);
            }
            other => return Err(format!("unknown argument '{other}'")),
        }
    }

    let files = generate(&specs)?;
    if check {
        let mut drift = Vec::new();
        for (name, content) in &files {
            match std::fs::read_to_string(out.join(name)) {
                Ok(existing) if &existing == content => {}
                Ok(_) => drift.push(format!("differs: {name}")),
                Err(_) => drift.push(format!("missing: {name}")),
            }
        }
        for entry in std::fs::read_dir(&out).map_err(|e| format!("{}: {e}", out.display()))? {
            let name = entry
                .map_err(|e| e.to_string())?
                .file_name()
                .to_string_lossy()
                .to_string();
            if !files.contains_key(&name) {
                drift.push(format!("not generated from any spec: {name}"));
            }
        }
        if drift.is_empty() {
            println!(
                "kafka-wire-codegen: {} generated files match the specs",
                files.len()
            );
            return Ok(ExitCode::SUCCESS);
        }
        for d in &drift {
            eprintln!("kafka-wire-codegen: {d}");
        }
        eprintln!("kafka-wire-codegen: generated code is out of date; run `cargo run -p kafka-wire-codegen`");
        return Ok(ExitCode::from(1));
    }

    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    for entry in std::fs::read_dir(&out).map_err(|e| e.to_string())? {
        let path = entry.map_err(|e| e.to_string())?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        if path.extension().is_some_and(|e| e == "rs") && !files.contains_key(&name) {
            std::fs::remove_file(&path).map_err(|e| e.to_string())?;
        }
    }
    for (name, content) in &files {
        std::fs::write(out.join(name), content).map_err(|e| format!("{name}: {e}"))?;
    }
    println!(
        "kafka-wire-codegen: wrote {} files to {}",
        files.len(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Parses every spec and returns the formatted output files by name.
fn generate(specs: &Path) -> Result<BTreeMap<String, String>, String> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(specs)
        .map_err(|e| format!("{}: {e}", specs.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(format!("no .json specs in {}", specs.display()));
    }
    let mut msgs = Vec::new();
    for p in &paths {
        let file = p
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let src = std::fs::read_to_string(p).map_err(|e| format!("{file}: {e}"))?;
        msgs.push(spec::parse_message(&src, &file)?);
    }
    let mut files = BTreeMap::new();
    for (m, p) in msgs.iter().zip(&paths) {
        let file = p
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        files.insert(
            format!("{}.rs", emit::module_name(m)),
            emit::emit_message(m, &file)?,
        );
    }
    files.insert("mod.rs".to_string(), emit::emit_mod(&msgs)?);
    rustfmt(&mut files)?;
    Ok(files)
}

/// Formats every file with rustfmt (edition 2021, the workspace's rustfmt.toml settings).
fn rustfmt(files: &mut BTreeMap<String, String>) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("kafka-wire-codegen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut args = vec![
        "--edition".to_string(),
        "2021".to_string(),
        "--config".to_string(),
        "max_width=100".to_string(),
    ];
    for (name, content) in files.iter() {
        let p = dir.join(name);
        std::fs::write(&p, content).map_err(|e| e.to_string())?;
        args.push(p.to_string_lossy().to_string());
    }
    let status = Command::new("rustfmt")
        .args(&args)
        .status()
        .map_err(|e| format!("running rustfmt: {e}"))?;
    if !status.success() {
        return Err("rustfmt failed on the generated code".into());
    }
    for (name, content) in files.iter_mut() {
        *content = std::fs::read_to_string(dir.join(name)).map_err(|e| e.to_string())?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
