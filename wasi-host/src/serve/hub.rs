//! What the server's connections share: the core's [`Dispatcher`] over the
//! backend, the core's one [`Subscriptions`] table with each connection's
//! outbound queue, and the single writer that commits publishes in batches
//! (group commit) and then fans out the pushes. Everything a request means is
//! decided in `hypergolix_core::persist`; this file only decides which task
//! runs what, and cuts off a consumer that cannot keep up.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use hypergolix_core::golix::Ghid;
use hypergolix_core::persist::dispatch::{self, refusal};
use hypergolix_core::persist::{
    Applied, ConnId, Dispatcher, Input, Notification, PersistBackend, Persister, Query, SubOp,
    Subscriptions,
};
use hypergolix_core::wire::remote::Message;
use hypergolix_core::{Error, Result};
use tokio::sync::{mpsc, oneshot, watch};

use super::metrics::Metrics;

/// Reads of a remote store (PostgreSQL) running at once: the connections its
/// pool keeps.
const CONCURRENT_READS: usize = 16;

/// How long a node waits before catching up again after a read failed.
const RETRY_CATCH_UP: std::time::Duration = std::time::Duration::from_secs(1);

/// Offset of the token in a framed message.
const TOKEN_AT: usize = 4;

/// A connection as the hub sees it: its outbound queue and its kill switch.
#[derive(Clone)]
pub struct ConnHandle {
    /// Connection id.
    pub id: ConnId,
    /// Outbound messages (already encoded).
    pub tx: mpsc::Sender<Vec<u8>>,
    /// Set when the connection must be dropped (its queue overflowed);
    /// every task of the connection watches it.
    pub kill: Arc<watch::Sender<bool>>,
    /// Token counter for server-initiated pushes.
    pub tokens: Arc<AtomicU64>,
    /// Whether the client asked for frames' containers with the frames
    /// (`PUSH_CONTAINERS_SUBPROTOCOL`): it is then sent `!C` for them.
    pub containers: bool,
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
                self.kill.send_replace(true);
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

struct Job {
    input: Input,
    origin: ConnId,
    reply: oneshot::Sender<Result<bool>>,
}

/// The subscription table and the connections it names.
#[derive(Default)]
struct Table {
    subs: Subscriptions,
    conns: HashMap<ConnId, ConnHandle>,
}

/// The hub: one per server process.
pub struct Hub<B: PersistBackend + 'static> {
    core: Arc<Dispatcher<Arc<B>>>,
    table: Mutex<Table>,
    jobs: mpsc::Sender<Job>,
    next_conn: AtomicU64,
    /// Reads running at once on blocking threads (a remote store's reads):
    /// as many as the store keeps connections, so a burst of reads neither
    /// grows the blocking thread pool nor opens connections to the store.
    reads: tokio::sync::Semaphore,
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
            core: Arc::new(Dispatcher::new(backend, rules)),
            table: Mutex::new(Table::default()),
            jobs,
            next_conn: AtomicU64::new(1),
            reads: tokio::sync::Semaphore::new(CONCURRENT_READS),
            metrics,
        });
        let writer = tokio::spawn(Self::writer(Arc::downgrade(&hub), rx, batch));
        (hub, writer)
    }

    /// A fresh connection id.
    pub fn connection_id(&self) -> ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// The table. A panic while it was held cannot leave it inconsistent
    /// (each change is one insertion or removal), so a poisoned lock is
    /// taken over rather than leaving connections open for ever.
    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A connection opened: pushes may now reach it.
    pub fn join(&self, conn: &ConnHandle) {
        self.table().conns.insert(conn.id, conn.clone());
    }

    /// A connection closed: its subscriptions go.
    pub fn leave(&self, conn: ConnId) {
        let mut t = self.table();
        t.subs.disconnect(conn);
        t.conns.remove(&conn);
        self.metrics.set_subscriptions(t.subs.len());
    }

    /// Carries out a subscription request (see [`Subscriptions::apply`]).
    pub fn subscription(&self, conn: ConnId, token: u16, op: SubOp) -> Applied {
        let mut t = self.table();
        let applied = t.subs.apply(conn, token, op);
        self.metrics.set_subscriptions(t.subs.len());
        applied
    }

    /// Parses and verifies a publish on the caller's task when its signer's
    /// identity is cached (so verification runs in parallel across
    /// connections); otherwise leaves it to the writer.
    pub fn prepare(&self, bytes: Vec<u8>) -> Result<Input> {
        self.core.prepare(bytes)
    }

    /// Queues a publish (publishes are applied in the order they are queued)
    /// and returns the receiver of its outcome, so a connection can pipeline.
    pub async fn submit(
        &self,
        input: Input,
        origin: ConnId,
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
            let core = hub.core.clone();
            let metrics = hub.metrics.clone();
            let committed = tokio::task::spawn_blocking(move || {
                let started = std::time::Instant::now();
                let results = core.commit(&inputs)?;
                metrics.commit(started.elapsed());
                tracing::debug!(
                    batch = inputs.len(),
                    micros = started.elapsed().as_micros() as u64,
                    "batch committed"
                );
                // Borrowed: a nudge needs GHIDs, not copies of the objects
                // (and containers) the pushes carry.
                let notes: Vec<&Notification> = results
                    .iter()
                    .filter_map(|r| r.as_ref().ok())
                    .flat_map(|o| o.notifications.iter())
                    .collect();
                if let Err(e) = core.backend().announce(&notes) {
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
                            hub.deliver(&outcome.notifications, Some(job.origin));
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

    /// Pushes notifications to every subscriber except the publisher
    /// (`origin`; `None` for another node's commit).
    pub fn deliver(&self, notes: &[Notification], origin: Option<ConnId>) {
        if notes.is_empty() {
            return;
        }
        // Chosen and queued under the table's lock: the fan-out drops a
        // frame older than one already fanned out, and what it lets through
        // reaches each queue before anything fanned out after it, so every
        // subscriber's pushes for a dynamic GHID only go forward.
        let mut t = self.table();
        let Table { subs, conns } = &mut *t;
        for (note, to) in subs.fanout(notes, origin) {
            let to: Vec<&ConnHandle> = to.iter().filter_map(|c| conns.get(c)).collect();
            // Encoded once (and once more with the container, for those that
            // asked for it); each subscriber gets a copy with its own token.
            let frame = dispatch::push(0, note.subscription, note.object.clone(), None).encode();
            let with_container = note.container.as_ref().and_then(|c| {
                to.iter().any(|h| h.containers).then(|| {
                    dispatch::push(0, note.subscription, note.object.clone(), Some(c.clone()))
                        .encode()
                })
            });
            tracing::trace!(subscribers = to.len(), "push");
            for c in to {
                let mut msg = match &with_container {
                    Some(w) if c.containers => w.clone(),
                    _ => frame.clone(),
                };
                msg[TOKEN_AT..TOKEN_AT + 2].copy_from_slice(&c.next_token().to_be_bytes());
                match c.push(msg) {
                    Pushed::Queued => self.metrics.push(true),
                    Pushed::Dropped => self.metrics.push(false),
                    Pushed::Closed => {}
                }
            }
        }
    }

    /// Delivers what other nodes committed: re-reads each nudged object
    /// from the shared store (a nudge carries only GHIDs) and pushes it
    /// locally; when nudges were lost, pushes every local subscription's
    /// current state instead ([`Hub::catch_up`]). Ends when the server
    /// drops the task.
    pub async fn relay(self: Arc<Self>, nudges: Arc<super::relay::Nudges>) {
        loop {
            let work = nudges.next().await;
            let caught_up = if work.behind {
                self.catch_up().await
            } else {
                let mut all = true;
                for (subscription, object) in work.nudges {
                    if !self.table().subs.has(&subscription) {
                        continue;
                    }
                    match self
                        .run(move |core| core.get(&object))
                        .await
                        .and_then(|r| r)
                    {
                        Ok(bytes) => self.deliver(
                            &[Notification {
                                subscription,
                                object: bytes,
                                // Read again from the shared store: the
                                // client fetches the container if it needs it.
                                container: None,
                            }],
                            None,
                        ),
                        // Superseded (a newer frame's nudge follows) or removed.
                        Err(Error::Refused { .. }) => {
                            tracing::debug!("nudged object no longer current")
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot read a nudged object");
                            all = false;
                        }
                    }
                }
                all
            };
            // A read failed (the store is unreachable, say): what it was
            // for is not lost, the node catches up once the store answers.
            if !caught_up {
                tokio::time::sleep(RETRY_CATCH_UP).await;
                nudges.lost();
            }
        }
    }

    /// Pushes to every local subscriber the current state of what it
    /// subscribes to, read from the store: after this, no change committed
    /// before it started is missing here, whatever nudges were lost.
    /// Whether every subscription was read.
    pub async fn catch_up(&self) -> bool {
        let subs = self.table().subs.ghids();
        if !subs.is_empty() {
            tracing::info!(subscriptions = subs.len(), "catching up from the store");
        }
        self.metrics.catch_up();
        let mut all = true;
        for subscription in subs {
            match self.run(move |core| core.current(&subscription)).await {
                Ok(Ok(objects)) => {
                    let notes: Vec<Notification> = objects
                        .into_iter()
                        .map(|object| Notification {
                            subscription,
                            object,
                            container: None,
                        })
                        .collect();
                    self.deliver(&notes, None);
                }
                Ok(Err(e)) | Err(e) => {
                    tracing::warn!(error = %e, %subscription, "cannot catch up a subscription");
                    all = false;
                }
            }
        }
        all
    }

    /// Answers a read.
    pub async fn read(&self, token: u16, query: Query) -> Message {
        self.run(move |core| core.read(token, query))
            .await
            .unwrap_or_else(|e| refusal(token, &e))
    }

    /// The requests pending for a recipient that just subscribed.
    pub async fn pending(&self, recipient: Ghid) -> Result<Vec<Vec<u8>>> {
        self.run(move |core| core.pending(&recipient)).await?
    }

    /// Whether the store answers a read.
    pub async fn healthy(&self) -> Result<()> {
        self.run(|core| core.healthy()).await?
    }

    /// Runs a read on the dispatcher: on this task for an embedded store (a
    /// read of a few pages; a hop to a blocking thread would cost more), else
    /// on a blocking thread.
    async fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Dispatcher<Arc<B>>) -> R + Send + 'static,
    ) -> Result<R> {
        if self.core.backend().reads_are_local() {
            return Ok(f(&self.core));
        }
        let _permit = self
            .reads
            .acquire()
            .await
            .map_err(|_| Error::Storage("server is shutting down".into()))?;
        let core = self.core.clone();
        tokio::task::spawn_blocking(move || f(&core))
            .await
            .map_err(|e| Error::Storage(format!("read task failed: {e}")))
    }
}
