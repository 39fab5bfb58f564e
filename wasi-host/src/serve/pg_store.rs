//! The PostgreSQL persistence backend: one `hgx_kv(k bytea primary key, v bytea)`
//! table shared by any number of stateless server nodes.
//!
//! Transactions run at SERIALIZABLE isolation and are retried on serialization
//! failures, so concurrent nodes apply the rules as if one at a time. After a
//! commit a node sends `NOTIFY hgx_push` with the subscription GHID and the
//! pushed object's GHID; every node LISTENs and re-reads the object from the
//! database before pushing it to its own subscribers (the notification is a
//! nudge, never the data).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use hypergolix_core::golix::{Ghid, GolixObject};
use hypergolix_core::persist::{Notification, PersistBackend, PersistTxn};
use hypergolix_core::{Error, Result};
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, IsolationLevel, NoTls, Statement};

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS hgx_kv (k bytea PRIMARY KEY, v bytea NOT NULL)";
/// The LISTEN/NOTIFY channel.
pub const CHANNEL: &str = "hgx_push";
const MAX_RETRIES: usize = 50;
/// Connections kept open: the server's concurrent reads (16), its writer and
/// its announcements, with room to spare.
const POOL_SIZE: usize = 20;

/// A driver error as a storage error, with the server's SQLSTATE and message
/// when there is one (the driver's own text is only "db error").
fn storage(e: postgres::Error) -> Error {
    match e.as_db_error() {
        Some(db) => Error::Storage(format!("postgres: {} ({})", db.message(), db.code().code())),
        None => Error::Storage(format!("postgres: {e}")),
    }
}

/// A pooled connection with its prepared statements (each statement is
/// parsed once per connection instead of once per call: a round trip saved
/// on every read).
struct Conn {
    client: Client,
    st: Statements,
}

struct Statements {
    get: Statement,
    get_many: Statement,
    scan: Statement,
    scan_open: Statement,
    upsert_many: Statement,
    delete_many: Statement,
}

impl Conn {
    fn open(url: &str) -> Result<Self> {
        let mut client = Client::connect(url, NoTls).map_err(storage)?;
        let st = Statements {
            get: prepare(&mut client, "SELECT v FROM hgx_kv WHERE k = $1")?,
            get_many: prepare(&mut client, "SELECT k, v FROM hgx_kv WHERE k = ANY($1)")?,
            scan: prepare(
                &mut client,
                "SELECT k, v FROM hgx_kv WHERE k >= $1 AND k < $2 ORDER BY k LIMIT $3",
            )?,
            scan_open: prepare(
                &mut client,
                "SELECT k, v FROM hgx_kv WHERE k >= $1 ORDER BY k LIMIT $2",
            )?,
            upsert_many: prepare(
                &mut client,
                "INSERT INTO hgx_kv (k, v) SELECT * FROM unnest($1::bytea[], $2::bytea[]) \
                 ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v",
            )?,
            delete_many: prepare(&mut client, "DELETE FROM hgx_kv WHERE k = ANY($1)")?,
        };
        Ok(Self { client, st })
    }
}

fn prepare(client: &mut Client, sql: &str) -> Result<Statement> {
    client.prepare(sql).map_err(storage)
}

/// A pool of connections to one database.
pub struct PgStore {
    url: String,
    pool: Mutex<Vec<Conn>>,
    node: String,
}

impl PgStore {
    /// Connects and creates the schema if needed. `node` names this server
    /// node in its notifications (so it can ignore its own).
    pub fn connect(url: &str, node: &str) -> Result<Self> {
        let mut client = Client::connect(url, NoTls).map_err(storage)?;
        client.batch_execute(SCHEMA).map_err(storage)?;
        drop(client);
        let first = Conn::open(url)?;
        Ok(Self {
            url: url.to_string(),
            pool: Mutex::new(vec![first]),
            node: node.to_string(),
        })
    }

    fn take(&self) -> Result<Conn> {
        let pooled = self
            .pool
            .lock()
            .map_err(|_| Error::Storage("pool lock poisoned".into()))?
            .pop();
        match pooled {
            Some(c) if !c.client.is_closed() => Ok(c),
            _ => Conn::open(&self.url),
        }
    }

    fn give(&self, c: Conn) {
        if let Ok(mut p) = self.pool.lock() {
            if p.len() < POOL_SIZE && !c.client.is_closed() {
                p.push(c);
            }
        }
    }

    /// Starts a thread that LISTENs for other nodes' notifications and calls
    /// `deliver(subscription, object ghid)` for each, and `lost()` each time
    /// it starts listening (again): what was notified while it was not
    /// listening is gone, so the node must catch up from the store.
    pub fn listen(
        &self,
        deliver: impl Fn(Ghid, Ghid) + Send + 'static,
        lost: impl Fn() + Send + 'static,
        alive: impl Fn() -> bool + Send + 'static,
    ) -> Result<()> {
        let url = self.url.clone();
        let me = self.node.clone();
        std::thread::Builder::new()
            .name("hgx-pg-listen".into())
            // Ends (closing its connection) within a second of `alive`
            // turning false: a server that shut down leaves no thread.
            .spawn(move || while alive() {
                match Client::connect(&url, NoTls) {
                    Ok(mut c) => {
                        if let Err(e) = c.batch_execute(&format!("LISTEN {CHANNEL}")) {
                            tracing::warn!(error = %e, "LISTEN failed");
                        } else {
                            lost();
                            loop {
                                // Checked on every turn: a busy channel
                                // must not keep a stopped server's thread.
                                if !alive() {
                                    return;
                                }
                                let next = c
                                    .notifications()
                                    .timeout_iter(Duration::from_secs(1))
                                    .next();
                                match next {
                                    Ok(Some(note)) => {
                                        if let Some((sub, obj)) = parse_nudge(note.payload(), &me) {
                                            deliver(sub, obj);
                                        }
                                    }
                                    // A second without a nudge, or the
                                    // connection is gone.
                                    Ok(None) if c.is_closed() => break,
                                    Ok(None) => {}
                                    Err(e) => {
                                        tracing::warn!(error = %e, "notification stream failed");
                                        break;
                                    }
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot connect to listen"),
                }
                std::thread::sleep(Duration::from_millis(500));
            })
            .map_err(|e| Error::Storage(format!("cannot start listener: {e}")))?;
        Ok(())
    }
}

impl Drop for PgStore {
    /// The synchronous client closes its connection by blocking on an inner
    /// runtime, which panics inside an async context (as during the server's
    /// shutdown), so the pooled clients are dropped on a plain thread.
    fn drop(&mut self) {
        let pool = match self.pool.lock() {
            Ok(mut p) => std::mem::take(&mut *p),
            Err(_) => return,
        };
        let _ = std::thread::spawn(move || drop(pool)).join();
    }
}

/// `node subscription object`: GHIDs in text form.
fn nudge(node: &str, n: &Notification) -> Option<String> {
    let obj = GolixObject::parse(&n.object).ok()?;
    Some(format!("{node} {} {}", n.subscription, obj.ghid()))
}

fn parse_nudge(payload: &str, me: &str) -> Option<(Ghid, Ghid)> {
    let mut parts = payload.split(' ');
    let node = parts.next()?;
    if node == me {
        return None;
    }
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// The smallest byte string greater than every string starting with `prefix`.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// One transaction. Writes are staged in memory and sent in two statements
/// at commit ([`PgTxn::flush`]); reads see the staged writes first, then
/// what this transaction already read (its snapshot does not change under
/// SERIALIZABLE), then the database. So a batch of publishes costs one
/// round trip per key actually read (fewer with [`PersistTxn::prefetch`])
/// instead of one per statement.
struct PgTxn<'a, 'c> {
    tx: &'a mut postgres::Transaction<'c>,
    st: &'a Statements,
    /// What the database said for each key read (`None`: absent).
    read: HashMap<Vec<u8>, Option<Vec<u8>>>,
    /// Staged writes (`None`: deleted).
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// A statement failed on a serialization conflict: the transaction is
    /// run again.
    conflict: bool,
}

impl PgTxn<'_, '_> {
    /// A statement's error; a serialization conflict is remembered.
    fn failed(&mut self, e: postgres::Error) -> Error {
        self.conflict |= is_retryable(&e);
        storage(e)
    }

    /// Sends the staged writes: one upsert of every put, one delete of every
    /// deletion.
    fn flush(&mut self) -> Result<()> {
        let mut put_k: Vec<&[u8]> = Vec::new();
        let mut put_v: Vec<&[u8]> = Vec::new();
        let mut del: Vec<&[u8]> = Vec::new();
        for (k, v) in &self.writes {
            match v {
                Some(v) => {
                    put_k.push(k);
                    put_v.push(v);
                }
                None => del.push(k),
            }
        }
        if !del.is_empty() {
            if let Err(e) = self.tx.execute(&self.st.delete_many, &[&del]) {
                return Err(self.failed(e));
            }
        }
        if !put_k.is_empty() {
            if let Err(e) = self.tx.execute(&self.st.upsert_many, &[&put_k, &put_v]) {
                return Err(self.failed(e));
            }
        }
        Ok(())
    }
}

impl PersistTxn for PgTxn<'_, '_> {
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(v) = self.writes.get(key) {
            return Ok(v.clone());
        }
        if let Some(v) = self.read.get(key) {
            return Ok(v.clone());
        }
        let v: Option<Vec<u8>> = match self.tx.query_opt(&self.st.get, &[&key]) {
            Ok(row) => row.map(|r| r.get(0)),
            Err(e) => return Err(self.failed(e)),
        };
        self.read.insert(key.to_vec(), v.clone());
        Ok(v)
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
        // Staged writes under the prefix: they replace or hide what the
        // database holds, so ask it for as many more rows as they could hide.
        let staged: Vec<(&Vec<u8>, &Option<Vec<u8>>)> = self
            .writes
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .collect();
        let want = limit.saturating_add(staged.len());
        let want = i64::try_from(want).unwrap_or(i64::MAX);
        let rows = match prefix_end(prefix) {
            Some(end) => self.tx.query(&self.st.scan, &[&prefix, &end, &want]),
            None => self.tx.query(&self.st.scan_open, &[&prefix, &want]),
        };
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => return Err(self.failed(e)),
        };
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> =
            rows.into_iter().map(|r| (r.get(0), r.get(1))).collect();
        for (k, v) in staged {
            match v {
                Some(v) => merged.insert(k.clone(), v.clone()),
                None => merged.remove(k),
            };
        }
        Ok(merged.into_iter().take(limit).collect())
    }
    fn prefetch(&mut self, keys: &[Vec<u8>]) -> Result<()> {
        let wanted: Vec<&[u8]> = keys
            .iter()
            .filter(|k| !self.writes.contains_key(*k) && !self.read.contains_key(*k))
            .map(Vec::as_slice)
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let rows = match self.tx.query(&self.st.get_many, &[&wanted]) {
            Ok(rows) => rows,
            Err(e) => return Err(self.failed(e)),
        };
        for k in &wanted {
            self.read.insert(k.to_vec(), None);
        }
        for r in rows {
            self.read.insert(r.get(0), Some(r.get(1)));
        }
        Ok(())
    }
}

/// Waits before running a conflicting transaction again: a random time up to
/// 0.2 ms doubled with each attempt (at most ~13 ms), so that nodes that
/// conflicted do not meet again at once.
fn back_off(attempt: usize) {
    let ceiling = 200u64 << attempt.min(6);
    let jitter = u64::from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos()),
    ) % ceiling;
    tracing::debug!(
        attempt,
        "serialization conflict; running the transaction again"
    );
    std::thread::sleep(Duration::from_micros(jitter));
}

fn is_retryable(e: &postgres::Error) -> bool {
    e.code().is_some_and(|c| {
        *c == postgres::error::SqlState::T_R_SERIALIZATION_FAILURE
            || *c == postgres::error::SqlState::T_R_DEADLOCK_DETECTED
    })
}

impl PgStore {
    fn run<R>(
        &self,
        f: &mut dyn FnMut(&mut dyn PersistTxn) -> Result<R>,
        read_only: bool,
    ) -> Result<R> {
        let mut conn = self.take()?;
        let mut attempt = 0;
        let mut reopen = false;
        let result = loop {
            attempt += 1;
            if std::mem::take(&mut reopen) {
                conn = Conn::open(&self.url)?;
            }
            let Conn { client, st } = &mut conn;
            let mut tx = match client
                .build_transaction()
                .isolation_level(IsolationLevel::Serializable)
                .read_only(read_only)
                .start()
            {
                Ok(tx) => tx,
                // A pooled connection the server closed while it sat idle
                // (a restart of PostgreSQL, say) fails its first statement:
                // once, try a fresh one.
                Err(e) if attempt == 1 => {
                    tracing::debug!(error = %e, "pooled connection failed; opening another");
                    reopen = true;
                    continue;
                }
                Err(e) => break Err(storage(e)),
            };
            let mut txn = PgTxn {
                tx: &mut tx,
                st,
                read: HashMap::new(),
                writes: BTreeMap::new(),
                conflict: false,
            };
            let out = f(&mut txn).and_then(|v| txn.flush().map(|()| v));
            let conflict = txn.conflict;
            let committed = match out {
                // A statement that failed aborts the transaction, and a
                // COMMIT of an aborted transaction reports no error: never
                // commit after a conflict, even if the closure hid it.
                Ok(v) if !conflict => tx.commit().map(|_| v),
                Ok(_) => {
                    let _ = tx.rollback();
                    if attempt < MAX_RETRIES {
                        back_off(attempt);
                        continue;
                    }
                    break Err(Error::Storage(
                        "postgres: serialization conflicts persisted".into(),
                    ));
                }
                Err(e) => {
                    let _ = tx.rollback();
                    // A statement met a serialization conflict: run again.
                    if conflict && attempt < MAX_RETRIES {
                        back_off(attempt);
                        continue;
                    }
                    break Err(e);
                }
            };
            match committed {
                Ok(v) => break Ok(v),
                Err(e) if is_retryable(&e) && attempt < MAX_RETRIES => {
                    back_off(attempt);
                    continue;
                }
                Err(e) => break Err(storage(e)),
            }
        };
        self.give(conn);
        result
    }
}

impl PersistBackend for PgStore {
    fn transact<R>(&self, f: &mut dyn FnMut(&mut dyn PersistTxn) -> Result<R>) -> Result<R> {
        self.run(f, false)
    }

    fn read<R>(&self, f: &mut dyn FnMut(&mut dyn PersistTxn) -> Result<R>) -> Result<R> {
        self.run(f, true)
    }

    fn announce(&self, notes: &[&Notification]) -> Result<()> {
        let payloads: Vec<String> = notes.iter().filter_map(|n| nudge(&self.node, n)).collect();
        if payloads.is_empty() {
            return Ok(());
        }
        // A second try on a fresh connection: the pooled one may have been
        // closed by the server while idle.
        let mut conn = self.take()?;
        let mut tries = 0;
        let r = loop {
            tries += 1;
            let r = conn
                .client
                .execute(
                    "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p",
                    &[&CHANNEL, &payloads],
                )
                .map(drop)
                .map_err(storage);
            match r {
                Err(_) if tries == 1 => conn = Conn::open(&self.url)?,
                r => break r,
            }
        };
        self.give(conn);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_orders_correctly() {
        assert_eq!(prefix_end(b"a"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(&[0x41, 0xff]), Some(vec![0x42]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
        assert_eq!(prefix_end(b""), None);
    }
}
