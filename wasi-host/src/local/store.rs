//! The local service's engine store: one redb file (`local.redb` in the data
//! directory) holding the engine's sealed records. It passes the
//! engine-local store conformance cases
//! (`hypergolix_core::engine::store_conformance`, run in
//! `wasi-host/tests/local_store.rs`), as IndexedDB does in the browser.

use std::path::{Path, PathBuf};

use hypergolix_core::engine::StoreWrite;
use hypergolix_core::persist::PersistBackend;

use crate::serve::redb_store::RedbStore;

use crate::error::{Error, Result};

/// Every record of a store, as `(key, value)`.
pub type Records = Vec<(Vec<u8>, Vec<u8>)>;

/// The engine's local store.
pub struct LocalStore {
    db: RedbStore,
    path: PathBuf,
}

impl LocalStore {
    /// Opens (or creates) the store file.
    pub fn open(path: &Path) -> Result<Self> {
        let db = RedbStore::open(path).map_err(|e| {
            Error::Store(format!(
                "{}: {e} (is another service using this data directory?)",
                path.display()
            ))
        })?;
        Ok(Self {
            db,
            path: path.to_path_buf(),
        })
    }

    /// Applies one engine batch atomically; durable when it returns.
    pub fn apply(&self, writes: &[StoreWrite]) -> Result<()> {
        self.db
            .transact(&mut |txn| {
                for (k, v) in writes {
                    match v {
                        Some(v) => txn.put(k, v)?,
                        None => txn.delete(k)?,
                    }
                }
                Ok(())
            })
            .map_err(|e| Error::Store(format!("local store {}: {e}", self.path.display())))
    }

    /// Every record.
    pub fn load(&self) -> Result<Records> {
        self.db
            .read(&mut |txn| txn.scan_prefix(&[], usize::MAX))
            .map_err(|e| Error::Store(format!("local store {}: {e}", self.path.display())))
    }
}
