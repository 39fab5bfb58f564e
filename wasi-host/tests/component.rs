//! The engine's WASI component under wasmtime: two agents' local services,
//! each an engine inside wasmtime, and one persistence node; the apps speak
//! 0.1.0 IPC bytes. Then one service is thrown away and started again from
//! its store inside a new instance. Needs the component built first
//! (`scripts/test.sh` does it):
//! cargo build --release -p hypergolix-engine-component --target wasm32-wasip2

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;

use hypergolix_core::engine::{ApiId, AppToken};
use hypergolix_core::golix::Ghid;
use hypergolix_core::persist::{MemoryStore, Node};
use hypergolix_core::service::{Output, ServiceInput};
use hypergolix_core::wire::ipc::{IpcMessage, IpcRequest, Side, WireObjDef};
use hypergolix_core::wire::remote::Message;
use hypergolix_wasi_host::component::{WasmConfig, WasmService, COMPONENT_PATH};
use hypergolix_wasi_host::runtime::Runtime;
use wasmtime::component::Component;

const APP: u64 = 1;

fn component(rt: &Runtime) -> Component {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(COMPONENT_PATH);
    assert!(
        path.exists(),
        "build the engine component first: cargo build --release -p hypergolix-engine-component --target wasm32-wasip2"
    );
    rt.load(&path).expect("load the component").0
}

struct Agent {
    svc: WasmService,
    store: BTreeMap<Vec<u8>, Vec<u8>>,
    inbox: Vec<IpcMessage>,
    key: [u8; 32],
}

struct Net {
    node: Node<MemoryStore>,
    agents: Vec<Agent>,
    queue: VecDeque<(usize, bool, Vec<u8>)>,
    token: u16,
}

impl Net {
    fn apply(&mut self, i: usize, out: Vec<Output>) {
        for o in out {
            match o {
                Output::Store(ws) => {
                    for (k, v) in ws {
                        match v {
                            Some(v) => self.agents[i].store.insert(k, v),
                            None => self.agents[i].store.remove(&k),
                        };
                    }
                }
                Output::ToServer(b) => self.queue.push_back((i, true, b)),
                Output::ToApp(_, b) => {
                    let m = IpcMessage::decode(Side::Service, &b).expect("valid IPC");
                    if let IpcMessage::Request { token, .. } = &m {
                        let ack = IpcMessage::Ack {
                            token: *token,
                            body: vec![1],
                        }
                        .encode();
                        let out = self.agents[i]
                            .svc
                            .handle(ServiceInput::AppBytes(APP, ack))
                            .expect("handle");
                        self.apply(i, out);
                    }
                    self.agents[i].inbox.push(m);
                }
                _ => {}
            }
        }
    }

    fn input(&mut self, i: usize, input: ServiceInput) {
        let out = self.agents[i]
            .svc
            .handle(input)
            .expect("the component handles input");
        self.apply(i, out);
    }

    fn run(&mut self) {
        while let Some((i, to_node, bytes)) = self.queue.pop_front() {
            if to_node {
                let m = Message::decode(&bytes).expect("valid");
                for (c, reply) in self.node.handle(i as u64, m) {
                    self.queue.push_back((c as usize, false, reply.encode()));
                }
            } else {
                self.input(i, ServiceInput::ServerBytes(bytes));
            }
        }
    }

    fn call(&mut self, i: usize, request: IpcRequest) -> IpcMessage {
        self.token += 1;
        let token = self.token;
        let bytes = IpcMessage::Request { token, request }.encode();
        self.input(i, ServiceInput::AppBytes(APP, bytes));
        self.run();
        self.agents[i]
            .inbox
            .iter()
            .find(|m| matches!(m, IpcMessage::Ack { token: t, .. } | IpcMessage::Nak { token: t, .. } if *t == token))
            .cloned()
            .expect("an answer")
    }
}

fn ghid(m: IpcMessage) -> Ghid {
    match m {
        IpcMessage::Ack { body, .. } => Ghid::from_bytes(&body).expect("ghid"),
        other => panic!("{other:?}"),
    }
}

fn config(key: [u8; 32], seed: u8) -> WasmConfig {
    WasmConfig {
        storage_key: key,
        seed: [seed; 32],
        insecure_test_kdf: true,
    }
}

#[test]
fn two_agents_with_engines_under_wasmtime() {
    let rt = Runtime::new(None).expect("runtime");
    let comp = component(&rt);
    let mut net = Net {
        node: Node::new(MemoryStore::new()),
        agents: Vec::new(),
        queue: VecDeque::new(),
        token: 0,
    };
    for i in 0..2u8 {
        let key = [i + 1; 32];
        let (mut svc, out) =
            WasmService::start(&rt, &comp, config(key, i + 10), Vec::new()).expect("start");
        assert!(out.is_empty(), "no account yet");
        let out = svc.create_account(b"pw").expect("account");
        net.agents.push(Agent {
            svc,
            store: BTreeMap::new(),
            inbox: Vec::new(),
            key,
        });
        net.apply(usize::from(i), out);
        net.input(usize::from(i), ServiceInput::ServerUp);
        net.input(usize::from(i), ServiceInput::AppOpened(APP));
    }
    net.run();
    let bob = ghid(net.call(1, IpcRequest::Whoami));
    let api = ApiId([5; 65]);
    net.call(1, IpcRequest::RegisterApi(api));
    net.call(0, IpcRequest::SetToken(AppToken::NULL));
    let g = ghid(net.call(
        0,
        IpcRequest::NewObject(WireObjDef {
            address: None,
            author: None,
            private: false,
            dynamic: true,
            legroom: 7,
            api_id: Some(api),
            is_link: false,
            state: b"from wasm".to_vec(),
        }),
    ));
    net.call(
        0,
        IpcRequest::ShareObject {
            address: g,
            recipient: bob,
        },
    );
    let got = net.call(1, IpcRequest::GetObject(g));
    let IpcMessage::Ack { body, .. } = got else {
        panic!("{got:?}")
    };
    assert_eq!(
        WireObjDef::parse(*b"AK", &body).expect("objdef").state,
        b"from wasm"
    );
    net.call(
        0,
        IpcRequest::UpdateObject(WireObjDef {
            address: Some(g),
            author: None,
            private: false,
            dynamic: false,
            legroom: 7,
            api_id: None,
            is_link: false,
            state: b"updated".to_vec(),
        }),
    );
    assert!(net.agents[1].inbox.iter().any(|m| matches!(
        m,
        IpcMessage::Request { request: IpcRequest::PushUpdate(o), .. } if o.state == b"updated"
    )));

    // Throw Bob's instance away and start a new one from his store.
    let records: Vec<(Vec<u8>, Vec<u8>)> = net.agents[1]
        .store
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let key = net.agents[1].key;
    let (svc, out) = WasmService::start(&rt, &comp, config(key, 99), records).expect("restart");
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Ready { identity, .. } if *identity == bob)));
    net.agents[1].svc = svc;
    net.node.disconnect(1);
    net.input(1, ServiceInput::ServerUp);
    net.input(1, ServiceInput::AppOpened(APP));
    net.run();
    let again = net.call(1, IpcRequest::GetObject(g));
    let IpcMessage::Ack { body, .. } = again else {
        panic!("{again:?}")
    };
    assert_eq!(
        WireObjDef::parse(*b"AK", &body).expect("objdef").state,
        b"updated"
    );
}
