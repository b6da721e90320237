//! Running the third-party client scripts of `tests/interop/` (Python: confluent-kafka, i.e.
//! librdkafka, and kafka-python) from the interop tests.
//!
//! The interpreter is the one named by `KAFKA_INTEROP_PYTHON` (default
//! `<workspace>/.venv/bin/python`, made by `scripts/setup-interop.sh`). It is checked once: it
//! must import both clients and every codec module kafka-python needs. A missing interpreter,
//! client module or codec fails the test with what to run; interop tests never pass
//! silently. Every script prints exactly one JSON summary line on success (see
//! `tests/interop/common.py`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

/// What to run when the interpreter or a module is missing.
pub const SETUP_HINT: &str =
    "run scripts/setup-interop.sh (or scripts/test.sh, the README's test command)";

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace")
        .to_path_buf()
}

/// `tests/interop/`, where the scripts are.
pub fn scripts_dir() -> PathBuf {
    workspace_root().join("tests").join("interop")
}

/// The interop interpreter, checked once: it must exist and import both clients and every
/// codec module kafka-python needs.
///
/// # Panics
/// When it does not (failing the test with the reason and [`SETUP_HINT`]).
pub fn python() -> &'static Path {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let checked = PYTHON.get_or_init(|| {
        let python = match std::env::var_os("KAFKA_INTEROP_PYTHON") {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => workspace_root().join(".venv").join("bin").join("python"),
        };
        if !python.exists() {
            return Err(format!(
                "interop Python interpreter {} does not exist (the venv is missing; \
                 KAFKA_INTEROP_PYTHON unset or wrong); {SETUP_HINT}",
                python.display()
            ));
        }
        let probe = std::process::Command::new(&python)
            .args([
                "-c",
                "import confluent_kafka, kafka, lz4, zstandard, snappy\n\
                 from kafka.codec import has_lz4, has_snappy, has_zstd\n\
                 assert has_lz4() and has_snappy() and has_zstd(), 'kafka-python codecs'\n\
                 print(confluent_kafka.version()[0], confluent_kafka.libversion()[0], kafka.__version__)",
            ])
            .output();
        match probe {
            Ok(out) if out.status.success() => Ok(python),
            Ok(out) => Err(format!(
                "{} cannot import the interop modules (confluent_kafka, kafka, lz4, zstandard, snappy): {}; {SETUP_HINT}",
                python.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(e) => Err(format!("cannot run {}: {e}; {SETUP_HINT}", python.display())),
        }
    });
    match checked {
        Ok(p) => p,
        Err(msg) => panic!("{msg}"),
    }
}

/// The last `max` bytes of `s` (on a character boundary).
pub fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// The command running `tests/interop/<script> --bootstrap <bootstrap>` with the interop
/// interpreter (unbuffered output, no bytecode files), stdout and stderr piped; the child is
/// killed when its handle is dropped. The caller adds the script's arguments and stdin.
pub fn script_command(script: &str, bootstrap: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(python());
    command
        .arg(scripts_dir().join(script))
        .args(["--bootstrap", bootstrap])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Runs `tests/interop/<script> --bootstrap <bootstrap> <args>` and returns its JSON summary
/// line. The child is killed if this future is dropped.
///
/// # Panics
/// With the script's output when it fails, runs longer than `timeout` or prints no summary.
pub async fn run_script(
    bootstrap: &str,
    script: &str,
    args: &[String],
    timeout: Duration,
) -> Value {
    let started = Instant::now();
    let child = script_command(script, bootstrap)
        .args(args)
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}; {SETUP_HINT}", python().display()));
    let out = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(out) => out.unwrap_or_else(|e| panic!("waiting for {script}: {e}")),
        Err(_) => panic!("{script} {args:?} timed out after {timeout:?} (killed)"),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{script} {args:?} failed ({}):\nstderr:\n{}\nstdout:\n{}",
        out.status,
        tail(&stderr, 6000),
        tail(&stdout, 2000)
    );
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .unwrap_or_else(|| {
            panic!(
                "{script} {args:?} printed no JSON summary; stdout:\n{stdout}\nstderr:\n{stderr}"
            )
        });
    let summary: Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("{script}: bad JSON summary ({e}): {line}"));
    println!(
        "[interop] {script} ({:.1}s): {summary}",
        started.elapsed().as_secs_f64()
    );
    summary
}
