//! The host over real processes and real wasm: the WASI build of the golden
//! vectors runs under wasmtime, and `hypergolix inspect` checks real objects.

use std::path::PathBuf;
use std::process::Command;

use hypergolix_wasi_host::runtime::Runtime;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The golden vectors as a WASI command component: built by `build.rs`
/// beside the engine, or `$HYPERGOLIX_SELFTEST_WASM`.
fn vectors_command() -> PathBuf {
    let path = std::env::var_os("HYPERGOLIX_SELFTEST_WASM")
        .map(PathBuf::from)
        .or_else(|| option_env!("HYPERGOLIX_VECTORS_COMMAND").map(PathBuf::from))
        .expect(
            "no vectors command: set HYPERGOLIX_SELFTEST_WASM (the host was built with HYPERGOLIX_PREBUILT_COMPONENT)",
        );
    assert!(path.exists(), "{} is missing", path.display());
    path
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hgx-host-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("tempdir");
    d
}

#[test]
fn golden_vectors_pass_under_wasmtime_with_cache() {
    let module = vectors_command();
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

/// The built-in engine's golden vectors (no file, any working directory).
#[test]
fn the_built_in_engine_passes_its_selftest() {
    let cache = tempdir("selftest-cache");
    let out = Command::new(env!("CARGO_BIN_EXE_hypergolix"))
        .args(["selftest", "--cache-dir"])
        .arg(&cache)
        .current_dir(std::env::temp_dir())
        .env_remove("HYPERGOLIX_SELFTEST_WASM")
        .output()
        .expect("run hypergolix selftest");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}

/// An upgrade replaces the engine's bytes under the same cache directory:
/// the cache must compile the new bytes, never hand back the old code, and
/// still serve the old bytes their own code. The "new" engine here is the
/// built-in one with one byte of its built-in vectors changed (so its
/// self-test fails): running the old machine code would pass.
#[test]
fn the_code_cache_never_runs_code_compiled_from_other_bytes() {
    use hypergolix_wasi_host::component::{selftest, EMBEDDED};
    let cache = tempdir("upgrade-cache");
    // alice's GIDC in vectors/golix-cs3.json, as the engine embeds it.
    let needle = b"4749444300000002038a9e01";
    let at = EMBEDDED
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the built-in vectors are in the engine's data");
    let mut upgraded = EMBEDDED.to_vec();
    upgraded[at + needle.len() - 1] = b'2';
    let run = |bytes: &[u8]| {
        let rt = Runtime::new(Some(&cache)).expect("runtime");
        let (c, _) = rt.load_bytes(bytes).expect("load");
        selftest(&rt, &c).expect("selftest")
    };
    let (ok, report) = run(EMBEDDED);
    assert!(ok, "{report}");
    let (ok, report) = run(&upgraded);
    assert!(!ok, "the changed engine must fail its selftest: {report}");
    let (ok, report) = run(EMBEDDED);
    assert!(ok, "{report}");
    let entries = walk_files(&cache);
    assert!(
        entries >= 2,
        "one cache entry per distinct engine, found {entries}"
    );
}

fn walk_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    let p = e.path();
                    if p.is_dir() {
                        walk_files(&p)
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
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

    let (ok, out, _) = hypergolix(&["inspect", g, "--identity", i, "--json"]);
    assert!(ok, "{out}");
    let j: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON document");
    assert_eq!(j["type"], "GEOC");
    assert_eq!(j["ghid"], geoc_vec["ghid"]);
    assert_eq!(
        (j["valid"].as_bool(), j["error"].is_null()),
        (Some(true), true)
    );

    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&geoc, &bytes).expect("write");
    let (ok, out, _) = hypergolix(&["inspect", g, "--identity", i]);
    assert!(!ok);
    assert!(out.contains("bad_signature"), "{out}");
    let (ok, out, _) = hypergolix(&["inspect", g, "--identity", i, "--json"]);
    assert!(!ok);
    let j: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON document");
    assert_eq!(
        (j["valid"].as_bool(), j["error"].as_str()),
        (Some(false), Some("bad_signature"))
    );

    let (ok, _, err) = hypergolix(&["inspect", "/nonexistent/file"]);
    assert!(!ok);
    assert!(err.contains("/nonexistent/file"), "{err}");
}

#[test]
fn inspect_reads_original_hypergolix_objects() {
    let dir = root().join("tests/interop/cs1-objects");
    assert!(
        dir.is_dir(),
        "the 0.1.0 objects must be at {}",
        dir.display()
    );
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

/// wasmtime runs the machine code it finds in the cache: a directory that
/// everyone can write is refused.
#[test]
fn a_cache_directory_everyone_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir("open-cache");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let err = Runtime::new(Some(&dir)).err().expect("refused");
    assert!(
        err.to_string().contains("not writable by everyone"),
        "{err}"
    );
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    assert!(Runtime::new(Some(&dir)).is_ok());
}
