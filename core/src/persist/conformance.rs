//! The conformance suite every persistence backend runs: key-value semantics
//! and every persistence rule, each case on a fresh store.
//!
//! ```text
//! let report = conformance::run_all(|| MemoryStore::new());
//! assert!(report.iter().all(|(_, r)| r.is_ok()));
//! ```

use super::dispatch::{Dispatcher, Input};
use super::rules::{Notification, PersistConfig, Persister, PublishOutcome};
use super::store::{MemoryStore, PersistBackend, PersistTxn};
use crate::error::{Error, Refusal, Result};
use crate::golix::suite::cs3::SUITE_ID;
use crate::golix::{FirstParty, FreshSecret, Geoc, Ghid, Gobs, RequestPayload};

type Check = core::result::Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

struct World<'a, B: PersistBackend> {
    store: &'a B,
    rules: Persister,
    alice: FirstParty,
    bob: FirstParty,
    seq: core::cell::Cell<u64>,
}

impl<'a, B: PersistBackend> World<'a, B> {
    fn new(store: &'a B) -> Result<Self> {
        let w = Self {
            store,
            rules: Persister::new(PersistConfig::default()),
            alice: FirstParty::from_random(SUITE_ID, &[0xa1; 96])?,
            bob: FirstParty::from_random(SUITE_ID, &[0xb0; 96])?,
            seq: core::cell::Cell::new(0),
        };
        w.publish(&w.alice.second_party().gidc().to_bytes())?;
        w.publish(&w.bob.second_party().gidc().to_bytes())?;
        Ok(w)
    }

    fn publish(&self, bytes: &[u8]) -> Result<PublishOutcome> {
        self.store.transact(&mut |t| self.rules.publish(t, bytes))
    }

    fn get(&self, g: &Ghid) -> Result<Vec<u8>> {
        self.store.transact(&mut |t| self.rules.get(t, g))
    }

    fn exists(&self, g: &Ghid) -> Result<bool> {
        self.store.transact(&mut |t| self.rules.exists(t, g))
    }

    fn container(&self, who: &FirstParty) -> Result<Geoc> {
        let seq = self.seq.get() + 1;
        self.seq.set(seq);
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&seq.to_be_bytes());
        let fresh = FreshSecret::from_parts(SUITE_ID, &key, &[7u8; 12])?;
        Ok(who.make_container(fresh, &seq.to_be_bytes())?.0)
    }
}

fn refusal<T: core::fmt::Debug>(r: Result<T>, want: Refusal) -> Check {
    match r {
        Err(Error::Refused { reason, .. }) if reason == want => Ok(()),
        other => Err(format!("expected refusal {want:?}, got {other:?}")),
    }
}

fn ok<T>(r: Result<T>) -> core::result::Result<T, String> {
    r.map_err(|e| format!("unexpected error: {e}"))
}

fn pushed(out: &PublishOutcome, sub: &Ghid) -> bool {
    out.notifications
        .iter()
        .any(|n: &Notification| n.subscription == *sub)
}

/// Key-value semantics: read-your-writes, prefix scans in order with limits,
/// deletes, and rollback of a failed transaction.
pub fn kv_semantics<B: PersistBackend>(s: &B) -> Check {
    ok(s.transact(&mut |t: &mut dyn PersistTxn| {
        t.put(b"a1", b"x")?;
        t.put(b"a3", b"z")?;
        t.put(b"a2", b"y")?;
        t.put(b"b1", b"w")?;
        Ok(())
    }))?;
    let scan = ok(s.transact(&mut |t| t.scan_prefix(b"a", 10)))?;
    ensure!(
        scan == vec![
            (b"a1".to_vec(), b"x".to_vec()),
            (b"a2".to_vec(), b"y".to_vec()),
            (b"a3".to_vec(), b"z".to_vec())
        ],
        "prefix scan wrong: {scan:?}"
    );
    let limited = ok(s.transact(&mut |t| t.scan_prefix(b"a", 2)))?;
    ensure!(limited.len() == 2, "scan limit ignored");
    // Read your own writes, including deletes, inside a transaction.
    let inner = ok(s.transact(&mut |t| {
        t.delete(b"a2")?;
        t.put(b"a0", b"v")?;
        let got = t.get(b"a0")?;
        let gone = t.get(b"a2")?;
        let scan = t.scan_prefix(b"a", 10)?;
        Ok((got, gone, scan.len()))
    }))?;
    ensure!(
        inner == (Some(b"v".to_vec()), None, 3),
        "transaction does not see its writes: {inner:?}"
    );
    // A limited scan skips what the transaction deleted and counts what it
    // wrote (a backend that stages writes must ask for enough rows).
    let limited = ok(s.transact(&mut |t| {
        t.delete(b"a0")?;
        t.delete(b"a1")?;
        let first = t.scan_prefix(b"a", 1)?;
        t.put(b"a15", b"n")?;
        let two = t.scan_prefix(b"a", 2)?;
        Err::<(), _>(Error::Storage(format!("{first:?} {two:?}")))
    }));
    let want = format!(
        "{:?} {:?}",
        vec![(b"a3".to_vec(), b"z".to_vec())],
        vec![
            (b"a15".to_vec(), b"n".to_vec()),
            (b"a3".to_vec(), b"z".to_vec())
        ]
    );
    ensure!(
        matches!(&limited, Err(e) if e.contains(&want)),
        "limited scan over staged writes wrong: {limited:?}"
    );
    // A failed transaction leaves nothing behind.
    let failed: Result<()> = s.transact(&mut |t| {
        t.put(b"c1", b"1")?;
        t.delete(b"a1")?;
        Err(Error::Storage("deliberate".into()))
    });
    ensure!(failed.is_err(), "error not propagated");
    let after = ok(s.transact(&mut |t| Ok((t.get(b"c1")?, t.get(b"a1")?))))?;
    ensure!(
        after == (None, Some(b"x".to_vec())),
        "failed transaction leaked writes: {after:?}"
    );
    // Binary keys with every byte value sort bytewise.
    ok(s.transact(&mut |t| {
        t.put(&[0xff, 0x00], b"hi")?;
        t.put(&[0xff, 0xff], b"hi2")?;
        t.put(&[0xfe, 0xff], b"lo")?;
        Ok(())
    }))?;
    let hi = ok(s.transact(&mut |t| t.scan_prefix(&[0xff], 10)))?;
    ensure!(
        hi.len() == 2 && hi[0].0 == vec![0xff, 0x00],
        "binary scan wrong: {hi:?}"
    );
    Ok(())
}

fn identities_are_kept<B: PersistBackend>(s: &B) -> Check {
    let w = ok(World::new(s))?;
    let again = ok(w.publish(&w.alice.second_party().gidc().to_bytes()))?;
    ensure!(!again.new, "re-publishing an identity must be idempotent");
    ensure!(ok(w.exists(&w.alice.ghid()))?, "identity not kept");
    Ok(())
}

fn container_needs_a_binding<B: PersistBackend>(s: &B) -> Check {
    let w = ok(World::new(s))?;
    let c = ok(w.container(&w.alice))?;
    refusal(w.publish(&c.to_bytes()), Refusal::UnboundContainer)?;
    let b = w.alice.make_static_binding(&c.ghid());
    ensure!(ok(w.publish(&b.to_bytes()))?.new, "binding not new");
    ensure!(ok(w.publish(&c.to_bytes()))?.new, "container not stored");
    ensure!(
        !ok(w.publish(&c.to_bytes()))?.new,
        "duplicate container must be idempotent"
    );
    ensure!(
        ok(w.get(&c.ghid()))? == c.to_bytes(),
        "GT returns other bytes"
    );
    Ok(())
}

fn objects_are_verified<B: PersistBackend>(s: &B) -> Check {
    let w = ok(World::new(s))?;
    let stranger = ok(FirstParty::from_random(SUITE_ID, &[0x5e; 96]))?;
    let c = ok(w.container(&stranger))?;
    refusal(
        w.publish(&stranger.make_static_binding(&c.ghid()).to_bytes()),
        Refusal::InvalidIdentity,
    )?;
    let b = w.alice.make_static_binding(&c.ghid());
    let mut bad = b.to_bytes();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    refusal(w.publish(&bad), Refusal::VerificationFailed)?;
    let mut hash = b.to_bytes();
    hash[150] ^= 1;
    refusal(w.publish(&hash), Refusal::VerificationFailed)?;
    refusal(w.publish(b"GOBS garbage"), Refusal::Malformed)?;
    refusal(w.publish(&[]), Refusal::Malformed)?;
    Ok(())
}

fn container_is_released_with_its_binding<B: PersistBackend>(s: &B) -> Check {
    let w = ok(World::new(s))?;
    let c = ok(w.container(&w.alice))?;
    let b = w.alice.make_static_binding(&c.ghid());
    ok(w.publish(&b.to_bytes()))?;
    ok(w.publish(&c.to_bytes()))?;
    // A second binder keeps it alive after the first goes.
    let b2 = w.bob.make_static_binding(&c.ghid());
    ok(w.publish(&b2.to_bytes()))?;
    ok(w.publish(&w.alice.make_debinding(&b.ghid()).to_bytes()))?;
    ensure!(
        ok(w.exists(&c.ghid()))?,
        "container dropped while still bound"
    );
    ok(w.publish(&w.bob.make_debinding(&b2.ghid()).to_bytes()))?;
    ensure!(!ok(w.exists(&c.ghid()))?, "unbound container kept");
    ensure!(!ok(w.exists(&b.ghid()))?, "debound binding kept");
    refusal(w.get(&c.ghid()), Refusal::DoesNotExist)?;
    Ok(())
}

fn frames_strictly_increase<B: PersistBackend>(s: &B) -> Check {
    let w = ok(World::new(s))?;
    let a = &w.alice;
    let c0 = ok(w.container(a))?;
    let f0 = ok(a.make_first_frame(&c0.ghid()))?;
    let d = f0.dynamic_ghid();
    ok(w.publish(&f0.to_bytes()))?;
    ok(w.publish(&c0.to_bytes()))?;
    let c1 = ok(w.container(a))?;
    let f1 = ok(a.make_next_frame(&f0, &c1.ghid(), 7))?;
    ok(w.publish(&f1.to_bytes()))?;
    ok(w.publish(&c1.to_bytes()))?;
    ensure!(
        ok(w.get(&d))? == f1.to_bytes(),
        "GT on the dynamic GHID is not the current frame"
    );
    ensure!(!ok(w.exists(&c0.ghid()))?, "previous target not released");
    ensure!(
        !ok(w.publish(&f1.to_bytes()))?.new,
        "same frame must be idempotent"
    );
    refusal(w.publish(&f0.to_bytes()), Refusal::IllegalDynamicFrame)?;
    // Same counter, different content.
    let c2 = ok(w.container(a))?;
    let fork = ok(a.make_frame(1, vec![c2.ghid(), c0.ghid()], Some(d)))?;
    refusal(w.publish(&fork.to_bytes()), Refusal::IllegalDynamicFrame)?;
    // Only the binder may update; the dynamic GHID stays fixed.
    let squat = ok(w.bob.make_frame(9, vec![c2.ghid(), c1.ghid()], Some(d)))?;
    refusal(w.publish(&squat.to_bytes()), Refusal::InconsistentAuthor)?;
    let f2 = ok(a.make_frame(5, vec![c2.ghid(), c1.ghid()], Some(d)))?;
    ensure!(ok(w.publish(&f2.to_bytes()))?.new, "counter jump refused");
    Ok(())
}

fn circular_bindings_are_refused<B: PersistBackend>(s: &B) -> Check {
    let w = ok(World::new(s))?;
    let a = &w.alice;
    let c = ok(w.container(a))?;
    let fa = ok(a.make_first_frame(&c.ghid()))?;
    ok(w.publish(&fa.to_bytes()))?;
    ok(w.publish(&c.to_bytes()))?;
    let fb = ok(a.make_first_frame(&fa.dynamic_ghid()))?;
    ok(w.publish(&fb.to_bytes()))?;
    // A → B closes A → B → A.
    let fa1 = ok(a.make_next_frame(&fa, &fb.dynamic_ghid(), 1))?;
    refusal(w.publish(&fa1.to_bytes()), Refusal::IllegalDynamicFrame)?;
    ensure!(
        ok(w.get(&fa.dynamic_ghid()))? == fa.to_bytes(),
        "refused frame changed state"
    );
    Ok(())
}

fn debinding_rules<B: PersistBackend>(s: &B) -> Check {
    let w = ok(World::new(s))?;
    let a = &w.alice;
    let c = ok(w.container(a))?;
    let b = a.make_static_binding(&c.ghid());
    ok(w.publish(&b.to_bytes()))?;
    ok(w.publish(&c.to_bytes()))?;
    refusal(
        w.publish(&w.bob.make_debinding(&b.ghid()).to_bytes()),
        Refusal::InconsistentAuthor,
    )?;
    refusal(
        w.publish(&a.make_debinding(&c.ghid()).to_bytes()),
        Refusal::InvalidTarget,
    )?;
    refusal(
        w.publish(&a.make_debinding(&w.bob.ghid()).to_bytes()),
        Refusal::InvalidTarget,
    )?;
    let missing = ok(w.container(a))?;
    refusal(
        w.publish(&a.make_debinding(&missing.ghid()).to_bytes()),
        Refusal::DoesNotExist,
    )?;
    let x1 = a.make_debinding(&b.ghid());
    ok(w.publish(&x1.to_bytes()))?;
    // Replay of the debound binding is blocked by the kept GDXX.
    refusal(w.publish(&b.to_bytes()), Refusal::AlreadyDebound)?;
    let listed = ok(w
        .store
        .transact(&mut |t| w.rules.list_debindings(t, &b.ghid())))?;
    ensure!(listed == vec![x1.ghid()], "?D lists {listed:?}");
    // Debinding the debinding allows the binding again, and blocks replay of x1.
    let x2 = a.make_debinding(&x1.ghid());
    ok(w.publish(&x2.to_bytes()))?;
    ensure!(
        ok(w.publish(&b.to_bytes()))?.new,
        "binding not accepted after its debinding was debound"
    );
    refusal(w.publish(&x1.to_bytes()), Refusal::AlreadyDebound)?;
    Ok(())
}

fn requests_wait_for_their_recipient<B: PersistBackend>(s: &B) -> Check {
    let w = ok(World::new(s))?;
    let r = ok(w.alice.make_request_with_random(
        w.bob.second_party(),
        RequestPayload::Raw(b"hi".to_vec()),
        &[3u8; 32],
    ))?;
    let out = ok(w.publish(&r.to_bytes()))?;
    ensure!(
        pushed(&out, &w.bob.ghid()),
        "request not pushed to the recipient's subscription"
    );
    let pending = ok(w
        .store
        .transact(&mut |t| w.rules.pending_requests(t, &w.bob.ghid())))?;
    ensure!(
        pending == vec![r.to_bytes()],
        "pending requests: {}",
        pending.len()
    );
    refusal(
        w.publish(&w.alice.make_debinding(&r.ghid()).to_bytes()),
        Refusal::InconsistentAuthor,
    )?;
    let x = w.bob.make_debinding(&r.ghid());
    let out = ok(w.publish(&x.to_bytes()))?;
    ensure!(pushed(&out, &w.bob.ghid()), "request debinding not pushed");
    ensure!(!ok(w.exists(&r.ghid()))?, "debound request kept");
    refusal(w.publish(&r.to_bytes()), Refusal::AlreadyDebound)?;
    let stranger = ok(FirstParty::from_random(SUITE_ID, &[0x77; 96]))?;
    let r2 = ok(w.alice.make_request_with_random(
        stranger.second_party(),
        RequestPayload::Raw(vec![1]),
        &[4u8; 32],
    ));
    // The stranger's identity was never published: not a valid recipient.
    if let Ok(r2) = r2 {
        refusal(w.publish(&r2.to_bytes()), Refusal::InvalidIdentity)?;
    }
    Ok(())
}

fn subscribers_get_frames_and_debindings<B: PersistBackend>(s: &B) -> Check {
    let w = ok(World::new(s))?;
    let a = &w.alice;
    let c0 = ok(w.container(a))?;
    let f0 = ok(a.make_first_frame(&c0.ghid()))?;
    let d = f0.dynamic_ghid();
    // The frame arrives before its container: held back until the container does.
    let out = ok(w.publish(&f0.to_bytes()))?;
    ensure!(!pushed(&out, &d), "frame pushed before its target arrived");
    let out = ok(w.publish(&c0.to_bytes()))?;
    ensure!(
        out.notifications
            == vec![Notification {
                subscription: d,
                object: f0.to_bytes(),
                container: Some(c0.to_bytes()),
            }],
        "held frame not released with its container: {:?}",
        out.notifications.len()
    );
    // Container first, then frame: pushed at once.
    let c1 = ok(w.container(a))?;
    let keep = a.make_static_binding(&c1.ghid());
    ensure!(
        keep.ghid() == Gobs::ghid_for(keep.suite(), &a.ghid(), &c1.ghid()),
        "a static binding's GHID cannot be named before it is seen"
    );
    ok(w.publish(&keep.to_bytes()))?;
    ok(w.publish(&c1.to_bytes()))?;
    let f1 = ok(a.make_next_frame(&f0, &c1.ghid(), 7))?;
    let out = ok(w.publish(&f1.to_bytes()))?;
    ensure!(pushed(&out, &d), "new frame not pushed");
    ensure!(
        out.notifications
            .iter()
            .any(|n| n.subscription == d && n.container.as_deref() == Some(&c1.to_bytes()[..])),
        "a frame whose container is here not pushed with it"
    );
    let x = a.make_debinding(&d);
    let out = ok(w.publish(&x.to_bytes()))?;
    ensure!(
        out.notifications
            .iter()
            .any(|n| n.subscription == d && n.object == x.to_bytes()),
        "debinding not pushed to the dynamic GHID's subscribers"
    );
    ensure!(!ok(w.exists(&d))?, "debound dynamic binding kept");
    refusal(
        w.publish(&ok(a.make_next_frame(&f1, &c0.ghid(), 7))?.to_bytes()),
        Refusal::AlreadyDebound,
    )?;
    // A static binding's debinding goes to its own subscribers (the
    // recipients of a static object learn of its delete this way).
    let x = a.make_debinding(&keep.ghid());
    let out = ok(w.publish(&x.to_bytes()))?;
    ensure!(
        out.notifications
            == vec![Notification {
                subscription: keep.ghid(),
                object: x.to_bytes(),
                container: None,
            }],
        "static debinding not pushed to the binding's subscribers"
    );
    Ok(())
}

fn held_dynamic_binding_outlives_its_debinding<B: PersistBackend>(s: &B) -> Check {
    let w = ok(World::new(s))?;
    let a = &w.alice;
    let c = ok(w.container(a))?;
    let f0 = ok(a.make_first_frame(&c.ghid()))?;
    let d = f0.dynamic_ghid();
    ok(w.publish(&f0.to_bytes()))?;
    ok(w.publish(&c.to_bytes()))?;
    let hold = w.bob.make_static_binding(&d);
    ok(w.publish(&hold.to_bytes()))?;
    let listed = ok(w.store.transact(&mut |t| w.rules.list_bindings(t, &d)))?;
    ensure!(listed == vec![hold.ghid()], "?B lists {listed:?}");
    ok(w.publish(&a.make_debinding(&d).to_bytes()))?;
    ensure!(
        ok(w.exists(&d))? && ok(w.exists(&c.ghid()))?,
        "held binding or its target dropped"
    );
    refusal(
        w.publish(&ok(a.make_frame(1, vec![c.ghid(), c.ghid()], Some(d)))?.to_bytes()),
        Refusal::AlreadyDebound,
    )?;
    ok(w.publish(&w.bob.make_debinding(&hold.ghid()).to_bytes()))?;
    ensure!(
        !ok(w.exists(&d))?,
        "debound binding kept after its last holder left"
    );
    ensure!(
        !ok(w.exists(&c.ghid()))?,
        "target kept after the chain was released"
    );
    Ok(())
}

fn invalid_targets_are_refused<B: PersistBackend>(s: &B) -> Check {
    let w = ok(World::new(s))?;
    let a = &w.alice;
    refusal(
        w.publish(&a.make_static_binding(&w.bob.ghid()).to_bytes()),
        Refusal::InvalidTarget,
    )?;
    let c = ok(w.container(a))?;
    let b = a.make_static_binding(&c.ghid());
    ok(w.publish(&b.to_bytes()))?;
    refusal(
        w.publish(&a.make_static_binding(&b.ghid()).to_bytes()),
        Refusal::InvalidTarget,
    )?;
    // A dynamic binding may proxy an identity.
    ensure!(
        ok(w.publish(&ok(a.make_first_frame(&a.ghid()))?.to_bytes()))?.new,
        "identity proxy refused"
    );
    Ok(())
}

fn failed_publish_changes_nothing<B: PersistBackend>(s: &B) -> Check {
    let w = ok(World::new(s))?;
    let a = &w.alice;
    let c = ok(w.container(a))?;
    let before = ok(w.store.transact(&mut |t| t.scan_prefix(b"", usize::MAX)))?;
    refusal(w.publish(&c.to_bytes()), Refusal::UnboundContainer)?;
    let after = ok(w.store.transact(&mut |t| t.scan_prefix(b"", usize::MAX)))?;
    ensure!(before == after, "a refused publish changed the store");
    Ok(())
}

/// A batch committed in one transaction ([`Dispatcher::commit`], objects
/// checked ahead so the backend is handed their read set) ends as the same
/// objects published one at a time: the same outcomes and the same keys.
/// Later objects in the batch depend on earlier ones (a container releasing
/// a frame staged in the same batch, a frame replacing one, a debinding of a
/// binding, a refusal, duplicates) and on what was stored before it.
fn a_batch_commits_as_one_at_a_time<B: PersistBackend>(s: &B) -> Check {
    let w = ok(World::new(s))?;
    let (a, b) = (&w.alice, &w.bob);
    let warm_c = ok(w.container(a))?;
    let warm_a = ok(a.make_first_frame(&warm_c.ghid()))?;
    let warm_c2 = ok(w.container(b))?;
    let warm_b = ok(b.make_first_frame(&warm_c2.ghid()))?;
    let c0 = ok(w.container(a))?;
    let f0 = ok(a.make_first_frame(&c0.ghid()))?;
    let c1 = ok(w.container(a))?;
    let f1 = ok(a.make_next_frame(&f0, &c1.ghid(), 7))?;
    let c2 = ok(w.container(b))?;
    let sb = b.make_static_binding(&c2.ghid());
    let unbound = ok(w.container(a))?;
    let req = ok(a.make_request_with_random(
        b.second_party(),
        RequestPayload::Raw(b"hi".to_vec()),
        &[5u8; 32],
    ))?;
    let c3 = ok(w.container(a))?;
    let warm_next = ok(a.make_next_frame(&warm_a, &c3.ghid(), 9))?;
    let batch: Vec<Vec<u8>> = vec![
        // What was stored before the batch: read, not assumed absent.
        warm_b.to_bytes(),
        warm_next.to_bytes(),
        c3.to_bytes(),
        f0.to_bytes(),
        c0.to_bytes(),
        f1.to_bytes(),
        unbound.to_bytes(),
        c1.to_bytes(),
        sb.to_bytes(),
        c2.to_bytes(),
        b.make_debinding(&sb.ghid()).to_bytes(),
        f1.to_bytes(),
        req.to_bytes(),
        f0.to_bytes(),
    ];
    let warm = [warm_a.to_bytes(), warm_b.to_bytes()];
    let gidcs = [
        a.second_party().gidc().to_bytes(),
        b.second_party().gidc().to_bytes(),
    ];

    // One at a time, on a store of reference.
    let reference = MemoryStore::new();
    let rules = Persister::new(PersistConfig::default());
    let mut want = Vec::new();
    for bytes in gidcs.iter().chain(&warm).chain(&batch) {
        want.push(format!(
            "{:?}",
            reference.transact(&mut |t| rules.publish(t, bytes))
        ));
    }
    let want_keys = ok(reference.transact(&mut |t| t.scan_prefix(b"", usize::MAX)))?;

    // In batches, on the store under test (World::new published the
    // identities; the warm-up batch caches them so the last batch is checked
    // ahead).
    let d = Dispatcher::new(s, Persister::new(PersistConfig::default()));
    let mut got = Vec::new();
    let prepare = |list: &[Vec<u8>]| -> core::result::Result<Vec<Input>, String> {
        list.iter().map(|o| ok(d.prepare(o.clone()))).collect()
    };
    for r in ok(d.commit(&prepare(&warm)?))? {
        got.push(format!("{r:?}"));
    }
    let inputs = prepare(&batch)?;
    ensure!(
        inputs.iter().all(|i| matches!(i, Input::Checked(_))),
        "the batch was not checked ahead (its signers are not cached)"
    );
    for r in ok(d.commit(&inputs))? {
        got.push(format!("{r:?}"));
    }
    let got_keys = ok(s.transact(&mut |t| t.scan_prefix(b"", usize::MAX)))?;
    // The reference also published the identities (World::new did here).
    ensure!(
        got[..] == want[2..],
        "outcomes differ:\n batch: {got:?}\n one at a time: {:?}",
        &want[2..]
    );
    ensure!(
        got_keys == want_keys,
        "stores differ after the batch ({} keys, {} one at a time)",
        got_keys.len(),
        want_keys.len()
    );
    Ok(())
}

/// What a server pushes again after missing changes: a dynamic GHID's
/// current frame, a recipient's pending requests, a debinding.
fn current_is_what_a_subscriber_holds<B: PersistBackend>(s: &B) -> Check {
    let w = ok(World::new(s))?;
    let a = &w.alice;
    let current = |g: &Ghid| ok(w.store.read(&mut |t| w.rules.current(t, g)));
    let c0 = ok(w.container(a))?;
    let f0 = ok(a.make_first_frame(&c0.ghid()))?;
    let d = f0.dynamic_ghid();
    ensure!(
        current(&d)?.is_empty(),
        "nothing is current for an unknown GHID"
    );
    ok(w.publish(&f0.to_bytes()))?;
    ok(w.publish(&c0.to_bytes()))?;
    let c1 = ok(w.container(a))?;
    let f1 = ok(a.make_next_frame(&f0, &c1.ghid(), 7))?;
    ok(w.publish(&f1.to_bytes()))?;
    // The frame waits for its container: pushing it now would announce a
    // frame nobody can read yet (the container's publish pushes it).
    ensure!(
        current(&d)?.is_empty(),
        "a frame whose container is not here is current"
    );
    ok(w.publish(&c1.to_bytes()))?;
    ensure!(
        current(&d)? == vec![f1.to_bytes()],
        "the current frame is not what is current"
    );
    let r = ok(a.make_request_with_random(
        w.bob.second_party(),
        RequestPayload::Raw(b"hi".to_vec()),
        &[6u8; 32],
    ))?;
    ok(w.publish(&r.to_bytes()))?;
    ensure!(
        current(&w.bob.ghid())? == vec![r.to_bytes()],
        "a recipient's pending request is not current"
    );
    let x = a.make_debinding(&d);
    ok(w.publish(&x.to_bytes()))?;
    ensure!(
        current(&d)? == vec![x.to_bytes()],
        "a debound dynamic GHID's debinding is not (all that is) current"
    );
    Ok(())
}

/// Every case: `(name, outcome)`. `fresh` must return an empty backend.
pub fn run_all<B: PersistBackend>(fresh: impl Fn() -> B) -> Vec<(&'static str, Check)> {
    type Case<B> = fn(&B) -> Check;
    let cases: Vec<(&'static str, Case<B>)> = vec![
        ("kv_semantics", kv_semantics::<B>),
        ("identities_are_kept", identities_are_kept::<B>),
        ("container_needs_a_binding", container_needs_a_binding::<B>),
        ("objects_are_verified", objects_are_verified::<B>),
        (
            "container_is_released_with_its_binding",
            container_is_released_with_its_binding::<B>,
        ),
        ("frames_strictly_increase", frames_strictly_increase::<B>),
        (
            "circular_bindings_are_refused",
            circular_bindings_are_refused::<B>,
        ),
        ("debinding_rules", debinding_rules::<B>),
        (
            "requests_wait_for_their_recipient",
            requests_wait_for_their_recipient::<B>,
        ),
        (
            "subscribers_get_frames_and_debindings",
            subscribers_get_frames_and_debindings::<B>,
        ),
        (
            "held_dynamic_binding_outlives_its_debinding",
            held_dynamic_binding_outlives_its_debinding::<B>,
        ),
        (
            "invalid_targets_are_refused",
            invalid_targets_are_refused::<B>,
        ),
        (
            "failed_publish_changes_nothing",
            failed_publish_changes_nothing::<B>,
        ),
        (
            "a_batch_commits_as_one_at_a_time",
            a_batch_commits_as_one_at_a_time::<B>,
        ),
        (
            "current_is_what_a_subscriber_holds",
            current_is_what_a_subscriber_holds::<B>,
        ),
    ];
    cases
        .into_iter()
        .map(|(name, case)| (name, case(&fresh())))
        .collect()
}
