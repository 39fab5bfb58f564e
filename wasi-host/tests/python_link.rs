//! The unmodified Hypergolix 0.1.0 Python link (`HGXLink` from PyPI, in a
//! Python 3.11 venv with `tests/python/py311-compat` on PYTHONPATH)
//! drives two of our services, each with the engine in wasmtime, through a
//! real `hypergolix serve`. The scenario is `tests/python/hgxlink_scenario.py`;
//! between its two phases agent A's service is killed with -9 and started
//! again, and the link reconnects with its existing token.
//!
//! The venv is made by `tests/python/venv.sh` (pinned versions) unless
//! `HYPERGOLIX_TEST_PYTHON` names a python that already has the link.

#[path = "support/serve_proc.rs"]
mod serve_proc;
#[path = "support/service_proc.rs"]
mod service_proc;

use std::path::{Path, PathBuf};
use std::process::Command;

use serve_proc::{tempdir, Server};
use service_proc::Svc;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn python() -> String {
    if let Ok(p) = std::env::var("HYPERGOLIX_TEST_PYTHON") {
        return p;
    }
    let out = Command::new(repo().join("tests/python/venv.sh"))
        .output()
        .expect("run tests/python/venv.sh");
    assert!(
        out.status.success(),
        "tests/python/venv.sh failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8 path")
        .trim()
        .to_string()
}

fn shim() -> PathBuf {
    let dir = repo().join("tests/python/py311-compat");
    assert!(
        dir.join("sitecustomize.py").exists(),
        "the py311 shim is missing at {}",
        dir.display()
    );
    dir
}

fn port(svc: &Svc) -> String {
    svc.addr.rsplit(':').next().expect("host:port").to_string()
}

fn phase(python: &str, phase: &str, a: &Svc, b: &Svc, state: &Path) {
    let status = Command::new(python)
        .arg(repo().join("tests/python/hgxlink_scenario.py"))
        .args([phase, &port(a), &port(b)])
        .arg(state)
        .env("PYTHONPATH", shim())
        // The shim's health-check port is unused by links; keep it off 7777.
        .env("HGX_HEALTH_PORT", "0")
        .status()
        .expect("run the Python scenario");
    assert!(status.success(), "the Python {phase} phase failed");
}

#[test]
fn the_original_python_link_drives_two_services() {
    let python = python();
    let dir = tempdir("python-link");
    let server = Server::start(&dir.join("server.redb"), &[]);
    let remote = format!("ws://{}/", server.addr);
    let (da, db) = (dir.join("a"), dir.join("b"));
    let svc_a = Svc::start_with(&da, false, &["--remote", &remote]);
    let svc_b = Svc::start_with(&db, false, &["--remote", &remote]);
    let state = dir.join("scenario.json");

    phase(&python, "first", &svc_a, &svc_b, &state);

    // Everything A acknowledged must survive kill -9; the link comes back
    // with its token.
    svc_a.kill9();
    let svc_a = Svc::start_with(&da, false, &["--remote", &remote]);
    phase(&python, "second", &svc_a, &svc_b, &state);
    let _ = std::fs::remove_dir_all(&dir);
}
