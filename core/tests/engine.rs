//! The engine's capabilities, one test each, over the in-process world
//! (engines + core's persistence node, perfect network unless a test says).

#[path = "support/calls.rs"]
mod calls;
mod sim;

use calls::{api, ghid, new_obj, object, updates};
use hypergolix_core::engine::{AppPush, AppReply, AppRequest, AppToken, Engine, Input, NewObject};
use hypergolix_core::golix::Ghid;
use hypergolix_core::Error;
use sim::{World, APP};

#[test]
fn account_objects_and_a_second_device() {
    let mut w = World::new(1);
    let (a1, user, id) = w.new_agent("alice-laptop", b"pw");
    w.settle(100_000);
    assert!(w.engine(a1).is_synced());
    assert_eq!(w.call(a1, AppRequest::Whoami), Ok(AppReply::Ghid(id)));
    let dynamic = ghid(w.call(a1, new_obj(true, b"v1")));
    let stat = ghid(w.call(a1, new_obj(false, b"frozen")));
    assert!(w.engine(a1).is_synced());

    // The same agent on a second device: user id + password.
    let a2 = w.login_device("alice-phone", user, b"pw");
    w.settle(100_000);
    assert_eq!(w.devices[a2].ready, Some((user, id)));
    assert_eq!(w.engine(a2).loading(), 0, "the account state is read");
    assert_eq!(object(w.call(a2, AppRequest::Get(dynamic))).state, b"v1");
    let s = object(w.call(a2, AppRequest::Get(stat)));
    assert_eq!(
        (s.state.as_slice(), s.dynamic, s.owned),
        (&b"frozen"[..], false, true)
    );

    // Updates flow both ways between the devices.
    assert_eq!(
        w.call(
            a1,
            AppRequest::Update {
                address: dynamic,
                state: b"v2".to_vec()
            }
        ),
        Ok(AppReply::Done)
    );
    assert_eq!(updates(&w, a2, &dynamic), vec![b"v2".to_vec()]);
    w.call(
        a2,
        AppRequest::Update {
            address: dynamic,
            state: b"v3".to_vec(),
        },
    )
    .expect("update from the second device");
    assert_eq!(updates(&w, a1, &dynamic), vec![b"v3".to_vec()]);

    // An object created on the second device reaches the first through the account state.
    let from_phone = ghid(w.call(a2, new_obj(true, b"phone")));
    assert_eq!(
        object(w.call(a1, AppRequest::Get(from_phone))).state,
        b"phone"
    );
}

#[test]
fn an_apps_legroom_is_kept_and_zero_means_the_default() {
    let mut w = World::new(1);
    let (a1, _, _) = w.new_agent("alice", b"pw");
    w.settle(100_000);
    let with = |legroom, dynamic| {
        AppRequest::New(NewObject {
            api_id: api(),
            private: false,
            dynamic,
            legroom,
            is_link: false,
            state: b"s".to_vec(),
        })
    };
    let three = ghid(w.call(a1, with(3, true)));
    let default = ghid(w.call(a1, with(0, true)));
    let stat = ghid(w.call(a1, with(3, false)));
    assert_eq!(object(w.call(a1, AppRequest::Get(three))).legroom, 3);
    assert_eq!(
        object(w.call(a1, AppRequest::Get(default))).legroom,
        hypergolix_core::engine::DEFAULT_LEGROOM
    );
    assert_eq!(object(w.call(a1, AppRequest::Get(stat))).legroom, 0);
}

#[test]
fn wrong_password_changes_nothing_and_password_change_works() {
    let mut w = World::new(2);
    let (_a1, user, _) = w.new_agent("alice", b"right");
    w.settle(100_000);
    let bad = w.login_device("thief", user, b"wrong");
    w.settle(100_000);
    assert_eq!(w.devices[bad].login_failed, Some(Error::WrongPassword));
    assert!(w.devices[bad].ready.is_none());
    assert!(
        w.devices[bad].store.is_empty(),
        "a failed login writes nothing"
    );

    let a1 = 0;
    let acts = w.devices[a1]
        .engine
        .as_mut()
        .expect("engine")
        .change_password(b"right", b"new")
        .expect("change password");
    w.apply(a1, acts);
    w.settle(100_000);
    let old = w.login_device("old-pw", user, b"right");
    w.settle(100_000);
    assert_eq!(w.devices[old].login_failed, Some(Error::WrongPassword));
    let new = w.login_device("new-pw", user, b"new");
    w.settle(100_000);
    assert!(w.devices[new].ready.is_some());
}

/// An update made at any moment of the recipient's accepting a share
/// reaches it: for every interleaving (the update sent after k messages of
/// the share were delivered), the recipient ends with the newest state.
/// Alice on two devices (`a`, `a2`, both with the null token) and Bob
/// (`b`, identity `bob`, registered for [`api`]), all settled.
fn author_with_two_devices(seed: u64) -> (World, usize, usize, usize, Ghid) {
    let mut w = World::new(seed);
    let (a, alice, _) = w.new_agent("alice", b"a");
    let (b, _, bob) = w.new_agent("bob", b"b");
    w.settle(100_000);
    let a2 = w.login_device("alice-phone", alice, b"a");
    w.settle(100_000);
    w.call(a2, AppRequest::SetToken(AppToken::NULL))
        .expect("token");
    w.call(b, AppRequest::RegisterApi(api())).expect("register");
    w.call(a, AppRequest::SetToken(AppToken::NULL))
        .expect("token");
    (w, a, a2, b, bob)
}

/// The update comes from the author's other device, whose outbox is not
/// ordered behind the share.
#[test]
fn an_update_racing_a_share_is_never_lost() {
    let (mut w, a, a2, b, bob) = author_with_two_devices(11);
    let mut k = 0;
    loop {
        let g = ghid(w.call(a, new_obj(true, b"first")));
        w.settle(100_000);
        w.request(
            a,
            AppRequest::Share {
                address: g,
                recipient: bob,
            },
        );
        let mut idle = false;
        for _ in 0..k {
            if !w.step() {
                idle = true;
                break;
            }
        }
        w.request(
            a2,
            AppRequest::Update {
                address: g,
                state: b"second".to_vec(),
            },
        );
        w.settle(1_000_000);
        assert_eq!(
            object(w.call(b, AppRequest::Get(g))).state,
            b"second",
            "the update sent after {k} messages of the share"
        );
        if idle {
            break;
        }
        k += 1;
    }
    assert!(k > 10, "the share took {k} messages");
}

#[test]
fn sharing_between_agents_with_acks_and_reshare() {
    let mut w = World::new(4);
    let (a, _, _) = w.new_agent("alice", b"a");
    let (b, _, bob) = w.new_agent("bob", b"b");
    let (c, _, carol) = w.new_agent("carol", b"c");
    w.settle(100_000);
    w.call(b, AppRequest::RegisterApi(api())).expect("register");
    w.call(a, AppRequest::SetToken(AppToken::NULL))
        .expect("token");
    let g = ghid(w.call(a, new_obj(true, b"hello")));
    assert_eq!(
        w.call(
            a,
            AppRequest::Share {
                address: g,
                recipient: bob
            }
        ),
        Ok(AppReply::Done)
    );
    // Bob's app is told, can read it, and Alice's app hears the ack.
    assert!(w.devices[b]
        .pushes
        .iter()
        .any(|(s, p)| *s == APP && matches!(p, AppPush::Share { address, .. } if *address == g)));
    let got = object(w.call(b, AppRequest::Get(g)));
    assert_eq!((got.state.as_slice(), got.owned), (&b"hello"[..], false));
    assert!(w.devices[a].pushes.iter().any(|(_, p)| matches!(
        p,
        AppPush::ShareSuccess { address, recipient } if *address == g && *recipient == bob
    )));
    // Updates reach the recipient; the recipient cannot update.
    w.call(
        a,
        AppRequest::Update {
            address: g,
            state: b"again".to_vec(),
        },
    )
    .expect("update");
    assert_eq!(updates(&w, b, &g), vec![b"again".to_vec()]);
    assert!(matches!(
        w.call(
            b,
            AppRequest::Update {
                address: g,
                state: b"no".to_vec()
            }
        ),
        Err(Error::NotAllowed(_))
    ));
    // Bob re-shares to Carol, whose app registers later: the share waits for it.
    w.call(
        b,
        AppRequest::Share {
            address: g,
            recipient: carol,
        },
    )
    .expect("reshare");
    assert!(w.devices[c].pushes.is_empty());
    w.call(c, AppRequest::RegisterApi(api())).expect("register");
    assert!(w.devices[c].pushes.iter().any(|(_, p)| matches!(
        p,
        AppPush::Share { address, .. } if *address == g
    )));
    assert_eq!(object(w.call(c, AppRequest::Get(g))).state, b"again");
    w.call(
        a,
        AppRequest::Update {
            address: g,
            state: b"all".to_vec(),
        },
    )
    .expect("update");
    assert_eq!(updates(&w, c, &g), vec![b"all".to_vec()]);

    // Delete: every holder is told (0.1.0 never told recipients).
    w.call(a, AppRequest::Delete(g)).expect("delete");
    for d in [b, c] {
        assert!(
            w.devices[d]
                .pushes
                .iter()
                .any(|(_, p)| *p == AppPush::Delete(g)),
            "{} was not told of the delete",
            w.devices[d].name
        );
        assert_eq!(w.call(d, AppRequest::Get(g)), Err(Error::UnknownObject));
    }
}

#[test]
fn private_objects_stay_with_their_token() {
    let mut w = World::new(5);
    let (a, _, _) = w.new_agent("alice", b"a");
    w.settle(100_000);
    let t = match w.call(a, AppRequest::SetToken(AppToken::NULL)) {
        Ok(AppReply::Token(t)) => t,
        other => panic!("{other:?}"),
    };
    let p = ghid(w.call(
        a,
        AppRequest::New(NewObject {
            api_id: api(),
            private: true,
            dynamic: true,
            legroom: 0,
            is_link: false,
            state: b"secret".to_vec(),
        }),
    ));
    // Another app session with another token sees nothing.
    w.input(a, Input::AppConnected(2));
    let r = 900;
    w.input(
        a,
        Input::App {
            session: 2,
            req: r,
            request: AppRequest::SetToken(AppToken::NULL),
        },
    );
    w.input(
        a,
        Input::App {
            session: 2,
            req: r + 1,
            request: AppRequest::Get(p),
        },
    );
    assert_eq!(w.reply(a, r + 1), Some(&Err(Error::UnknownObject)));
    // The same token cannot be used twice at once, and works after a reconnect.
    w.input(
        a,
        Input::App {
            session: 2,
            req: r + 2,
            request: AppRequest::SetToken(t),
        },
    );
    assert!(matches!(w.reply(a, r + 2), Some(Err(Error::NotAllowed(_)))));
    w.input(a, Input::AppDisconnected(APP));
    w.input(
        a,
        Input::App {
            session: 2,
            req: r + 3,
            request: AppRequest::SetToken(t),
        },
    );
    assert_eq!(w.reply(a, r + 3), Some(&Ok(AppReply::Token(t))));
    w.input(
        a,
        Input::App {
            session: 2,
            req: r + 4,
            request: AppRequest::Get(p),
        },
    );
    assert!(matches!(w.reply(a, r + 4), Some(Ok(AppReply::Object(_)))));
    // Private objects cannot be shared.
    w.input(
        a,
        Input::App {
            session: 2,
            req: r + 5,
            request: AppRequest::Share {
                address: p,
                recipient: p,
            },
        },
    );
    assert!(matches!(w.reply(a, r + 5), Some(Err(Error::NotAllowed(_)))));
}

#[test]
fn freeze_hold_discard_startup_and_links() {
    let mut w = World::new(6);
    let (a, _, _) = w.new_agent("alice", b"a");
    w.settle(100_000);
    w.call(a, AppRequest::SetToken(AppToken::NULL))
        .expect("token");
    let g = ghid(w.call(a, new_obj(true, b"live")));
    let f = ghid(w.call(a, AppRequest::Freeze(g)));
    let frozen = object(w.call(a, AppRequest::Get(f)));
    assert_eq!(
        (frozen.state.as_slice(), frozen.dynamic),
        (&b"live"[..], false)
    );
    assert!(matches!(
        w.call(
            a,
            AppRequest::Update {
                address: f,
                state: vec![]
            }
        ),
        Err(Error::NotAllowed(_))
    ));
    assert_eq!(w.call(a, AppRequest::Hold(g)), Ok(AppReply::Done));
    assert_eq!(w.call(a, AppRequest::Discard(g)), Ok(AppReply::Done));
    assert_eq!(
        w.call(a, AppRequest::RegisterStartup(g)),
        Ok(AppReply::Done)
    );
    assert_eq!(
        w.call(a, AppRequest::GetStartup),
        Ok(AppReply::Startup(Some(g)))
    );
    let link = ghid(w.call(
        a,
        AppRequest::New(NewObject {
            api_id: api(),
            private: false,
            dynamic: true,
            legroom: 0,
            is_link: true,
            state: g.to_bytes().to_vec(),
        }),
    ));
    let l = object(w.call(a, AppRequest::Get(link)));
    assert_eq!(l.link_address(), Some(g));
    assert!(w.engine(a).is_synced());
}

#[test]
fn an_update_publishes_two_objects() {
    let mut w = World::new(7);
    let (a, _, _) = w.new_agent("alice", b"a");
    w.settle(100_000);
    let g = ghid(w.call(a, new_obj(true, b"0")));
    let before = w.engine(a).stats();
    for i in 0..10u8 {
        w.call(
            a,
            AppRequest::Update {
                address: g,
                state: vec![i],
            },
        )
        .expect("update");
    }
    let after = w.engine(a).stats();
    assert_eq!(
        after.published - before.published,
        20,
        "GOBD + GEOC per update"
    );
    assert_eq!(after.signed - before.signed, 20);
}

#[test]
fn offline_updates_are_queued_and_concurrent_updates_converge() {
    let mut w = World::new(8);
    let (a1, user, _) = w.new_agent("laptop", b"pw");
    w.settle(100_000);
    let g = ghid(w.call(a1, new_obj(true, b"base")));
    let a2 = w.login_device("phone", user, b"pw");
    w.settle(100_000);
    object(w.call(a2, AppRequest::Get(g)));

    // Both go offline and update the same object.
    for d in [a1, a2] {
        w.devices[d].offline = true;
        w.disconnect(d);
    }
    w.call(
        a1,
        AppRequest::Update {
            address: g,
            state: b"laptop-1".to_vec(),
        },
    )
    .expect("queued");
    w.call(
        a1,
        AppRequest::Update {
            address: g,
            state: b"laptop-2".to_vec(),
        },
    )
    .expect("queued");
    w.call(
        a2,
        AppRequest::Update {
            address: g,
            state: b"phone-1".to_vec(),
        },
    )
    .expect("queued");
    // The laptop reconnects first, then the phone: the phone's update lands last.
    w.devices[a1].offline = false;
    w.connect(a1);
    w.settle(100_000);
    w.devices[a2].offline = false;
    w.connect(a2);
    w.settle(100_000);
    let s1 = w.engine(a1).peek(&g).expect("object").state;
    let s2 = w.engine(a2).peek(&g).expect("object").state;
    assert_eq!(s1, s2, "devices converge");
    assert_eq!(s1, b"phone-1");
    // The laptop's app saw the phone's update; the phone's app saw the laptop's.
    assert!(updates(&w, a1, &g).contains(&b"phone-1".to_vec()));
    assert!(updates(&w, a2, &g).contains(&b"laptop-2".to_vec()));
    assert!(w.engine(a2).stats().conflicts >= 1);
}

/// Alice's dynamic object with state "one", shared with Bob: (alice's
/// device, bob's device, the object).
fn shared_with_bob(w: &mut World) -> (usize, usize, Ghid) {
    let (a, _, _) = w.new_agent("alice", b"a");
    let (b, _, bob) = w.new_agent("bob", b"b");
    w.settle(100_000);
    let g = ghid(w.call(a, new_obj(true, b"one")));
    w.call(
        a,
        AppRequest::Share {
            address: g,
            recipient: bob,
        },
    )
    .expect("share");
    (a, b, g)
}

#[test]
fn replayed_frames_are_ignored() {
    let mut w = World::new(9);
    let (a, b, g) = shared_with_bob(&mut w);
    w.call(
        a,
        AppRequest::Update {
            address: g,
            state: b"two".to_vec(),
        },
    )
    .expect("update");
    // Capture frame "two" as the server sent it, update again, then replay it.
    let two = w.node.handle(
        999,
        hypergolix_core::wire::remote::Message::Request {
            token: 1,
            request: hypergolix_core::wire::remote::Request::Get(g),
        },
    );
    let frame = match &two[0].1 {
        hypergolix_core::wire::remote::Message::Ack { body, .. } => body.clone(),
        m => panic!("{m:?}"),
    };
    w.call(
        a,
        AppRequest::Update {
            address: g,
            state: b"three".to_vec(),
        },
    )
    .expect("update");
    let stale_before = w.engine(b).stats().stale_frames;
    w.input(
        b,
        Input::Server(hypergolix_core::wire::remote::Message::Request {
            token: 7,
            request: hypergolix_core::wire::remote::Request::Push {
                subscription: g,
                object: frame,
                container: None,
            },
        }),
    );
    w.settle(100_000);
    assert_eq!(w.engine(b).peek(&g).expect("object").state, b"three");
    assert_eq!(w.engine(b).stats().stale_frames, stale_before + 1);
}

#[test]
fn acknowledged_updates_survive_a_crash() {
    let mut w = World::new(10);
    let (a, _, _) = w.new_agent("alice", b"a");
    w.settle(100_000);
    let g = ghid(w.call(a, new_obj(true, b"0")));
    w.devices[a].offline = true;
    w.disconnect(a);
    let r = w.request(
        a,
        AppRequest::Update {
            address: g,
            state: b"acked".to_vec(),
        },
    );
    assert_eq!(w.reply(a, r), Some(&Ok(AppReply::Done)));
    w.crash(a);
    w.restart(a); // checks every acknowledged state is still there
    assert_eq!(w.engine(a).peek(&g).expect("object").state, b"acked");
    w.devices[a].offline = false;
    w.settle(100_000);
    assert!(
        w.engine(a).is_synced(),
        "the queued update was published after the restart"
    );
}

#[test]
fn engine_without_account_refuses_app_requests() {
    let mut e = Engine::new(hypergolix_core::engine::EngineConfig::new([0; 32]), [0; 32]);
    let out = e.handle(Input::App {
        session: 1,
        req: 1,
        request: AppRequest::Whoami,
    });
    assert!(out.actions().any(|a| matches!(
        a,
        hypergolix_core::engine::Action::Reply {
            result: Err(Error::NotReady(_)),
            ..
        }
    )));
}

#[test]
fn sharing_still_works_with_many_objects() {
    let mut w = World::new(11);
    let (a, _, _) = w.new_agent("alice", b"a");
    let (b, _, bob) = w.new_agent("bob", b"b");
    w.settle(100_000);
    w.call(b, AppRequest::RegisterApi(api())).expect("register");
    for i in 0..300u32 {
        w.call(a, new_obj(true, &i.to_be_bytes())).expect("create");
    }
    w.settle(10_000_000);
    let g = ghid(w.call(a, new_obj(true, b"late")));
    w.call(
        a,
        AppRequest::Share {
            address: g,
            recipient: bob,
        },
    )
    .expect("share");
    assert!(
        w.devices[b].pushes.iter().any(|(_, p)| matches!(
            p,
            AppPush::Share { address, .. } if *address == g
        )),
        "{:?}",
        w.engine(a).pending_work()
    );
    // A second device reads every object through the account pages.
    let user = w.devices[a].ready.expect("ready").0;
    let a2 = w.login_device("alice-2", user, b"a");
    w.settle(10_000_000);
    assert_eq!(
        w.engine(a2).addresses().len(),
        w.engine(a).addresses().len()
    );
    assert_eq!(object(w.call(a2, AppRequest::Get(g))).state, b"late");
}

#[test]
#[ignore = "slow in debug (about 10 s in release): scripts/test.sh runs it with --release --ignored"]
fn sharing_after_many_updates() {
    let mut w = World::new(12);
    let (a, _, _) = w.new_agent("alice", b"a");
    let (b, _, bob) = w.new_agent("bob", b"b");
    w.settle(100_000);
    w.call(b, AppRequest::RegisterApi(api())).expect("register");
    let g0 = ghid(w.call(a, new_obj(true, b"first")));
    w.call(
        a,
        AppRequest::Share {
            address: g0,
            recipient: bob,
        },
    )
    .expect("share");
    for i in 0..40_000u32 {
        w.call(
            a,
            AppRequest::Update {
                address: g0,
                state: i.to_be_bytes().to_vec(),
            },
        )
        .expect("update");
    }
    let g = ghid(w.call(a, new_obj(true, b"late")));
    w.call(
        a,
        AppRequest::Share {
            address: g,
            recipient: bob,
        },
    )
    .expect("share");
    assert!(
        w.devices[b].pushes.iter().any(|(_, p)| matches!(
            p,
            AppPush::Share { address, .. } if *address == g
        )),
        "{:?} / {:?}",
        w.engine(a).pending_work(),
        w.engine(b).pending_work()
    );
}

#[test]
fn a_share_that_cannot_be_read_is_refused_and_the_app_told() {
    let mut w = World::new(13);
    let (a, _, _) = w.new_agent("alice", b"a");
    let (b, _, bob) = w.new_agent("bob", b"b");
    w.settle(100_000);
    w.call(a, AppRequest::SetToken(AppToken::NULL))
        .expect("token");
    let g = ghid(w.call(a, new_obj(true, b"gone soon")));
    // Bob is away while Alice shares and then deletes the object.
    w.devices[b].offline = true;
    w.disconnect(b);
    w.call(
        a,
        AppRequest::Share {
            address: g,
            recipient: bob,
        },
    )
    .expect("share");
    w.call(a, AppRequest::Delete(g)).expect("delete");
    w.devices[b].offline = false;
    w.connect(b);
    w.settle(100_000);
    assert!(w.devices[a].pushes.iter().any(|(_, p)| matches!(
        p,
        AppPush::ShareFailure { address, recipient } if *address == g && *recipient == bob
    )));
    assert_eq!(w.engine(b).peek(&g), None);
}

#[test]
fn a_share_to_an_identity_the_server_lacks_says_so() {
    let mut w = World::new(14);
    let (a, _, _) = w.new_agent("alice", b"a");
    w.settle(100_000);
    let g = ghid(w.call(a, new_obj(true, b"for nobody yet")));
    // A well-formed GHID nobody has published.
    let nobody = Ghid::from_bytes(&[[1u8].as_slice(), &[0x5a; 64]].concat()).expect("ghid");
    let e = w
        .call(
            a,
            AppRequest::Share {
                address: g,
                recipient: nobody,
            },
        )
        .expect_err("refused");
    assert!(matches!(e, Error::UnknownRecipient), "{e:?}");
    // Apps see a code of its own, not the generic 0000.
    assert_eq!(e.ipc_code().to_u16(), 0x0100);
}

/// The author updates (from another device, whose outbox is not ordered
/// behind the share) after the recipient first read the shared object and
/// before its subscription reached the server: the recipient must still
/// end with the update.
#[test]
fn an_update_between_the_recipients_read_and_subscribe_arrives() {
    use hypergolix_core::wire::remote::{Message, Request};
    let (mut w, a, a2, b, bob) = author_with_two_devices(15);
    let g = ghid(w.call(a, new_obj(true, b"first")));
    w.settle(100_000);
    let from = w.server_saw.len();
    w.request(
        a,
        AppRequest::Share {
            address: g,
            recipient: bob,
        },
    );
    // Until the recipient asks for the object's frame.
    let asked = |w: &World| {
        w.server_saw[from..].iter().any(|m| {
            matches!(
                Message::decode(m),
                Ok(Message::Request { request: Request::Get(x), .. }) if x == g
            )
        })
    };
    while !asked(&w) {
        assert!(w.step(), "the recipient never asked for the object");
    }
    w.request(
        a2,
        AppRequest::Update {
            address: g,
            state: b"second".to_vec(),
        },
    );
    w.settle(1_000_000);
    assert_eq!(object(w.call(b, AppRequest::Get(g))).state, b"second");
}

#[test]
fn a_container_pushed_with_its_frame_is_read_at_once_and_a_wrong_one_is_fetched() {
    use hypergolix_core::golix::{Gobd, GolixObject};
    use hypergolix_core::wire::remote::{Message, Request};
    let mut w = World::new(12);
    let (a, b, g) = shared_with_bob(&mut w);
    w.settle(100_000);
    assert_eq!(w.engine(b).peek(&g).expect("shared").state, b"one");
    let get = |w: &mut World, x: Ghid| match &w.node.handle(
        999,
        Message::Request {
            token: 1,
            request: Request::Get(x),
        },
    )[0]
    .1
    {
        Message::Ack { body, .. } => body.clone(),
        m => panic!("{m:?}"),
    };
    // B is away while A writes; the push of each new frame is made here.
    let push_to_b = |w: &mut World, state: &[u8], container_of: Option<Ghid>| {
        w.devices[b].offline = true;
        w.disconnect(b);
        w.call(
            a,
            AppRequest::Update {
                address: g,
                state: state.to_vec(),
            },
        )
        .expect("update");
        let frame = get(w, g);
        let Ok(GolixObject::Gobd(f)) = GolixObject::parse(&frame) else {
            panic!("not a frame");
        };
        let container = get(w, container_of.unwrap_or(f.target()));
        // Back online: its catch-up requests are queued, not answered yet.
        w.devices[b].offline = false;
        w.connect(b);
        w.input(
            b,
            Input::Server(Message::Request {
                token: 7,
                request: Request::Push {
                    subscription: g,
                    object: frame,
                    container: Some(container),
                },
            }),
        );
        f
    };
    // The frame's own container: read in the same step, no `GT` waited for.
    let two: Gobd = push_to_b(&mut w, b"two", None);
    assert_eq!(w.engine(b).peek(&g).expect("object").state, b"two");
    assert_eq!(w.engine(b).stats().pushed_containers, 1);
    // Another container (a static object's): ignored, and fetched.
    let other = ghid(w.call(a, new_obj(false, b"other")));
    assert_ne!(other, two.target());
    push_to_b(&mut w, b"three", Some(other));
    assert_eq!(w.engine(b).peek(&g).expect("object").state, b"two");
    assert_eq!(w.engine(b).stats().bad_pushed_containers, 1);
    w.settle(100_000);
    assert_eq!(w.engine(b).peek(&g).expect("object").state, b"three");
}
