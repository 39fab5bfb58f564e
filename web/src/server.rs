//! The connection to the persistence server: a gloo-net WebSocket carrying
//! the remote protocol's binary messages, reconnected with exponential
//! backoff (0.1 s doubling to 10 s) for as long as the engine runs. The
//! engine resends what is pending when the link comes back.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use futures_channel::mpsc::{unbounded, UnboundedSender};
use futures_util::future::{select, Either};
use futures_util::{SinkExt, StreamExt};
use gloo_net::websocket::futures::WebSocket;
use gloo_net::websocket::{Message, State};
use gloo_timers::future::sleep;

use crate::host::Event;

/// Shared with the host: set when the engine stops, so the link stops too.
pub type StopFlag = Rc<Cell<bool>>;

/// Keeps the engine connected to `url` until `stopped`.
pub async fn run(
    url: String,
    events: UnboundedSender<Event>,
    stopped: StopFlag,
    log: impl Fn(&str),
) {
    let mut wait = Duration::from_millis(100);
    while !stopped.get() {
        match WebSocket::open(&url) {
            Ok(mut ws) => {
                // Sending waits for the handshake; after it the socket is
                // either open or closed (refused, unreachable).
                let _ = futures_util::future::poll_fn(|cx| {
                    futures_util::Sink::<Message>::poll_ready(std::pin::Pin::new(&mut ws), cx)
                })
                .await;
                if matches!(ws.state(), State::Open) && !stopped.get() {
                    wait = Duration::from_millis(100);
                    let (tx, mut rx) = unbounded::<Vec<u8>>();
                    if events.unbounded_send(Event::ServerUp(tx)).is_err() {
                        return;
                    }
                    let (mut sink, mut stream) = ws.split();
                    loop {
                        match select(rx.next(), stream.next()).await {
                            Either::Left((Some(bytes), _)) => {
                                if sink.send(Message::Bytes(bytes)).await.is_err() {
                                    break;
                                }
                            }
                            // The engine let go of the link: it stopped.
                            Either::Left((None, _)) => break,
                            Either::Right((Some(Ok(Message::Bytes(b))), _)) => {
                                if events.unbounded_send(Event::ServerBytes(b)).is_err() {
                                    return;
                                }
                            }
                            // The remote protocol has no text messages.
                            Either::Right((Some(Ok(Message::Text(_))), _)) => {}
                            Either::Right((Some(Err(_)) | None, _)) => break,
                        }
                    }
                    if stopped.get() {
                        return;
                    }
                    log(&format!(
                        "lost the persistence server at {url}; reconnecting"
                    ));
                    if events.unbounded_send(Event::ServerDown).is_err() {
                        return;
                    }
                } else if !stopped.get() {
                    log(&format!(
                        "cannot reach the persistence server at {url}; retrying in {wait:?}"
                    ));
                }
            }
            Err(e) => {
                // A malformed URL: retrying will not help.
                log(&format!("bad persistence server URL {url:?}: {e}"));
                return;
            }
        }
        sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(10));
    }
}
