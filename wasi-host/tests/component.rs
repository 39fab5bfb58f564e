//! The engine's WASI component under wasmtime: two agents' local services,
//! each an engine inside wasmtime, and one persistence node; the apps speak
//! 0.1.0 IPC bytes. Then one service is thrown away and started again from
//! its store inside a new instance. The component is the one built into
//! the host (`build.rs`).

#[path = "../../core/tests/support/service_net.rs"]
mod service_net;

use hypergolix_core::engine::{ApiId, AppToken, Step};
use hypergolix_core::service::{Output, ServiceInput};
use hypergolix_core::wire::ipc::{GhidDialect, IpcRequest};
use hypergolix_wasi_host::component::{load_engine, WasmConfig, WasmService};
use hypergolix_wasi_host::runtime::Runtime;
use service_net::{new_dynamic, update, Net, Svc, APP};
use wasmtime::component::Component;

impl Svc for WasmService {
    fn feed(&mut self, input: ServiceInput) -> Step<Output> {
        self.handle(input).expect("the component handles input")
    }
}

fn component(rt: &Runtime) -> Component {
    load_engine(rt, None)
        .expect("load the built-in component")
        .0
}

fn config(i: u8, seed: u8) -> WasmConfig {
    WasmConfig {
        storage_key: [i + 1; 32],
        seed: [seed; 32],
        insecure_test_kdf: true,
        policy: hypergolix_core::service::Policy::default(),
    }
}

#[test]
fn two_agents_with_engines_under_wasmtime() {
    let rt = Runtime::new(None).expect("runtime");
    let comp = component(&rt);
    let mut svcs = Vec::new();
    let mut accounts = Vec::new();
    for i in 0..2u8 {
        let (mut svc, out) =
            WasmService::start(&rt, &comp, config(i, i + 10), Vec::new()).expect("start");
        assert!(out.is_empty(), "no account yet");
        // Agent 0 with its recovery words (they cross the WIT interface).
        let (step, words) = svc.create_account(b"pw", i == 0).expect("account");
        assert_eq!(
            words.map(|w| w.split(' ').count()),
            (i == 0).then_some(12),
            "twelve words, only when asked"
        );
        accounts.push(step);
        svcs.push(svc);
    }
    let mut net = Net::new(svcs, accounts);
    let bob = net.call_ghid(1, IpcRequest::Whoami);
    let api = ApiId([5; 65]);
    net.call(1, IpcRequest::RegisterApi(api));
    net.call(0, IpcRequest::SetToken(AppToken::NULL));
    let g = net.call_ghid(0, new_dynamic(api, b"from wasm"));
    net.call(
        0,
        IpcRequest::ShareObject {
            address: g,
            recipient: bob,
        },
    );
    assert_eq!(net.state_of(1, g), b"from wasm");
    net.call(0, update(g, b"updated"));
    assert!(net.was_pushed(1, g, b"updated"));

    // Throw Bob's instance away and start a new one from his store.
    let records: Vec<(Vec<u8>, Vec<u8>)> = net.stores[1]
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let (svc, out) = WasmService::start(&rt, &comp, config(1, 99), records).expect("restart");
    assert!(out
        .actions()
        .any(|o| matches!(o, Output::Ready { identity, .. } if *identity == bob)));
    net.svcs[1] = svc;
    net.node.disconnect(1);
    net.input(1, ServiceInput::ServerUp);
    net.input(1, ServiceInput::AppOpened(APP, GhidDialect::Native));
    net.run();
    assert_eq!(net.state_of(1, g), b"updated");
}
