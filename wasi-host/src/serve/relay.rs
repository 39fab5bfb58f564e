//! Other nodes' commits, as this node learns of them (PostgreSQL's
//! LISTEN/NOTIFY), on their way to the hub's relay task.
//!
//! A nudge is only a hint: `(subscription, object)` GHIDs. Nudges are
//! coalesced (a repeat of one still waiting is dropped) up to a bound; past
//! it, or when the listening connection was lost (and with it whatever was
//! notified meanwhile), the node is *behind* and the relay pushes every
//! local subscription's current state read from the shared store
//! (`Dispatcher::current`). So a subscriber always ends with the current
//! frame of what it subscribes to, whatever was dropped on the way; it may
//! be sent a frame it already has, which clients drop.

use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard, PoisonError};

use hypergolix_core::golix::Ghid;
use tokio::sync::Notify;

/// Nudges waiting for the relay.
#[derive(Debug)]
pub struct Nudges {
    state: Mutex<State>,
    wake: Notify,
    bound: usize,
}

#[derive(Debug, Default)]
struct State {
    order: Vec<(Ghid, Ghid)>,
    seen: HashSet<(Ghid, Ghid)>,
    behind: bool,
}

/// What the relay has to do next.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Work {
    /// Nudges in the order they came (none when `behind`).
    pub nudges: Vec<(Ghid, Ghid)>,
    /// Some nudges were lost: push every local subscription's current state.
    pub behind: bool,
}

impl Nudges {
    /// At most `bound` distinct nudges wait; past that the node is behind.
    pub fn new(bound: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            bound,
        }
    }

    /// Only sets and lists change under the lock: a panic cannot leave them
    /// inconsistent, so a poisoned lock is taken over.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Another node committed `object` for `subscription` (from any thread).
    pub fn nudge(&self, subscription: Ghid, object: Ghid) {
        {
            let mut s = self.state();
            if s.behind || !s.seen.insert((subscription, object)) {
                return;
            }
            if s.order.len() >= self.bound {
                tracing::warn!(
                    bound = self.bound,
                    "relay behind: re-reading every subscription"
                );
                s.behind = true;
                s.order.clear();
                s.seen.clear();
            } else {
                s.order.push((subscription, object));
            }
        }
        self.wake.notify_one();
    }

    /// Nudges may have been lost (the listening connection was opened
    /// again): the relay catches up on every subscription.
    pub fn lost(&self) {
        {
            let mut s = self.state();
            s.behind = true;
            s.order.clear();
            s.seen.clear();
        }
        self.wake.notify_one();
    }

    /// Waits for work and takes it.
    pub async fn next(&self) -> Work {
        loop {
            {
                let mut s = self.state();
                if s.behind || !s.order.is_empty() {
                    s.seen.clear();
                    let behind = std::mem::take(&mut s.behind);
                    return Work {
                        nudges: std::mem::take(&mut s.order),
                        behind,
                    };
                }
            }
            self.wake.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(n: u8) -> Ghid {
        Ghid::from_bytes(&[&[1u8][..], &[n; 64][..]].concat()).expect("ghid")
    }

    #[tokio::test]
    async fn nudges_coalesce_and_overflow_means_behind() {
        let n = Nudges::new(3);
        n.nudge(g(1), g(2));
        n.nudge(g(1), g(2));
        n.nudge(g(1), g(3));
        assert_eq!(
            n.next().await,
            Work {
                nudges: vec![(g(1), g(2)), (g(1), g(3))],
                behind: false
            }
        );
        for i in 0..10 {
            n.nudge(g(1), g(i));
        }
        assert_eq!(
            n.next().await,
            Work {
                nudges: vec![],
                behind: true
            }
        );
        // Caught up: nudges count again.
        n.nudge(g(4), g(5));
        assert_eq!(n.next().await.nudges, vec![(g(4), g(5))]);
    }

    #[tokio::test]
    async fn a_lost_listener_means_behind_and_wakes_the_relay() {
        let n = std::sync::Arc::new(Nudges::new(8));
        n.nudge(g(1), g(2));
        let waiter = {
            let n = n.clone();
            tokio::spawn(async move {
                let first = n.next().await;
                (first, n.next().await)
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        n.lost();
        let (first, second) = waiter.await.expect("join");
        assert_eq!(first.nudges, vec![(g(1), g(2))]);
        assert!(second.behind && second.nudges.is_empty());
    }
}
