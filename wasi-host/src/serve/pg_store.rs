//! The PostgreSQL persistence backend: one `hgx_kv(k bytea primary key, v bytea)`
//! table shared by any number of stateless server nodes.
//!
//! Transactions run at SERIALIZABLE isolation and are retried on serialization
//! failures, so concurrent nodes apply the rules as if one at a time. After a
//! commit a node sends `NOTIFY hgx_push` with the subscription GHID and the
//! pushed object's GHID; every node LISTENs and re-reads the object from the
//! database before pushing it to its own subscribers (the notification is a
//! nudge, never the data).

use std::sync::Mutex;
use std::time::Duration;

use hypergolix_core::golix::{Ghid, GolixObject};
use hypergolix_core::persist::{Notification, PersistBackend, PersistTxn};
use hypergolix_core::{Error, Result};
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, IsolationLevel, NoTls};

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS hgx_kv (k bytea PRIMARY KEY, v bytea NOT NULL)";
/// The LISTEN/NOTIFY channel.
pub const CHANNEL: &str = "hgx_push";
const MAX_RETRIES: usize = 50;

fn storage<E: std::fmt::Display>(e: E) -> Error {
    Error::Storage(format!("postgres: {e}"))
}

/// A pool of connections to one database.
pub struct PgStore {
    url: String,
    pool: Mutex<Vec<Client>>,
    node: String,
}

impl PgStore {
    /// Connects and creates the schema if needed. `node` names this server
    /// node in its notifications (so it can ignore its own).
    pub fn connect(url: &str, node: &str) -> Result<Self> {
        let mut client = Client::connect(url, NoTls).map_err(storage)?;
        client.batch_execute(SCHEMA).map_err(storage)?;
        Ok(Self {
            url: url.to_string(),
            pool: Mutex::new(vec![client]),
            node: node.to_string(),
        })
    }

    fn take(&self) -> Result<Client> {
        let pooled = self
            .pool
            .lock()
            .map_err(|_| Error::Storage("pool lock poisoned".into()))?
            .pop();
        match pooled {
            Some(c) if !c.is_closed() => Ok(c),
            _ => Client::connect(&self.url, NoTls).map_err(storage),
        }
    }

    fn give(&self, c: Client) {
        if let Ok(mut p) = self.pool.lock() {
            if p.len() < 16 && !c.is_closed() {
                p.push(c);
            }
        }
    }

    /// Starts a thread that LISTENs for other nodes' notifications and calls
    /// `deliver(subscription, object ghid)` for each.
    pub fn listen(
        &self,
        deliver: impl Fn(Ghid, Ghid) + Send + 'static,
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
                            loop {
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
                                    Ok(None) if !alive() => return,
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

struct PgTxn<'a, 'c> {
    tx: &'a mut postgres::Transaction<'c>,
}

impl PersistTxn for PgTxn<'_, '_> {
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let row = self
            .tx
            .query_opt("SELECT v FROM hgx_kv WHERE k = $1", &[&key])
            .map_err(storage)?;
        Ok(row.map(|r| r.get(0)))
    }
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.tx
            .execute("INSERT INTO hgx_kv (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v", &[&key, &value])
            .map_err(storage)?;
        Ok(())
    }
    fn delete(&mut self, key: &[u8]) -> Result<()> {
        self.tx
            .execute("DELETE FROM hgx_kv WHERE k = $1", &[&key])
            .map_err(storage)?;
        Ok(())
    }
    fn scan_prefix(&mut self, prefix: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = match prefix_end(prefix) {
            Some(end) => self.tx.query(
                "SELECT k, v FROM hgx_kv WHERE k >= $1 AND k < $2 ORDER BY k LIMIT $3",
                &[&prefix, &end, &limit],
            ),
            None => self.tx.query(
                "SELECT k, v FROM hgx_kv WHERE k >= $1 ORDER BY k LIMIT $2",
                &[&prefix, &limit],
            ),
        }
        .map_err(storage)?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }
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
        let mut client = self.take()?;
        let mut attempt = 0;
        let result = loop {
            attempt += 1;
            let mut tx = match client
                .build_transaction()
                .isolation_level(IsolationLevel::Serializable)
                .read_only(read_only)
                .start()
            {
                Ok(tx) => tx,
                Err(e) => break Err(storage(e)),
            };
            let out = f(&mut PgTxn { tx: &mut tx });
            let committed = match out {
                Ok(v) => tx.commit().map(|_| v),
                Err(e) => {
                    let _ = tx.rollback();
                    // A serialization failure inside a statement surfaces as a storage error.
                    if attempt < MAX_RETRIES
                        && matches!(&e, Error::Storage(s) if s.contains("could not serialize"))
                    {
                        continue;
                    }
                    break Err(e);
                }
            };
            match committed {
                Ok(v) => break Ok(v),
                Err(e) if is_retryable(&e) && attempt < MAX_RETRIES => continue,
                Err(e) => break Err(storage(e)),
            }
        };
        self.give(client);
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
        let mut client = self.take()?;
        let r = client
            .execute(
                "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p",
                &[&CHANNEL, &payloads],
            )
            .map(drop)
            .map_err(storage);
        self.give(client);
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
