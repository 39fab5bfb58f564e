//! The IPC decoder (what the local service reads from any app, and a link
//! reads from a service): never panics, in either direction; decoded
//! requests re-encode to exactly the input, and objdefs round-trip.
#![no_main]

use hypergolix_core::wire::ipc::{to_app_request, IpcMessage, Side, WireObjDef};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for side in [Side::Link, Side::Service] {
        if let Ok(m) = IpcMessage::decode(side, data) {
            if let IpcMessage::Request { request, .. } = &m {
                assert_eq!(m.encode(), data);
                let _ = to_app_request(request.clone());
            }
        }
    }
    if let Ok(o) = WireObjDef::parse(*b"+O", data) {
        assert_eq!(WireObjDef::parse(*b"+O", &o.to_bytes()).ok(), Some(o));
    }
});
