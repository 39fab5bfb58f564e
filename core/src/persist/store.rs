//! The storage trait of the persistence rules, and an in-memory backend.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::error::{Error, Result};

/// One transaction over an ordered byte-key store. Reads see the
/// transaction's own writes.
pub trait PersistTxn {
    /// Reads a key.
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Writes a key.
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()>;
    /// Deletes a key (no error if absent).
    fn delete(&mut self, key: &[u8]) -> Result<()>;
    /// Every `(key, value)` whose key starts with `prefix`, in key order, at most `limit`.
    fn scan_prefix(&mut self, prefix: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;

    /// A hint: the transaction is about to read these keys. A backend whose
    /// reads are round trips (PostgreSQL) reads them all at once and answers
    /// the `get`s that follow from what it read; the default does nothing.
    /// Reads stay exact either way (a key not hinted is read when asked).
    fn prefetch(&mut self, _keys: &[Vec<u8>]) -> Result<()> {
        Ok(())
    }
}

/// A backend: runs closures as atomic, durable transactions. If the closure
/// returns an error nothing it wrote is kept. When `transact` returns `Ok`, the
/// writes are durable (a backend on disk has synced them).
pub trait PersistBackend: Send + Sync {
    /// Runs `f` in one transaction. Backends may run `f` more than once
    /// (serialization conflicts), so `f` must not have side effects outside
    /// the transaction.
    fn transact<R>(&self, f: &mut dyn FnMut(&mut dyn PersistTxn) -> Result<R>) -> Result<R>;

    /// Runs a read-only closure (writes it makes are discarded). Backends with
    /// concurrent readers override this; the default is a transaction.
    fn read<R>(&self, f: &mut dyn FnMut(&mut dyn PersistTxn) -> Result<R>) -> Result<R> {
        self.transact(f)
    }

    /// Whether a read is local and short (an embedded store): a server may
    /// then run it on the connection's own task instead of handing it to a
    /// blocking thread, which costs more than the read.
    fn reads_are_local(&self) -> bool {
        false
    }

    /// Tells other server nodes sharing this backend about committed
    /// notifications (a nudge: they re-read the objects). Single-node backends
    /// do nothing.
    fn announce(&self, _notes: &[&super::rules::Notification]) -> Result<()> {
        Ok(())
    }
}

/// A shared backend is a backend (`hypergolix serve` shares one among its
/// tasks).
impl<B: PersistBackend> PersistBackend for std::sync::Arc<B> {
    fn transact<R>(&self, f: &mut dyn FnMut(&mut dyn PersistTxn) -> Result<R>) -> Result<R> {
        (**self).transact(f)
    }
    fn read<R>(&self, f: &mut dyn FnMut(&mut dyn PersistTxn) -> Result<R>) -> Result<R> {
        (**self).read(f)
    }
    fn reads_are_local(&self) -> bool {
        (**self).reads_are_local()
    }
    fn announce(&self, notes: &[&super::rules::Notification]) -> Result<()> {
        (**self).announce(notes)
    }
}

/// A borrowed backend is a backend (a [`super::Dispatcher`] over a store
/// someone else owns, as in the conformance suite).
impl<B: PersistBackend> PersistBackend for &B {
    fn transact<R>(&self, f: &mut dyn FnMut(&mut dyn PersistTxn) -> Result<R>) -> Result<R> {
        (**self).transact(f)
    }
    fn read<R>(&self, f: &mut dyn FnMut(&mut dyn PersistTxn) -> Result<R>) -> Result<R> {
        (**self).read(f)
    }
    fn reads_are_local(&self) -> bool {
        (**self).reads_are_local()
    }
    fn announce(&self, notes: &[&super::rules::Notification]) -> Result<()> {
        (**self).announce(notes)
    }
}

/// An in-memory backend (tests and the deterministic simulation). Transactions
/// are serialized by a mutex and staged until they succeed.
#[derive(Debug, Default)]
pub struct MemoryStore {
    data: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of keys (for tests and metrics).
    pub fn len(&self) -> usize {
        self.data.lock().map(|d| d.len()).unwrap_or(0)
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

struct MemoryTxn<'a> {
    base: &'a BTreeMap<Vec<u8>, Vec<u8>>,
    /// `None` = deleted in this transaction.
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl PersistTxn for MemoryTxn<'_> {
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(match self.writes.get(key) {
            Some(v) => v.clone(),
            None => self.base.get(key).cloned(),
        })
    }
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.writes.insert(key.to_vec(), Some(value.to_vec()));
        Ok(())
    }
    fn delete(&mut self, key: &[u8]) -> Result<()> {
        self.writes.insert(key.to_vec(), None);
        Ok(())
    }
    fn scan_prefix(&mut self, prefix: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = self
            .base
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (k, v) in self
            .writes
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
        {
            match v {
                Some(v) => merged.insert(k.clone(), v.clone()),
                None => merged.remove(k),
            };
        }
        Ok(merged.into_iter().take(limit).collect())
    }
}

impl PersistBackend for MemoryStore {
    fn transact<R>(&self, f: &mut dyn FnMut(&mut dyn PersistTxn) -> Result<R>) -> Result<R> {
        let mut data = self
            .data
            .lock()
            .map_err(|_| Error::Storage("memory store lock poisoned".into()))?;
        let mut txn = MemoryTxn {
            base: &data,
            writes: BTreeMap::new(),
        };
        let out = f(&mut txn)?;
        let writes = std::mem::take(&mut txn.writes);
        for (k, v) in writes {
            match v {
                Some(v) => data.insert(k, v),
                None => data.remove(&k),
            };
        }
        Ok(out)
    }
}
