//! Test helpers shared by the tests that run `hypergolix` commands as a
//! user does: one command as a real process, what it printed, and the
//! checks every such test makes of it.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// `hypergolix ARGS` on the data directory `dir`, its compiled engine
/// cached in `cache`, with `password` in the environment.
pub fn run(dir: &Path, cache: &Path, password: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hypergolix"))
        .args(args)
        .env("HYPERGOLIX_DATA_DIR", dir)
        .env("HYPERGOLIX_CACHE_DIR", cache)
        .env("HYPERGOLIX_PASSWORD", password)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run hypergolix")
}

/// What a command printed: its stdout, then its stderr.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// What `hypergolix ARGS` printed, which must have succeeded.
pub fn succeeded(o: &Output, args: &[&str]) -> String {
    assert!(
        o.status.success(),
        "hypergolix {args:?} failed:\n{}",
        text(o)
    );
    text(o)
}

/// Checks that `hypergolix ARGS` failed, saying `why`.
pub fn failed(o: &Output, args: &[&str], why: &str) {
    assert!(!o.status.success(), "hypergolix {args:?} should fail");
    assert!(
        text(o).contains(why),
        "hypergolix {args:?}: expected {why:?} in:\n{}",
        text(o)
    );
}

/// The rest of the line of `out` that starts with `prefix`.
pub fn line<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in:\n{out}"))
        .trim()
}
