//! The blocking driver loop: std threads and tungstenite, no async runtime.
//!
//! One thread owns the machine and the socket and waits in the socket's read, with a read
//! timeout that ends at the machine's next deadline (capped at [`TICK`] so the control
//! channel is checked often). Connecting blocks, so each attempt runs on its own short-lived
//! thread and hands the socket back over a channel; an attempt the machine has given up on
//! is simply never read. Used by `examples/blocking_driver.rs` and `tests/drivers.rs`.
#![allow(dead_code)]

use std::io::ErrorKind;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use discord_gateway_proto::{CloseFrame, Message};
use tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tungstenite::protocol::CloseFrame as WsCloseFrame;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Connector, Error as WsError, Message as WsMessage, WebSocket};

use crate::common::{Action, Control, DriverCore, Summary, CLOSE_GRACE, SEND_TIMEOUT};

type Ws = WebSocket<MaybeTlsStream<TcpStream>>;

/// The longest the loop blocks before it looks at the control channel again.
pub const TICK: Duration = Duration::from_millis(50);

/// Opens a WebSocket (`ws://` or `wss://`), blocking for at most about `timeout`.
fn connect(url: &str, timeout: Duration) -> Result<Ws, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("bad URL {url}: {e}"))?;
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
    let addrs = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?;
    let mut last = format!("no address for {host}");
    let mut tcp = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => {
                tcp = Some(stream);
                break;
            }
            Err(e) => last = format!("TCP connect to {addr}: {e}"),
        }
    }
    let tcp = tcp.ok_or(last)?;
    let setup = tcp
        .set_read_timeout(Some(timeout))
        .and_then(|()| tcp.set_write_timeout(Some(SEND_TIMEOUT)))
        .and_then(|()| tcp.set_nodelay(true));
    setup.map_err(|e| format!("socket setup: {e}"))?;
    let connector = if tls {
        Connector::Rustls(crate::common::tls_config()?)
    } else {
        Connector::Plain
    };
    let (ws, _response) = tungstenite::client_tls_with_config(url, tcp, None, Some(connector))
        .map_err(|e| e.to_string())?;
    Ok(ws)
}

fn tcp(ws: &mut Ws) -> &mut TcpStream {
    match ws.get_mut() {
        MaybeTlsStream::Plain(tcp) => tcp,
        MaybeTlsStream::Rustls(tls) => &mut tls.sock,
        _ => unreachable!("only plain and rustls streams are built here"),
    }
}

/// Runs the machine until it stops for good (a fatal close) or `control` says stop.
pub fn run(mut core: DriverCore, control: Receiver<Control>) -> Summary {
    let connect_timeout = core.machine().config().timeouts.connect;
    let mut connecting: Option<Receiver<Result<Ws, String>>> = None;
    let mut socket: Option<Ws> = None;
    let mut control_open = true;
    let mut actions = core.take_actions();
    loop {
        let mut queue = std::collections::VecDeque::from(std::mem::take(&mut actions));
        while let Some(action) = queue.pop_front() {
            match action {
                Action::Connect(url) => {
                    socket = None;
                    let (tx, rx) = mpsc::channel();
                    std::thread::spawn(move || {
                        // If the machine gave up on this attempt, nobody reads this.
                        let _ = tx.send(connect(&url, connect_timeout));
                    });
                    connecting = Some(rx);
                }
                Action::Send(text) => {
                    let Some(ws) = socket.as_mut() else { continue };
                    if let Err(e) = ws.send(WsMessage::text(text)) {
                        socket = None;
                        queue.extend(core.failed("send failed", &e));
                    }
                }
                Action::Close(code, reason) => {
                    connecting = None;
                    if let Some(mut ws) = socket.take() {
                        // Send the close frame (briefly blocking at most), then drop.
                        let _ = tcp(&mut ws).set_write_timeout(Some(CLOSE_GRACE));
                        let frame = WsCloseFrame {
                            code: WsCloseCode::from(code),
                            reason: reason.into(),
                        };
                        let _ = ws.close(Some(frame)).and_then(|()| ws.flush());
                    }
                }
            }
        }
        if core.is_finished() {
            break;
        }

        // One input: a control message, the deadline, a socket event, or nothing yet.
        if control_open {
            match control.try_recv() {
                Ok(Control::Command(line)) => {
                    actions = core.command(&line);
                    continue;
                }
                Ok(Control::Stop) => {
                    actions = core.shutdown();
                    continue;
                }
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => control_open = false,
            }
        }
        #[allow(clippy::disallowed_methods)] // the driver owns the clock
        let now = Instant::now();
        let wait = match core.deadline() {
            Some(deadline) if deadline <= now => {
                actions = core.timeout();
                continue;
            }
            Some(deadline) => (deadline - now).min(TICK),
            None => TICK,
        };
        if let Some(ws) = socket.as_mut() {
            if let Err(e) = tcp(ws).set_read_timeout(Some(wait)) {
                socket = None;
                actions = core.failed("socket error", &e);
                continue;
            }
            actions = match ws.read() {
                Ok(WsMessage::Text(text)) => core.message(Message::Text(text.as_str())),
                Ok(WsMessage::Binary(bytes)) => core.message(Message::Binary(&bytes)),
                Ok(WsMessage::Close(frame)) => {
                    socket = None;
                    let (code, reason) = match &frame {
                        Some(f) => (u16::from(f.code), f.reason.as_str()),
                        None => (1005, ""),
                    };
                    core.closed(Some(CloseFrame { code, reason }))
                }
                Ok(_) => Vec::new(),
                // The read timeout: nothing arrived in time (the frame, if partial, stays
                // buffered in tungstenite).
                Err(WsError::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    Vec::new()
                }
                Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => {
                    socket = None;
                    core.closed(None)
                }
                Err(e) => {
                    socket = None;
                    core.failed("connection error", &e)
                }
            };
        } else if let Some(attempt) = &connecting {
            actions = match attempt.recv_timeout(wait) {
                Ok(Ok(ws)) => {
                    connecting = None;
                    socket = Some(ws);
                    core.connected()
                }
                Ok(Err(e)) => {
                    connecting = None;
                    core.failed("connection failed", &e)
                }
                Err(RecvTimeoutError::Timeout) => Vec::new(),
                Err(RecvTimeoutError::Disconnected) => {
                    connecting = None;
                    core.failed("connection failed", &"the connecting thread died")
                }
            };
        } else {
            std::thread::sleep(wait);
        }
    }
    core.finish()
}
