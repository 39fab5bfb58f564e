//! The design documents name files and items of the code; a rename that
//! leaves them behind fails here. Every `something.rs` in backticks must be
//! a file of the repository (its path, or the end of one), and every Rust
//! path in backticks (`Type::item`, `module::item`) must end in an item the
//! sources define (or be another crate's item the sources use).

use std::path::{Path, PathBuf};

const DOCS: &[&str] = &[
    "docs/architecture.md",
    "docs/engine.md",
    "docs/protocol/persistence.md",
    "docs/protocol/revocation.md",
    "docs/protocol/accounts.md",
];

const SOURCES: &[&str] = &[
    "base/src",
    "core/src",
    "core/tests",
    "web/src",
    "wasi-host/src",
    "wasi-host/component/src",
    "wasi-host/tests",
    "link/src",
    "fuzz/fuzz_targets",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the repository root")
        .to_path_buf()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// Every `code span` of a markdown text.
fn spans(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut parts = line.split('`');
        parts.next();
        while let (Some(inside), Some(_)) = (parts.next(), parts.next()) {
            out.push(inside.to_string());
        }
    }
    out
}

fn is_rust_path(s: &str) -> bool {
    let s = s.strip_suffix("()").unwrap_or(s);
    s.contains("::")
        && !s.starts_with("::")
        && s.split("::")
            .all(|seg| !seg.is_empty() && seg.chars().all(|c| c.is_alphanumeric() || c == '_'))
}

fn defines(sources: &str, name: &str) -> bool {
    let keyed = [
        "fn ",
        "struct ",
        "enum ",
        "trait ",
        "type ",
        "mod ",
        "const ",
        "static ",
        "macro_rules! ",
    ]
    .iter()
    .any(|k| {
        sources.match_indices(&format!("{k}{name}")).any(|(i, m)| {
            !sources[i + m.len()..]
                .chars()
                .next()
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
        })
    });
    // An enum variant or a field: `    Name,` `    Name(` `    Name {` `name:`.
    keyed
        || sources.lines().any(|l| {
            let t = l.trim_start();
            let t = t
                .strip_prefix("pub(crate) ")
                .or_else(|| t.strip_prefix("pub "))
                .unwrap_or(t);
            t.strip_prefix(name).is_some_and(|rest| {
                rest.starts_with(',')
                    || rest.starts_with('(')
                    || rest.starts_with(" {")
                    || rest.starts_with(':')
                    || rest.starts_with(" =")
            })
        })
}

#[test]
fn the_design_documents_name_what_exists() {
    let root = root();
    let mut files = Vec::new();
    walk(&root.join("core"), &mut files);
    for d in [
        "base",
        "web",
        "wasi-host",
        "link",
        "fuzz",
        "docs",
        "scripts",
        "pkg/src",
        "pkg/test",
        "python",
    ] {
        walk(&root.join(d), &mut files);
    }
    let files: Vec<String> = files
        .iter()
        .filter_map(|p| p.strip_prefix(&root).ok())
        .map(|p| p.to_string_lossy().replace('\\', "/"))
        .filter(|p| !p.contains("/target/") && !p.contains("node_modules"))
        .collect();
    let mut sources = String::new();
    for dir in SOURCES {
        let mut rs = Vec::new();
        walk(&root.join(dir), &mut rs);
        for p in rs
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        {
            sources.push_str(&std::fs::read_to_string(p).expect("a source file"));
            sources.push('\n');
        }
    }
    assert!(sources.len() > 100_000, "the sources were not found");

    let mut missing = Vec::new();
    let mut checked = 0;
    for doc in DOCS {
        let text = std::fs::read_to_string(root.join(doc)).expect("the document exists");
        for span in spans(&text) {
            if span.ends_with(".rs") && !span.contains(' ') {
                checked += 1;
                let found = files
                    .iter()
                    .any(|f| f == &span || f.ends_with(&format!("/{span}")));
                if !found {
                    missing.push(format!("{doc}: no file `{span}`"));
                }
            } else if is_rust_path(&span) {
                checked += 1;
                let path = span.strip_suffix("()").unwrap_or(&span);
                let last = path.rsplit("::").next().unwrap_or(path);
                // Defined here, or another crate's item the code uses.
                if !defines(&sources, last) && !sources.contains(path) {
                    missing.push(format!("{doc}: nothing defines `{span}`"));
                }
            }
        }
    }
    assert!(checked > 50, "only {checked} references found");
    assert!(
        missing.is_empty(),
        "stale references:\n{}",
        missing.join("\n")
    );
}
