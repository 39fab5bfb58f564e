//! The one subscription table of a persistence server: which connection is
//! subscribed to which GHID, looked up both ways.

use std::collections::{BTreeMap, BTreeSet};

use super::dispatch::{refusal, SubOp};
use super::node::ConnId;
use super::rules::Notification;
use crate::error::Result;
use crate::golix::ghid::Ghid;
use crate::wire::remote::{encode_ghid_list, Message};

/// Subscriptions, by GHID and by connection. Ordered, so that a fan-out goes
/// out in the same order on every run.
#[derive(Debug, Default, Clone)]
pub struct Subscriptions {
    by_ghid: BTreeMap<Ghid, BTreeSet<ConnId>>,
    by_conn: BTreeMap<ConnId, BTreeSet<Ghid>>,
    /// The highest frame counter fanned out for each subscribed dynamic
    /// GHID: a frame at or below it is not pushed again, so the pushes a
    /// subscriber gets for one dynamic GHID only go forward, even when a
    /// server learns of frames from several places (its own commits, other
    /// nodes' nudges, a catch-up) in no particular order.
    frames: BTreeMap<Ghid, u64>,
}

/// What a subscription request comes to.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    /// Send this answer.
    Answer(Message),
    /// Subscribed: read the requests pending for `recipient`
    /// ([`Dispatcher::pending`](super::Dispatcher::pending)) and answer with
    /// [`subscribe_answer`].
    ReadPending {
        /// The request's token.
        token: u16,
        /// The GHID subscribed to.
        recipient: Ghid,
    },
}

/// The answer to a subscribe and what to push right after it, given what
/// reading the pending requests gave. A failed read refuses the request (the
/// subscription stays; a retry is harmless and re-sends the pending ones).
pub fn subscribe_answer(token: u16, pending: Result<Vec<Vec<u8>>>) -> (Message, Vec<Vec<u8>>) {
    match pending {
        Ok(objects) => (
            Message::Ack {
                token,
                body: vec![1],
            },
            objects,
        ),
        Err(e) => (refusal(token, &e), Vec::new()),
    }
}

impl Subscriptions {
    /// No subscriptions.
    pub fn new() -> Self {
        Self::default()
    }

    /// Carries out a subscription request from `conn`.
    pub fn apply(&mut self, conn: ConnId, token: u16, op: SubOp) -> Applied {
        let body = match op {
            SubOp::Subscribe(g) => {
                self.subscribe(conn, g);
                return Applied::ReadPending {
                    token,
                    recipient: g,
                };
            }
            SubOp::Unsubscribe(g) => vec![u8::from(self.unsubscribe(conn, &g))],
            SubOp::List => encode_ghid_list(&self.list(conn)),
            SubOp::Disconnect => {
                self.disconnect(conn);
                vec![1]
            }
        };
        Applied::Answer(Message::Ack { token, body })
    }

    /// Subscribes `conn` to `g`; whether it is new.
    pub fn subscribe(&mut self, conn: ConnId, g: Ghid) -> bool {
        self.by_conn.entry(conn).or_default().insert(g);
        self.by_ghid.entry(g).or_default().insert(conn)
    }

    /// Unsubscribes `conn` from `g`; whether it was subscribed.
    pub fn unsubscribe(&mut self, conn: ConnId, g: &Ghid) -> bool {
        let had = self.by_conn.get_mut(&conn).is_some_and(|s| s.remove(g));
        if self.by_conn.get(&conn).is_some_and(BTreeSet::is_empty) {
            self.by_conn.remove(&conn);
        }
        if let Some(conns) = self.by_ghid.get_mut(g) {
            conns.remove(&conn);
            if conns.is_empty() {
                self.by_ghid.remove(g);
                self.frames.remove(g);
            }
        }
        had
    }

    /// Drops every subscription of `conn` (it closed, or sent `XX`).
    pub fn disconnect(&mut self, conn: ConnId) {
        for g in self.by_conn.remove(&conn).unwrap_or_default() {
            if let Some(conns) = self.by_ghid.get_mut(&g) {
                conns.remove(&conn);
                if conns.is_empty() {
                    self.by_ghid.remove(&g);
                    self.frames.remove(&g);
                }
            }
        }
    }

    /// What `conn` is subscribed to, in order.
    pub fn list(&self, conn: ConnId) -> Vec<Ghid> {
        self.by_conn
            .get(&conn)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Whether any connection is subscribed to `g`.
    pub fn has(&self, g: &Ghid) -> bool {
        self.by_ghid.contains_key(g)
    }

    /// Every GHID some connection is subscribed to, in order.
    pub fn ghids(&self) -> Vec<Ghid> {
        self.by_ghid.keys().copied().collect()
    }

    /// Number of distinct GHIDs subscribed to.
    pub fn len(&self) -> usize {
        self.by_ghid.len()
    }

    /// Whether nothing is subscribed to.
    pub fn is_empty(&self) -> bool {
        self.by_ghid.is_empty()
    }

    /// Who gets each notification: every subscriber of its GHID except the
    /// connection whose publish caused it (`origin`; `None` for a commit
    /// another node made). Notifications nobody here subscribes to are left
    /// out, and so is a frame not above the last one fanned out for its
    /// dynamic GHID (it is stale or already sent). A host must hand what
    /// this returns to the connections in this order, before it fans out
    /// anything else, for each subscriber's pushes to stay in order.
    pub fn fanout<'a>(
        &mut self,
        notes: &'a [Notification],
        origin: Option<ConnId>,
    ) -> Vec<(&'a Notification, Vec<ConnId>)> {
        let mut out = Vec::new();
        for n in notes {
            let Some(subscribers) = self.by_ghid.get(&n.subscription) else {
                continue;
            };
            match frame_counter(&n.object) {
                Some(counter) => match self.frames.get(&n.subscription) {
                    Some(&last) if counter <= last => continue,
                    _ => {
                        self.frames.insert(n.subscription, counter);
                    }
                },
                // A debinding (or a request): frames counted before it no
                // longer bound what comes after (a debinding that is itself
                // debound lets the binding be published again from 0).
                None => {
                    self.frames.remove(&n.subscription);
                }
            }
            let to: Vec<ConnId> = subscribers
                .iter()
                .copied()
                .filter(|c| Some(*c) != origin)
                .collect();
            if !to.is_empty() {
                out.push((n, to));
            }
        }
        out
    }
}

/// A dynamic frame's counter (`None` for any other object).
fn frame_counter(object: &[u8]) -> Option<u64> {
    crate::golix::Gobd::parse(object).ok().map(|f| f.counter())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(n: u8) -> Ghid {
        let mut b = [0u8; 65];
        b[0] = 2;
        b[1] = n;
        Ghid::from_bytes(&b).expect("ghid")
    }

    #[test]
    fn both_indexes_agree() {
        let mut s = Subscriptions::new();
        assert!(s.subscribe(1, g(1)));
        assert!(!s.subscribe(1, g(1)));
        s.subscribe(2, g(1));
        s.subscribe(2, g(2));
        assert_eq!(s.len(), 2);
        assert_eq!(s.list(2), vec![g(1), g(2)]);
        let notes = [
            Notification {
                subscription: g(1),
                object: vec![1],
                container: None,
            },
            Notification {
                subscription: g(3),
                object: vec![3],
                container: None,
            },
        ];
        let out = s.fanout(&notes, Some(1));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].1, vec![2]);
        assert_eq!(s.fanout(&notes, None)[0].1, vec![1, 2]);
        assert!(s.unsubscribe(2, &g(1)));
        assert!(!s.unsubscribe(2, &g(1)));
        s.disconnect(1);
        assert!(!s.has(&g(1)));
        assert_eq!(s.list(1), Vec::<Ghid>::new());
        assert_eq!(s.len(), 1);
        s.disconnect(2);
        assert!(s.is_empty());
    }

    #[test]
    fn frames_only_go_forward_for_each_dynamic_ghid() {
        use crate::golix::suite::cs3::SUITE_ID;
        use crate::golix::FirstParty;
        let me = FirstParty::from_random(SUITE_ID, &[3u8; 96]).expect("id");
        let f0 = me.make_first_frame(&me.ghid()).expect("f0");
        let f1 = me.make_next_frame(&f0, &me.ghid(), 1).expect("f1");
        let f2 = me.make_next_frame(&f1, &me.ghid(), 1).expect("f2");
        let d = f0.dynamic_ghid();
        let note = |f: &crate::golix::Gobd| Notification {
            subscription: d,
            object: f.to_bytes(),
            container: None,
        };
        let mut s = Subscriptions::new();
        s.subscribe(1, d);
        let pushed = |s: &mut Subscriptions, notes: &[Notification]| -> Vec<Vec<u8>> {
            s.fanout(notes, None)
                .into_iter()
                .map(|(n, _)| n.object.clone())
                .collect()
        };
        // f2 learned before f1 (say, from another node): f1 is stale.
        assert_eq!(
            pushed(&mut s, &[note(&f0), note(&f2), note(&f1)]),
            vec![f0.to_bytes(), f2.to_bytes()]
        );
        // A repeat (a catch-up) is not sent again.
        assert!(pushed(&mut s, &[note(&f2)]).is_empty());
        // The publisher's own frame still counts, though it is not sent back.
        s.subscribe(2, d);
        let f3 = me.make_next_frame(&f2, &me.ghid(), 1).expect("f3");
        assert_eq!(s.fanout(&[note(&f3)], Some(2))[0].1, vec![1]);
        assert!(s.fanout(&[note(&f3)], None).is_empty());
        // A debinding resets the count: the binding may come back from 0.
        let x = Notification {
            subscription: d,
            object: vec![0x58],
            container: None,
        };
        assert_eq!(s.fanout(&[x, note(&f0)], None).len(), 2);
        // Once nobody subscribes, the next subscriber starts afresh.
        s.disconnect(1);
        s.disconnect(2);
        s.subscribe(3, d);
        assert_eq!(pushed(&mut s, &[note(&f1)]), vec![f1.to_bytes()]);
    }

    #[test]
    fn a_failed_pending_read_refuses_the_subscribe() {
        let (ok, pushes) = subscribe_answer(7, Ok(vec![vec![9]]));
        assert_eq!(
            ok,
            Message::Ack {
                token: 7,
                body: vec![1]
            }
        );
        assert_eq!(pushes, vec![vec![9]]);
        let (nak, pushes) = subscribe_answer(7, Err(crate::Error::Storage("disk".into())));
        assert!(matches!(nak, Message::Nak { token: 7, .. }));
        assert!(pushes.is_empty());
    }
}
