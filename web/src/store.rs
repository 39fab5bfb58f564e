//! Where the browser engine keeps its records: IndexedDB (the default) or
//! memory (scripts and tests that keep nothing).
//!
//! One IndexedDB database per account (default name `hypergolix`), two
//! object stores:
//! - `records`: the engine's sealed records, binary keys, `Uint8Array`
//!   values (small: one per object, token, outbox item, ...);
//! - `meta`: one value under `account`: the user id (65 bytes) then the
//!   storage key locked under the password
//!   ([`hypergolix_core::engine::keys::lock_storage_key`]).
//!
//! Every engine batch is one `readwrite` transaction with `strict`
//! durability (the browser flushes it to disk before it reports
//! `complete`), so what the engine acknowledged survives the browser being
//! killed. Nothing in either store is plaintext but the user id.

use std::cell::RefCell;
use std::collections::BTreeMap;

use hypergolix_core::engine::StoreWrite;
use hypergolix_core::golix::ghid::{Ghid, GHID_LEN};
use indexed_db_futures::database::Database;
use indexed_db_futures::prelude::*;
use indexed_db_futures::transaction::{TransactionDurability, TransactionMode, TransactionOptions};
use js_sys::Uint8Array;
use wasm_bindgen::JsValue;

use crate::error::{Result, WebError};

/// Every record of a store, as `(key, value)`.
pub type Records = Vec<(Vec<u8>, Vec<u8>)>;

const RECORDS: &str = "records";
const META: &str = "meta";
const META_KEY: &str = "account";
const DB_VERSION: u32 = 1;

/// What a database says about its account before it is unlocked.
#[derive(Clone, PartialEq, Eq)]
pub struct Meta {
    /// The account's user id.
    pub user_id: Ghid,
    /// The storage key, locked under the password.
    pub locked_key: Vec<u8>,
}

impl core::fmt::Debug for Meta {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Meta")
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

impl Meta {
    fn to_bytes(&self) -> Vec<u8> {
        let mut b = self.user_id.to_bytes().to_vec();
        b.extend_from_slice(&self.locked_key);
        b
    }

    fn from_bytes(b: &[u8]) -> Result<Self> {
        if b.len() <= GHID_LEN {
            return Err(WebError::Storage("the account record is truncated".into()));
        }
        Ok(Self {
            user_id: Ghid::from_bytes(&b[..GHID_LEN]).map_err(hypergolix_core::Error::from)?,
            locked_key: b[GHID_LEN..].to_vec(),
        })
    }
}

/// Which store an engine keeps its records in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// IndexedDB: survives reloads, restarts and crashes.
    IndexedDb,
    /// Memory: gone when the engine closes.
    Memory,
}

/// The memory store: the account record and the engine's records.
#[derive(Debug, Default)]
pub struct MemoryStore {
    meta: Option<Meta>,
    records: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// An open store.
pub enum LocalStore {
    /// An IndexedDB database.
    IndexedDb(Database),
    /// A map in memory.
    Memory(RefCell<MemoryStore>),
}

impl core::fmt::Debug for LocalStore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LocalStore::IndexedDb(db) => write!(f, "LocalStore::IndexedDb({:?})", db.name()),
            LocalStore::Memory(_) => f.write_str("LocalStore::Memory"),
        }
    }
}

fn bytes(v: &JsValue) -> Vec<u8> {
    // A binary key comes back as an ArrayBuffer, a value as a Uint8Array;
    // `new Uint8Array(x)` reads both.
    Uint8Array::new(v).to_vec()
}

impl LocalStore {
    /// Opens (creating it if needed) the store named `name`.
    pub async fn open(kind: StoreKind, name: &str) -> Result<Self> {
        match kind {
            StoreKind::Memory => Ok(LocalStore::Memory(RefCell::default())),
            StoreKind::IndexedDb => {
                let db = Database::open(name)
                    .with_version(DB_VERSION)
                    .with_on_upgrade_needed(|_event, db| {
                        let names: Vec<String> = db.object_store_names().collect();
                        for store in [RECORDS, META] {
                            if !names.iter().any(|n| n == store) {
                                db.create_object_store(store).build()?;
                            }
                        }
                        Ok(())
                    })
                    .await
                    .map_err(|e| {
                        WebError::Storage(format!(
                            "cannot open the database {name:?}: {e} (is IndexedDB available here?)"
                        ))
                    })?;
                Ok(LocalStore::IndexedDb(db))
            }
        }
    }

    /// Deletes the database `name` and everything in it.
    pub async fn destroy(name: &str) -> Result<()> {
        Database::delete_by_name(name)?.await?;
        Ok(())
    }

    /// The account record, if the store holds one.
    pub async fn meta(&self) -> Result<Option<Meta>> {
        match self {
            LocalStore::Memory(m) => Ok(m.borrow().meta.clone()),
            LocalStore::IndexedDb(db) => {
                let tx = db.transaction(META).build()?;
                let store = tx.object_store(META)?;
                let v: Option<JsValue> = store.get(META_KEY).primitive()?.await?;
                match v {
                    Some(v) if !v.is_undefined() => Ok(Some(Meta::from_bytes(&bytes(&v))?)),
                    _ => Ok(None),
                }
            }
        }
    }

    /// Every engine record.
    pub async fn load(&self) -> Result<Records> {
        match self {
            LocalStore::Memory(m) => Ok(m.borrow().records.clone().into_iter().collect()),
            LocalStore::IndexedDb(db) => {
                let tx = db.transaction(RECORDS).build()?;
                let store = tx.object_store(RECORDS)?;
                // Both requests go out at once, in one transaction: the keys
                // and the values come in the same (key) order.
                let keys = store.get_all_keys::<JsValue>().primitive()?;
                let values = store.get_all::<JsValue>().primitive()?;
                let keys: Vec<Vec<u8>> = keys
                    .await?
                    .map(|k| k.map(|k| bytes(&k)))
                    .collect::<core::result::Result<_, _>>()?;
                let values: Vec<Vec<u8>> = values
                    .await?
                    .map(|v| v.map(|v| bytes(&v)))
                    .collect::<core::result::Result<_, _>>()?;
                if keys.len() != values.len() {
                    return Err(WebError::Storage(
                        "the record keys and values disagree".into(),
                    ));
                }
                Ok(keys.into_iter().zip(values).collect())
            }
        }
    }

    /// Applies one engine batch (and the account record, the first time)
    /// atomically; durable when it returns.
    pub async fn apply(&self, writes: &[StoreWrite], meta: Option<&Meta>) -> Result<()> {
        match self {
            LocalStore::Memory(m) => {
                let mut m = m.borrow_mut();
                if let Some(meta) = meta {
                    m.meta = Some(meta.clone());
                }
                for (k, v) in writes {
                    match v {
                        Some(v) => m.records.insert(k.clone(), v.clone()),
                        None => m.records.remove(k),
                    };
                }
                Ok(())
            }
            LocalStore::IndexedDb(db) => {
                // The account record's store joins the transaction only when
                // it is written.
                let scope: &[&str] = if meta.is_some() {
                    &[RECORDS, META]
                } else {
                    &[RECORDS]
                };
                let tx = db
                    .transaction(scope)
                    .with_mode(TransactionMode::Readwrite)
                    .with_options(
                        TransactionOptions::new().with_durability(TransactionDurability::Strict),
                    )
                    .build()?;
                let records = tx.object_store(RECORDS)?;
                // Requests go out as they are built; an error in any of
                // them aborts the transaction, which `commit` reports.
                for (k, v) in writes {
                    let key: JsValue = Uint8Array::from(k.as_slice()).into();
                    match v {
                        Some(v) => {
                            let value: JsValue = Uint8Array::from(v.as_slice()).into();
                            drop(
                                records
                                    .put(value)
                                    .with_key(key)
                                    .without_key_type()
                                    .primitive()?,
                            );
                        }
                        None => drop(records.delete(key).primitive()?),
                    }
                }
                if let Some(meta) = meta {
                    let value: JsValue = Uint8Array::from(meta.to_bytes().as_slice()).into();
                    let store = tx.object_store(META)?;
                    drop(
                        store
                            .put(value)
                            .with_key(META_KEY)
                            .without_key_type()
                            .primitive()?,
                    );
                }
                tx.commit().await?;
                Ok(())
            }
        }
    }

    /// Closes the store (IndexedDB: the connection; memory: drops it).
    pub fn close(self) {
        if let LocalStore::IndexedDb(db) = self {
            db.close();
        }
    }
}
