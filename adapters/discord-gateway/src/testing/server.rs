//! The fake server's thread: a current-thread tokio runtime serving a [`FakeGateway`] on two
//! loopback ports.
//!
//! A connection request is decided by the fake before the WebSocket handshake: the server
//! peeks at the HTTP request line for the URL, asks the fake, and only then accepts (or
//! drops the TCP connection, which the client sees as a failed connect). Transport
//! compression is the fake's own (it compresses for a URL asking for it).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ::tokio::net::{TcpListener, TcpStream};
use ::tokio::sync::mpsc;
use ::tokio::time::{sleep_until, timeout};
use discord_gateway_proto::sim::{ConnectionId, FakeGateway, ScriptAction, ServerAction};
use discord_gateway_proto::Timestamp;
use futures_channel::oneshot;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use super::describe::{describe_client_frame, describe_server_frame};
use super::{FakeGatewayServer, UpgradeRequest};

/// The log callback.
pub(crate) type Log = Box<dyn FnMut(Duration, &str) + Send>;

/// What the handles ask of the server thread.
pub(crate) enum Control {
    /// Do this now.
    Perform(ScriptAction),
    /// Run this on the fake.
    Inspect(Box<dyn FnOnce(&mut FakeGateway) + Send>),
    /// Answer `true` once `predicate` holds, `false` after `timeout`.
    Wait {
        predicate: Box<dyn FnMut(&FakeGateway) -> bool + Send>,
        timeout: Duration,
        reply: oneshot::Sender<bool>,
    },
    /// Tell the upgrade requests received so far.
    Requests(oneshot::Sender<Vec<UpgradeRequest>>),
    /// Stop serving.
    Stop,
    /// Stop serving and say so once stopped.
    StopNotify(oneshot::Sender<()>),
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Control::Perform(_) => "Perform",
            Control::Inspect(_) => "Inspect",
            Control::Wait { .. } => "Wait",
            Control::Requests(_) => "Requests",
            Control::Stop => "Stop",
            Control::StopNotify(_) => "StopNotify",
        })
    }
}

/// Binds the ports and starts the thread.
pub(crate) fn spawn(gateway: FakeGateway, log: Option<Log>) -> std::io::Result<FakeGatewayServer> {
    let main = bind()?;
    let resume = bind()?;
    let url = format!("ws://{}", main.local_addr()?);
    let resume_url = format!("ws://{}", resume.local_addr()?);
    let (control, controls) = mpsc::unbounded_channel();
    let urls = (url.clone(), resume_url.clone());
    let thread = std::thread::Builder::new()
        .name("fake-gateway".into())
        .spawn(move || {
            let runtime = ::tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            match runtime {
                Ok(runtime) => runtime.block_on(serve(main, resume, urls, gateway, controls, log)),
                Err(_) => gateway,
            }
        })?;
    Ok(FakeGatewayServer::from_parts(
        url, resume_url, control, thread,
    ))
}

fn bind() -> std::io::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// The server's time base: virtual time zero at the start.
#[derive(Clone, Copy)]
struct Clock(Instant);

impl Clock {
    #[allow(clippy::disallowed_methods)] // the server owns its clock
    fn start() -> Self {
        Clock(Instant::now())
    }

    #[allow(clippy::disallowed_methods)] // the server owns its clock
    fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }

    fn now(&self) -> Timestamp {
        Timestamp::ZERO.saturating_add(self.elapsed())
    }

    fn instant(&self, at: Timestamp) -> Instant {
        self.0 + at.since_origin()
    }
}

/// What the socket tasks tell the server.
enum Inbound {
    /// A new TCP connection asked for `url`.
    Request {
        url: String,
        user_agent: Option<String>,
        tcp: TcpStream,
    },
    /// A text message from the client.
    Text(ConnectionId, String),
    /// The client closed (with a code) or the connection failed (`None`).
    Closed(ConnectionId, Option<u16>),
}

/// What the server tells one connection's task.
enum Outbound {
    Message(Message),
    Close(u16, String),
    Drop,
}

/// A handle's wait.
struct Waiter {
    predicate: Box<dyn FnMut(&FakeGateway) -> bool + Send>,
    until: Instant,
    reply: oneshot::Sender<bool>,
}

async fn serve(
    main: std::net::TcpListener,
    resume: std::net::TcpListener,
    (main_url, resume_url): (String, String),
    mut gateway: FakeGateway,
    mut controls: mpsc::UnboundedReceiver<Control>,
    mut log: Option<Log>,
) -> FakeGateway {
    gateway.config_mut().resume_url = resume_url.clone();
    let clock = Clock::start();
    let (inbound_tx, mut inbound) = mpsc::unbounded_channel();
    for (listener, base) in [(main, main_url), (resume, resume_url)] {
        match TcpListener::from_std(listener) {
            Ok(listener) => accept_loop(listener, base, inbound_tx.clone()),
            Err(_) => return gateway,
        }
    }
    let mut waiting: BTreeMap<ConnectionId, (TcpStream, String)> = BTreeMap::new();
    let mut open: BTreeMap<ConnectionId, mpsc::UnboundedSender<Outbound>> = BTreeMap::new();
    let mut waiters: Vec<Waiter> = Vec::new();
    let mut stop_notify = None;
    let mut requests: Vec<UpgradeRequest> = Vec::new();
    let mut say = |text: &str| {
        if let Some(log) = log.as_mut() {
            log(clock.elapsed(), text);
        }
    };
    loop {
        // Carry out what the fake decided.
        while let Some(output) = gateway.poll_output() {
            let id = output.connection;
            let n = id.0;
            match output.action {
                ServerAction::Accept => {
                    if let Some((tcp, _url)) = waiting.remove(&id) {
                        let (tx, rx) = mpsc::unbounded_channel();
                        open.insert(id, tx);
                        ::tokio::spawn(connection(id, tcp, rx, inbound_tx.clone()));
                        say(&format!("#{n} accepted"));
                    }
                }
                ServerAction::Refuse => {
                    waiting.remove(&id);
                    say(&format!("#{n} refused"));
                }
                ServerAction::Text(text) => {
                    say(&format!("#{n} → {}", describe_server_frame(&text)));
                    if let Some(tx) = open.get(&id) {
                        let _ = tx.send(Outbound::Message(Message::text(text)));
                    }
                }
                ServerAction::TextBytes(bytes) => {
                    say(&format!("#{n} → {} raw text bytes", bytes.len()));
                    if let Some(tx) = open.get(&id) {
                        // Possibly not UTF-8: sent as a raw text frame.
                        let frame = Frame::message(bytes, OpCode::Data(Data::Text), true);
                        let _ = tx.send(Outbound::Message(Message::Frame(frame)));
                    }
                }
                ServerAction::Binary(bytes) => {
                    say(&format!("#{n} → {} compressed bytes", bytes.len()));
                    if let Some(tx) = open.get(&id) {
                        let _ = tx.send(Outbound::Message(Message::binary(bytes)));
                    }
                }
                ServerAction::Close { code, reason } => {
                    say(&format!("#{n} closes with {code} {reason}"));
                    if let Some(tx) = open.remove(&id) {
                        let _ = tx.send(Outbound::Close(code, reason));
                    }
                }
                ServerAction::Drop => {
                    say(&format!("#{n} drops the TCP connection"));
                    if let Some(tx) = open.remove(&id) {
                        let _ = tx.send(Outbound::Drop);
                    }
                }
                // Actions the fake may learn later: nothing this server knows to do.
                _ => say(&format!("#{n} unknown action")),
            }
        }
        // Answer the waits that are settled.
        #[allow(clippy::disallowed_methods)] // the server owns its clock
        let now = Instant::now();
        waiters = waiters
            .into_iter()
            .filter_map(|mut waiter| {
                if (waiter.predicate)(&gateway) {
                    let _ = waiter.reply.send(true);
                    None
                } else if now >= waiter.until || waiter.reply.is_canceled() {
                    let _ = waiter.reply.send(false);
                    None
                } else {
                    Some(waiter)
                }
            })
            .collect();
        if stop_notify.is_some() {
            break;
        }
        let fake_deadline = gateway.poll_timeout().map(|t| clock.instant(t));
        let wait_deadline = waiters.iter().map(|w| w.until).min();
        let deadline = match (fake_deadline, wait_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let sleep = async {
            match deadline {
                Some(at) => sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        ::tokio::select! {
            () = sleep => gateway.handle_timeout(clock.now()),
            control = controls.recv() => match control {
                Some(Control::Perform(action)) => gateway.perform(clock.now(), action),
                Some(Control::Inspect(job)) => job(&mut gateway),
                Some(Control::Requests(reply)) => {
                    let _ = reply.send(requests.clone());
                }
                Some(Control::Wait { predicate, timeout, reply }) => waiters.push(Waiter {
                    predicate,
                    until: now + timeout,
                    reply,
                }),
                Some(Control::StopNotify(reply)) => stop_notify = Some(reply),
                Some(Control::Stop) | None => break,
            },
            message = inbound.recv() => match message {
                Some(Inbound::Request { url, user_agent, tcp }) => {
                    let id = gateway.handle_connect(clock.now(), &url);
                    say(&format!("#{} connection request {url}", id.0));
                    requests.push(UpgradeRequest { connection: id, url: url.clone(), user_agent });
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
    for waiter in waiters {
        let _ = waiter.reply.send(false);
    }
    if let Some(reply) = stop_notify {
        let _ = reply.send(());
    }
    gateway
}

/// Accepts TCP connections on `listener` and hands them to the server with their URL.
fn accept_loop(listener: TcpListener, base: String, inbound: mpsc::UnboundedSender<Inbound>) {
    ::tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let inbound = inbound.clone();
            let base = base.clone();
            ::tokio::spawn(async move {
                if let Some((target, user_agent)) = request_head(&tcp).await {
                    let url = format!("{base}{target}");
                    let _ = inbound.send(Inbound::Request {
                        url,
                        user_agent,
                        tcp,
                    });
                }
            });
        }
    });
}

/// The request target (`/?v=10&encoding=json`) and the `User-Agent` of the HTTP request
/// waiting on `tcp`, read without consuming it (the WebSocket handshake reads it again).
async fn request_head(tcp: &TcpStream) -> Option<(String, Option<String>)> {
    let mut buf = [0u8; 4096];
    for _ in 0..200 {
        let n = tcp.peek(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        let head = &buf[..n];
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&head[..end]).ok()?;
            let mut lines = head.split("\r\n");
            let target = lines.next()?.split(' ').nth(1)?.to_string();
            let user_agent = lines.find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.trim()
                    .eq_ignore_ascii_case("user-agent")
                    .then(|| value.trim().to_string())
            });
            return Some((target, user_agent));
        }
        if n == buf.len() {
            return None;
        }
        ::tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

/// One accepted connection: the WebSocket handshake, then messages both ways until either
/// side ends it.
async fn connection(
    id: ConnectionId,
    tcp: TcpStream,
    mut outbound: mpsc::UnboundedReceiver<Outbound>,
    inbound: mpsc::UnboundedSender<Inbound>,
) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
        let _ = inbound.send(Inbound::Closed(id, None));
        return;
    };
    loop {
        ::tokio::select! {
            out = outbound.recv() => match out {
                Some(Outbound::Message(message)) => {
                    if ws.send(message).await.is_err() {
                        let _ = inbound.send(Inbound::Closed(id, None));
                        return;
                    }
                }
                Some(Outbound::Close(code, reason)) => {
                    let frame = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
                    let _ = timeout(Duration::from_secs(1), ws.close(Some(frame))).await;
                    return;
                }
                // Drop the TCP connection with no close frame: a reset, as when a peer
                // or a middlebox dies (the client's next send fails at once).
                Some(Outbound::Drop) | None => {
                    let _ = ws.get_ref().set_zero_linger();
                    return;
                }
            },
            message = ws.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    let _ = inbound.send(Inbound::Text(id, text.as_str().to_string()));
                }
                Some(Ok(Message::Close(frame))) => {
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
