//! What running the engine inside wasmtime costs: the same local-service
//! core, natively (`hypergolix_core::service::Service`) and as the WASI
//! component (`WasmService`), on the same work. Two agents' services and one
//! in-process persistence node; Alice's app updates an object shared with
//! Bob, whose app tracks it; one iteration ends when Bob's app has the push.
//!
//! cargo build --release -p hypergolix-engine-component --target wasm32-wasip2
//! cargo bench -p hypergolix-wasi-host --bench engine_wasm

use std::collections::VecDeque;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use hypergolix_core::engine::{ApiId, Engine, EngineConfig, KdfParams};
use hypergolix_core::golix::Ghid;
use hypergolix_core::persist::{MemoryStore, Node};
use hypergolix_core::service::{Output, Service, ServiceInput};
use hypergolix_core::wire::ipc::{IpcMessage, IpcRequest, Side, WireObjDef};
use hypergolix_core::wire::remote::Message;
use hypergolix_wasi_host::component::{WasmConfig, WasmService, COMPONENT_PATH};
use hypergolix_wasi_host::runtime::Runtime;

const APP: u64 = 1;

/// Either service.
trait Svc {
    fn feed(&mut self, input: ServiceInput) -> Vec<Output>;
}

impl Svc for Service {
    fn feed(&mut self, input: ServiceInput) -> Vec<Output> {
        self.handle(input)
    }
}

impl Svc for WasmService {
    fn feed(&mut self, input: ServiceInput) -> Vec<Output> {
        self.handle(input).expect("the component handles input")
    }
}

struct Net<S: Svc> {
    node: Node<MemoryStore>,
    svcs: Vec<S>,
    queue: VecDeque<(usize, bool, Vec<u8>)>,
    inbox: Vec<Vec<IpcMessage>>,
    token: u16,
}

impl<S: Svc> Net<S> {
    fn apply(&mut self, i: usize, out: Vec<Output>) {
        for o in out {
            match o {
                Output::ToServer(b) => self.queue.push_back((i, true, b)),
                Output::ToApp(_, b) => {
                    let m = IpcMessage::decode(Side::Service, &b).expect("valid IPC");
                    if let IpcMessage::Request { token, .. } = &m {
                        let ack = IpcMessage::Ack {
                            token: *token,
                            body: vec![1],
                        };
                        let out = self.svcs[i].feed(ServiceInput::AppBytes(APP, ack.encode()));
                        self.apply(i, out);
                    }
                    self.inbox[i].push(m);
                }
                // The store is a host's business; here nothing is kept.
                _ => {}
            }
        }
    }

    fn input(&mut self, i: usize, input: ServiceInput) {
        let out = self.svcs[i].feed(input);
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

    fn call(&mut self, i: usize, request: IpcRequest) -> Vec<u8> {
        self.token = self.token.wrapping_add(1);
        let token = self.token;
        let bytes = IpcMessage::Request { token, request }.encode();
        self.input(i, ServiceInput::AppBytes(APP, bytes));
        self.run();
        let pos = self.inbox[i]
            .iter()
            .position(|m| matches!(m, IpcMessage::Ack { token: t, .. } if *t == token))
            .expect("AK");
        match self.inbox[i].remove(pos) {
            IpcMessage::Ack { body, .. } => body,
            _ => unreachable!("matched an AK"),
        }
    }

    /// Alice shares a new object with Bob, whose app tracks it.
    fn setup(mut self, accounts: Vec<Vec<Output>>) -> (Self, Ghid) {
        for (i, out) in accounts.into_iter().enumerate() {
            self.apply(i, out);
            self.input(i, ServiceInput::ServerUp);
            self.input(i, ServiceInput::AppOpened(APP));
        }
        self.run();
        let bob = Ghid::from_bytes(&self.call(1, IpcRequest::Whoami)).expect("ghid");
        let api = ApiId([7; 65]);
        self.call(1, IpcRequest::RegisterApi(api));
        let g = Ghid::from_bytes(&self.call(
            0,
            IpcRequest::NewObject(WireObjDef {
                address: None,
                author: None,
                private: false,
                dynamic: true,
                legroom: 7,
                api_id: Some(api),
                is_link: false,
                state: vec![0; 64],
            }),
        ))
        .expect("ghid");
        self.call(
            0,
            IpcRequest::ShareObject {
                address: g,
                recipient: bob,
            },
        );
        self.call(1, IpcRequest::GetObject(g));
        (self, g)
    }

    fn update(&mut self, g: Ghid, n: u64) {
        let mut state = n.to_be_bytes().to_vec();
        state.resize(64, 0);
        self.inbox[1].clear();
        self.call(
            0,
            IpcRequest::UpdateObject(WireObjDef {
                address: Some(g),
                author: None,
                private: false,
                dynamic: false,
                legroom: 0,
                api_id: None,
                is_link: false,
                state: state.clone(),
            }),
        );
        assert!(self.inbox[1].iter().any(|m| matches!(
            m,
            IpcMessage::Request { request: IpcRequest::PushUpdate(o), .. } if o.state == state
        )));
    }
}

fn net<S: Svc>(svcs: Vec<S>) -> Net<S> {
    Net {
        node: Node::new(MemoryStore::new()),
        inbox: vec![Vec::new(); svcs.len()],
        svcs,
        queue: VecDeque::new(),
        token: 0,
    }
}

fn bench(c: &mut Criterion) {
    let mut grp = c.benchmark_group("service_update_to_push");

    let mut native = Vec::new();
    let mut accounts = Vec::new();
    for i in 0..2u8 {
        let mut cfg = EngineConfig::new([i + 1; 32]);
        cfg.kdf = KdfParams::INSECURE_TEST;
        let mut s = Service::new(Engine::new(cfg, [i + 40; 32]));
        accounts.push(s.create_account(b"pw").expect("account"));
        native.push(s);
    }
    let (mut n, g) = net(native).setup(accounts);
    let mut k = 0;
    grp.bench_function("native", |b| {
        b.iter(|| {
            k += 1;
            n.update(g, k)
        })
    });

    let rt = Runtime::new(None).expect("runtime");
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(COMPONENT_PATH);
    let comp = rt.load(&path).expect("build the engine component first").0;
    let mut wasm = Vec::new();
    let mut accounts = Vec::new();
    for i in 0..2u8 {
        let cfg = WasmConfig {
            storage_key: [i + 1; 32],
            seed: [i + 40; 32],
            insecure_test_kdf: true,
        };
        let (mut s, _) = WasmService::start(&rt, &comp, cfg, Vec::new()).expect("start");
        accounts.push(s.create_account(b"pw").expect("account"));
        wasm.push(s);
    }
    let (mut w, g) = net(wasm).setup(accounts);
    let mut k = 0;
    grp.bench_function("wasmtime", |b| {
        b.iter(|| {
            k += 1;
            w.update(g, k)
        })
    });
    grp.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
