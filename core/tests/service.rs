//! The local service core driven by IPC bytes, as the 0.1.0 link sends
//! them: two agents' services and one persistence node, in one process.

#[path = "support/service_net.rs"]
mod service_net;

use hypergolix_core::engine::{ApiId, AppToken, Engine, EngineConfig, KdfParams};
use hypergolix_core::service::Service;
use hypergolix_core::wire::ipc::{IpcErrorCode, IpcMessage, IpcRequest};
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
