//! The host over real processes and real wasm: the WASI build of the golden
//! vectors runs under wasmtime, and `hypergolix inspect` checks real objects.

use std::path::PathBuf;
use std::process::Command;

use hypergolix_wasi_host::runtime::Runtime;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn selftest_module() -> PathBuf {
    std::env::var_os("HYPERGOLIX_SELFTEST_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/wasm32-wasip2/release/examples/wasi_vectors.wasm"))
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hgx-host-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("tempdir");
    d
}

#[test]
fn golden_vectors_pass_under_wasmtime_with_cache() {
    let module = selftest_module();
    assert!(
        module.exists(),
        "{} is missing: build it with `cargo build --release -p hypergolix-core --example wasi_vectors --features vectors --target wasm32-wasip2`",
        module.display()
    );
    let cache = tempdir("wasmtime-cache");
    let runtime = Runtime::new(Some(&cache)).expect("runtime");
    let (component, first_load) = runtime.load(&module).expect("load");
    let out = runtime
        .run_command(&component, &["wasi_vectors"])
        .expect("run");
    assert_eq!(out.exit_code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains(" passed, 0 failed"), "{}", out.stdout);
    // A second engine finds the compiled code in the cache.
    let again = Runtime::new(Some(&cache)).expect("runtime");
    let (_, cached_load) = again.load(&module).expect("load");
    assert!(
        cached_load < first_load,
        "cached {cached_load:?} vs first {first_load:?}"
    );
}

fn hypergolix(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hypergolix"))
        .args(args)
        .output()
        .expect("run hypergolix");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn inspect_verifies_our_objects_and_rejects_tampering() {
    let text = std::fs::read_to_string(root().join("vectors/golix-cs3.json")).expect("read");
    let vectors: serde_json::Value = serde_json::from_str(&text).expect("json");
    let dir = tempdir("inspect");
    let gidc = dir.join("alice.gidc");
    let gidc_hex = vectors["identities"][0]["gidc"].as_str().expect("gidc");
    std::fs::write(&gidc, hex::decode(gidc_hex).expect("hex")).expect("write");
    let all = vectors["vectors"].as_array().expect("vectors");
    let geoc_vec = all.iter().find(|v| v["kind"] == "geoc").expect("geoc");
    let geoc = dir.join("obj.geoc");
    let mut bytes = hex::decode(geoc_vec["bytes"].as_str().expect("bytes")).expect("hex");
    std::fs::write(&geoc, &bytes).expect("write");
    let (g, i) = (geoc.to_str().expect("path"), gidc.to_str().expect("path"));

    let (ok, out, _) = hypergolix(&["inspect", g, "--identity", i]);
    assert!(ok, "{out}");
    assert!(
        out.contains("type:     GEOC") && out.contains("valid (layout, hash, signature)"),
        "{out}"
    );
    assert!(
        out.contains(geoc_vec["ghid"].as_str().expect("ghid")),
        "{out}"
    );

    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&geoc, &bytes).expect("write");
    let (ok, out, _) = hypergolix(&["inspect", g, "--identity", i]);
    assert!(!ok);
    assert!(out.contains("bad_signature"), "{out}");

    let (ok, _, err) = hypergolix(&["inspect", "/nonexistent/file"]);
    assert!(!ok);
    assert!(err.contains("/nonexistent/file"), "{err}");
}

#[test]
fn inspect_reads_original_hypergolix_objects() {
    let dir = root().join("../shared/interop/cs1-objects");
    if !dir.is_dir() {
        eprintln!("shared/interop not present; skipping");
        return;
    }
    let path = |n: &str| dir.join(n).to_str().expect("path").to_string();
    let (ok, out, _) = hypergolix(&["inspect", &path("GOBD_agentA_AQyFx8sWn9qi.golix")]);
    assert!(ok, "{out}");
    assert!(
        out.contains("counter:  20") && out.contains("target[7]"),
        "{out}"
    );
    let geoc = path("GEOC_agentA_AQsSvkFqEPeI.golix");
    let gidc = path("GIDC_A_ATegEkIetz3X.golix");
    let (ok, out, _) = hypergolix(&["inspect", &geoc, "--identity", &gidc]);
    assert!(!ok, "suite 0x1 signatures are not verifiable yet: {out}");
    assert!(out.contains("unsupported_suite"), "{out}");
}
