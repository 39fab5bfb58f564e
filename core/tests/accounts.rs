//! Keeping an account: password changes that need the current password,
//! recovery words that restore an account on a device with nothing, and
//! replacing words that leaked. Over the in-process world (engines +
//! core's persistence node).

#[path = "support/calls.rs"]
mod calls;
mod sim;

use calls::{api, ghid, new_obj, object, updates};
use hypergolix_core::engine::{AppReply, AppRequest, AppToken, SecretBytes};
use hypergolix_core::Error;
use sim::World;

fn words(w: &mut World, d: usize, password: &[u8]) -> String {
    match w.call(
        d,
        AppRequest::RecoveryWords {
            password: SecretBytes::new(password),
        },
    ) {
        Ok(AppReply::Words(s)) => String::from_utf8(s.as_bytes().to_vec()).expect("utf-8"),
        other => panic!("expected words, got {other:?}"),
    }
}

fn passwd(w: &mut World, d: usize, current: &[u8], new: &[u8]) -> Result<AppReply, Error> {
    w.call(
        d,
        AppRequest::ChangePassword {
            current: SecretBytes::new(current),
            new: SecretBytes::new(new),
        },
    )
}

/// Whether `password` opens the account now, from a fresh device.
fn opens(w: &mut World, user: hypergolix_core::golix::Ghid, password: &[u8]) -> bool {
    let d = w.login_device("check", user, password);
    w.settle(100_000);
    match (&w.devices[d].ready, &w.devices[d].login_failed) {
        (Some(_), None) => true,
        (None, Some(Error::WrongPassword)) => false,
        other => panic!("neither open nor a wrong password: {other:?}"),
    }
}

#[test]
fn a_password_change_needs_the_current_password() {
    let mut w = World::new(31);
    let (a, user, _) = w.new_agent("alice", b"first");
    w.settle(100_000);
    assert_eq!(
        passwd(&mut w, a, b"not it", b"second"),
        Err(Error::WrongPassword)
    );
    assert!(
        opens(&mut w, user, b"first"),
        "a refused change changes nothing"
    );
    assert_eq!(passwd(&mut w, a, b"first", b"second"), Ok(AppReply::Done));
    w.settle(100_000);
    assert!(!opens(&mut w, user, b"first"));
    assert!(opens(&mut w, user, b"second"));

    // A second device changes it again; the first, which never saw that
    // change, is asked with the password the account has now.
    let a2 = w.login_device("alice-phone", user, b"second");
    w.settle(100_000);
    assert_eq!(passwd(&mut w, a2, b"second", b"third"), Ok(AppReply::Done));
    w.settle(100_000);
    assert_eq!(
        passwd(&mut w, a, b"second", b"x"),
        Err(Error::WrongPassword),
        "checked against the account as it is now"
    );
    assert_eq!(passwd(&mut w, a, b"third", b"fourth"), Ok(AppReply::Done));
    w.settle(100_000);
    assert!(opens(&mut w, user, b"fourth"));
    // Both devices keep working.
    let g = ghid(w.call(a, new_obj(true, b"after")));
    assert_eq!(object(w.call(a2, AppRequest::Get(g))).state, b"after");
    assert_eq!(
        passwd(&mut w, a, b"fourth", b""),
        Err(Error::InvalidArgument("the new password is empty"))
    );
}

#[test]
fn recovery_words_restore_the_account_and_its_shares_on_a_fresh_device() {
    let mut w = World::new(32);
    let (a, user, alice) = w.new_agent("alice", b"forgotten");
    let (b, _, bob) = w.new_agent("bob", b"b");
    w.settle(100_000);
    let phrase = words(&mut w, a, b"forgotten");
    assert_eq!(phrase.split(' ').count(), 12);
    w.call(a, AppRequest::SetToken(AppToken::NULL))
        .expect("token");
    w.call(b, AppRequest::RegisterApi(api())).expect("register");
    let mine = ghid(w.call(a, new_obj(true, b"mine")));
    let shared = ghid(w.call(a, new_obj(true, b"ours")));
    assert_eq!(
        w.call(
            a,
            AppRequest::Share {
                address: shared,
                recipient: bob,
            },
        ),
        Ok(AppReply::Done)
    );
    w.settle(100_000);
    let from_bob = ghid(w.call(b, new_obj(true, b"bob's")));
    w.call(
        b,
        AppRequest::Share {
            address: from_bob,
            recipient: alice,
        },
    )
    .expect("bob shares");
    w.settle(100_000);

    // The device and the password are gone.
    w.crash(a);
    let r = w.recover_device("alice-new", user, &phrase.to_uppercase(), b"new pw");
    w.settle(100_000);
    assert_eq!(w.devices[r].ready, Some((user, alice)));
    assert_eq!(w.devices[r].login_failed, None);
    assert_eq!(w.engine(r).loading(), 0, "the account state is read");
    assert_eq!(object(w.call(r, AppRequest::Get(mine))).state, b"mine");
    assert_eq!(object(w.call(r, AppRequest::Get(shared))).state, b"ours");
    assert_eq!(object(w.call(r, AppRequest::Get(from_bob))).state, b"bob's");
    // Other agents' updates still arrive, both ways.
    assert_eq!(object(w.call(b, AppRequest::Get(shared))).state, b"ours");
    w.call(
        b,
        AppRequest::Update {
            address: shared,
            state: b"bob was here".to_vec(),
        },
    )
    .expect_err("bob cannot write alice's object");
    w.call(
        b,
        AppRequest::Update {
            address: from_bob,
            state: b"bob's v2".to_vec(),
        },
    )
    .expect("bob updates his");
    w.settle(100_000);
    assert_eq!(updates(&w, r, &from_bob), vec![b"bob's v2".to_vec()]);
    w.call(
        r,
        AppRequest::Update {
            address: shared,
            state: b"ours v2".to_vec(),
        },
    )
    .expect("alice updates hers");
    w.settle(100_000);
    assert_eq!(updates(&w, b, &shared), vec![b"ours v2".to_vec()]);
    // The new password opens it, the old one no longer does, and the
    // words still do (until replaced).
    assert!(opens(&mut w, user, b"new pw"));
    assert!(!opens(&mut w, user, b"forgotten"));
    let again = w.recover_device("alice-third", user, &phrase, b"newer");
    w.settle(100_000);
    assert_eq!(w.devices[again].ready, Some((user, alice)));
}

#[test]
fn a_recovery_completes_only_once_its_new_root_is_at_the_server() {
    use hypergolix_core::golix::Gobd;
    let mut w = World::new(33);
    let (a, user, _) = w.new_agent("alice", b"forgotten");
    w.settle(100_000);
    let phrase = words(&mut w, a, b"forgotten");
    w.settle(100_000);
    w.crash(a);
    let r = w.recover_device("alice-new", user, &phrase, b"new pw");
    // The new root from the recovered device: frame and container taken.
    let published = |w: &World| {
        w.accepted_frames.iter().any(|(_, d, f)| {
            *d == r
                && Gobd::parse(f).is_ok_and(|g| {
                    g.dynamic_ghid() == user && w.accepted_containers.contains_key(&g.target())
                })
        })
    };
    let mut open_before_published = false;
    let mut complete = false;
    while w.step() {
        if w.devices[r].ready.is_none() {
            continue;
        }
        if w.engine(r).loading() == 0 {
            assert!(
                published(&w),
                "the recovery completed before its new root was at the server"
            );
            complete = true;
            break;
        }
        open_before_published |= !published(&w);
    }
    assert!(complete, "the recovery completed");
    assert!(
        open_before_published,
        "the account opened before publishing"
    );
    w.settle(100_000);
    assert!(opens(&mut w, user, b"new pw"));
}

#[test]
fn replaced_or_foreign_words_open_nothing_and_change_nothing() {
    let mut w = World::new(33);
    let (a, user, alice) = w.new_agent("alice", b"pw");
    let (c, carol_user, _) = w.new_agent("carol", b"c");
    w.settle(100_000);
    assert_eq!(
        w.call(
            a,
            AppRequest::RecoveryWords {
                password: SecretBytes::new(b"wrong"),
            },
        ),
        Err(Error::WrongPassword)
    );
    let leaked = words(&mut w, a, b"pw");
    let fresh = words(&mut w, a, b"pw");
    assert_ne!(leaked, fresh);
    let carols = words(&mut w, c, b"c");
    w.settle(100_000);

    for (name, phrase) in [("leaked", &leaked), ("carol's", &carols)] {
        let d = w.recover_device(name, user, phrase, b"thief");
        w.settle(100_000);
        assert_eq!(
            w.devices[d].login_failed,
            Some(Error::WrongRecoveryWords),
            "{name}"
        );
        assert!(w.devices[d].ready.is_none());
        assert!(w.devices[d].store.is_empty(), "{name}: nothing written");
    }
    assert!(opens(&mut w, user, b"pw"), "the password still opens it");
    // Words of the right form that were never made: the same answer.
    let never = hypergolix_core::engine::recovery::words_of(&[0x5a; 16]).expect("words");
    let d = w.recover_device("guess", user, &never, b"thief");
    w.settle(100_000);
    assert_eq!(w.devices[d].login_failed, Some(Error::WrongRecoveryWords));

    // Not a phrase at all: refused before anything is asked of the server.
    let bad = (1..12)
        .map(|i| {
            let mut v: Vec<&str> = fresh.split(' ').collect();
            v.swap(0, i);
            v.join(" ")
        })
        .find(|b| hypergolix_core::engine::recovery::parse_words(b).is_err())
        .expect("a swap the checksum catches");
    let d = w.add_device("typo");
    let e = w.devices[d]
        .engine
        .as_mut()
        .expect("engine")
        .recover(user, &bad, b"x")
        .expect_err("a checksum failure");
    assert!(matches!(e, Error::BadRecoveryWords(_)), "{e:?}");

    let ok = w.recover_device("alice-new", user, &fresh, b"new");
    w.settle(100_000);
    assert_eq!(w.devices[ok].ready, Some((user, alice)));
    let _ = carol_user;
}

#[test]
fn words_made_with_the_account_open_it() {
    let mut w = World::new(34);
    let d = w.add_device("alice");
    let (step, phrase) = w.devices[d]
        .engine
        .as_mut()
        .expect("engine")
        .create_account_with_words(b"pw")
        .expect("create");
    w.apply(d, step);
    w.connect(d);
    let (user, alice) = w.devices[d].ready.expect("ready");
    let g = ghid(w.call(d, new_obj(true, b"first")));
    w.settle(100_000);
    let r = w.recover_device("alice-new", user, &phrase, b"new");
    w.settle(100_000);
    assert_eq!(w.devices[r].ready, Some((user, alice)));
    assert_eq!(object(w.call(r, AppRequest::Get(g))).state, b"first");
    assert!(opens(&mut w, user, b"new"));
    // The root named them from the start: new words replace them.
    let _ = words(&mut w, d, b"new");
    w.settle(100_000);
    let old = w.recover_device("with-the-first", user, &phrase, b"x");
    w.settle(100_000);
    assert_eq!(w.devices[old].login_failed, Some(Error::WrongRecoveryWords));
}

/// An embedded store's objects move to a new store through the rules (an
/// export's import): everything but replay protection for debound objects
/// arrives, and the account opens from the new store alone.
#[test]
fn a_stores_objects_move_to_a_new_store() {
    use hypergolix_core::persist::transfer::{republish, stored_objects};
    use hypergolix_core::persist::{MemoryStore, Node};
    let mut w = World::new(35);
    let (a, user, alice) = w.new_agent("alice", b"pw");
    let kept = ghid(w.call(a, new_obj(true, b"kept")));
    let frozen = ghid(w.call(a, AppRequest::Freeze(kept)));
    let gone = ghid(w.call(a, new_obj(true, b"gone")));
    w.call(a, AppRequest::Delete(gone)).expect("delete");
    let _ = words(&mut w, a, b"pw");
    w.settle(100_000);
    let before = stored_objects(w.node.backend()).expect("dump");
    let mut fresh = Node::new(MemoryStore::default());
    let r = republish(&mut fresh, 1, before.clone());
    assert_eq!(r.malformed, 0);
    let mut after = stored_objects(fresh.backend()).expect("dump");
    let mut before = before;
    before.sort();
    after.sort();
    // Only debindings whose target is gone cannot come back.
    let lost: Vec<_> = before.iter().filter(|o| !after.contains(o)).collect();
    assert_eq!(lost.len(), r.refused, "{r:?}");
    assert!(lost.iter().all(|o| matches!(
        hypergolix_core::golix::GolixObject::parse(o),
        Ok(hypergolix_core::golix::GolixObject::Gdxx(_))
    )));
    // The account opens from the new store alone.
    w.node = fresh;
    let d = w.login_device("alice-again", user, b"pw");
    w.settle(100_000);
    assert_eq!(w.devices[d].ready, Some((user, alice)));
    assert_eq!(object(w.call(d, AppRequest::Get(kept))).state, b"kept");
    assert_eq!(object(w.call(d, AppRequest::Get(frozen))).state, b"kept");
}

/// A root change asked for while another (or a new account's first root
/// frames) is still on its way waits for it and is built on it.
#[test]
fn root_changes_asked_together_apply_in_turn() {
    let mut w = World::new(36);
    let (a, user, _) = w.new_agent("alice", b"one");
    // Right away: the account's first frames are not acknowledged yet.
    let first = w.request(
        a,
        AppRequest::ChangePassword {
            current: SecretBytes::new(b"one"),
            new: SecretBytes::new(b"two"),
        },
    );
    let second = w.request(
        a,
        AppRequest::ChangePassword {
            current: SecretBytes::new(b"two"),
            new: SecretBytes::new(b"three"),
        },
    );
    let words = w.request(
        a,
        AppRequest::RecoveryWords {
            password: SecretBytes::new(b"three"),
        },
    );
    w.settle(1_000_000);
    assert_eq!(w.reply(a, first), Some(&Ok(AppReply::Done)));
    assert_eq!(w.reply(a, second), Some(&Ok(AppReply::Done)));
    assert!(matches!(w.reply(a, words), Some(Ok(AppReply::Words(_)))));
    assert!(opens(&mut w, user, b"three"));
    assert!(!opens(&mut w, user, b"two"));
}

/// Two devices change the password at the same moment: neither waits
/// forever; the one whose frame lost is told, and the account opens with
/// the winner's password, which the loser can then change.
#[test]
fn password_changes_on_two_devices_at_once_never_hang() {
    let mut raced = 0;
    for seed in 40..46 {
        let mut w = World::new(seed);
        let (a, user, _) = w.new_agent("alice", b"one");
        w.settle(100_000);
        let b = w.login_device("alice-phone", user, b"one");
        w.settle(100_000);
        let change = |current: &[u8], new: &[u8]| AppRequest::ChangePassword {
            current: SecretBytes::new(current),
            new: SecretBytes::new(new),
        };
        let ra = w.request(a, change(b"one", b"from a"));
        let rb = w.request(b, change(b"one", b"from b"));
        w.settle(1_000_000);
        let ok = |r: Option<&Result<AppReply, Error>>| match r {
            Some(Ok(AppReply::Done)) => true,
            Some(Err(Error::NotAllowed(_) | Error::WrongPassword)) => false,
            other => panic!("seed {seed}: {other:?}"),
        };
        let (a_won, b_won) = (ok(w.reply(a, ra)), ok(w.reply(b, rb)));
        assert!(a_won || b_won, "seed {seed}: one of them took");
        raced += usize::from(a_won != b_won);
        let (a_opens, b_opens) = (
            opens(&mut w, user, b"from a"),
            opens(&mut w, user, b"from b"),
        );
        assert!(
            a_opens != b_opens,
            "seed {seed}: exactly one password opens it"
        );
        let now: &[u8] = if a_opens { b"from a" } else { b"from b" };
        // Either device changes it again with the password it has now.
        for d in [a, b] {
            let r = w.call(d, change(now, b"after"));
            assert_eq!(r, Ok(AppReply::Done), "seed {seed}");
            w.call(d, change(b"after", now)).expect("back");
        }
        assert!(opens(&mut w, user, now), "seed {seed}");
    }
    assert!(raced > 0, "no seed made the two changes race");
}
