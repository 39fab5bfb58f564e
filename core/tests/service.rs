//! The local service core driven by IPC bytes, as the 0.1.0 link sends
//! them: two agents' services and one persistence node, in one process.

#[path = "support/service_net.rs"]
mod service_net;

use hypergolix_core::engine::{ApiId, AppToken, Engine, EngineConfig, KdfParams, Step};
use hypergolix_core::service::{Output, Policy, Service, ServiceInput};
use hypergolix_core::wire::ipc::{GhidDialect, IpcErrorCode, IpcMessage, IpcRequest};
use service_net::{new_dynamic, update, Net};

fn net(n: u8) -> Net<Service> {
    let mut svcs = Vec::new();
    let mut accounts = Vec::new();
    for i in 0..n {
        let mut cfg = EngineConfig::new([i + 1; 32]);
        cfg.kdf = KdfParams::INSECURE_TEST;
        let mut s = Service::new(Engine::new(cfg, [i + 9; 32]));
        accounts.push(s.create_account(b"pw").expect("account"));
        svcs.push(s);
    }
    Net::new(svcs, accounts)
}

#[test]
fn the_0_1_0_scenario_over_ipc_bytes() {
    let mut net = net(2);
    let (a, b) = (0, 1);
    let bob = net.call_ghid(b, IpcRequest::Whoami);
    let tok = net.call(a, IpcRequest::SetToken(AppToken::NULL));
    assert!(matches!(&tok, IpcMessage::Ack { body, .. } if body.len() == 16));
    let api = ApiId([3; 65]);
    assert!(matches!(
        net.call(b, IpcRequest::RegisterApi(api)),
        IpcMessage::Ack { body, .. } if body == [1]
    ));
    let g = net.call_ghid(a, new_dynamic(api, b"hello"));
    assert!(matches!(
        net.call(a, IpcRequest::ShareObject { address: g, recipient: bob }),
        IpcMessage::Ack { body, .. } if body == [1]
    ));
    // Bob's link was pushed the share; Alice's the success.
    assert!(net.inbox[b].iter().any(|m| matches!(
        m,
        IpcMessage::Request { request: IpcRequest::PushShare { address, api_id, .. }, .. }
            if *address == g && *api_id == api
    )));
    assert!(net.inbox[a].iter().any(|m| matches!(
        m,
        IpcMessage::Request { request: IpcRequest::ShareSuccess { address, recipient }, .. }
            if *address == g && *recipient == bob
    )));
    assert_eq!(net.state_of(b, g), b"hello");
    // An update reaches Bob's link as an !O push.
    assert!(matches!(
        net.call(a, update(g, b"again")),
        IpcMessage::Ack { .. }
    ));
    assert!(net.was_pushed(b, g, b"again"));
    // Delete reaches Bob's link as XO; then the object is 0008 for him.
    assert!(matches!(
        net.call(a, IpcRequest::DeleteObject(g)),
        IpcMessage::Ack { .. }
    ));
    assert!(net.inbox[b].iter().any(|m| matches!(
        m,
        IpcMessage::Request { request: IpcRequest::PushDelete(x), .. } if *x == g
    )));
    let nk = net.call(b, IpcRequest::GetObject(g));
    assert!(matches!(
        nk,
        IpcMessage::Nak {
            code: Some(IpcErrorCode::DoesNotExist),
            ..
        }
    ));
}

#[test]
fn garbage_from_an_app_is_answered_or_dropped_never_fatal() {
    let mut net = net(1);
    // Unknown code: NK 0000 b'ZZ'.
    net.raw(0, vec![0, 0, b'Z', b'Z', 0, 7]);
    assert!(matches!(
        net.answer(0, 7),
        Some(IpcMessage::Nak { code: Some(IpcErrorCode::Exception), message, .. }) if message == "b'ZZ'"
    ));
    // A known code with a bad body: NK 0001.
    net.raw(0, vec![0, 0, b'>', b'O', 0, 8, 1, 2, 3]);
    assert!(matches!(
        net.answer(0, 8),
        Some(IpcMessage::Nak {
            code: Some(IpcErrorCode::MalformedGolixPrimitive),
            ..
        })
    ));
    // Another version: dropped without an answer, as 0.1.0 does.
    net.raw(0, vec![0, 1, b'?', b'I', 0, 9]);
    assert!(net.answer(0, 9).is_none());
    // A service-only code from a link is unknown there, as in 0.1.0: NK 0000.
    net.raw(0, vec![0, 0, b'^', b'S', 0, 10]);
    assert!(matches!(
        net.answer(0, 10),
        Some(IpcMessage::Nak {
            code: Some(IpcErrorCode::Exception),
            ..
        })
    ));
    // Still working.
    assert!(matches!(
        net.call(0, IpcRequest::Whoami),
        IpcMessage::Ack { .. }
    ));
    // Oversized messages close the connection.
    net.svcs[0].set_max_app_message(100);
    net.raw(0, vec![0; 200]);
    assert!(net.closed[0].is_some());
}

/// A new device's service, and a pump that carries its outputs to the
/// node of `net` (as connection 99) and feeds the answers back.
struct Device {
    svc: Service,
    said: Vec<Output>,
}

impl Device {
    fn new() -> Self {
        let mut cfg = EngineConfig::new([77; 32]);
        cfg.kdf = KdfParams::INSECURE_TEST;
        Self {
            svc: Service::new(Engine::new(cfg, [78; 32])),
            said: Vec::new(),
        }
    }

    /// Carries out `step` and everything it leads to, until nothing is
    /// left or (with `until_ready`) the account is open.
    fn pump(&mut self, net: &mut Net<Service>, step: Step<Output>, until_ready: bool) {
        let mut queue = std::collections::VecDeque::from([step]);
        while let Some(step) = queue.pop_front() {
            for o in step.early.into_iter().chain(step.then) {
                match o {
                    Output::ToServer(b) => {
                        for (c, reply) in net.node.handle_bytes(99, &b) {
                            if c == 99 {
                                let s = self.svc.handle(ServiceInput::ServerBytes(reply.encode()));
                                queue.push_back(s);
                            }
                        }
                    }
                    other => {
                        let ready = matches!(other, Output::Ready { .. });
                        self.said.push(other);
                        if ready && until_ready {
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Logs in with the server down: the login only waits.
    fn queue_login(&mut self, user: hypergolix_core::golix::Ghid, now: u64) {
        let step = self.svc.open_login(user, b"pw", now).expect("login");
        assert!(step.is_empty(), "a login waits for the server: {step:?}");
    }

    fn loaded(&self) -> Vec<usize> {
        self.said
            .iter()
            .filter_map(|o| match o {
                Output::Loaded { missing } => Some(*missing),
                _ => None,
            })
            .collect()
    }
}

/// An engine configuration with cheap Argon2id.
fn test_config() -> EngineConfig {
    let mut cfg = EngineConfig::new([5; 32]);
    cfg.kdf = KdfParams::INSECURE_TEST;
    cfg
}

/// An account with three objects on the node.
fn account_with_objects() -> (Net<Service>, hypergolix_core::golix::Ghid) {
    let mut net = net(1);
    let api = ApiId([5; 65]);
    for i in 0..3u8 {
        net.call_ghid(0, new_dynamic(api, &[i; 10]));
    }
    let user = net.svcs[0].engine().user_id().expect("user id");
    (net, user)
}

#[test]
fn a_login_lets_apps_in_once_the_accounts_objects_are_read() {
    let (mut net, user) = account_with_objects();
    let mut dev = Device::new();
    // Queued: the server is not up yet.
    let queued = dev.svc.open_login(user, b"pw", 1_000).expect("login");
    assert!(queued.is_empty());
    assert_eq!(dev.svc.next_deadline(), Some(31_000));
    let up = dev.svc.handle(ServiceInput::ServerUp);
    dev.pump(&mut net, up, false);
    let ready = dev
        .said
        .iter()
        .position(|o| matches!(o, Output::Ready { .. }))
        .expect("the account opened");
    let loaded = dev
        .said
        .iter()
        .position(|o| matches!(o, Output::Loaded { .. }))
        .expect("apps let in");
    assert!(ready < loaded, "{:?}", dev.said);
    assert!(
        dev.said[ready..loaded]
            .iter()
            .any(|o| matches!(o, Output::Loading(n) if *n > 0)),
        "progress while loading: {:?}",
        dev.said
    );
    assert_eq!(dev.loaded(), vec![0]);
    assert_eq!(dev.svc.engine().loading(), 0);
    assert_eq!(dev.svc.next_deadline(), None);
    // Later ticks change nothing.
    assert!(dev.svc.handle(ServiceInput::Tick(1_000_000)).is_empty());
}

#[test]
fn a_login_without_a_server_fails_as_unreachable_at_its_deadline() {
    let (_net, user) = account_with_objects();
    let mut dev = Device::new();
    dev.svc.set_policy(Policy {
        login_wait_ms: 5_000,
        ..Policy::default()
    });
    assert!(dev
        .svc
        .open_login(user, b"pw", 10)
        .expect("login")
        .is_empty());
    assert!(dev.svc.handle(ServiceInput::Tick(5_009)).is_empty());
    let failed = dev.svc.handle(ServiceInput::Tick(5_010));
    assert!(
        failed
            .actions()
            .any(|o| matches!(o, Output::LoginFailed { code, .. } if code == "unreachable")),
        "{failed:?}"
    );
    assert_eq!(dev.svc.next_deadline(), None);
    // The server coming up afterwards starts nothing.
    let up = dev.svc.handle(ServiceInput::ServerUp);
    assert!(
        !up.actions().any(|o| matches!(o, Output::ToServer(_))),
        "{up:?}"
    );
}

#[test]
fn a_login_the_server_never_completes_times_out() {
    let (_net, user) = account_with_objects();
    let mut dev = Device::new();
    dev.queue_login(user, 0);
    // Up, but nothing it sends is answered.
    let up = dev.svc.handle(ServiceInput::ServerUp);
    assert!(up.actions().any(|o| matches!(o, Output::ToServer(_))));
    let failed = dev.svc.handle(ServiceInput::Tick(30_000));
    assert!(
        failed
            .actions()
            .any(|o| matches!(o, Output::LoginFailed { code, .. } if code == "timeout")),
        "{failed:?}"
    );
}

#[test]
fn apps_come_in_without_the_missing_objects_after_the_load_wait() {
    let (mut net, user) = account_with_objects();
    let mut dev = Device::new();
    let up = dev.svc.handle(ServiceInput::ServerUp);
    dev.pump(&mut net, up, false);
    let start = dev.svc.open_login(user, b"pw", 0).expect("login");
    // The account opens, then the server goes quiet.
    dev.pump(&mut net, start, true);
    assert!(matches!(dev.said.last(), Some(Output::Ready { .. })));
    let left = dev.svc.engine().loading();
    assert!(left > 0, "objects still to read");
    assert!(dev.loaded().is_empty(), "apps wait: {:?}", dev.said);
    // The wait starts at the first tick after the account opened (the
    // service knows no other time), here 25 s after the login began.
    assert_eq!(dev.svc.next_deadline(), Some(0), "tick as soon as you can");
    assert!(dev.svc.handle(ServiceInput::Tick(25_000)).is_empty());
    let deadline = dev.svc.next_deadline().expect("a load deadline");
    assert_eq!(deadline, 85_000);
    assert!(dev.svc.handle(ServiceInput::Tick(deadline - 1)).is_empty());
    let step = dev.svc.handle(ServiceInput::Tick(deadline));
    dev.said.extend(step.early.into_iter().chain(step.then));
    assert_eq!(dev.loaded(), vec![left]);
    assert!(dev
        .said
        .iter()
        .any(|o| matches!(o, Output::Log(l) if l.contains("going on without them"))));
}

#[test]
fn a_second_login_or_a_login_into_an_account_is_refused() {
    let (_net, user) = account_with_objects();
    let mut dev = Device::new();
    dev.queue_login(user, 0);
    assert!(
        dev.svc.open_login(user, b"pw", 1).is_err(),
        "a login is queued"
    );
    let mut s = Service::new(Engine::new(test_config(), [6; 32]));
    let _ = s.create_account(b"pw").expect("account");
    assert!(s.open_login(user, b"pw", 0).is_err(), "it has an account");
}

#[test]
fn a_new_or_restored_account_lets_apps_in_at_once() {
    let cfg = test_config();
    let mut s = Service::new(Engine::new(cfg.clone(), [6; 32]));
    let created = s.create_account(b"pw").expect("account");
    assert!(created
        .then
        .iter()
        .any(|o| matches!(o, Output::Loaded { missing: 0 })));
    let records: Vec<(Vec<u8>, Vec<u8>)> = created
        .store
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
        .collect();
    let (engine, step) = Engine::restore(cfg, [7; 32], records).expect("restore");
    let mut restored = Service::new(engine);
    let out = restored.adopt_step(step);
    assert!(out
        .actions()
        .any(|o| matches!(o, Output::Loaded { missing: 0 })));
}

#[test]
fn the_message_limit_is_the_policys() {
    let mut s = Service::new(Engine::new(test_config(), [6; 32]));
    s.set_policy(Policy {
        max_app_message: 20 * 1024 * 1024,
        ..Policy::default()
    });
    let _ = s.handle(ServiceInput::AppOpened(1, GhidDialect::Native));
    // 12 MiB: over 0.1.0's 10 MiB, under this policy's limit; answered.
    let big = IpcMessage::Request {
        token: 4,
        request: IpcRequest::Whoami,
    }
    .encode();
    let mut padded = big.clone();
    padded.resize(12 * 1024 * 1024, 0);
    let out = s.handle(ServiceInput::AppBytes(1, padded));
    assert!(
        !out.actions().any(|o| matches!(o, Output::CloseApp(..))),
        "{:?}",
        out.actions().next()
    );
    s.set_policy(Policy::default());
    let mut padded = big;
    padded.resize(12 * 1024 * 1024, 0);
    let out = s.handle(ServiceInput::AppBytes(1, padded));
    assert!(out.actions().any(|o| matches!(o, Output::CloseApp(..))));
}

/// `%O` and `?S` are ours: a native link uses them; on a 0.1.0 (legacy
/// dialect) connection they get 0.1.0's answer to an unknown code.
#[test]
fn unshare_and_shared_with_are_for_native_links_only() {
    let mut net = net(2);
    let (a, b) = (0, 1);
    let bob = net.call_ghid(b, IpcRequest::Whoami);
    net.call(a, IpcRequest::SetToken(AppToken::NULL));
    let g = net.call_ghid(a, new_dynamic(ApiId([3; 65]), b"v1"));
    assert!(matches!(
        net.call(
            a,
            IpcRequest::ShareObject {
                address: g,
                recipient: bob
            }
        ),
        IpcMessage::Ack { .. }
    ));
    assert!(matches!(
        net.call(a, IpcRequest::SharedWith(g)),
        IpcMessage::Ack { body, .. } if body == bob.to_bytes()
    ));
    assert!(matches!(
        net.call(a, IpcRequest::UnshareObject { address: g, recipient: bob }),
        IpcMessage::Ack { body, .. } if body == [1]
    ));
    assert!(matches!(
        net.call(a, IpcRequest::SharedWith(g)),
        IpcMessage::Ack { body, .. } if body.is_empty()
    ));
    // Bob's copy stays at what he read.
    assert!(matches!(
        net.call(a, update(g, b"v2")),
        IpcMessage::Ack { .. }
    ));
    assert_eq!(net.state_of(b, g), b"v1");

    net.input(a, ServiceInput::AppClosed(1));
    net.input(a, ServiceInput::AppOpened(1, GhidDialect::Legacy));
    for request in [
        IpcRequest::SharedWith(g),
        IpcRequest::UnshareObject {
            address: g,
            recipient: bob,
        },
    ] {
        let code = request.code();
        let nk = net.call(a, request);
        assert!(
            matches!(&nk, IpcMessage::Nak { code: Some(IpcErrorCode::Exception), message, .. }
                if *message == format!("b'{}'", String::from_utf8_lossy(&code))),
            "{nk:?}"
        );
    }
}

/// `?L` lists what the session may read: the agent's objects and those
/// shared with it, a private object only to its own app token; it carries
/// the wall clock of the last change; a 0.1.0 connection never sees it.
#[test]
fn list_objects_shows_each_app_token_its_own_private_objects_only() {
    use hypergolix_core::wire::ipc::parse_listing;
    let mut net = net(2);
    let (a, b) = (0, 1);
    let alice = net.call_ghid(a, IpcRequest::Whoami);
    let bob = net.call_ghid(b, IpcRequest::Whoami);
    let list = |net: &mut Net<Service>, i| match net.call(i, IpcRequest::ListObjects) {
        IpcMessage::Ack { body, .. } => parse_listing(&body).expect("a listing"),
        other => panic!("{other:?}"),
    };
    let token_of = |m: IpcMessage| match m {
        IpcMessage::Ack { body, .. } => AppToken(body.try_into().expect("a token")),
        other => panic!("{other:?}"),
    };
    let first = token_of(net.call(a, IpcRequest::SetToken(AppToken::NULL)));
    net.svcs[a].set_wall_clock(1_700_000_000_000);
    let public = net.call_ghid(a, new_dynamic(ApiId([3; 65]), b"public"));
    let IpcRequest::NewObject(mut private) = new_dynamic(ApiId([4; 65]), b"mine alone") else {
        unreachable!()
    };
    private.private = true;
    let private = net.call_ghid(a, IpcRequest::NewObject(private));
    net.call(b, IpcRequest::SetToken(AppToken::NULL));
    let from_bob = net.call_ghid(b, new_dynamic(ApiId([5; 65]), b"from bob"));
    net.call(
        b,
        IpcRequest::ShareObject {
            address: from_bob,
            recipient: alice,
        },
    );
    net.run();

    let mut seen = list(&mut net, a);
    seen.sort_by_key(|o| o.address);
    let mut want = vec![public, private, from_bob];
    want.sort();
    assert_eq!(seen.iter().map(|o| o.address).collect::<Vec<_>>(), want);
    let o = seen.iter().find(|o| o.address == private).expect("listed");
    assert!(o.private && o.owned && o.dynamic && o.loaded && !o.is_link);
    assert_eq!(
        (o.author, o.size, o.changed_ms),
        (alice, 10, 1_700_000_000_000)
    );
    let o = seen.iter().find(|o| o.address == from_bob).expect("listed");
    assert!(!o.private && !o.owned && o.loaded);
    assert_eq!((o.author, o.api_id, o.size), (bob, ApiId([5; 65]), 8));

    // Another app token of the same agent: everything but the private one.
    net.input(a, ServiceInput::AppClosed(1));
    net.input(a, ServiceInput::AppOpened(1, GhidDialect::Native));
    net.call(a, IpcRequest::SetToken(AppToken::NULL));
    let seen: Vec<_> = list(&mut net, a).into_iter().map(|o| o.address).collect();
    assert!(seen.contains(&public) && seen.contains(&from_bob));
    assert!(!seen.contains(&private), "another token's private object");
    // No token at all: the same.
    net.input(a, ServiceInput::AppClosed(1));
    net.input(a, ServiceInput::AppOpened(1, GhidDialect::Native));
    assert_eq!(list(&mut net, a).len(), 2);
    // The first token again sees it, with the time of its last change.
    net.call(a, IpcRequest::SetToken(first));
    net.svcs[a].set_wall_clock(1_700_000_000_500);
    net.call(a, update(private, b"changed"));
    let o = list(&mut net, a)
        .into_iter()
        .find(|o| o.address == private)
        .expect("its own token lists it");
    assert_eq!((o.size, o.changed_ms), (7, 1_700_000_000_500));

    // A 0.1.0 link gets 0.1.0's answer to an unknown code.
    net.input(a, ServiceInput::AppClosed(1));
    net.input(a, ServiceInput::AppOpened(1, GhidDialect::Legacy));
    assert!(matches!(
        net.call(a, IpcRequest::ListObjects),
        IpcMessage::Nak {
            code: Some(IpcErrorCode::Exception),
            ..
        }
    ));
}

/// `?W` and `!P` are native-dialect requests that need the current
/// password; a new device recovers with the words through the service's
/// opening policy, as a login does.
#[test]
fn account_requests_need_the_password_and_the_words_recover() {
    use hypergolix_core::engine::SecretBytes;
    let (mut net, user) = account_with_objects();
    let words = |net: &mut Net<Service>, pw: &[u8]| {
        net.call(0, IpcRequest::RecoveryWords(SecretBytes::new(pw)))
    };
    assert!(
        matches!(words(&mut net, b"nope"), IpcMessage::Nak { message, .. }
            if message.contains("wrong password")),
        "a wrong password is refused"
    );
    let phrase = match words(&mut net, b"pw") {
        IpcMessage::Ack { body, .. } => String::from_utf8(body).expect("utf-8"),
        other => panic!("{other:?}"),
    };
    assert_eq!(phrase.split(' ').count(), 12);
    let change = |current: &[u8], new: &[u8]| IpcRequest::ChangePassword {
        current: SecretBytes::new(current),
        new: SecretBytes::new(new),
    };
    assert!(matches!(
        net.call(0, change(b"nope", b"x")),
        IpcMessage::Nak { .. }
    ));
    assert!(matches!(
        net.call(0, change(b"pw", b"pw2")),
        IpcMessage::Ack { body, .. } if body == [1]
    ));
    // A 0.1.0 connection does not know these codes.
    net.input(0, ServiceInput::AppClosed(1));
    net.input(0, ServiceInput::AppOpened(1, GhidDialect::Legacy));
    assert!(matches!(
        net.call(0, change(b"pw2", b"pw3")),
        IpcMessage::Nak { message, .. } if message == "b'!P'"
    ));

    // Not words: refused before anything waits for the server.
    let mut dev = Device::new();
    assert!(matches!(
        dev.svc.open_recover(user, "abandon abandon", b"new", 0),
        Err(hypergolix_core::Error::BadRecoveryWords(_))
    ));
    let queued = dev
        .svc
        .open_recover(user, &phrase, b"new", 1_000)
        .expect("recover");
    assert!(queued.is_empty(), "a recovery waits for the server");
    let up = dev.svc.handle(ServiceInput::ServerUp);
    dev.pump(&mut net, up, false);
    assert!(
        dev.said
            .iter()
            .any(|o| matches!(o, Output::Ready { user_id, .. } if *user_id == user)),
        "{:?}",
        dev.said
    );
    assert_eq!(dev.loaded(), vec![0], "its objects are read");
}
