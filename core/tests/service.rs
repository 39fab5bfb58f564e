//! The local service core driven by IPC bytes, as the 0.1.0 link sends
//! them: two agents' services and one persistence node, in one process.

use std::collections::{BTreeMap, VecDeque};

use hypergolix_core::engine::{ApiId, AppToken, Engine, EngineConfig, KdfParams};
use hypergolix_core::golix::Ghid;
use hypergolix_core::persist::{MemoryStore, Node};
use hypergolix_core::service::{Output, Service, ServiceInput};
use hypergolix_core::wire::ipc::{IpcErrorCode, IpcMessage, IpcRequest, Side, WireObjDef};
use hypergolix_core::wire::remote::Message;

const APP: u64 = 1;

/// Where a message goes next.
#[derive(Clone, Copy)]
enum Hop {
    /// From service `i` to the node.
    ToNode(usize),
    /// From the node to service `i`.
    FromNode(usize),
    /// From app `i`'s link to its service.
    FromApp(usize),
}

struct Net {
    node: Node<MemoryStore>,
    svcs: Vec<Service>,
    stores: Vec<BTreeMap<Vec<u8>, Vec<u8>>>,
    /// Messages each app received.
    inbox: Vec<Vec<IpcMessage>>,
    closed: Vec<Option<String>>,
    queue: VecDeque<(Hop, Vec<u8>)>,
    token: u16,
}

impl Net {
    fn new(n: usize) -> Self {
        let mut net = Net {
            node: Node::new(MemoryStore::new()),
            svcs: Vec::new(),
            stores: vec![BTreeMap::new(); n],
            inbox: vec![Vec::new(); n],
            closed: vec![None; n],
            queue: VecDeque::new(),
            token: 100,
        };
        for i in 0..n {
            let mut cfg = EngineConfig::new([i as u8 + 1; 32]);
            cfg.kdf = KdfParams::INSECURE_TEST;
            let mut s = Service::new(Engine::new(cfg, [i as u8 + 9; 32]));
            let out = s.create_account(b"pw").expect("account");
            net.svcs.push(s);
            net.apply(i, out);
            net.input(i, ServiceInput::ServerUp);
            net.input(i, ServiceInput::AppOpened(APP));
        }
        net.run();
        net
    }

    fn input(&mut self, i: usize, input: ServiceInput) {
        let out = self.svcs[i].handle(input);
        self.apply(i, out);
    }

    fn apply(&mut self, i: usize, out: Vec<Output>) {
        for o in out {
            match o {
                Output::Store(ws) => {
                    for (k, v) in ws {
                        match v {
                            Some(v) => self.stores[i].insert(k, v),
                            None => self.stores[i].remove(&k),
                        };
                    }
                }
                Output::ToServer(b) => self.queue.push_back((Hop::ToNode(i), b)),
                Output::ToApp(_, b) => {
                    let m =
                        IpcMessage::decode(Side::Service, &b).expect("the service sends valid IPC");
                    // The link answers pushes (requests) with AK, as 0.1.0's does.
                    if let IpcMessage::Request { token, .. } = &m {
                        let ack = IpcMessage::Ack {
                            token: *token,
                            body: vec![1],
                        }
                        .encode();
                        self.queue.push_back((Hop::FromApp(i), ack));
                    }
                    self.inbox[i].push(m);
                }
                Output::CloseApp(_, why) => self.closed[i] = Some(why),
                Output::Ready { .. } | Output::LoginFailed(_) | Output::Log(_) => {}
            }
        }
    }

    fn run(&mut self) {
        while let Some((hop, bytes)) = self.queue.pop_front() {
            match hop {
                Hop::ToNode(i) => {
                    let m = Message::decode(&bytes).expect("valid");
                    for (c, reply) in self.node.handle(i as u64, m) {
                        self.queue
                            .push_back((Hop::FromNode(c as usize), reply.encode()));
                    }
                }
                Hop::FromNode(i) => self.input(i, ServiceInput::ServerBytes(bytes)),
                Hop::FromApp(i) => self.input(i, ServiceInput::AppBytes(APP, bytes)),
            }
        }
    }

    /// Sends a link request; returns the service's answer.
    fn call(&mut self, i: usize, request: IpcRequest) -> IpcMessage {
        self.token += 1;
        let token = self.token;
        self.raw(i, IpcMessage::Request { token, request }.encode());
        self.answer(i, token).expect("an answer")
    }

    fn raw(&mut self, i: usize, bytes: Vec<u8>) {
        self.input(i, ServiceInput::AppBytes(APP, bytes));
        self.run();
    }

    fn answer(&self, i: usize, token: u16) -> Option<IpcMessage> {
        self.inbox[i]
            .iter()
            .find(|m| {
                matches!(m, IpcMessage::Ack { token: t, .. } | IpcMessage::Nak { token: t, .. } if *t == token)
            })
            .cloned()
    }
}

fn ack_ghid(m: IpcMessage) -> Ghid {
    match m {
        IpcMessage::Ack { body, .. } => Ghid::from_bytes(&body).expect("ghid"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_0_1_0_scenario_over_ipc_bytes() {
    let mut net = Net::new(2);
    let (a, b) = (0, 1);
    let bob = ack_ghid(net.call(b, IpcRequest::Whoami));
    let tok = net.call(a, IpcRequest::SetToken(AppToken::NULL));
    assert!(matches!(&tok, IpcMessage::Ack { body, .. } if body.len() == 16));
    let api = ApiId([3; 65]);
    assert!(matches!(
        net.call(b, IpcRequest::RegisterApi(api)),
        IpcMessage::Ack { body, .. } if body == [1]
    ));
    let objdef = WireObjDef {
        address: None,
        author: None,
        private: false,
        dynamic: true,
        legroom: 7,
        api_id: Some(api),
        is_link: false,
        state: b"hello".to_vec(),
    };
    let g = ack_ghid(net.call(a, IpcRequest::NewObject(objdef.clone())));
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
    let got = net.call(b, IpcRequest::GetObject(g));
    let IpcMessage::Ack { body, .. } = got else {
        panic!("{got:?}")
    };
    let def = WireObjDef::parse(*b"AK", &body).expect("objdef");
    assert_eq!(
        (def.state.as_slice(), def.legroom, def.dynamic),
        (&b"hello"[..], 0, true)
    );
    // An update reaches Bob's link as an !O push.
    let mut update = objdef.clone();
    update.address = Some(g);
    update.dynamic = false;
    update.api_id = None;
    update.state = b"again".to_vec();
    assert!(matches!(
        net.call(a, IpcRequest::UpdateObject(update)),
        IpcMessage::Ack { .. }
    ));
    assert!(net.inbox[b].iter().any(|m| matches!(
        m,
        IpcMessage::Request { request: IpcRequest::PushUpdate(o), .. }
            if o.address == Some(g) && o.state == b"again"
    )));
    // Delete reaches Bob's link as XO.
    assert!(matches!(
        net.call(a, IpcRequest::DeleteObject(g)),
        IpcMessage::Ack { .. }
    ));
    assert!(net.inbox[b].iter().any(|m| matches!(
        m,
        IpcMessage::Request { request: IpcRequest::PushDelete(x), .. } if *x == g
    )));
    // Bob cannot update what he does not own; an unknown object is 0008.
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
    let mut net = Net::new(1);
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
    // Service-only codes from a link: NK ffff.
    net.raw(0, vec![0, 0, b'^', b'S', 0, 10]);
    assert!(net.answer(0, 10).is_some());
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
