//! Taking access back (`docs/protocol/revocation.md`): unshare rotates an
//! object's master, the remaining recipients and the owner's other devices
//! follow, the unshared identity reads nothing published after it; deletes
//! of static objects reach every holder. Over the in-process world
//! (engines + core's persistence node).

#[path = "support/calls.rs"]
mod calls;
mod sim;

use calls::{api, ghid, new_obj, object, updates};
use hypergolix_core::engine::{AppPush, AppReply, AppRequest, AppToken, NewObject};
use hypergolix_core::golix::Ghid;
use hypergolix_core::Error;
use sim::World;

fn update(w: &mut World, d: usize, g: Ghid, state: &[u8]) {
    w.call(
        d,
        AppRequest::Update {
            address: g,
            state: state.to_vec(),
        },
    )
    .expect("update");
}

fn share(w: &mut World, d: usize, g: Ghid, recipient: Ghid) {
    w.call(
        d,
        AppRequest::Share {
            address: g,
            recipient,
        },
    )
    .expect("share");
}

fn unshare(w: &mut World, d: usize, g: Ghid, recipient: Ghid) -> Result<AppReply, Error> {
    w.call(
        d,
        AppRequest::Unshare {
            address: g,
            recipient,
        },
    )
}

fn shared_with(w: &mut World, d: usize, g: Ghid) -> Vec<Ghid> {
    match w.call(d, AppRequest::SharedWith(g)) {
        Ok(AppReply::Ghids(mut v)) => {
            v.sort();
            v
        }
        other => panic!("expected GHIDs, got {other:?}"),
    }
}

fn sorted(mut v: Vec<Ghid>) -> Vec<Ghid> {
    v.sort();
    v
}

/// A new dynamic object (state `v1`) of `a`'s, shared with both, settled.
fn shared_with_both(w: &mut World, a: usize, bob: Ghid, carol: Ghid) -> Ghid {
    let g = ghid(w.call(a, new_obj(true, b"v1")));
    share(w, a, g, bob);
    share(w, a, g, carol);
    w.settle(100_000);
    g
}

/// Alice on two devices, Bob and Carol (apps registered for [`api`]), all
/// settled; returns the world, the device indexes and Bob's and Carol's
/// identities.
struct Cast {
    w: World,
    a: usize,
    a2: usize,
    b: usize,
    c: usize,
    bob: Ghid,
    carol: Ghid,
}

fn cast(seed: u64) -> Cast {
    let mut w = World::new(seed);
    let (a, alice, _) = w.new_agent("alice", b"a");
    let (b, _, bob) = w.new_agent("bob", b"b");
    let (c, _, carol) = w.new_agent("carol", b"c");
    w.settle(100_000);
    let a2 = w.login_device("alice-phone", alice, b"a");
    w.settle(100_000);
    for d in [a, a2] {
        w.call(d, AppRequest::SetToken(AppToken::NULL))
            .expect("token");
    }
    for d in [b, c] {
        w.call(d, AppRequest::RegisterApi(api())).expect("register");
    }
    Cast {
        w,
        a,
        a2,
        b,
        c,
        bob,
        carol,
    }
}

/// A shares with B and C, unshares B: C and A's other device keep reading
/// and writing under the new master; B receives the next frames, cannot
/// read them and its app hears nothing; sharing with B again works from
/// then on.
#[test]
fn unshare_rotates_the_key_and_only_the_remaining_recipients_read_on() {
    let Cast {
        mut w,
        a,
        a2,
        b,
        c,
        bob,
        carol,
    } = cast(21);
    let g = shared_with_both(&mut w, a, bob, carol);
    assert_eq!(shared_with(&mut w, a, g), sorted(vec![bob, carol]));
    assert_eq!(object(w.call(b, AppRequest::Get(g))).state, b"v1");
    assert_eq!(object(w.call(c, AppRequest::Get(g))).state, b"v1");
    // The phone sees the same list (account state).
    object(w.call(a2, AppRequest::Get(g)));
    assert_eq!(shared_with(&mut w, a2, g), sorted(vec![bob, carol]));

    assert_eq!(unshare(&mut w, a, g, bob), Ok(AppReply::Done));
    w.settle(100_000);
    assert_eq!(shared_with(&mut w, a, g), vec![carol]);
    assert_eq!(shared_with(&mut w, a2, g), vec![carol]);
    let locked_before = w.engine(b).stats().locked_frames;
    assert!(locked_before >= 1, "the rotation frame reached Bob locked");

    update(&mut w, a, g, b"v2 after unshare");
    update(&mut w, a2, g, b"v3 from the phone");
    w.settle(100_000);
    assert_eq!(
        updates(&w, c, &g).last().map(Vec::as_slice),
        Some(&b"v3 from the phone"[..])
    );
    assert!(updates(&w, c, &g).contains(&b"v2 after unshare".to_vec()));
    assert_eq!(w.engine(a).peek(&g).expect("a").state, b"v3 from the phone");
    // Bob: nothing new, the frames came and stayed unreadable.
    for p in updates(&w, b, &g) {
        assert_eq!(p, b"v1", "Bob's app was told of a state after the unshare");
    }
    assert_eq!(w.engine(b).peek(&g).expect("b").state, b"v1");
    assert!(w.engine(b).stats().locked_frames > locked_before);

    // Shared with Bob again: he reads from then on.
    share(&mut w, a, g, bob);
    w.settle(100_000);
    assert_eq!(shared_with(&mut w, a, g), sorted(vec![bob, carol]));
    update(&mut w, a2, g, b"v4 for both");
    w.settle(100_000);
    assert_eq!(w.engine(b).peek(&g).expect("b").state, b"v4 for both");
    assert_eq!(
        updates(&w, b, &g).last().map(Vec::as_slice),
        Some(&b"v4 for both"[..])
    );
    assert_eq!(w.engine(c).peek(&g).expect("c").state, b"v4 for both");
    // The share again made a new master for Bob: the frame published while
    // he was unshared stays unreadable to him; he got the state current at
    // the share and what followed. Alice's app heard both shares succeed.
    assert!(!updates(&w, b, &g).contains(&b"v2 after unshare".to_vec()));
    assert!(updates(&w, b, &g).contains(&b"v3 from the phone".to_vec()));
    let successes = w.devices[a]
        .pushes
        .iter()
        .filter(|(_, p)| {
            matches!(p, AppPush::ShareSuccess { address, recipient } if *address == g && *recipient == bob)
        })
        .count();
    assert_eq!(successes, 2);
}

/// A recipient offline through two rotations reads the current state when
/// it returns (the server keeps only the current frame).
#[test]
fn an_offline_recipient_catches_up_after_missed_rotations() {
    let Cast {
        mut w,
        a,
        b,
        c,
        bob,
        carol,
        ..
    } = cast(22);
    let g = shared_with_both(&mut w, a, bob, carol);
    object(w.call(c, AppRequest::Get(g)));
    w.devices[c].offline = true;
    w.disconnect(c);
    unshare(&mut w, a, g, bob).expect("unshare");
    update(&mut w, a, g, b"v2");
    share(&mut w, a, g, bob);
    w.settle(100_000);
    unshare(&mut w, a, g, bob).expect("unshare again");
    update(&mut w, a, g, b"v3");
    w.settle(100_000);
    w.devices[c].offline = false;
    w.connect(c);
    w.settle(100_000);
    assert_eq!(w.engine(c).peek(&g).expect("c").state, b"v3");
    assert_eq!(
        updates(&w, c, &g).last().map(Vec::as_slice),
        Some(&b"v3"[..])
    );
    // Bob read v2 (shared again then), never v3.
    assert_eq!(w.engine(b).peek(&g).expect("b").state, b"v2");
}

/// The owner's second device queued edits offline under the old master;
/// after the unshare it publishes them under the new one: the unshared
/// recipient never reads them, the remaining one does.
#[test]
fn an_offline_owner_device_publishes_its_queued_edits_under_the_new_master() {
    let Cast {
        mut w,
        a,
        a2,
        b,
        c,
        bob,
        carol,
    } = cast(23);
    let g = shared_with_both(&mut w, a, bob, carol);
    object(w.call(a2, AppRequest::Get(g)));
    w.devices[a2].offline = true;
    w.disconnect(a2);
    update(&mut w, a2, g, b"phone edit 1");
    update(&mut w, a2, g, b"phone edit 2");
    unshare(&mut w, a, g, bob).expect("unshare");
    w.settle(100_000);
    w.devices[a2].offline = false;
    w.connect(a2);
    w.settle(100_000);
    assert_eq!(w.engine(a).peek(&g).expect("a").state, b"phone edit 2");
    assert_eq!(w.engine(c).peek(&g).expect("c").state, b"phone edit 2");
    assert_eq!(w.engine(b).peek(&g).expect("b").state, b"v1");
    assert!(!updates(&w, b, &g)
        .iter()
        .any(|s| s.starts_with(b"phone edit")));
    assert_eq!(shared_with(&mut w, a2, g), vec![carol]);
}

/// An update on one device racing an unshare on the other: whichever frame
/// the server orders first, both devices converge, the remaining recipient
/// reads the final state, and the unshared one reads nothing published after
/// the rotation.
#[test]
fn an_update_racing_an_unshare_on_another_device_converges() {
    for k in 0..12 {
        let Cast {
            mut w,
            a,
            a2,
            b,
            c,
            bob,
            carol,
        } = cast(30 + k);
        let g = ghid(w.call(a, new_obj(true, b"v1")));
        share(&mut w, a, g, bob);
        share(&mut w, a, g, carol);
        w.settle(100_000);
        object(w.call(a2, AppRequest::Get(g)));
        w.request(
            a,
            AppRequest::Unshare {
                address: g,
                recipient: bob,
            },
        );
        for _ in 0..k {
            w.step();
        }
        w.request(
            a2,
            AppRequest::Update {
                address: g,
                state: b"racing".to_vec(),
            },
        );
        w.settle(1_000_000);
        let sa = w.engine(a).peek(&g).expect("a").state;
        assert_eq!(sa, w.engine(a2).peek(&g).expect("a2").state, "k={k}");
        assert_eq!(sa, b"racing", "k={k}");
        assert_eq!(w.engine(c).peek(&g).expect("c").state, b"racing", "k={k}");
        assert_eq!(shared_with(&mut w, a2, g), vec![carol], "k={k}");
        // After the rotation everything is unreadable to Bob.
        update(&mut w, a, g, b"after");
        w.settle(100_000);
        assert_eq!(w.engine(c).peek(&g).expect("c").state, b"after", "k={k}");
        assert_ne!(w.engine(b).peek(&g).expect("b").state, b"after", "k={k}");
    }
}

/// Two devices of the owner unshare different recipients at once: the
/// merged list is the remaining one, and the final master reaches only it.
#[test]
fn concurrent_unshares_on_two_devices_both_hold() {
    let mut w = World::new(24);
    let (a, alice, _) = w.new_agent("alice", b"a");
    let (b, _, bob) = w.new_agent("bob", b"b");
    let (c, _, carol) = w.new_agent("carol", b"c");
    let (d, _, dave) = w.new_agent("dave", b"d");
    w.settle(100_000);
    let a2 = w.login_device("alice-phone", alice, b"a");
    w.settle(100_000);
    for x in [a, a2] {
        w.call(x, AppRequest::SetToken(AppToken::NULL))
            .expect("token");
    }
    let g = ghid(w.call(a, new_obj(true, b"v1")));
    for r in [bob, carol, dave] {
        share(&mut w, a, g, r);
    }
    w.settle(100_000);
    object(w.call(a2, AppRequest::Get(g)));
    w.request(
        a,
        AppRequest::Unshare {
            address: g,
            recipient: bob,
        },
    );
    w.request(
        a2,
        AppRequest::Unshare {
            address: g,
            recipient: carol,
        },
    );
    w.settle(1_000_000);
    assert_eq!(shared_with(&mut w, a, g), vec![dave]);
    assert_eq!(shared_with(&mut w, a2, g), vec![dave]);
    update(&mut w, a, g, b"for dave");
    w.settle(100_000);
    assert_eq!(w.engine(d).peek(&g).expect("d").state, b"for dave");
    for x in [b, c] {
        assert_ne!(w.engine(x).peek(&g).expect("x").state, b"for dave");
    }
}

#[test]
fn unshare_refuses_what_it_cannot_do() {
    let Cast {
        mut w,
        a,
        b,
        bob,
        carol,
        ..
    } = cast(25);
    let stat = ghid(w.call(a, new_obj(false, b"static")));
    share(&mut w, a, stat, bob);
    w.settle(100_000);
    assert!(matches!(
        unshare(&mut w, a, stat, bob),
        Err(Error::NotAllowed(m)) if m.contains("static")
    ));
    let g = ghid(w.call(a, new_obj(true, b"v1")));
    share(&mut w, a, g, bob);
    w.settle(100_000);
    // Not shared with Carol; Bob does not own it.
    assert!(matches!(
        unshare(&mut w, a, g, carol),
        Err(Error::NotAllowed(_))
    ));
    assert!(matches!(
        unshare(&mut w, b, g, bob),
        Err(Error::NotAllowed(_))
    ));
    // The last recipient: allowed, and twice is fine.
    assert_eq!(unshare(&mut w, a, g, bob), Ok(AppReply::Done));
    assert_eq!(unshare(&mut w, a, g, bob), Ok(AppReply::Done));
    w.settle(100_000);
    assert_eq!(shared_with(&mut w, a, g), Vec::<Ghid>::new());
    update(&mut w, a, g, b"mine alone");
    w.settle(100_000);
    assert_eq!(w.engine(b).peek(&g).expect("b").state, b"v1");
}

/// Deleting a static object reaches every holder: the recipient online is
/// pushed `XO`; a recipient offline at the time learns it when it returns;
/// so does the recipient's second device.
#[test]
fn deleting_a_static_object_reaches_every_recipient() {
    let mut w = World::new(26);
    let (a, _, _) = w.new_agent("alice", b"a");
    let (b, _, bob) = w.new_agent("bob", b"b");
    let (c, carol_user, carol) = w.new_agent("carol", b"c");
    w.settle(100_000);
    let c2 = w.login_device("carol-phone", carol_user, b"c");
    w.settle(100_000);
    for x in [b, c, c2] {
        w.call(x, AppRequest::RegisterApi(api())).expect("register");
    }
    w.call(a, AppRequest::SetToken(AppToken::NULL))
        .expect("token");
    let g = ghid(w.call(a, new_obj(false, b"a static text")));
    share(&mut w, a, g, bob);
    share(&mut w, a, g, carol);
    w.settle(100_000);
    for x in [b, c, c2] {
        assert_eq!(
            object(w.call(x, AppRequest::Get(g))).state,
            b"a static text"
        );
    }
    w.devices[c].offline = true;
    w.disconnect(c);
    w.devices[c2].offline = true;
    w.disconnect(c2);
    w.call(a, AppRequest::Delete(g)).expect("delete");
    w.settle(100_000);
    assert!(w.devices[b]
        .pushes
        .iter()
        .any(|(_, p)| *p == AppPush::Delete(g)));
    assert_eq!(w.call(b, AppRequest::Get(g)), Err(Error::UnknownObject));
    for x in [c, c2] {
        assert!(!w.devices[x]
            .pushes
            .iter()
            .any(|(_, p)| *p == AppPush::Delete(g)));
        w.devices[x].offline = false;
        w.connect(x);
        w.settle(100_000);
        assert!(
            w.devices[x]
                .pushes
                .iter()
                .any(|(_, p)| *p == AppPush::Delete(g)),
            "{} was not told",
            w.devices[x].name
        );
        assert_eq!(w.call(x, AppRequest::Get(g)), Err(Error::UnknownObject));
    }
}

/// Bob re-shared Alice's object with Dave; Alice unshares Bob: Dave loses
/// access at that rotation too (Alice never knew of him), and keeps it if
/// Alice shares with him directly.
#[test]
fn a_reshare_by_a_recipient_ends_at_the_next_rotation() {
    let mut w = World::new(27);
    let (a, _, _) = w.new_agent("alice", b"a");
    let (b, _, bob) = w.new_agent("bob", b"b");
    let (d, _, dave) = w.new_agent("dave", b"d");
    w.settle(100_000);
    for x in [b, d] {
        w.call(x, AppRequest::RegisterApi(api())).expect("register");
    }
    w.call(a, AppRequest::SetToken(AppToken::NULL))
        .expect("token");
    let g = ghid(w.call(a, new_obj(true, b"v1")));
    share(&mut w, a, g, bob);
    w.settle(100_000);
    share(&mut w, b, g, dave);
    w.settle(100_000);
    assert_eq!(object(w.call(d, AppRequest::Get(g))).state, b"v1");
    // Bob lists whom he shared with; Alice does not see Dave.
    assert_eq!(shared_with(&mut w, b, g), vec![dave]);
    assert_eq!(shared_with(&mut w, a, g), vec![bob]);
    unshare(&mut w, a, g, bob).expect("unshare");
    update(&mut w, a, g, b"v2");
    w.settle(100_000);
    assert_eq!(w.engine(d).peek(&g).expect("d").state, b"v1");
    assert_eq!(w.engine(b).peek(&g).expect("b").state, b"v1");
    // Shared with Dave directly: he reads on.
    share(&mut w, a, g, dave);
    update(&mut w, a, g, b"v3");
    w.settle(100_000);
    assert_eq!(w.engine(d).peek(&g).expect("d").state, b"v3");
    assert_eq!(w.engine(b).peek(&g).expect("b").state, b"v1");
}

/// A link object is an object like any other: unsharing it rotates its own
/// key and leaves the object it points to as shared as it was.
#[test]
fn unsharing_a_link_object_leaves_its_target_shared() {
    let Cast {
        mut w, a, b, bob, ..
    } = cast(28);
    let target = ghid(w.call(a, new_obj(true, b"target v1")));
    let link = ghid(w.call(
        a,
        AppRequest::New(NewObject {
            api_id: api(),
            private: false,
            dynamic: true,
            legroom: 0,
            is_link: true,
            state: target.to_bytes().to_vec(),
        }),
    ));
    share(&mut w, a, target, bob);
    share(&mut w, a, link, bob);
    w.settle(100_000);
    assert!(object(w.call(b, AppRequest::Get(link))).is_link);
    unshare(&mut w, a, link, bob).expect("unshare the link");
    let other = ghid(w.call(a, new_obj(true, b"elsewhere")));
    update(&mut w, a, link, &other.to_bytes());
    update(&mut w, a, target, b"target v2");
    w.settle(100_000);
    // Bob does not learn where the link points now; the target reaches him.
    assert_eq!(
        w.engine(b).peek(&link).expect("link").state,
        target.to_bytes()
    );
    assert_eq!(
        w.engine(b).peek(&target).expect("target").state,
        b"target v2"
    );
    assert_eq!(shared_with(&mut w, a, target), vec![bob]);
}
