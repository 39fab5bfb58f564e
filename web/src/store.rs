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

use hypergolix_core::engine::keys::{ACCOUNT_LOCK_LEN, LOCKED_KEY_LEN};
use hypergolix_core::engine::StoreWrite;
use hypergolix_core::golix::ghid::{Ghid, GHID_LEN};
use js_sys::{Array, Object, Promise, Uint8Array};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{IdbDatabase, IdbFactory, IdbOpenDbRequest, IdbRequest, IdbTransaction};

use crate::error::{describe, Result, WebError};

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
    /// The storage key locked under the account key
    /// (`Engine::account_lock_key`), which a password change elsewhere
    /// leaves as it is (none in databases of older versions until their
    /// next unlock).
    pub account_lock: Option<Vec<u8>>,
}

impl core::fmt::Debug for Meta {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Meta")
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

impl Meta {
    /// `user id ‖ locked key (HGXL) ‖ [account lock]`.
    fn to_bytes(&self) -> Vec<u8> {
        let mut b = self.user_id.to_bytes().to_vec();
        b.extend_from_slice(&self.locked_key);
        if let Some(a) = &self.account_lock {
            b.extend_from_slice(a);
        }
        b
    }

    fn from_bytes(b: &[u8]) -> Result<Self> {
        if b.len() <= GHID_LEN {
            return Err(WebError::Storage("the account record is truncated".into()));
        }
        let rest = &b[GHID_LEN..];
        let (locked_key, account_lock) = if rest.len() == LOCKED_KEY_LEN + ACCOUNT_LOCK_LEN {
            let (l, a) = rest.split_at(LOCKED_KEY_LEN);
            (l.to_vec(), Some(a.to_vec()))
        } else {
            (rest.to_vec(), None)
        };
        Ok(Self {
            user_id: Ghid::from_bytes(&b[..GHID_LEN]).map_err(hypergolix_core::Error::from)?,
            locked_key,
            account_lock,
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
    /// An IndexedDB database (an open connection).
    IndexedDb(IdbDatabase),
    /// A map in memory.
    Memory(RefCell<MemoryStore>),
}

impl core::fmt::Debug for LocalStore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LocalStore::IndexedDb(db) => write!(f, "LocalStore::IndexedDb(\"{}\")", db.name()),
            LocalStore::Memory(_) => f.write_str("LocalStore::Memory"),
        }
    }
}

fn bytes(v: &JsValue) -> Vec<u8> {
    // A binary key comes back as an ArrayBuffer, a value as a Uint8Array;
    // `new Uint8Array(x)` reads both.
    Uint8Array::new(v).to_vec()
}

// `IDBDatabase.transaction(stores, mode, { durability })`: web-sys has the
// options only behind `web_sys_unstable_apis`, so the binding is ours; so is
// `IDBTransaction.commit()`, standard everywhere but marked deprecated in
// web-sys.
#[wasm_bindgen]
extern "C" {
    /// An `IDBDatabase`, seen only for that one method.
    type DbWithOptions;
    #[wasm_bindgen(method, catch, js_name = transaction)]
    fn transaction_with_options(
        this: &DbWithOptions,
        stores: &Array,
        mode: &str,
        options: &Object,
    ) -> core::result::Result<IdbTransaction, JsValue>;

    /// An `IDBTransaction`, seen only for `commit`.
    type Committable;
    #[wasm_bindgen(method, catch)]
    fn commit(this: &Committable) -> core::result::Result<(), JsValue>;
}

/// The platform's `indexedDB` (a page's or a worker's global).
fn factory() -> Result<IdbFactory> {
    js_sys::Reflect::get(&js_sys::global(), &"indexedDB".into())
        .ok()
        .and_then(|f| f.dyn_into::<IdbFactory>().ok())
        .ok_or_else(|| WebError::Storage("IndexedDB is not available here".into()))
}

/// A failed IndexedDB call, with what the platform said.
fn failed(what: &str, e: &JsValue) -> WebError {
    WebError::Storage(format!("{what}: {}", describe(e)))
}

/// A request's result, or its error. The handlers are set when this is
/// called, not when the future is first polled: of two requests made
/// together, the second's events may come before the first is awaited.
fn request(req: &IdbRequest, what: &str) -> impl core::future::Future<Output = Result<JsValue>> {
    let settled = Promise::new(&mut |resolve, reject| {
        req.set_onsuccess(Some(&resolve));
        req.set_onerror(Some(&reject));
    });
    let (req, what) = (req.clone(), what.to_owned());
    async move { settle(&req, &what, JsFuture::from(settled).await) }
}

/// What a settled request gave, its handlers detached.
fn settle(
    req: &IdbRequest,
    what: &str,
    outcome: core::result::Result<JsValue, JsValue>,
) -> Result<JsValue> {
    req.set_onsuccess(None);
    req.set_onerror(None);
    if outcome.is_err() {
        let why = req
            .error()
            .ok()
            .flatten()
            .map(JsValue::from)
            .unwrap_or_else(|| "the request failed".into());
        return Err(failed(what, &why));
    }
    req.result().map_err(|e| failed(what, &e))
}

/// Awaits a transaction's `complete` (durable, for a `strict` one); an
/// error in any of its requests aborts it and fails this.
async fn completed(tx: &IdbTransaction, what: &str) -> Result<()> {
    let settled = Promise::new(&mut |resolve, reject| {
        tx.set_oncomplete(Some(&resolve));
        tx.set_onerror(Some(&reject));
        tx.set_onabort(Some(&reject));
    });
    let outcome = JsFuture::from(settled).await;
    tx.set_oncomplete(None);
    tx.set_onerror(None);
    tx.set_onabort(None);
    if outcome.is_err() {
        let why = tx
            .error()
            .map(JsValue::from)
            .unwrap_or_else(|| "the transaction was aborted".into());
        return Err(failed(what, &why));
    }
    Ok(())
}

impl LocalStore {
    /// Opens (creating it if needed) the store named `name`.
    pub async fn open(kind: StoreKind, name: &str) -> Result<Self> {
        match kind {
            StoreKind::Memory => Ok(LocalStore::Memory(RefCell::default())),
            StoreKind::IndexedDb => {
                let what = format!("cannot open the database \"{name}\"");
                let req: IdbOpenDbRequest = factory()?
                    .open_with_u32(name, DB_VERSION)
                    .map_err(|e| failed(&what, &e))?;
                // A new database (or an older version) gets its stores
                // here; an error thrown aborts the open, which then fails.
                let upgrading = req.clone();
                let upgrade =
                    Closure::<dyn FnMut(JsValue) -> core::result::Result<(), JsValue>>::new(
                        move |_event: JsValue| {
                            let db: IdbDatabase = upgrading.result()?.dyn_into()?;
                            let names = db.object_store_names();
                            for store in [RECORDS, META] {
                                if !names.contains(store) {
                                    db.create_object_store(store)?;
                                }
                            }
                            Ok(())
                        },
                    );
                req.set_onupgradeneeded(Some(upgrade.as_ref().unchecked_ref()));
                let opened = request(&req, &what).await;
                req.set_onupgradeneeded(None);
                drop(upgrade);
                let db: IdbDatabase = opened?.dyn_into().map_err(|e| failed(&what, &e))?;
                Ok(LocalStore::IndexedDb(db))
            }
        }
    }

    /// Deletes the database `name` and everything in it.
    pub async fn destroy(name: &str) -> Result<()> {
        let req = factory()?
            .delete_database(name)
            .map_err(|e| failed("delete the database", &e))?;
        request(&req, "delete the database").await?;
        Ok(())
    }

    /// The account record, if the store holds one.
    pub async fn meta(&self) -> Result<Option<Meta>> {
        match self {
            LocalStore::Memory(m) => Ok(m.borrow().meta.clone()),
            LocalStore::IndexedDb(db) => {
                let what = "read the account record";
                let tx = db
                    .transaction_with_str(META)
                    .map_err(|e| failed(what, &e))?;
                let store = tx.object_store(META).map_err(|e| failed(what, &e))?;
                let req = store.get(&META_KEY.into()).map_err(|e| failed(what, &e))?;
                let v = request(&req, what).await?;
                if v.is_undefined() {
                    return Ok(None);
                }
                Ok(Some(Meta::from_bytes(&bytes(&v))?))
            }
        }
    }

    /// Every engine record.
    pub async fn load(&self) -> Result<Records> {
        match self {
            LocalStore::Memory(m) => Ok(m.borrow().records.clone().into_iter().collect()),
            LocalStore::IndexedDb(db) => {
                let what = "read the records";
                let tx = db
                    .transaction_with_str(RECORDS)
                    .map_err(|e| failed(what, &e))?;
                let store = tx.object_store(RECORDS).map_err(|e| failed(what, &e))?;
                // Both requests go out at once, in one transaction: the keys
                // and the values come in the same (key) order.
                let keys = store.get_all_keys().map_err(|e| failed(what, &e))?;
                let values = store.get_all().map_err(|e| failed(what, &e))?;
                let (keys, values) = (request(&keys, what), request(&values, what));
                let keys: Array = keys.await?.unchecked_into();
                let values: Array = values.await?.unchecked_into();
                if keys.length() != values.length() {
                    return Err(WebError::Storage(
                        "the record keys and values disagree".into(),
                    ));
                }
                Ok(keys
                    .iter()
                    .zip(values.iter())
                    .map(|(k, v)| (bytes(&k), bytes(&v)))
                    .collect())
            }
        }
    }

    /// Applies one engine batch (and the account record, the first time)
    /// atomically; durable when it returns.
    pub async fn apply(&self, writes: &[StoreWrite], meta: Option<&Meta>) -> Result<()> {
        self.apply_replacing(writes, meta, false).await
    }

    /// [`LocalStore::apply`]; with `replace`, every record held before goes
    /// in the same transaction (an account recovered over a copy locked
    /// under a password that is lost: those records cannot be opened).
    pub async fn apply_replacing(
        &self,
        writes: &[StoreWrite],
        meta: Option<&Meta>,
        replace: bool,
    ) -> Result<()> {
        match self {
            LocalStore::Memory(m) => {
                let mut m = m.borrow_mut();
                if replace {
                    m.records.clear();
                }
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
                let what = "write a batch";
                // The account record's store joins the transaction only when
                // it is written.
                let scope = Array::of1(&RECORDS.into());
                if meta.is_some() {
                    scope.push(&META.into());
                }
                // `strict`: the browser flushes the transaction to disk before
                // it reports `complete`.
                let options = Object::new();
                js_sys::Reflect::set(&options, &"durability".into(), &"strict".into())
                    .map_err(|e| failed(what, &e))?;
                let tx = db
                    .unchecked_ref::<DbWithOptions>()
                    .transaction_with_options(&scope, "readwrite", &options)
                    .map_err(|e| failed(what, &e))?;
                let requests = || -> core::result::Result<(), JsValue> {
                    let records = tx.object_store(RECORDS)?;
                    if replace {
                        records.clear()?;
                    }
                    for (k, v) in writes {
                        let key: JsValue = Uint8Array::from(k.as_slice()).into();
                        match v {
                            Some(v) => {
                                records.put_with_key(&Uint8Array::from(v.as_slice()), &key)?
                            }
                            None => records.delete(&key)?,
                        };
                    }
                    if let Some(meta) = meta {
                        let value = Uint8Array::from(meta.to_bytes().as_slice());
                        tx.object_store(META)?
                            .put_with_key(&value, &META_KEY.into())?;
                    }
                    Ok(())
                };
                // Requests go out as they are made, and nothing waits on
                // them one by one: an error in any of them aborts the
                // transaction, which `completed` reports. One refused at
                // once aborts it here, so none of the batch is written.
                if let Err(e) = requests() {
                    let _ = tx.abort();
                    return Err(failed(what, &e));
                }
                // Nothing more will be asked of it: commit now rather than
                // when the event loop next comes round (where `commit` is
                // missing, Safari before 15, it commits by itself then).
                if js_sys::Reflect::has(&tx, &"commit".into()).unwrap_or(false) {
                    tx.unchecked_ref::<Committable>()
                        .commit()
                        .map_err(|e| failed(what, &e))?;
                }
                completed(&tx, what).await
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
