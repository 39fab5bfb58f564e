//! `hypergolix inspect`: pretty-print and verify a Golix object, as text
//! or (`--json`) as one JSON document.

use hypergolix_core::golix::{GolixObject, SecondParty};
use serde_json::{json, Map, Value};

/// What `inspect` found: the object's fields in order, and the verdict.
#[derive(Debug, Clone)]
pub struct Inspection {
    /// `(name, value)` in display order (`type`, `suite`, `ghid`, `size`,
    /// then the type's own fields).
    pub fields: Vec<(String, Value)>,
    /// The verdict in words.
    pub verdict: String,
    /// The error's stable code, when the object is invalid.
    pub error: Option<&'static str>,
    /// Whether the object is valid as far as it could be checked.
    pub valid: bool,
}

impl Inspection {
    /// The text form: `name:` padded, then the value; a GOBD's targets one
    /// a line.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let mut line = |k: &str, v: &str| out.push_str(&format!("{:<9} {v}\n", format!("{k}:")));
        for (k, v) in &self.fields {
            match v {
                Value::Array(items) => {
                    for (i, t) in items.iter().enumerate() {
                        line(&format!("{k}[{i}]"), t.as_str().unwrap_or_default());
                    }
                }
                Value::String(s) => line(k, s),
                other => line(k, &other.to_string()),
            }
        }
        line("verdict", &self.verdict);
        out
    }

    /// The JSON form: every field by name, then `valid`, `verdict` and
    /// `error`.
    pub fn json(&self) -> Value {
        let mut m: Map<String, Value> = self.fields.iter().cloned().collect();
        m.insert("valid".into(), json!(self.valid));
        m.insert("verdict".into(), json!(self.verdict));
        m.insert("error".into(), json!(self.error));
        Value::Object(m)
    }
}

/// Inspects `bytes`: type, suite, GHID and every field, then the
/// verification verdict using `identities` (parsed GIDCs) to check
/// signatures.
pub fn inspect(bytes: &[u8], identities: &[SecondParty]) -> Inspection {
    let obj = match GolixObject::parse(bytes) {
        Ok(o) => o,
        Err(e) => {
            return Inspection {
                fields: Vec::new(),
                verdict: format!("invalid: {} ({e})", e.code()),
                error: Some(e.code()),
                valid: false,
            }
        }
    };
    let mut f: Vec<(String, Value)> = vec![
        ("type".into(), json!(obj.kind().to_string())),
        ("suite".into(), json!(format!("{:#04x}", obj.suite()))),
        ("ghid".into(), json!(obj.ghid().to_string())),
        ("size".into(), json!(format!("{} bytes", bytes.len()))),
    ];
    let mut put = |k: &str, v: Value| f.push((k.into(), v));
    match &obj {
        GolixObject::Gidc(o) => {
            put(
                "signing key",
                json!(format!("{} bytes", o.keys().signing.len())),
            );
            put(
                "encryption key",
                json!(format!("{} bytes", o.keys().encryption.len())),
            );
            put(
                "exchange key",
                json!(format!("{} bytes", o.keys().exchange.len())),
            );
        }
        GolixObject::Geoc(o) => {
            put("author", json!(o.author().to_string()));
            put(
                "payload",
                json!(format!("{} bytes (ciphertext)", o.payload().len())),
            );
        }
        GolixObject::Gobs(o) => {
            put("binder", json!(o.binder().to_string()));
            put("target", json!(o.target().to_string()));
        }
        GolixObject::Gdxx(o) => {
            put("debinder", json!(o.debinder().to_string()));
            put("target", json!(o.target().to_string()));
        }
        GolixObject::Gobd(o) => {
            put("binder", json!(o.binder().to_string()));
            put("dynamic", json!(o.dynamic_ghid().to_string()));
            put("counter", json!(o.counter()));
            let targets: Vec<String> = o.targets().iter().map(ToString::to_string).collect();
            put("target", json!(targets));
        }
        GolixObject::Garq(o) => {
            put("recipient", json!(o.recipient().to_string()));
            put(
                "payload",
                json!(format!(
                    "{} bytes (sealed; only the recipient can open it)",
                    o.payload().len()
                )),
            );
        }
    }
    let lookup =
        |g: &hypergolix_core::golix::Ghid| identities.iter().find(|i| i.ghid() == *g).cloned();
    let (verdict, error, valid) = match obj.signer() {
        None => (
            format!(
                "valid (layout and hash{})",
                if matches!(obj, GolixObject::Gidc(_)) {
                    ", keys"
                } else {
                    "; MAC needs the recipient"
                }
            ),
            None,
            true,
        ),
        Some(signer) if lookup(&signer).is_none() => (
            "layout and hash valid; signature not checked (signer's GIDC not given: --identity FILE)"
                .to_string(),
            None,
            true,
        ),
        Some(_) => match obj.verify_public(lookup) {
            Ok(()) => ("valid (layout, hash, signature)".to_string(), None, true),
            Err(e) => (format!("invalid: {} ({e})", e.code()), Some(e.code()), false),
        },
    };
    Inspection {
        fields: f,
        verdict,
        error,
        valid,
    }
}

/// Describes `bytes` as text (see [`inspect`]); returns the description and
/// whether the object is fully valid.
pub fn describe(bytes: &[u8], identities: &[SecondParty]) -> (String, bool) {
    let i = inspect(bytes, identities);
    (i.text(), i.valid)
}
