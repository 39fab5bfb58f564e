//! The small TOML files of a data directory (`config.toml`, the pid file
//! `service.toml`, `account.toml`): read with the path in every error,
//! written atomically (a temporary file, then a rename).

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};

/// Reads and parses `path`; `None` when it does not exist.
pub fn read<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match std::fs::read_to_string(path) {
        Ok(t) => toml::from_str(&t)
            .map(Some)
            .map_err(|e| Error::Config(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Config(format!("{}: {e}", path.display()))),
    }
}

/// Writes `value` to `path` atomically.
pub fn write<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text =
        toml::to_string(value).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
    write_text(path, &text)
}

/// Writes `text` to `path` atomically (also for the service unit file).
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| Error::Config(format!("{}: {e}", path.display())))
}
