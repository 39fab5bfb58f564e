//! `hypergolix serve --metrics 127.0.0.1:9770`: `GET /healthz` and
//! Prometheus metrics (`GET /metrics`, OpenMetrics text) on a loopback
//! port of their own, apart from the websocket port clients use.
//!
//! The metrics: open connections and subscriptions, publishes by outcome,
//! new objects by Golix type, pushes sent and pushes dropped (a slow
//! consumer's full queue), catch-ups from the store after lost notifications
//! of other nodes' commits, and the store's commit latency.

use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, &'static str)>;

/// The server's metrics (cheap to update: atomics).
pub struct Metrics {
    registry: Registry,
    connections: Gauge<i64, AtomicI64>,
    subscriptions: Gauge<i64, AtomicI64>,
    publishes: Family<Labels, Counter>,
    objects: Family<Labels, Counter>,
    pushes: Counter,
    push_drops: Counter,
    catch_ups: Counter,
    commit: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("hypergolix");
        let connections = Gauge::<i64, AtomicI64>::default();
        let subscriptions = Gauge::<i64, AtomicI64>::default();
        let publishes = Family::<Labels, Counter>::default();
        let objects = Family::<Labels, Counter>::default();
        let pushes = Counter::default();
        let push_drops = Counter::default();
        let catch_ups = Counter::default();
        // 50 µs to ~1.6 s.
        let commit = Histogram::new(exponential_buckets(0.000_05, 2.0, 16));
        registry.register(
            "connections",
            "Open client websocket connections",
            connections.clone(),
        );
        registry.register(
            "subscriptions",
            "Distinct GHIDs with at least one subscriber on this node",
            subscriptions.clone(),
        );
        registry.register(
            "publishes",
            "Publish requests by outcome (new, existing, refused, error)",
            publishes.clone(),
        );
        registry.register(
            "objects_stored",
            "New objects stored since the server started, by Golix type",
            objects.clone(),
        );
        registry.register("pushes", "Pushes queued to subscribers", pushes.clone());
        registry.register(
            "push_queue_drops",
            "Pushes dropped because a subscriber's queue was full (the connection is cut)",
            push_drops.clone(),
        );
        registry.register(
            "relay_catch_ups",
            "Times this node pushed every subscription's current state because other nodes' notifications may have been lost",
            catch_ups.clone(),
        );
        registry.register(
            "store_commit_seconds",
            "Time to commit one batch of publishes to the store",
            commit.clone(),
        );
        Self {
            registry,
            connections,
            subscriptions,
            publishes,
            objects,
            pushes,
            push_drops,
            catch_ups,
            commit,
        }
    }

    /// A connection opened; it counts until the guard is dropped.
    pub fn connection(self: &Arc<Self>) -> ConnectionGuard {
        self.connections.inc();
        ConnectionGuard(Arc::clone(self))
    }

    /// The number of subscribed GHIDs now.
    pub fn set_subscriptions(&self, n: usize) {
        self.subscriptions.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// One publish's outcome; `object` is the published bytes (its magic
    /// names its type).
    pub fn publish(&self, object: &[u8], outcome: &hypergolix_core::Result<bool>) {
        let label = match outcome {
            Ok(true) => "new",
            Ok(false) => "existing",
            Err(hypergolix_core::Error::Storage(_)) => "error",
            Err(_) => "refused",
        };
        self.publishes
            .get_or_create(&vec![("outcome", label)])
            .inc();
        if matches!(outcome, Ok(true)) {
            self.objects
                .get_or_create(&vec![("type", golix_type(object))])
                .inc();
        }
    }

    /// A push queued (`sent`), or dropped on a full queue.
    pub fn push(&self, sent: bool) {
        if sent {
            self.pushes.inc();
        } else {
            self.push_drops.inc();
        }
    }

    /// The node caught up from the store (nudges may have been lost).
    pub fn catch_up(&self) {
        self.catch_ups.inc();
    }

    /// One batch commit took `took`.
    pub fn commit(&self, took: Duration) {
        self.commit.observe(took.as_secs_f64());
    }

    /// The OpenMetrics text of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Counts one open connection while it lives.
pub struct ConnectionGuard(Arc<Metrics>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.connections.dec();
    }
}

/// The Golix type of an object, from its magic.
fn golix_type(object: &[u8]) -> &'static str {
    match object.get(..4) {
        Some(b"GIDC") => "GIDC",
        Some(b"GEOC") => "GEOC",
        Some(b"GOBS") => "GOBS",
        Some(b"GOBD") => "GOBD",
        Some(b"GDXX") => "GDXX",
        Some(b"GARQ") => "GARQ",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_render_what_was_counted() {
        let m = Arc::new(Metrics::new());
        let guard = m.connection();
        m.publish(b"GEOC....", &Ok(true));
        m.publish(b"GEOC....", &Ok(false));
        m.publish(
            b"junk",
            &Err(hypergolix_core::Error::Storage("disk".into())),
        );
        m.push(true);
        m.push(false);
        m.commit(Duration::from_millis(2));
        m.set_subscriptions(3);
        let text = m.render();
        for want in [
            "hypergolix_connections 1",
            "hypergolix_subscriptions 3",
            "hypergolix_publishes_total{outcome=\"new\"} 1",
            "hypergolix_publishes_total{outcome=\"existing\"} 1",
            "hypergolix_publishes_total{outcome=\"error\"} 1",
            "hypergolix_objects_stored_total{type=\"GEOC\"} 1",
            "hypergolix_pushes_total 1",
            "hypergolix_push_queue_drops_total 1",
            "hypergolix_store_commit_seconds_count 1",
        ] {
            assert!(text.contains(want), "{want} in:\n{text}");
        }
        drop(guard);
        assert!(m.render().contains("hypergolix_connections 0"));
    }
}
