//! Shared server state: subscriptions, and the single writer that commits
//! publishes in batches (group commit) and then pushes notifications.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hypergolix_core::golix::Ghid;
use hypergolix_core::persist::{Checked, Notification, PersistBackend, Persister};
use hypergolix_core::wire::remote::{Message, Request};
use hypergolix_core::{Error, Result};
use tokio::sync::{mpsc, oneshot, Notify};

use super::metrics::Metrics;

/// Offset of the token in a framed message.
const TOKEN_AT: usize = 4;

/// A connection as the hub sees it: its outbound queue and its kill switch.
#[derive(Clone)]
pub struct ConnHandle {
    /// Connection id.
    pub id: u64,
    /// Outbound messages (already encoded).
    pub tx: mpsc::Sender<Vec<u8>>,
    /// Fired when the connection must be dropped (its queue overflowed).
    pub kill: Arc<Notify>,
    /// Token counter for server-initiated pushes.
    pub tokens: Arc<AtomicU64>,
}

impl ConnHandle {
    /// The next push token.
    pub fn next_token(&self) -> u16 {
        (self.tokens.fetch_add(1, Ordering::Relaxed) & 0xffff) as u16
    }

    /// Queues a message without waiting; a full queue kills the connection
    /// (memory stays bounded whatever the consumer does).
    pub fn push(&self, msg: Vec<u8>) -> Pushed {
        match self.tx.try_send(msg) {
            Ok(()) => Pushed::Queued,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(
                    conn = self.id,
                    "slow consumer: outbound queue full, disconnecting"
                );
                self.kill.notify_one();
                Pushed::Dropped
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Pushed::Closed,
        }
    }
}

/// What became of a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued for the connection's writer.
    Queued,
    /// Dropped: the queue was full (the connection is being cut).
    Dropped,
    /// The connection is already gone.
    Closed,
}

/// A publish on its way to the writer.
pub enum Input {
    /// Not yet verified (the signer's identity was not cached).
    Raw(Vec<u8>),
    /// Parsed and signature-checked on the connection's task.
    Checked(Box<Checked>),
}

struct Job {
    input: Input,
    origin: u64,
    reply: oneshot::Sender<Result<bool>>,
}

/// The hub: one per server process.
pub struct Hub<B: PersistBackend + 'static> {
    backend: Arc<B>,
    rules: Arc<Persister>,
    subs: Mutex<HashMap<Ghid, HashMap<u64, ConnHandle>>>,
    jobs: mpsc::Sender<Job>,
    next_conn: AtomicU64,
    /// What `--metrics` reports.
    pub metrics: Arc<Metrics>,
}

impl<B: PersistBackend + 'static> Hub<B> {
    /// Starts the hub and its writer task (which ends once the hub is
    /// dropped and its queue is drained).
    pub fn start(
        backend: Arc<B>,
        rules: Persister,
        batch: usize,
        metrics: Arc<Metrics>,
    ) -> (Arc<Self>, tokio::task::JoinHandle<()>) {
        let (jobs, rx) = mpsc::channel(batch * 4);
        let hub = Arc::new(Self {
            backend,
            rules: Arc::new(rules),
            subs: Mutex::new(HashMap::new()),
            jobs,
            next_conn: AtomicU64::new(1),
            metrics,
        });
        let writer = tokio::spawn(Self::writer(Arc::downgrade(&hub), rx, batch));
        (hub, writer)
    }

    /// A fresh connection id.
    pub fn connection_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Publishes an object; resolves once it is durably committed (`Ok(new)`)
    /// or refused.
    pub async fn publish(&self, bytes: Vec<u8>, origin: u64) -> Result<bool> {
        let input = self.prepare(bytes)?;
        self.submit(input, origin)
            .await?
            .await
            .map_err(|_| Error::Storage("writer stopped".into()))?
    }

    /// Parses and verifies an object on the caller's thread when its signer's
    /// identity is cached (so verification runs in parallel across
    /// connections); otherwise leaves it to the writer.
    pub fn prepare(&self, bytes: Vec<u8>) -> Result<Input> {
        Ok(match self.rules.check_cached(bytes)? {
            Ok(checked) => Input::Checked(Box::new(checked)),
            Err(raw) => Input::Raw(raw),
        })
    }

    /// Queues a publish (publishes are applied in the order they are queued)
    /// and returns the receiver of its outcome, so a connection can pipeline.
    pub async fn submit(
        &self,
        input: Input,
        origin: u64,
    ) -> Result<oneshot::Receiver<Result<bool>>> {
        let (reply, rx) = oneshot::channel();
        self.jobs
            .send(Job {
                input,
                origin,
                reply,
            })
            .await
            .map_err(|_| Error::Storage("server is shutting down".into()))?;
        Ok(rx)
    }

    async fn writer(hub: std::sync::Weak<Self>, mut rx: mpsc::Receiver<Job>, batch: usize) {
        while let Some(first) = rx.recv().await {
            let mut jobs = vec![first];
            while jobs.len() < batch {
                match rx.try_recv() {
                    Ok(j) => jobs.push(j),
                    Err(_) => break,
                }
            }
            let Some(hub) = hub.upgrade() else { return };
            let inputs: Vec<Input> = jobs
                .iter_mut()
                .map(|j| std::mem::replace(&mut j.input, Input::Raw(Vec::new())))
                .collect();
            let (backend, rules) = (hub.backend.clone(), hub.rules.clone());
            let metrics = hub.metrics.clone();
            let batch_len = inputs.len();
            let committed = tokio::task::spawn_blocking(move || {
                let started = std::time::Instant::now();
                let results = backend.transact(&mut |txn| {
                    let mut results = Vec::with_capacity(inputs.len());
                    for input in &inputs {
                        let r = match input {
                            Input::Raw(bytes) => rules.publish(txn, bytes),
                            Input::Checked(c) => rules.publish_checked(txn, c),
                        };
                        match r {
                            // A storage failure aborts the whole batch; refusals
                            // happen before any write, so they are per object.
                            Err(e @ Error::Storage(_)) => return Err(e),
                            r => results.push(r),
                        }
                    }
                    Ok(results)
                })?;
                metrics.commit(started.elapsed());
                let notes: Vec<Notification> = results
                    .iter()
                    .filter_map(|r| r.as_ref().ok())
                    .flat_map(|o| o.notifications.iter().cloned())
                    .collect();
                tracing::debug!(
                    batch = batch_len,
                    micros = started.elapsed().as_micros() as u64,
                    "batch committed"
                );
                if let Err(e) = backend.announce(&notes) {
                    tracing::warn!(error = %e, "could not announce to other nodes");
                }
                Ok(results)
            })
            .await
            .unwrap_or_else(|e| Err(Error::Storage(format!("writer task failed: {e}"))));
            match committed {
                Ok(results) => {
                    for (job, result) in jobs.into_iter().zip(results) {
                        let reply = result.map(|outcome| {
                            hub.deliver(&outcome.notifications, job.origin);
                            outcome.new
                        });
                        let _ = job.reply.send(reply);
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "commit failed; refusing the batch");
                    for job in jobs {
                        let _ = job.reply.send(Err(e.clone()));
                    }
                }
            }
        }
    }

    /// Pushes notifications to every subscriber except the publisher.
    pub fn deliver(&self, notes: &[Notification], origin: u64) {
        if notes.is_empty() {
            return;
        }
        let targets: Vec<(Ghid, Vec<u8>, Vec<ConnHandle>)> = match self.subs.lock() {
            Ok(subs) => notes
                .iter()
                .filter_map(|n| {
                    subs.get(&n.subscription).map(|conns| {
                        let list = conns.values().filter(|c| c.id != origin).cloned().collect();
                        (n.subscription, n.object.clone(), list)
                    })
                })
                .collect(),
            Err(_) => return,
        };
        for (sub, object, conns) in targets {
            // Encode once; each subscriber gets a copy with its own token.
            let frame = Message::Request {
                token: 0,
                request: Request::Push {
                    subscription: sub,
                    object,
                },
            }
            .encode();
            for c in conns {
                let mut msg = frame.clone();
                msg[TOKEN_AT..TOKEN_AT + 2].copy_from_slice(&c.next_token().to_be_bytes());
                match c.push(msg) {
                    Pushed::Queued => self.metrics.push(true),
                    Pushed::Dropped => self.metrics.push(false),
                    Pushed::Closed => {}
                }
            }
        }
    }

    /// Delivers what another node committed: re-reads each object from the
    /// shared store (the nudge carries only GHIDs) and pushes it locally.
    pub async fn relay(self: Arc<Self>, mut nudges: mpsc::Receiver<(Ghid, Ghid)>) {
        while let Some((subscription, object)) = nudges.recv().await {
            let has_local = self
                .subs
                .lock()
                .map(|s| s.contains_key(&subscription))
                .unwrap_or(false);
            if !has_local {
                continue;
            }
            match self.query(move |r, t| r.get(t, &object)).await {
                Ok(bytes) => self.deliver(
                    &[Notification {
                        subscription,
                        object: bytes,
                    }],
                    0,
                ),
                // Superseded (a newer frame's nudge follows) or removed.
                Err(e) => tracing::debug!(error = %e, "nudged object no longer current"),
            }
        }
    }

    /// Subscribes a connection; returns whether it is new.
    pub fn subscribe(&self, g: Ghid, conn: &ConnHandle) -> bool {
        self.subs
            .lock()
            .map(|mut s| {
                let new = s
                    .entry(g)
                    .or_default()
                    .insert(conn.id, conn.clone())
                    .is_none();
                self.metrics.set_subscriptions(s.len());
                new
            })
            .unwrap_or(false)
    }

    /// Unsubscribes; returns whether the subscription existed.
    pub fn unsubscribe(&self, g: &Ghid, conn: u64) -> bool {
        self.subs
            .lock()
            .map(|mut s| {
                let had = s.get_mut(g).is_some_and(|m| m.remove(&conn).is_some());
                if s.get(g).is_some_and(|m| m.is_empty()) {
                    s.remove(g);
                }
                self.metrics.set_subscriptions(s.len());
                had
            })
            .unwrap_or(false)
    }

    /// Number of distinct subscribed GHIDs (metrics, tests).
    pub fn subscription_count(&self) -> usize {
        self.subs.lock().map(|s| s.len()).unwrap_or(0)
    }

    /// Runs a read-only query: on this task for an embedded store (a read of
    /// a few pages; a hop to a blocking thread would cost more), else on a
    /// blocking thread.
    pub async fn query<R: Send + 'static>(
        &self,
        f: impl Fn(&Persister, &mut dyn hypergolix_core::persist::PersistTxn) -> Result<R>
            + Send
            + 'static,
    ) -> Result<R> {
        if self.backend.reads_are_local() {
            return self.backend.read(&mut |txn| f(&self.rules, txn));
        }
        let (backend, rules) = (self.backend.clone(), self.rules.clone());
        tokio::task::spawn_blocking(move || backend.read(&mut |txn| f(&rules, txn)))
            .await
            .unwrap_or_else(|e| Err(Error::Storage(format!("query task failed: {e}"))))
    }
}
