//! The smol shard: [`Shard`] and its command handle [`ShardSender`], on smol's own stack
//! (async-io's reactor and timers, async-net, async-tungstenite, futures-rustls; no tokio).
//!
//! The same shape as [`crate::tokio::Shard`]: the I/O loop runs inside
//! [`Shard::next_event`] (no background task per shard, no channel hop per event), the
//! future is cancel-safe, and commands from other tasks or threads arrive through a
//! [`ShardSender`]. Nothing here needs smol's global executor: any executor that polls the
//! shard works, async-io drives the socket and the timer.

mod connect;

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_io::Timer;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::protocol::CloseFrame as WsCloseFrame;
use async_tungstenite::tungstenite::Message as WsMessage;
use discord_gateway_proto::config::ConfigError;
use discord_gateway_proto::{
    CloseFrame, Command, GatewayConfig, GatewayMachine, Intents, Latency, Phase, Session, ShardId,
    Token,
};
use futures_util::{Sink, Stream};

use crate::core::{Action, ShardCore};
use crate::event::ShardEvent;
use crate::options::ShardOptions;
use crate::sender::{self, Requests, SendError};
use crate::websocket::{is_transient, ConnectSettings};
use connect::{connect, Socket};

pub use crate::sender::ShardSender;

type Connecting = Pin<Box<dyn Future<Output = Result<Socket, String>> + Send>>;
type Closing = Pin<Box<dyn Future<Output = ()> + Send>>;

/// One gateway connection (one shard of a bot), driven by smol (or any executor, with
/// async-io underneath).
///
/// ```no_run
/// use discord_gateway::smol::Shard;
/// use discord_gateway::{Intents, ShardEvent, ShardId};
///
/// # fn run() -> Result<(), Box<dyn std::error::Error>> {
/// smol::block_on(async {
///     let token = std::env::var("DISCORD_TOKEN")?;
///     let mut shard = Shard::new(ShardId::ONE, token, Intents::GUILD_MESSAGES)?;
///     while let Some(event) = shard.next_event().await {
///         if let ShardEvent::Dispatch(dispatch) = event {
///             println!("{} #{}: {} bytes", dispatch.name, dispatch.sequence, dispatch.data.len());
///         }
///     }
///     Ok(())
/// })
/// # }
/// ```
///
/// The shard connects on the first poll, identifies (or resumes a saved session),
/// heartbeats, reconnects and resumes after a loss, and only stops for good on a fatal
/// close code or [`close`](Self::close). Events are not lost while the application is busy:
/// the socket is simply not read until the next poll.
pub struct Shard {
    core: ShardCore,
    settings: Arc<ConnectSettings>,
    send_timeout: Duration,
    close_grace: Duration,
    connecting: Option<Connecting>,
    socket: Option<Socket>,
    /// Frames decided and not yet handed to the socket.
    outbox: VecDeque<String>,
    /// Whether frames were handed to the socket and not yet flushed.
    unflushed: bool,
    /// When the current send started waiting for the socket (for the send timeout).
    send_started: Option<Instant>,
    /// Sockets the machine closed, sending their close frame (each within the close grace)
    /// while the shard goes on: no spawned task, so no executor is assumed.
    closing: Vec<Closing>,
    /// The timer, moved only when the deadline changes.
    timer: Option<Timer>,
    timer_at: Option<Instant>,
    requests: Requests,
    sender: ShardSender,
    ended: bool,
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard")
            .field("core", &self.core)
            .field("connecting", &self.connecting.is_some())
            .field("connected", &self.socket.is_some())
            .field("outbox", &self.outbox.len())
            .field("closing", &self.closing.len())
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl Shard {
    /// A shard of a bot with `token` (with or without the `Bot ` prefix) and `intents`,
    /// every other setting at its default. Fails only for an invalid configuration (an
    /// empty token, `shard.id >= shard.count`).
    pub fn new(
        shard: ShardId,
        token: impl Into<String>,
        intents: Intents,
    ) -> Result<Self, ConfigError> {
        Self::with_options(shard, token, intents, ShardOptions::default())
    }

    /// [`new`](Self::new) with options.
    pub fn with_options(
        shard: ShardId,
        token: impl Into<String>,
        intents: Intents,
        options: ShardOptions,
    ) -> Result<Self, ConfigError> {
        let config = GatewayConfig::new(Token::new(token), intents).with_shard(shard);
        Self::from_config(config, options)
    }

    /// A shard from a full protocol configuration (gateway URL, compression, presence,
    /// timeouts, backoff...). Several shards may share one `Arc<GatewayConfig>` with
    /// [`ShardOptions::shard`] telling each which one it is.
    pub fn from_config(
        config: impl Into<Arc<GatewayConfig>>,
        mut options: ShardOptions,
    ) -> Result<Self, ConfigError> {
        let core = ShardCore::new(config.into(), &mut options)?;
        let (sender, requests) = sender::channel();
        Ok(Shard {
            core,
            settings: Arc::new(ConnectSettings::take_from(&mut options)),
            send_timeout: options.send_timeout,
            close_grace: options.close_grace,
            connecting: None,
            socket: None,
            outbox: VecDeque::new(),
            unflushed: false,
            send_started: None,
            closing: Vec::new(),
            timer: None,
            timer_at: None,
            requests,
            sender,
            ended: false,
        })
    }

    /// A shard that resumes `session` (saved from [`close`](Self::close) in an earlier run)
    /// instead of identifying, unless it is too old.
    pub fn resume(
        config: impl Into<Arc<GatewayConfig>>,
        session: Session,
        options: ShardOptions,
    ) -> Result<Self, ConfigError> {
        Self::from_config(config, options.session(session))
    }

    // ----- getters -----

    /// This shard's id.
    pub fn id(&self) -> ShardId {
        self.core.shard()
    }

    /// A handle for sending commands (or closing) from other tasks or threads.
    pub fn sender(&self) -> ShardSender {
        self.sender.clone()
    }

    /// The session as it stands (`None` before READY).
    pub fn session(&self) -> Option<Session> {
        self.core.session()
    }

    /// Where the connection is in its lifecycle.
    pub fn phase(&self) -> Phase {
        self.core.machine().phase()
    }

    /// Heartbeat round-trip times.
    pub fn latency(&self) -> Latency {
        self.core.machine().latency()
    }

    /// The protocol machine, for the rest of its getters.
    pub fn machine(&self) -> &GatewayMachine {
        self.core.machine()
    }

    // ----- commands -----

    /// Sends a command from the task that polls the shard (other tasks use a
    /// [`ShardSender`]). Rate limited and held until READY like every command; it goes out
    /// on the next poll.
    pub fn command(&mut self, command: Command) -> Result<(), SendError> {
        self.core.command(command)
    }

    /// [`command`](Self::command) for raw gateway JSON.
    pub fn command_json(&mut self, json: &str) -> Result<(), SendError> {
        self.core.command(sender::parse(json)?)
    }

    /// Closes the shard: sends the close frame (waiting at most the close grace for it to
    /// leave, never for the peer's answer) and drops the socket. With `keep_session`, the
    /// session stays resumable and is returned: save it, then start the next run with
    /// [`Shard::resume`]. Without, the session ends (the bot goes offline at once).
    ///
    /// The stream then yields [`ShardEvent::Closed`] and ends.
    pub async fn close(&mut self, keep_session: bool) -> Option<Session> {
        let session = self.core.shutdown(keep_session);
        let (texts, frame) = self.core.take_last_frames();
        self.outbox.extend(texts);
        self.connecting = None;
        self.refuse_requests();
        let outbox = std::mem::take(&mut self.outbox);
        if let Some(socket) = self.socket.take() {
            within(self.close_grace, send_and_close(socket, outbox, frame)).await;
        }
        session
    }

    // ----- events -----

    /// The next event; `None` once the shard has stopped for good (after
    /// [`ShardEvent::Fatal`] or [`ShardEvent::Closed`]). Cancel-safe.
    pub async fn next_event(&mut self) -> Option<ShardEvent> {
        poll_fn(|cx| self.poll_next_event(cx)).await
    }

    /// The poll behind [`next_event`](Self::next_event) and the `Stream` impl: runs the
    /// loop until an event is ready or everything waits.
    pub fn poll_next_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<ShardEvent>> {
        // Close frames on their way out: they only need to be polled.
        self.closing
            .retain_mut(|closing| closing.as_mut().poll(cx).is_pending());
        loop {
            if let Some(event) = self.core.pop_event() {
                return Poll::Ready(Some(event));
            }
            if self.ended {
                return Poll::Ready(None);
            }
            self.take_actions();
            if self.core.finished() {
                if let Some(event) = self.core.pop_event() {
                    return Poll::Ready(Some(event));
                }
                // The last close frame goes out (within the close grace) before the stream
                // ends: a program that exits then has still said goodbye.
                self.closing
                    .retain_mut(|closing| closing.as_mut().poll(cx).is_pending());
                if !self.closing.is_empty() {
                    return Poll::Pending;
                }
                self.finish();
                return Poll::Ready(None);
            }
            if self.step(cx) {
                continue;
            }
            // Nothing is ready: arm the timer (moving it only if the deadline changed).
            let Some(deadline) = self.deadline() else {
                return Poll::Pending;
            };
            let timer = self.timer.get_or_insert_with(|| Timer::at(deadline));
            if self.timer_at != Some(deadline) {
                timer.set_at(deadline);
                self.timer_at = Some(deadline);
            }
            if Pin::new(timer).poll(cx).is_pending() {
                return Poll::Pending;
            }
            // Fired: a fired async-io timer never fires again until it is set anew.
            self.timer_at = None;
        }
    }

    /// One pass over everything that may be ready, in an order that lets neither a flood
    /// of messages starve the timer and the commands, nor the reverse. Returns whether
    /// anything happened.
    fn step(&mut self, cx: &mut Context<'_>) -> bool {
        // The timer first, by the clock: a busy socket must not delay a heartbeat.
        #[allow(clippy::disallowed_methods)] // the adapter owns the clock
        let now = Instant::now();
        if let Some(started) = self.send_started {
            if now >= started + self.send_timeout {
                self.drop_socket();
                self.core
                    .transport_error(format!("send timed out after {:?}", self.send_timeout));
                return true;
            }
        }
        if self.core.timer_due(now) {
            self.core.timeout();
            return true;
        }
        if let Poll::Ready(Some(request)) = Pin::new(&mut self.requests).poll_next(cx) {
            self.core.request(request);
            return true;
        }
        if self.core.poll_identify(cx.waker()) {
            return true;
        }
        if let Some(connecting) = self.connecting.as_mut() {
            if let Poll::Ready(result) = connecting.as_mut().poll(cx) {
                self.connecting = None;
                match result {
                    Ok(socket) => {
                        self.socket = Some(socket);
                        self.core.connected();
                    }
                    Err(error) => self
                        .core
                        .connect_failed(format!("connection failed: {error}")),
                }
                return true;
            }
        }
        if let Err(error) = self.poll_send(cx, now) {
            self.drop_socket();
            self.core.transport_error(error);
            return true;
        }
        self.poll_receive(cx, now)
    }

    /// Hands queued frames to the socket and flushes them. `Err` when the connection is
    /// lost.
    fn poll_send(&mut self, cx: &mut Context<'_>, now: Instant) -> Result<(), String> {
        let Some(socket) = self.socket.as_mut() else {
            return Ok(());
        };
        let mut socket = Pin::new(socket);
        while !self.outbox.is_empty() {
            match socket.as_mut().poll_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) if is_transient(&e) => break,
                Poll::Ready(Err(e)) => return Err(format!("send failed: {e}")),
                Poll::Pending => break,
            }
            let Some(text) = self.outbox.pop_front() else {
                break;
            };
            match socket.as_mut().start_send(WsMessage::text(text)) {
                Ok(()) => self.unflushed = true,
                Err(e) if is_transient(&e) => self.unflushed = true,
                Err(e) => return Err(format!("send failed: {e}")),
            }
        }
        if self.unflushed {
            match socket.as_mut().poll_flush(cx) {
                Poll::Ready(Ok(())) => self.unflushed = false,
                Poll::Ready(Err(e)) if is_transient(&e) => {}
                Poll::Ready(Err(e)) => return Err(format!("send failed: {e}")),
                Poll::Pending => {}
            }
        }
        if self.unflushed || !self.outbox.is_empty() {
            self.send_started.get_or_insert(now);
        } else {
            self.send_started = None;
        }
        Ok(())
    }

    /// Reads one message, if one is there (`now`: this pass's clock reading). Returns whether
    /// anything happened.
    fn poll_receive(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        let Some(socket) = self.socket.as_mut() else {
            return false;
        };
        let message = match Pin::new(socket).poll_next(cx) {
            Poll::Pending => return false,
            Poll::Ready(message) => message,
        };
        match message {
            Some(Ok(WsMessage::Text(text))) => self.core.text(text.into(), now),
            Some(Ok(WsMessage::Binary(bytes))) => self.core.binary(&bytes, now),
            Some(Ok(WsMessage::Close(frame))) => {
                self.drop_socket();
                match frame {
                    Some(frame) => self.core.closed(Some(frame.code.into()), &frame.reason),
                    None => self.core.closed(None, ""),
                }
            }
            // Pings are answered by tungstenite; pongs and raw frames mean nothing here.
            Some(Ok(_)) => {}
            // "Nothing yet" (interruptions are retried below tungstenite, see `Stream`).
            Some(Err(e)) if is_transient(&e) => {}
            Some(Err(e)) => {
                self.drop_socket();
                self.core.transport_error(format!("connection error: {e}"));
            }
            None => {
                self.drop_socket();
                self.core.transport_lost();
            }
        }
        true
    }

    /// Carries out the machine's socket actions.
    fn take_actions(&mut self) {
        while let Some(action) = self.core.pop_action() {
            match action {
                Action::Connect(url) => {
                    self.drop_socket();
                    self.connecting = Some(Box::pin(connect(url, Arc::clone(&self.settings))));
                }
                Action::Send(text) => {
                    if self.socket.is_some() {
                        self.outbox.push_back(text);
                    }
                }
                Action::Close(frame) => {
                    self.connecting = None;
                    let outbox = std::mem::take(&mut self.outbox);
                    let socket = self.socket.take();
                    self.reset_send_state();
                    if let Some(socket) = socket {
                        // The loop goes on at once (a zombie never answers); the frame
                        // leaves while the shard is polled, within the close grace.
                        let close = send_and_close(socket, outbox, Some(frame));
                        self.closing.push(Box::pin(within(self.close_grace, close)));
                    }
                }
            }
        }
    }

    /// Drops the socket and any attempt, and forgets what was waiting to be sent on it.
    fn drop_socket(&mut self) {
        self.socket = None;
        self.connecting = None;
        self.outbox.clear();
        self.reset_send_state();
    }

    fn reset_send_state(&mut self) {
        self.unflushed = false;
        self.send_started = None;
    }

    /// The next time the loop must wake by itself.
    fn deadline(&self) -> Option<Instant> {
        let send = self.send_started.map(|started| started + self.send_timeout);
        match (self.core.deadline(), send) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn finish(&mut self) {
        self.ended = true;
        self.drop_socket();
        self.timer = None;
        self.refuse_requests();
    }

    /// Closes the command channel: requests waiting in it are refused, and later ones fail
    /// at once.
    fn refuse_requests(&mut self) {
        self.requests.close();
        while let Ok(request) = self.requests.try_recv() {
            request.refuse();
        }
    }
}

impl Stream for Shard {
    type Item = ShardEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ShardEvent>> {
        self.get_mut().poll_next_event(cx)
    }
}

/// Runs `future` for at most `limit`.
async fn within(limit: Duration, future: impl Future<Output = ()>) {
    let future = std::pin::pin!(future);
    let timer = Timer::after(limit);
    let _ = futures_util::future::select(future, timer).await;
}

/// Sends what was queued and the close frame, then drops the socket (no waiting for the
/// peer's close).
async fn send_and_close(
    mut socket: Socket,
    outbox: VecDeque<String>,
    frame: Option<CloseFrame<'static>>,
) {
    use futures_util::SinkExt;
    for text in outbox {
        if socket.feed(WsMessage::text(text)).await.is_err() {
            return;
        }
    }
    match frame {
        Some(frame) => {
            let frame = WsCloseFrame {
                code: CloseCode::from(frame.code),
                reason: frame.reason.into(),
            };
            let _ = socket.send(WsMessage::Close(Some(frame))).await;
        }
        None => {
            let _ = socket.flush().await;
        }
    }
}
