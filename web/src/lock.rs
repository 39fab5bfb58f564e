//! One engine per database: an exclusive Web Lock (`navigator.locks`) named
//! after the database, held while the engine runs. A second tab or worker
//! opening the same database is refused instead of running a second engine
//! on the same records (which would publish conflicting frames and
//! overwrite each other's outbox). Where there are no Web Locks (Node), an
//! engine on IndexedDB is not possible anyway, and memory stores are never
//! shared.

use futures_channel::oneshot;
use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;

use crate::error::{Result, WebError};

/// A held lock: released by [`DbLock::release`] (or, without waiting for
/// the browser to take it back, when dropped).
#[derive(Debug)]
pub struct DbLock {
    release: Option<Function>,
    /// Settles once the browser has taken the lock back.
    done: Promise,
}

impl DbLock {
    /// Lets the lock go and waits until another `acquire` can have it.
    pub async fn release(mut self) {
        self.let_go();
        let _ = wasm_bindgen_futures::JsFuture::from(self.done.clone()).await;
    }

    fn let_go(&mut self) {
        if let Some(f) = self.release.take() {
            // Resolving a promise's resolve function cannot throw.
            let _ = f.call0(&JsValue::UNDEFINED);
        }
    }
}

impl Drop for DbLock {
    fn drop(&mut self) {
        self.let_go();
    }
}

/// Takes the lock of database `name` if no one holds it. `Ok(None)`: this
/// platform has no Web Locks.
pub async fn acquire(name: &str) -> Result<Option<DbLock>> {
    let global = js_sys::global();
    let navigator = Reflect::get(&global, &"navigator".into()).map_err(|e| WebError::js(&e))?;
    if navigator.is_undefined() || navigator.is_null() {
        return Ok(None);
    }
    let locks = Reflect::get(&navigator, &"locks".into()).map_err(|e| WebError::js(&e))?;
    if locks.is_undefined() || locks.is_null() {
        return Ok(None);
    }
    let request: Function = Reflect::get(&locks, &"request".into())
        .map_err(|e| WebError::js(&e))?
        .dyn_into()
        .map_err(|_| WebError::Js("navigator.locks.request is not a function".into()))?;

    // The lock is held while the promise the callback returns is pending:
    // that promise resolves when `DbLock` lets go.
    let mut release: Option<Function> = None;
    let held = Promise::new(&mut |resolve, _reject| release = Some(resolve));
    let (granted_tx, granted_rx) = oneshot::channel::<bool>();
    let callback = Closure::once_into_js(move |lock: JsValue| -> JsValue {
        let granted = !lock.is_null();
        let _ = granted_tx.send(granted);
        if granted {
            held.into()
        } else {
            JsValue::UNDEFINED
        }
    });
    let options = Object::new();
    Reflect::set(&options, &"ifAvailable".into(), &JsValue::TRUE).map_err(|e| WebError::js(&e))?;
    let done: Promise = request
        .call3(
            &locks,
            &format!("hypergolix:{name}").into(),
            &options,
            &callback,
        )
        .map_err(|e| WebError::js(&e))?
        .dyn_into()
        .map_err(|_| WebError::Js("navigator.locks.request did not return a promise".into()))?;
    match granted_rx.await {
        Ok(true) => Ok(Some(DbLock { release, done })),
        Ok(false) => Err(WebError::InUse(name.into())),
        Err(_) => Err(WebError::Js(
            "the Web Lock callback was never called".into(),
        )),
    }
}
