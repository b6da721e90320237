//! Helpers shared by the `producer-vs-rdkafka` and `consumer-vs-rdkafka` benchmarks
//! (included with `#[path]` from each binary).

#![allow(dead_code)]

use std::time::Duration;

/// Bytes per record value in both benchmarks.
pub const VALUE_SIZE: usize = 100;

/// CPU time (user + system) used so far by this process (every thread).
pub fn process_cpu() -> Duration {
    // SAFETY: getrusage only writes the struct we pass, which is zero-initialised POD.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a rusage; RUSAGE_SELF is a valid `who`.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    assert_eq!(rc, 0, "getrusage");
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// A `VmXXX:` field of `/proc/self/status`, in KiB.
pub fn proc_status_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    s.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} not in /proc/self/status"))
}

/// `key=value,key=value` settings from the environment variable `var` (none when unset).
pub fn extra_settings(var: &str) -> Vec<(String, String)> {
    match std::env::var(var) {
        Ok(v) => v
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|kv| {
                let (k, v) = kv
                    .split_once('=')
                    .unwrap_or_else(|| panic!("{var}: {kv} is not key=value"));
                (k.to_string(), v.to_string())
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

pub fn list(v: String) -> Vec<String> {
    v.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

pub fn mb(n: u64, secs: f64) -> f64 {
    n as f64 * VALUE_SIZE as f64 / 1e6 / secs
}

/// The smallest value and the median (the lower middle for an even count).
pub fn best_median(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (v[0], v[(v.len() - 1) / 2])
}

pub fn median(v: Vec<f64>) -> f64 {
    best_median(v).1
}

/// What a measured child process reported: its `RESULT key=value ...` line, and the CPU
/// time this (broker) process spent while the child ran.
pub struct ChildRun {
    /// The `key=value` pairs of the child's `RESULT` line.
    pub kv: std::collections::BTreeMap<String, String>,
    /// CPU time of this process (the in-process broker) during the child's run.
    pub broker_cpu: Duration,
}

impl ChildRun {
    /// The value of `key` as a number; panics (failing the benchmark) when absent or bad.
    pub fn f(&self, key: &str) -> f64 {
        let v = self
            .kv
            .get(key)
            .unwrap_or_else(|| panic!("no {key} in the child's RESULT line"));
        v.parse().unwrap_or_else(|_| panic!("{key}={v}"))
    }

    /// The raw value of `key`; panics when absent.
    pub fn get(&self, key: &str) -> &str {
        self.kv
            .get(key)
            .unwrap_or_else(|| panic!("no {key} in the child's RESULT line"))
    }
}

/// Runs this executable again with `args` (the measured client in its own process, wrapped
/// by `BENCH_CHILD_WRAPPER` if set, e.g. `taskset -c 1`), echoes its other output lines
/// prefixed with `[name]`, and returns its `RESULT` line. Panics when the child fails or
/// reports no result.
pub fn run_child(name: &str, args: &[String]) -> ChildRun {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = match std::env::var("BENCH_CHILD_WRAPPER") {
        Ok(w) if !w.trim().is_empty() => {
            let mut parts = w.split_whitespace();
            let mut c = Command::new(parts.next().unwrap());
            c.args(parts).arg(&exe);
            c
        }
        _ => Command::new(&exe),
    };
    cmd.args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let cpu0 = process_cpu();
    let mut child = cmd.spawn().expect("spawn child");
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .expect("child stdout");
    let status = child.wait().expect("child wait");
    let broker_cpu = process_cpu() - cpu0;
    assert!(status.success(), "child {name} failed: {status}\n{out}");
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT line from child:\n{out}"));
    for l in out.lines().filter(|l| !l.starts_with("RESULT ")) {
        println!("  [{name}] {l}");
    }
    let kv = line
        .split_whitespace()
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    ChildRun { kv, broker_cpu }
}
