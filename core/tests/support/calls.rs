//! App requests and answers the engine tests share (`engine.rs`,
//! `revocation.rs`): the default api_id, a new object, and unwrapping
//! answers.
#![allow(dead_code)]

use hypergolix_core::engine::{ApiId, AppPush, AppReply, AppRequest, NewObject, ObjDef};
use hypergolix_core::golix::Ghid;
use hypergolix_core::Error;

use super::sim::World;

pub fn api() -> ApiId {
    ApiId::default_bytes()
}

pub fn new_obj(dynamic: bool, state: &[u8]) -> AppRequest {
    AppRequest::New(NewObject {
        api_id: api(),
        private: false,
        dynamic,
        legroom: 0,
        is_link: false,
        state: state.to_vec(),
    })
}

pub fn ghid(r: Result<AppReply, Error>) -> Ghid {
    match r {
        Ok(AppReply::Ghid(g)) => g,
        other => panic!("expected a GHID, got {other:?}"),
    }
}

pub fn object(r: Result<AppReply, Error>) -> ObjDef {
    match r {
        Ok(AppReply::Object(o)) => o,
        other => panic!("expected an object, got {other:?}"),
    }
}

/// Every state device `d`'s app was pushed for `g`, in order.
pub fn updates(w: &World, d: usize, g: &Ghid) -> Vec<Vec<u8>> {
    w.devices[d]
        .pushes
        .iter()
        .filter_map(|(_, p)| match p {
            AppPush::Update(o) if o.address == *g => Some(o.state.clone()),
            _ => None,
        })
        .collect()
}
