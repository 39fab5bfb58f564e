//! The connection to the persistence server: a WebSocket ([`crate::socket`]) carrying
//! the remote protocol's binary messages, reconnected with exponential
//! backoff (0.1 s doubling to 10 s) for as long as the engine runs. The
//! engine resends what is pending when the link comes back. The link ends
//! as soon as its [`Stop`] is sent or dropped, whatever it is waiting for
//! (so a closed engine leaves no timer or socket behind).

use std::time::Duration;

use futures_channel::mpsc::{unbounded, UnboundedSender};
use futures_channel::oneshot;
use futures_util::future::{select, Either};
use futures_util::StreamExt;
use gloo_timers::future::sleep;
use hypergolix_core::wire::remote::PUSH_CONTAINERS_SUBPROTOCOL;

use crate::host::Event;
use crate::socket::{Socket, SocketEvent};

/// Held by the host: sending on it, or dropping it, ends the link.
pub type Stop = oneshot::Sender<()>;

/// Keeps the engine connected to `url` until `stop` fires.
pub async fn run(
    url: String,
    events: UnboundedSender<Event>,
    mut stop: oneshot::Receiver<()>,
    log: impl Fn(&str),
) {
    let mut wait = Duration::from_millis(100);
    // Offering the subprotocol asks for frames' containers with the frames
    // (`!C`): one fetch fewer per update. A browser fails the handshake of
    // a server that does not answer the offer (an older server): a failed
    // attempt with the offer is tried again at once without it, and a
    // server reached without it is not offered it again while it stays
    // reachable.
    let mut offer = true;
    loop {
        let protocol = offer.then_some(PUSH_CONTAINERS_SUBPROTOCOL);
        let mut ws = match Socket::open(&url, protocol) {
            Ok(ws) => ws,
            Err(e) => {
                // A malformed URL: retrying will not help.
                log(&format!("bad persistence server URL \"{url}\": {e}"));
                return;
            }
        };
        // The first event says whether the handshake completed: the socket
        // is then either open or closed (refused, unreachable).
        let opened = match select(Box::pin(ws.next()), &mut stop).await {
            Either::Right(_) => return,
            Either::Left((ev, _)) => matches!(ev, Some(SocketEvent::Open)),
        };
        if opened {
            wait = Duration::from_millis(100);
            let (tx, mut rx) = unbounded::<Vec<u8>>();
            if events.unbounded_send(Event::ServerUp(tx)).is_err() {
                return;
            }
            loop {
                let next = {
                    let both = select(rx.next(), Box::pin(ws.next()));
                    match select(both, &mut stop).await {
                        Either::Right(_) => return,
                        Either::Left((Either::Left((out, _)), _)) => Either::Left(out),
                        Either::Left((Either::Right((ev, _)), _)) => Either::Right(ev),
                    }
                };
                match next {
                    Either::Left(Some(bytes)) => {
                        if ws.send(&bytes).is_err() {
                            break;
                        }
                    }
                    // The engine let go of the link: it stopped.
                    Either::Left(None) => return,
                    Either::Right(Some(SocketEvent::Bytes(b))) => {
                        if events.unbounded_send(Event::ServerBytes(b)).is_err() {
                            return;
                        }
                    }
                    // The remote protocol has no text messages.
                    Either::Right(Some(SocketEvent::Text | SocketEvent::Open)) => {}
                    Either::Right(Some(SocketEvent::Closed) | None) => break,
                }
            }
            log(&format!(
                "lost the persistence server at {url}; reconnecting"
            ));
            if events.unbounded_send(Event::ServerDown).is_err() {
                return;
            }
        } else if offer {
            offer = false;
            continue;
        } else {
            offer = true;
            log(&format!(
                "cannot reach the persistence server at {url}; retrying in {} ms",
                wait.as_millis()
            ));
        }
        if let Either::Right(_) = select(Box::pin(sleep(wait)), &mut stop).await {
            return;
        }
        wait = (wait * 2).min(Duration::from_secs(10));
    }
}
