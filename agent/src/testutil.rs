//! Test-only helpers: skips that are loud and counted.
//!
//! A test that cannot run here (not root, a kernel feature missing, under
//! qemu-user) calls [`skip`] and returns; one that leaves out only a part
//! calls [`skip_part`]. Both print `SKIPPED …` straight to fd 2 (libtest
//! swallows `eprintln!` of a passing test) and, when `CLOUDY_SKIP_LOG`
//! names a file, append `TEST<TAB>whole|part<TAB>REASON` to it. TEST is
//! libtest's name of the running test, which is the name of its thread:
//! threads a test spawns must carry it ([`spawn_named`]). `make test`
//! counts a wholly skipped test as skipped, not passed, and lists every
//! line (`scripts/test_summary.py`; the harness in `tests/src/lib.rs`
//! writes the same format).

use std::io::Write as _;

/// The environment variable naming the skip log.
pub(crate) const ENV_SKIP_LOG: &str = "CLOUDY_SKIP_LOG";

/// The whole test was skipped: say why.
pub(crate) fn skip(test: &str, reason: &str) {
    record(test, "whole", reason);
}

/// A part of the test was left out; the rest ran.
pub(crate) fn skip_part(test: &str, reason: &str) {
    record(test, "part", reason);
}

fn record(test: &str, kind: &str, reason: &str) {
    let current = std::thread::current();
    let name = current.name().filter(|n| *n != "main").unwrap_or(test);
    let what = if kind == "part" { "part of " } else { "" };
    let _ = writeln!(std::io::stderr(), "SKIPPED {what}{test}: {reason}");
    if let Some(path) = std::env::var_os(ENV_SKIP_LOG) {
        let line = format!("{name}\t{kind}\t{}\n", reason.replace(['\t', '\n'], " "));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path);
        if let Ok(mut f) = file {
            let _ = f.write_all(line.as_bytes());
        }
    }
}

/// Spawns `f` on a thread named like the current one, so a skip recorded
/// there is the current test's.
pub(crate) fn spawn_named<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let mut b = std::thread::Builder::new();
    if let Some(name) = std::thread::current().name() {
        b = b.name(name.to_string());
    }
    b.spawn(f).expect("spawn a test thread")
}

/// `"10.0.0.1/24"` as an [`IpCidr`](crate::config::IpCidr).
///
/// # Panics
/// On text that is not ADDRESS/PREFIX (tests write it literally).
pub(crate) fn cidr(s: &str) -> crate::config::IpCidr {
    let (a, p) = s.split_once('/').expect("ADDRESS/PREFIX");
    crate::config::IpCidr {
        addr: a.parse().expect("an address"),
        prefix: p.parse().expect("a prefix length"),
    }
}

/// A fresh directory under the system temp dir, removed on drop.
pub(crate) struct TempDir(std::path::PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "cloudy-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    pub(crate) fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
