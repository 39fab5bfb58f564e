//! The embedded persistence store: one redb file.
//!
//! Why redb: pure Rust (builds everywhere the host builds, no C toolchain),
//! ACID with copy-on-write B-trees, and a commit is durable when it returns
//! (`Durability::Immediate`, the default: data and metadata are fsynced), so an
//! acknowledged publish survives `kill -9` and power loss. Readers never block
//! the writer. Needs no set-up: the file is created on first start.

use std::path::Path;

use hypergolix_core::persist::{PersistBackend, PersistTxn};
use hypergolix_core::{Error, Result};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("golix");

fn storage<E: std::fmt::Display>(e: E) -> Error {
    Error::Storage(e.to_string())
}

/// A redb-backed persistence store.
pub struct RedbStore {
    db: Database,
}

impl RedbStore {
    /// Opens (or creates) the store file.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::Storage(format!("{}: {e}", dir.display())))?;
        }
        let db = Database::create(path)
            .map_err(|e| Error::Storage(format!("{}: {e}", path.display())))?;
        // Make sure the table exists so read transactions can open it.
        let w = db.begin_write().map_err(storage)?;
        w.open_table(TABLE).map_err(storage)?;
        w.commit().map_err(storage)?;
        Ok(Self { db })
    }
}

struct WriteTxn<'t> {
    table: redb::Table<'t, &'static [u8], &'static [u8]>,
}

fn scan<T: ReadableTable<&'static [u8], &'static [u8]>>(
    table: &T,
    prefix: &[u8],
    limit: usize,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    for item in table.range::<&[u8]>(prefix..).map_err(storage)? {
        let (k, v) = item.map_err(storage)?;
        if !k.value().starts_with(prefix) || out.len() >= limit {
            break;
        }
        out.push((k.value().to_vec(), v.value().to_vec()));
    }
    Ok(out)
}

impl PersistTxn for WriteTxn<'_> {
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self
            .table
            .get(key)
            .map_err(storage)?
            .map(|v| v.value().to_vec()))
    }
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.table.insert(key, value).map_err(storage)?;
        Ok(())
    }
    fn delete(&mut self, key: &[u8]) -> Result<()> {
        self.table.remove(key).map_err(storage)?;
        Ok(())
    }
    fn scan_prefix(&mut self, prefix: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        scan(&self.table, prefix, limit)
    }
}

/// A read-only view; writes are refused (the rules never write in queries).
struct ReadTxn {
    table: redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
}

impl PersistTxn for ReadTxn {
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self
            .table
            .get(key)
            .map_err(storage)?
            .map(|v| v.value().to_vec()))
    }
    fn put(&mut self, _: &[u8], _: &[u8]) -> Result<()> {
        Err(Error::Storage("write in a read-only transaction".into()))
    }
    fn delete(&mut self, _: &[u8]) -> Result<()> {
        Err(Error::Storage("write in a read-only transaction".into()))
    }
    fn scan_prefix(&mut self, prefix: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        scan(&self.table, prefix, limit)
    }
}

impl PersistBackend for RedbStore {
    fn transact<R>(&self, f: &mut dyn FnMut(&mut dyn PersistTxn) -> Result<R>) -> Result<R> {
        let w = self.db.begin_write().map_err(storage)?;
        let out = {
            let table = w.open_table(TABLE).map_err(storage)?;
            let mut txn = WriteTxn { table };
            // On error `w` is dropped uncommitted: redb aborts it.
            f(&mut txn)?
        };
        w.commit().map_err(storage)?;
        Ok(out)
    }

    fn reads_are_local(&self) -> bool {
        true
    }

    fn read<R>(&self, f: &mut dyn FnMut(&mut dyn PersistTxn) -> Result<R>) -> Result<R> {
        let r = self.db.begin_read().map_err(storage)?;
        let table = r.open_table(TABLE).map_err(storage)?;
        f(&mut ReadTxn { table })
    }
}
