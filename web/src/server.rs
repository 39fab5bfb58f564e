//! The connection to the persistence server: a gloo-net WebSocket carrying
//! the remote protocol's binary messages, reconnected with exponential
//! backoff (0.1 s doubling to 10 s) for as long as the engine runs. The
//! engine resends what is pending when the link comes back. The link ends
//! as soon as its [`Stop`] is sent or dropped, whatever it is waiting for
//! (so a closed engine leaves no timer or socket behind).

use std::time::Duration;

use futures_channel::mpsc::{unbounded, UnboundedSender};
use futures_channel::oneshot;
use futures_util::future::{select, Either};
use futures_util::{SinkExt, StreamExt};
use gloo_net::websocket::futures::WebSocket;
use gloo_net::websocket::{Message, State};
use gloo_timers::future::sleep;
use hypergolix_core::wire::remote::PUSH_CONTAINERS_SUBPROTOCOL;

use crate::host::Event;

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
        let opened = if offer {
            WebSocket::open_with_protocol(&url, PUSH_CONTAINERS_SUBPROTOCOL)
        } else {
            WebSocket::open(&url)
        };
        let mut ws = match opened {
            Ok(ws) => ws,
            Err(e) => {
                // A malformed URL: retrying will not help.
                log(&format!("bad persistence server URL {url:?}: {e}"));
                return;
            }
        };
        // Sending waits for the handshake; after it the socket is either
        // open or closed (refused, unreachable).
        let handshake = futures_util::future::poll_fn(|cx| {
            futures_util::Sink::<Message>::poll_ready(std::pin::Pin::new(&mut ws), cx)
        });
        if let Either::Right(_) = select(Box::pin(handshake), &mut stop).await {
            return;
        }
        if matches!(ws.state(), State::Open) {
            wait = Duration::from_millis(100);
            let (tx, mut rx) = unbounded::<Vec<u8>>();
            if events.unbounded_send(Event::ServerUp(tx)).is_err() {
                return;
            }
            let (mut sink, mut stream) = ws.split();
            loop {
                let next = select(rx.next(), stream.next());
                match select(next, &mut stop).await {
                    Either::Right(_) => return,
                    Either::Left((Either::Left((Some(bytes), _)), _)) => {
                        if sink.send(Message::Bytes(bytes)).await.is_err() {
                            break;
                        }
                    }
                    // The engine let go of the link: it stopped.
                    Either::Left((Either::Left((None, _)), _)) => return,
                    Either::Left((Either::Right((Some(Ok(Message::Bytes(b))), _)), _)) => {
                        if events.unbounded_send(Event::ServerBytes(b)).is_err() {
                            return;
                        }
                    }
                    // The remote protocol has no text messages.
                    Either::Left((Either::Right((Some(Ok(Message::Text(_))), _)), _)) => {}
                    Either::Left((Either::Right((Some(Err(_)) | None, _)), _)) => break,
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
                "cannot reach the persistence server at {url}; retrying in {wait:?}"
            ));
        }
        if let Either::Right(_) = select(Box::pin(sleep(wait)), &mut stop).await {
            return;
        }
        wait = (wait * 2).min(Duration::from_secs(10));
    }
}
