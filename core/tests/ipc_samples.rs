//! The IPC codec against the messages captured from the original Hypergolix
//! 0.1.0 (`tests/interop/ipc-samples`, one hex file per websocket message):
//! every message decodes with the right direction, to the right command, and
//! re-encodes byte for byte.

use std::path::PathBuf;

use hypergolix_core::engine::{AppReply, AppRequest};
use hypergolix_core::wire::ipc::{
    reply_body, to_app_request, IpcErrorCode, IpcMessage, IpcRequest, Side, WireObjDef,
};

fn samples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/interop/ipc-samples")
}

fn samples() -> Vec<(String, Vec<u8>)> {
    let dir = samples_dir();
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the 0.1.0 IPC samples must be at {}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "hex"))
        .map(|p| {
            let name = p.file_name().expect("name").to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&p).expect("read");
            (name, hex::decode(text.trim()).expect("hex"))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_captured_message_round_trips() {
    let all = samples();
    assert!(
        all.len() >= 90,
        "expected the whole capture, found {}",
        all.len()
    );
    let mut requests = 0;
    for (name, bytes) in &all {
        let side = if name.contains("_l2s_") {
            Side::Link
        } else {
            Side::Service
        };
        let m = IpcMessage::decode(side, bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(&m.encode(), bytes, "{name} re-encodes byte for byte");
        if let IpcMessage::Request { request, .. } = &m {
            requests += 1;
            let code = request.code();
            let code_in_name = name.split('_').nth(3).expect("code in name");
            let expected: String = code
                .iter()
                .map(|b| {
                    if b.is_ascii_alphanumeric() {
                        char::from(*b).to_string()
                    } else {
                        format!("{b:02x}")
                    }
                })
                .collect();
            assert_eq!(code_in_name, expected, "{name}");
            if side == Side::Link {
                assert!(
                    to_app_request(request.clone()).is_some(),
                    "{name} maps to an engine request"
                );
            }
        }
    }
    assert!(requests > 40);
}

fn sample(prefix: &str) -> Vec<u8> {
    samples()
        .into_iter()
        .find(|(n, _)| n.starts_with(prefix))
        .unwrap_or_else(|| panic!("sample {prefix}"))
        .1
}

#[test]
fn requests_map_onto_the_engine_and_replies_are_shaped_as_in_0_1_0() {
    // +O from the capture: a dynamic object, legroom 7, 64-byte state.
    let IpcMessage::Request { request, .. } =
        IpcMessage::decode(Side::Link, &sample("0011_")).expect("decode")
    else {
        panic!("request")
    };
    let Some(AppRequest::New(n)) = to_app_request(request) else {
        panic!("new")
    };
    assert!(n.dynamic && !n.private && n.legroom == 7 && n.state.len() == 64);

    // The service's answer to >O (0025) is an objdef with legroom 0: our
    // reply body for the same object is byte-identical.
    let IpcMessage::Ack { body, .. } =
        IpcMessage::decode(Side::Service, &sample("0025_")).expect("decode")
    else {
        panic!("ack")
    };
    let o = WireObjDef::parse(*b"AK", &body).expect("objdef");
    let def = hypergolix_core::engine::ObjDef {
        address: o.address.expect("address"),
        author: o.author.expect("author"),
        api_id: o.api_id.expect("api"),
        private: o.private,
        dynamic: o.dynamic,
        owned: false,
        legroom: 7,
        is_link: o.is_link,
        state: o.state.clone(),
    };
    assert_eq!(reply_body(&AppReply::Object(def)), body);

    // An update from the link carries address and state only.
    let IpcMessage::Request { request, .. } =
        IpcMessage::decode(Side::Link, &sample("0029_")).expect("decode")
    else {
        panic!("request")
    };
    assert!(matches!(request, IpcRequest::UpdateObject(_)));
    assert!(matches!(
        to_app_request(request),
        Some(AppRequest::Update { .. })
    ));
}

#[test]
fn unknown_codes_and_bad_bodies() {
    let m = IpcMessage::decode(Side::Link, &[0, 0, b'Z', b'Z', 0, 9]).expect("decode");
    assert_eq!(
        m,
        IpcMessage::Unknown {
            token: 9,
            code: *b"ZZ"
        }
    );
    // 0.1.0 answers with NK 0000 b'ZZ'.
    assert_eq!(
        IpcMessage::unknown_code_nak(9, *b"ZZ").encode(),
        [&[0, 0, b'N', b'K', 0, 9, 0, 0][..], b"b'ZZ'"].concat()
    );
    // A whoami with a body, a truncated GHID, a bad boolean: errors, no panic.
    assert!(IpcMessage::decode(Side::Link, &[0, 0, b'?', b'I', 0, 1, 7]).is_err());
    assert!(IpcMessage::decode(Side::Link, &[0, 0, b'>', b'O', 0, 1, 1, 2]).is_err());
    let mut objdef = vec![0u8; 200];
    objdef[131] = 2;
    let mut msg = vec![0, 0, b'+', b'O', 0, 1];
    msg.extend_from_slice(&objdef);
    assert!(IpcMessage::decode(Side::Link, &msg).is_err());
    // A bad version is an error (the service drops it, as 0.1.0 does).
    assert!(IpcMessage::decode(Side::Link, &[0, 1, b'?', b'I', 0, 1]).is_err());
    assert_eq!(IpcErrorCode::from_u16(0xffff), IpcErrorCode::IpcError);
}
