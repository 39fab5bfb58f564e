//! A test network of local services (native or inside wasmtime) and one
//! in-process persistence node, driven by 0.1.0 IPC bytes as an app's link
//! sends them. Shared by `core/tests/service.rs`,
//! `wasi-host/tests/component.rs` and `wasi-host/benches/engine_wasm.rs`.
#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};

use hypergolix_core::engine::{ApiId, Step};
use hypergolix_core::golix::Ghid;
use hypergolix_core::persist::{MemoryStore, Node};
use hypergolix_core::service::{Output, Service, ServiceInput};
use hypergolix_core::wire::ipc::{GhidDialect, IpcMessage, IpcRequest, Side, WireObjDef};

/// The session number of every service's one app.
pub const APP: u64 = 1;

/// A local service, whatever runs it.
pub trait Svc {
    /// Feeds one input.
    fn feed(&mut self, input: ServiceInput) -> Step<Output>;
}

impl Svc for Service {
    fn feed(&mut self, input: ServiceInput) -> Step<Output> {
        self.handle(input)
    }
}

#[derive(Clone, Copy)]
enum Hop {
    ToNode(usize),
    FromNode(usize),
    FromApp(usize),
}

/// Services, their stores, what their apps received, and the node.
pub struct Net<S: Svc> {
    pub node: Node<MemoryStore>,
    pub svcs: Vec<S>,
    pub stores: Vec<BTreeMap<Vec<u8>, Vec<u8>>>,
    pub inbox: Vec<Vec<IpcMessage>>,
    pub closed: Vec<Option<String>>,
    queue: VecDeque<(Hop, Vec<u8>)>,
    token: u16,
}

impl<S: Svc> Net<S> {
    /// Services that have just created their accounts (`accounts[i]` is what
    /// service `i` returned): they come online and their apps connect.
    pub fn new(svcs: Vec<S>, accounts: Vec<Step<Output>>) -> Self {
        let n = svcs.len();
        let mut net = Net {
            node: Node::new(MemoryStore::new()),
            svcs,
            stores: vec![BTreeMap::new(); n],
            inbox: vec![Vec::new(); n],
            closed: vec![None; n],
            queue: VecDeque::new(),
            token: 0,
        };
        for (i, out) in accounts.into_iter().enumerate() {
            net.apply(i, out);
            net.input(i, ServiceInput::ServerUp);
            net.input(i, ServiceInput::AppOpened(APP, GhidDialect::Native));
        }
        net.run();
        net
    }

    /// Carries out a service's step: early outputs, the store write, the
    /// rest; its app's link answers every push with `AK`, as 0.1.0's does.
    pub fn apply(&mut self, i: usize, step: Step<Output>) {
        self.outputs(i, step.early);
        for (k, v) in step.store {
            match v {
                Some(v) => self.stores[i].insert(k, v),
                None => self.stores[i].remove(&k),
            };
        }
        self.outputs(i, step.then);
    }

    fn outputs(&mut self, i: usize, out: Vec<Output>) {
        for o in out {
            match o {
                Output::ToServer(b) => self.queue.push_back((Hop::ToNode(i), b)),
                Output::ToApp(_, b) => {
                    let m =
                        IpcMessage::decode(Side::Service, &b).expect("the service sends valid IPC");
                    if let IpcMessage::Request { token, .. } = &m {
                        let ack = IpcMessage::Ack {
                            token: *token,
                            body: vec![1],
                        };
                        self.queue.push_back((Hop::FromApp(i), ack.encode()));
                    }
                    self.inbox[i].push(m);
                }
                Output::CloseApp(_, why) => self.closed[i] = Some(why),
                Output::Ready { .. }
                | Output::Loading(_)
                | Output::Loaded { .. }
                | Output::LoginFailed { .. }
                | Output::HostReply(_)
                | Output::Log(_) => {}
            }
        }
    }

    /// Feeds an input to service `i`.
    pub fn input(&mut self, i: usize, input: ServiceInput) {
        let out = self.svcs[i].feed(input);
        self.apply(i, out);
    }

    /// Delivers everything in flight.
    pub fn run(&mut self) {
        while let Some((hop, bytes)) = self.queue.pop_front() {
            match hop {
                Hop::ToNode(i) => {
                    for (c, reply) in self.node.handle_bytes(i as u64, &bytes) {
                        self.queue
                            .push_back((Hop::FromNode(c as usize), reply.encode()));
                    }
                }
                Hop::FromNode(i) => self.input(i, ServiceInput::ServerBytes(bytes)),
                Hop::FromApp(i) => self.input(i, ServiceInput::AppBytes(APP, bytes)),
            }
        }
    }

    /// Raw bytes from app `i`'s link.
    pub fn raw(&mut self, i: usize, bytes: Vec<u8>) {
        self.input(i, ServiceInput::AppBytes(APP, bytes));
        self.run();
    }

    /// The answer to request `token` of app `i`, if any.
    pub fn answer(&self, i: usize, token: u16) -> Option<IpcMessage> {
        self.inbox[i]
            .iter()
            .find(|m| {
                matches!(m, IpcMessage::Ack { token: t, .. } | IpcMessage::Nak { token: t, .. } if *t == token)
            })
            .cloned()
    }

    /// Sends a request from app `i`'s link; returns the answer.
    pub fn call(&mut self, i: usize, request: IpcRequest) -> IpcMessage {
        self.token = self.token.wrapping_add(1);
        let token = self.token;
        self.raw(i, IpcMessage::Request { token, request }.encode());
        self.answer(i, token).expect("an answer")
    }

    /// A request whose answer is a GHID.
    pub fn call_ghid(&mut self, i: usize, request: IpcRequest) -> Ghid {
        match self.call(i, request) {
            IpcMessage::Ack { body, .. } => Ghid::from_bytes(&body).expect("ghid"),
            other => panic!("{other:?}"),
        }
    }

    /// Gets an object's state as app `i` sees it.
    pub fn state_of(&mut self, i: usize, g: Ghid) -> Vec<u8> {
        match self.call(i, IpcRequest::GetObject(g)) {
            IpcMessage::Ack { body, .. } => WireObjDef::parse(*b"AK", &body).expect("objdef").state,
            other => panic!("{other:?}"),
        }
    }

    /// Whether app `i` was pushed an update with this state.
    pub fn was_pushed(&self, i: usize, g: Ghid, state: &[u8]) -> bool {
        self.inbox[i].iter().any(|m| {
            matches!(
                m,
                IpcMessage::Request { request: IpcRequest::PushUpdate(o), .. }
                    if o.address == Some(g) && o.state == state
            )
        })
    }
}

/// What a link sends for a new dynamic object.
pub fn new_dynamic(api_id: ApiId, state: &[u8]) -> IpcRequest {
    IpcRequest::NewObject(WireObjDef {
        address: None,
        author: None,
        private: false,
        dynamic: true,
        legroom: 7,
        api_id: Some(api_id),
        is_link: false,
        state: state.to_vec(),
    })
}

/// What a link sends for an update (0.1.0 leaves author, api_id and dynamic empty).
pub fn update(g: Ghid, state: &[u8]) -> IpcRequest {
    IpcRequest::UpdateObject(WireObjDef {
        address: Some(g),
        author: None,
        private: false,
        dynamic: false,
        legroom: 7,
        api_id: None,
        is_link: false,
        state: state.to_vec(),
    })
}
