//! The smol driver loop: async-tungstenite over smol's `TcpStream` (futures-rustls for
//! `wss://`), smol timers, and a control channel. Used by `examples/smol_driver.rs` and
//! `tests/drivers.rs`.
#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use async_tungstenite::tungstenite::protocol::CloseFrame as WsCloseFrame;
use async_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};
use async_tungstenite::WebSocketStream;
use discord_gateway_proto::{CloseFrame, Message};
use futures_util::StreamExt;
use smol::channel::Receiver;
use smol::future::{or, pending, FutureExt as _};
use smol::net::TcpStream;
use smol::{Task, Timer};

use crate::common::{Action, Control, DriverCore, Summary, CLOSE_GRACE, SEND_TIMEOUT};

/// A plain or TLS byte stream.
trait Io: smol::io::AsyncRead + smol::io::AsyncWrite + Unpin + Send {}
impl<T: smol::io::AsyncRead + smol::io::AsyncWrite + Unpin + Send> Io for T {}

type Ws = WebSocketStream<Box<dyn Io>>;
type Connecting = Pin<Box<dyn Future<Output = Result<Ws, String>> + Send>>;

/// Opens a WebSocket (`ws://` or `wss://`): TCP, then TLS if asked, then the handshake.
async fn connect(url: String) -> Result<Ws, String> {
    let parsed = url::Url::parse(&url).map_err(|e| format!("bad URL {url}: {e}"))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| format!("no host in {url}"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let tls = match parsed.scheme() {
        "ws" => false,
        "wss" => true,
        other => return Err(format!("unsupported scheme {other} in {url}")),
    };
    let port = parsed.port().unwrap_or(if tls { 443 } else { 80 });
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("TCP connect to {host}:{port}: {e}"))?;
    let stream: Box<dyn Io> = if tls {
        let connector = futures_rustls::TlsConnector::from(crate::common::tls_config()?);
        let name = rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|e| format!("bad TLS server name {host}: {e}"))?;
        let tls = connector
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake with {host}: {e}"))?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    let (ws, _response) = async_tungstenite::client_async(url.as_str(), stream)
        .await
        .map_err(|e| e.to_string())?;
    Ok(ws)
}

/// What woke the loop (a transient value: its size does not matter).
#[allow(clippy::large_enum_variant)]
enum Wake {
    Connected(Result<Ws, String>),
    Message(Option<Result<WsMessage, WsError>>),
    Deadline,
    Control(Option<Control>),
}

async fn wait_connect(connecting: &mut Option<Connecting>) -> Wake {
    match connecting {
        Some(attempt) => Wake::Connected(attempt.await),
        None => pending().await,
    }
}

async fn wait_message(socket: &mut Option<Ws>) -> Wake {
    match socket {
        Some(ws) => Wake::Message(ws.next().await),
        None => pending().await,
    }
}

async fn wait_deadline(deadline: Option<Instant>) -> Wake {
    match deadline {
        Some(at) => {
            Timer::at(at).await;
            Wake::Deadline
        }
        None => pending().await,
    }
}

async fn wait_control(control: &Receiver<Control>, open: bool) -> Wake {
    if !open {
        return pending().await;
    }
    Wake::Control(control.recv().await.ok())
}

/// Runs the machine until it stops for good (a fatal close) or `control` says stop.
pub async fn run(mut core: DriverCore, control: Receiver<Control>) -> Summary {
    let mut connecting: Option<Connecting> = None;
    let mut socket: Option<Ws> = None;
    let mut closing: Vec<Task<()>> = Vec::new();
    let mut control_open = true;
    let mut actions = core.take_actions();
    loop {
        let mut queue = std::collections::VecDeque::from(std::mem::take(&mut actions));
        while let Some(action) = queue.pop_front() {
            match action {
                Action::Connect(url) => {
                    socket = None;
                    connecting = Some(Box::pin(connect(url)));
                }
                Action::Send(text) => {
                    let Some(ws) = socket.as_mut() else { continue };
                    let send = async { Some(ws.send(WsMessage::text(text)).await) };
                    let timed_out = async {
                        Timer::after(SEND_TIMEOUT).await;
                        None
                    };
                    let error = match send.or(timed_out).await {
                        Some(Ok(())) => continue,
                        Some(Err(e)) => e.to_string(),
                        None => "send timed out".to_string(),
                    };
                    socket = None;
                    queue.extend(core.failed("send failed", &error));
                }
                Action::Close(code, reason) => {
                    connecting = None;
                    if let Some(mut ws) = socket.take() {
                        // Send the close frame in the background, drop the socket.
                        closing.push(smol::spawn(async move {
                            let frame = WsCloseFrame {
                                code: WsCloseCode::from(code),
                                reason: reason.into(),
                            };
                            let close = async {
                                let _ = ws.close(Some(frame)).await;
                            };
                            close
                                .or(async {
                                    Timer::after(CLOSE_GRACE).await;
                                })
                                .await;
                        }));
                    }
                }
            }
        }
        if core.is_finished() {
            break;
        }
        let deadline = core.deadline();
        let wake = or(
            or(wait_connect(&mut connecting), wait_message(&mut socket)),
            or(
                wait_deadline(deadline),
                wait_control(&control, control_open),
            ),
        )
        .await;
        actions = match wake {
            Wake::Connected(result) => {
                connecting = None;
                match result {
                    Ok(ws) => {
                        socket = Some(ws);
                        core.connected()
                    }
                    Err(e) => core.failed("connection failed", &e),
                }
            }
            Wake::Message(message) => match message {
                Some(Ok(WsMessage::Text(text))) => core.message(Message::Text(text.as_str())),
                Some(Ok(WsMessage::Binary(bytes))) => core.message(Message::Binary(&bytes)),
                Some(Ok(WsMessage::Close(frame))) => {
                    socket = None;
                    let (code, reason) = match &frame {
                        Some(f) => (u16::from(f.code), f.reason.as_str()),
                        None => (1005, ""),
                    };
                    core.closed(Some(CloseFrame { code, reason }))
                }
                Some(Ok(_)) => Vec::new(),
                Some(Err(e)) => {
                    socket = None;
                    core.failed("connection error", &e)
                }
                None => {
                    socket = None;
                    core.closed(None)
                }
            },
            Wake::Deadline => core.timeout(),
            Wake::Control(Some(Control::Command(line))) => core.command(&line),
            Wake::Control(Some(Control::Stop)) => core.shutdown(),
            Wake::Control(None) => {
                control_open = false;
                Vec::new()
            }
        };
    }
    for task in closing {
        task.await;
    }
    core.finish()
}
