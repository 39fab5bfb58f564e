//! Puts the engine's WASI component inside the `hypergolix` binary.
//!
//! The component (`wasi-host/component`, built for `wasm32-wasip2`) is what
//! `hypergolix start` runs under wasmtime. Building it here, with a nested
//! cargo into a target directory of its own, makes the binary relocatable
//! (`cargo install --path wasi-host` works, and a copied binary needs no
//! build tree). Two ways to skip the nested build:
//!
//! - `HYPERGOLIX_PREBUILT_COMPONENT=FILE`: embed this file instead (a
//!   packager's two-step build, or CI sharing one build between steps);
//! - nothing else: the nested build is incremental, so a rebuild of the host
//!   with an unchanged engine costs a cargo no-op.
//!
//! The nested build needs the `wasm32-wasip2` target
//! (`rustup target add wasm32-wasip2`); without it the build fails saying so.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The file name the host includes (`src/component.rs`).
const NAME: &str = "hypergolix_engine_component.wasm";

fn main() {
    if let Err(e) = run() {
        // A build script reports errors by failing; cargo shows stderr.
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);
    let dest = out_dir.join(NAME);
    println!("cargo:rerun-if-env-changed=HYPERGOLIX_PREBUILT_COMPONENT");
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS");
    if let Some(p) = env::var_os("HYPERGOLIX_PREBUILT_COMPONENT") {
        let p = PathBuf::from(p);
        println!("cargo:rerun-if-changed={}", p.display());
        return copy(&p, &dest);
    }

    let host = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").ok_or("no CARGO_MANIFEST_DIR")?);
    let root = host.parent().ok_or("wasi-host has no parent directory")?;
    // What the component is built from: the engine, the component crate,
    // the interface, the vectors its self-test embeds, the lock file and the
    // target's rustflags.
    for p in [
        "Cargo.toml",
        "core/src",
        "core/Cargo.toml",
        "wasi-host/component",
        "wasi-host/wit",
        "vectors",
        "Cargo.lock",
        ".cargo/config.toml",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(p).display());
    }

    // OUT_DIR is <target>/[<triple>/]<profile>/build/<pkg>-<hash>/out: keep
    // one nested build for every profile of the host (clippy, tests and
    // release share it), where it stays warm and `cargo clean` removes it.
    let nested = out_dir
        .ancestors()
        .nth(4)
        .ok_or("unexpected OUT_DIR layout")?
        .join("engine-component");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        // The lock file is committed: the component's dependencies are
        // exactly the ones it names.
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            "wasm32-wasip2",
        ])
        .arg("--manifest-path")
        .arg(host.join("component/Cargo.toml"))
        .arg("--target-dir")
        .arg(&nested);
    // What cargo sets for this build script describes the host build, not
    // the component's: the component takes its rustflags from
    // .cargo/config.toml, and clippy's wrapper is not for a real build.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET_DIR",
        "RUSTC_WORKSPACE_WRAPPER",
        "CLIPPY_ARGS",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_PKG_NAME",
        "OUT_DIR",
        "TARGET",
        "HOST",
        "PROFILE",
        "OPT_LEVEL",
        "DEBUG",
    ] {
        cmd.env_remove(var);
    }
    for (var, _) in env::vars_os() {
        let name = var.to_string_lossy();
        if ["CARGO_CFG_", "CARGO_FEATURE_", "CARGO_PKG_", "DEP_"]
            .iter()
            .any(|p| name.starts_with(p))
        {
            cmd.env_remove(&var);
        }
    }
    // The binary carries the component: no DWARF in it (wasmtime does not
    // read it; the name section stays, for the engine's backtraces).
    cmd.env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run cargo for the engine component: {e}"))?;
    if !status.success() {
        return Err(format!(
            "building the engine component failed ({status}); it needs the wasm32-wasip2 target \
             (`rustup target add wasm32-wasip2`), or set HYPERGOLIX_PREBUILT_COMPONENT to a built one"
        ));
    }
    let built = nested.join("wasm32-wasip2/release");
    // The golden vectors as a WASI command, built beside the engine: the
    // host's tests run it (`tests/host.rs`).
    println!(
        "cargo:rustc-env=HYPERGOLIX_VECTORS_COMMAND={}",
        built.join("wasi_vectors.wasm").display()
    );
    copy(&built.join(NAME), &dest)
}

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| format!("{}: {e}", from.display()))
}
