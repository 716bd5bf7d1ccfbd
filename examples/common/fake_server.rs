//! A fake Discord gateway on loopback: a real WebSocket server (tokio-tungstenite) whose
//! behaviour is the crate's sans-IO [`FakeGateway`] (feature `sim`). It listens on two ports,
//! the main gateway and the resume gateway (READY's `resume_gateway_url`), so a resume to
//! the wrong URL shows.
//!
//! A connection request is decided by the fake before the WebSocket handshake: the server
//! peeks at the HTTP request line for the URL, asks the fake, and only then accepts (or
//! drops the TCP connection, which the client sees as a failed connect).
//!
//! Transport compression is the adapter's job (the fake speaks JSON text): a connection
//! whose URL asks for `compress=zlib-stream` or `compress=zstd-stream` gets every message as
//! a binary frame from one compression stream per connection, flushed (never finished) after
//! each message, as Discord does.
//!
//! Used by the demo and `tests/drivers.rs`. Loopback only.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use discord_gateway_proto::sim::{ConnectionId, FakeGateway, ServerAction};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, timeout};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame as WsCloseFrame;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::common::{Clock, Sink};

/// Two bound loopback ports, before serving: their URLs are needed to script the fake.
pub struct Ports {
    main: TcpListener,
    resume: TcpListener,
    /// `ws://127.0.0.1:PORT` of the main gateway.
    pub main_url: String,
    /// `ws://127.0.0.1:PORT` of the resume gateway.
    pub resume_url: String,
}

/// Binds the two ports on 127.0.0.1.
pub async fn bind() -> std::io::Result<Ports> {
    let main = TcpListener::bind("127.0.0.1:0").await?;
    let resume = TcpListener::bind("127.0.0.1:0").await?;
    let main_url = format!("ws://{}", main.local_addr()?);
    let resume_url = format!("ws://{}", resume.local_addr()?);
    Ok(Ports {
        main,
        resume,
        main_url,
        resume_url,
    })
}

/// A running fake server.
pub struct FakeServer {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<FakeGateway>,
}

impl FakeServer {
    /// Stops serving (dropping every connection) and returns the fake, for its records
    /// (frames received, connections, violations).
    pub async fn stop(mut self) -> Option<FakeGateway> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.ok()
    }
}

/// What the socket tasks tell the server.
enum Inbound {
    /// A new TCP connection asked for `url`.
    Request { url: String, tcp: TcpStream },
    /// A text message from the client.
    Text(ConnectionId, String),
    /// The client closed (with a code) or the connection failed (`None`).
    Closed(ConnectionId, Option<u16>),
}

/// What the server tells one connection's task.
enum Outbound {
    Text(String),
    Binary(Vec<u8>),
    Close(u16, String),
    Drop,
}

impl Ports {
    /// Serves `gateway` (its resume URL is set to the second port). `log` gets one line per
    /// thing the server does or receives; `clock` is the time base of the log and the fake.
    pub fn serve(self, mut gateway: FakeGateway, clock: Clock, log: Option<Sink>) -> FakeServer {
        gateway.config_mut().resume_url = self.resume_url.clone();
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(serve(self, gateway, clock, log, stopped));
        FakeServer {
            stop: Some(stop),
            task,
        }
    }
}

/// Accepts TCP connections on `listener` and hands them to the server with their URL.
fn accept_loop(listener: TcpListener, base: String, inbound: mpsc::UnboundedSender<Inbound>) {
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let inbound = inbound.clone();
            let base = base.clone();
            tokio::spawn(async move {
                if let Some(target) = request_target(&tcp).await {
                    let url = format!("{base}{target}");
                    let _ = inbound.send(Inbound::Request { url, tcp });
                }
            });
        }
    });
}

/// The request target (`/?v=10&encoding=json`) of the HTTP request waiting on `tcp`, read
/// without consuming it (the WebSocket handshake reads it again).
async fn request_target(tcp: &TcpStream) -> Option<String> {
    let mut buf = [0u8; 2048];
    for _ in 0..200 {
        let n = tcp.peek(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        let head = &buf[..n];
        if let Some(end) = head.windows(2).position(|w| w == b"\r\n") {
            let line = std::str::from_utf8(&head[..end]).ok()?;
            return line.split(' ').nth(1).map(str::to_string);
        }
        if n == buf.len() {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

/// The transport compression of one connection, as its URL asked.
enum Compressor {
    None,
    #[cfg(feature = "zlib-stream")]
    Zlib(flate2::write::ZlibEncoder<Vec<u8>>),
    #[cfg(feature = "zstd-stream")]
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
}

impl Compressor {
    fn for_url(url: &str) -> Compressor {
        let query = url.split_once('?').map_or("", |(_, q)| q);
        match query.split('&').find_map(|kv| kv.strip_prefix("compress=")) {
            #[cfg(feature = "zlib-stream")]
            Some("zlib-stream") => Compressor::Zlib(flate2::write::ZlibEncoder::new(
                Vec::new(),
                flate2::Compression::default(),
            )),
            #[cfg(feature = "zstd-stream")]
            Some("zstd-stream") => match zstd::stream::write::Encoder::new(Vec::new(), 3) {
                Ok(encoder) => Compressor::Zstd(encoder),
                Err(_) => Compressor::None,
            },
            _ => Compressor::None,
        }
    }

    /// The message as it goes on the wire: text as is, or the compressed bytes of this
    /// message (the stream flushed, not finished).
    fn encode(&mut self, text: String) -> WsMessage {
        #[cfg(any(feature = "zlib-stream", feature = "zstd-stream"))]
        use std::io::Write;
        match self {
            Compressor::None => WsMessage::text(text),
            #[cfg(feature = "zlib-stream")]
            Compressor::Zlib(encoder) => {
                // flush() is a zlib sync flush: the bytes end with 00 00 ff ff.
                let _ = encoder
                    .write_all(text.as_bytes())
                    .and_then(|()| encoder.flush());
                WsMessage::binary(std::mem::take(encoder.get_mut()))
            }
            #[cfg(feature = "zstd-stream")]
            Compressor::Zstd(encoder) => {
                let _ = encoder
                    .write_all(text.as_bytes())
                    .and_then(|()| encoder.flush());
                WsMessage::binary(std::mem::take(encoder.get_mut()))
            }
        }
    }
}

/// One accepted connection: the WebSocket handshake, then messages both ways until either
/// side ends it.
async fn connection(
    id: ConnectionId,
    tcp: TcpStream,
    mut compressor: Compressor,
    mut outbound: mpsc::UnboundedReceiver<Outbound>,
    inbound: mpsc::UnboundedSender<Inbound>,
) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
        let _ = inbound.send(Inbound::Closed(id, None));
        return;
    };
    loop {
        tokio::select! {
            out = outbound.recv() => match out {
                Some(Outbound::Text(text)) => {
                    if ws.send(compressor.encode(text)).await.is_err() {
                        let _ = inbound.send(Inbound::Closed(id, None));
                        return;
                    }
                }
                Some(Outbound::Binary(bytes)) => {
                    if ws.send(WsMessage::binary(bytes)).await.is_err() {
                        let _ = inbound.send(Inbound::Closed(id, None));
                        return;
                    }
                }
                Some(Outbound::Close(code, reason)) => {
                    let frame = WsCloseFrame { code: WsCloseCode::from(code), reason: reason.into() };
                    let _ = timeout(Duration::from_secs(1), ws.close(Some(frame))).await;
                    return;
                }
                // Drop the TCP connection with no close frame.
                Some(Outbound::Drop) | None => return,
            },
            message = ws.next() => match message {
                Some(Ok(WsMessage::Text(text))) => {
                    let _ = inbound.send(Inbound::Text(id, text.as_str().to_string()));
                }
                Some(Ok(WsMessage::Close(frame))) => {
                    let _ = inbound.send(Inbound::Closed(id, frame.map(|f| u16::from(f.code))));
                    return;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    let _ = inbound.send(Inbound::Closed(id, None));
                    return;
                }
            },
        }
    }
}

async fn serve(
    ports: Ports,
    mut gateway: FakeGateway,
    clock: Clock,
    mut log: Option<Sink>,
    mut stopped: oneshot::Receiver<()>,
) -> FakeGateway {
    let (inbound_tx, mut inbound) = mpsc::unbounded_channel();
    accept_loop(ports.main, ports.main_url.clone(), inbound_tx.clone());
    accept_loop(ports.resume, ports.resume_url.clone(), inbound_tx.clone());
    let mut waiting: BTreeMap<ConnectionId, (TcpStream, String)> = BTreeMap::new();
    let mut open: BTreeMap<ConnectionId, mpsc::UnboundedSender<Outbound>> = BTreeMap::new();
    let mut say = |text: &str| {
        if let Some(log) = log.as_mut() {
            log(clock.now(), text);
        }
    };
    loop {
        // Carry out what the fake decided.
        while let Some(output) = gateway.poll_output() {
            let id = output.connection;
            match output.action {
                ServerAction::Accept => {
                    if let Some((tcp, url)) = waiting.remove(&id) {
                        let (tx, rx) = mpsc::unbounded_channel();
                        open.insert(id, tx);
                        let compressor = Compressor::for_url(&url);
                        tokio::spawn(connection(id, tcp, compressor, rx, inbound_tx.clone()));
                        say(&format!("#{} accepted", id.0));
                    }
                }
                ServerAction::Refuse => {
                    waiting.remove(&id);
                    say(&format!("#{} refused", id.0));
                }
                ServerAction::Text(text) => {
                    say(&format!("#{} → {}", id.0, describe_server_frame(&text)));
                    if let Some(tx) = open.get(&id) {
                        let _ = tx.send(Outbound::Text(text));
                    }
                }
                ServerAction::TextBytes(bytes) => {
                    say(&format!("#{} → {} raw bytes", id.0, bytes.len()));
                    if let Some(tx) = open.get(&id) {
                        let text = String::from_utf8_lossy(&bytes).into_owned();
                        let _ = tx.send(Outbound::Text(text));
                    }
                }
                ServerAction::Binary(bytes) => {
                    say(&format!("#{} → {} binary bytes", id.0, bytes.len()));
                    if let Some(tx) = open.get(&id) {
                        let _ = tx.send(Outbound::Binary(bytes));
                    }
                }
                ServerAction::Close { code, reason } => {
                    say(&format!("#{} closes with {code} {reason}", id.0));
                    if let Some(tx) = open.remove(&id) {
                        let _ = tx.send(Outbound::Close(code, reason));
                    }
                }
                ServerAction::Drop => {
                    say(&format!("#{} drops the TCP connection", id.0));
                    if let Some(tx) = open.remove(&id) {
                        let _ = tx.send(Outbound::Drop);
                    }
                }
                other => say(&format!("#{} unsupported action {other:?}", id.0)),
            }
        }
        let deadline = gateway.poll_timeout().map(|t| clock.instant(t));
        let sleep = async {
            match deadline {
                Some(at) => sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = &mut stopped => break,
            () = sleep => gateway.handle_timeout(clock.now()),
            message = inbound.recv() => match message {
                Some(Inbound::Request { url, tcp }) => {
                    let id = gateway.handle_connect(clock.now(), &url);
                    say(&format!("#{} connection request {url}", id.0));
                    waiting.insert(id, (tcp, url));
                }
                Some(Inbound::Text(id, text)) => {
                    say(&format!("#{} ← {}", id.0, describe_client_frame(&text)));
                    gateway.handle_text(clock.now(), id, &text);
                }
                Some(Inbound::Closed(id, code)) => {
                    if open.remove(&id).is_some() {
                        match code {
                            Some(code) => say(&format!("#{} client closed with {code}", id.0)),
                            None => say(&format!("#{} client went away", id.0)),
                        }
                    }
                    gateway.handle_close(clock.now(), id, code);
                }
                None => break,
            },
        }
    }
    for (_, tx) in std::mem::take(&mut open) {
        let _ = tx.send(Outbound::Drop);
    }
    gateway
}

fn opcode_name(op: u64) -> &'static str {
    match op {
        0 => "Dispatch",
        1 => "Heartbeat",
        2 => "Identify",
        3 => "Presence Update",
        4 => "Voice State Update",
        6 => "Resume",
        7 => "Reconnect",
        8 => "Request Guild Members",
        9 => "Invalid Session",
        10 => "Hello",
        11 => "Heartbeat ACK",
        31 => "Request Soundboard Sounds",
        43 => "Request Channel Info",
        _ => "unknown opcode",
    }
}

/// A short description of a frame the server sends.
pub fn describe_server_frame(text: &str) -> String {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
        return format!("{} bytes of non-JSON", text.len());
    };
    let op = value.get("op").and_then(|v| v.as_u64()).unwrap_or(u64::MAX);
    match op {
        0 => format!(
            "dispatch #{} {}",
            value.get("s").and_then(|v| v.as_u64()).unwrap_or(0),
            value.get("t").and_then(|v| v.as_str()).unwrap_or("?")
        ),
        9 => format!("op 9 Invalid Session (d: {})", value["d"]),
        10 => format!(
            "op 10 Hello (heartbeat every {} ms)",
            value["d"]["heartbeat_interval"]
        ),
        _ => format!("op {op} {}", opcode_name(op)),
    }
}

/// A short description of a frame the client sends (never its contents: Identify and
/// Resume carry the token).
pub fn describe_client_frame(text: &str) -> String {
    let op = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("op").and_then(|v| v.as_u64()));
    match op {
        Some(op) => format!("op {op} {}", opcode_name(op)),
        None => format!("{} bytes of non-JSON", text.len()),
    }
}
