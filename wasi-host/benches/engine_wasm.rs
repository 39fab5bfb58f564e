//! What running the engine inside wasmtime costs: the same local-service
//! core, natively (`hypergolix_core::service::Service`) and as the WASI
//! component (`WasmService`), on the same work. Two agents' services and one
//! in-process persistence node; Alice's app updates an object shared with
//! Bob, whose app tracks it; one iteration ends when Bob's app has the push.
//!
//! cargo build --release -p hypergolix-engine-component --target wasm32-wasip2
//! cargo bench -p hypergolix-wasi-host --bench engine_wasm

#[path = "../../core/tests/support/service_net.rs"]
mod service_net;

use criterion::{criterion_group, criterion_main, Criterion};
use hypergolix_core::engine::{ApiId, Engine, EngineConfig, KdfParams, Step};
use hypergolix_core::golix::Ghid;
use hypergolix_core::service::{Output, Service, ServiceInput};
use hypergolix_core::wire::ipc::IpcRequest;
use hypergolix_wasi_host::component::{load_engine, WasmConfig, WasmService};
use hypergolix_wasi_host::runtime::Runtime;
use service_net::{new_dynamic, update, Net, Svc};

impl Svc for WasmService {
    fn feed(&mut self, input: ServiceInput) -> Step<Output> {
        self.handle(input).expect("the component handles input")
    }
}

/// Alice shares a new object with Bob, whose app tracks it.
fn setup<S: Svc>(svcs: Vec<S>, accounts: Vec<Step<Output>>) -> (Net<S>, Ghid) {
    let mut net = Net::new(svcs, accounts);
    let bob = net.call_ghid(1, IpcRequest::Whoami);
    let api = ApiId([7; 65]);
    net.call(1, IpcRequest::RegisterApi(api));
    let g = net.call_ghid(0, new_dynamic(api, &[0; 64]));
    net.call(
        0,
        IpcRequest::ShareObject {
            address: g,
            recipient: bob,
        },
    );
    net.call(1, IpcRequest::GetObject(g));
    (net, g)
}

/// One update from Alice's app, until Bob's app has the push.
fn step<S: Svc>(net: &mut Net<S>, g: Ghid, n: u64) {
    let mut state = n.to_be_bytes().to_vec();
    state.resize(64, 0);
    net.inbox[0].clear();
    net.inbox[1].clear();
    net.call(0, update(g, &state));
    assert!(net.was_pushed(1, g, &state));
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
    let (mut n, g) = setup(native, accounts);
    let mut k = 0;
    grp.bench_function("native", |b| {
        b.iter(|| {
            k += 1;
            step(&mut n, g, k)
        })
    });

    let rt = Runtime::new(None).expect("runtime");
    let comp = load_engine(&rt, None).expect("the built-in engine").0;
    let mut wasm = Vec::new();
    let mut accounts = Vec::new();
    for i in 0..2u8 {
        let cfg = WasmConfig {
            storage_key: [i + 1; 32],
            seed: [i + 40; 32],
            insecure_test_kdf: true,
            policy: hypergolix_core::service::Policy::default(),
        };
        let (mut s, _) = WasmService::start(&rt, &comp, cfg, Vec::new()).expect("start");
        accounts.push(s.create_account(b"pw", false).expect("account").0);
        wasm.push(s);
    }
    let (mut w, g) = setup(wasm, accounts);
    let mut k = 0;
    grp.bench_function("wasmtime", |b| {
        b.iter(|| {
            k += 1;
            step(&mut w, g, k)
        })
    });
    grp.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
