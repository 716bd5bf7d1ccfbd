//! The tokio shard: [`Shard`] and its command handle [`ShardSender`].
//!
//! The I/O loop runs inside [`Shard::next_event`]: no background task per shard and no
//! channel hop per event. The future is cancel-safe (all state lives in the `Shard`), so it
//! can sit in `tokio::select!` beside the application's own branches. Commands from other
//! tasks arrive through a [`ShardSender`] and are carried out while the shard is polled.

pub(crate) mod connect;

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use ::tokio::time::{sleep_until, Sleep};
use discord_gateway_proto::config::ConfigError;
use discord_gateway_proto::{
    CloseFrame, Command, GatewayConfig, GatewayMachine, Intents, Latency, Phase, Session, ShardId,
    Token,
};
use futures_util::{Sink, Stream};
use tokio_websockets::{CloseCode, Message as WsMessage};

use crate::core::{Action, ShardCore};
use crate::event::ShardEvent;
use crate::options::ShardOptions;
use crate::sender::{self, Requests, SendError};
use crate::text::SharedStr;
use crate::websocket::is_transient_tokio as is_transient;
use connect::{connect, ConnectSettings, Socket};

pub use crate::sender::ShardSender;

type Connecting = Pin<Box<dyn Future<Output = Result<Socket, String>> + Send>>;

/// One gateway connection (one shard of a bot), driven by tokio.
///
/// ```no_run
/// use discord_gateway::tokio::Shard;
/// use discord_gateway::{Intents, ShardEvent, ShardId};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let token = std::env::var("DISCORD_TOKEN")?;
/// let mut shard = Shard::new(ShardId::ONE, token, Intents::GUILD_MESSAGES)?;
/// while let Some(event) = shard.next_event().await {
///     if let ShardEvent::Dispatch(dispatch) = event {
///         println!("{} #{}: {} bytes", dispatch.name, dispatch.sequence, dispatch.data.len());
///     }
/// }
/// # Ok(())
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
    /// The timer, made on the first poll (inside the runtime) and moved only when the
    /// deadline changes.
    sleep: Option<Pin<Box<Sleep>>>,
    sleep_at: Option<Instant>,
    /// The tasks sending close frames, each bounded by the close grace; the stream ends
    /// only once the last one is done.
    closing: Vec<::tokio::task::JoinHandle<()>>,
    requests: Requests,
    sender: ShardSender,
    ended: bool,
    /// Whether the socket is read as messages come (see [`Shard::set_reading`]).
    reading: bool,
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard")
            .field("core", &self.core)
            .field("connecting", &self.connecting.is_some())
            .field("connected", &self.socket.is_some())
            .field("outbox", &self.outbox.len())
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
            sleep: None,
            sleep_at: None,
            closing: Vec::new(),
            requests,
            sender,
            ended: false,
            reading: true,
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

    /// A handle for sending commands (or closing) from other tasks.
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
            let _ = ::tokio::time::timeout(self.close_grace, send_and_close(socket, outbox, frame))
                .await;
        }
        session
    }

    /// Stops reading the socket as messages come (`false`), or starts again (`true`): the
    /// fleet's backpressure, for when the application is behind. Timers, commands and
    /// sends go on, so heartbeats keep their time; what arrives waits in the socket (and
    /// TCP slows the sender down), except that whatever is already there is read just
    /// before each timer fires, so a heartbeat's ACK is seen before the zombie verdict.
    pub(crate) fn set_reading(&mut self, on: bool) {
        self.reading = on;
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
                    .retain_mut(|task| Pin::new(task).poll(cx).is_pending());
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
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(sleep_until(deadline.into())));
            if self.sleep_at != Some(deadline) {
                sleep.as_mut().reset(deadline.into());
                self.sleep_at = Some(deadline);
            }
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
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
            if !self.reading {
                self.catch_up(cx, now);
            }
            self.core.timeout();
            return true;
        }
        // A command waiting? Taken without registering the waker: that costs more than the
        // check, and the last pass before the loop sleeps registers it (below).
        if let Ok(request) = self.requests.try_recv() {
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
        if self.reading && self.poll_receive(cx, now) {
            return true;
        }
        // Nothing is ready: be woken by the next command.
        if let Poll::Ready(Some(request)) = Pin::new(&mut self.requests).poll_next(cx) {
            self.core.request(request);
            return true;
        }
        false
    }

    /// While not reading: reads what already waits in the socket (up to a bound), so a
    /// timer about to fire judges the connection on everything that arrived.
    fn catch_up(&mut self, cx: &mut Context<'_>, now: Instant) {
        const MOST: usize = 4096;
        for _ in 0..MOST {
            if self.socket.is_none() || !self.poll_receive(cx, now) {
                break;
            }
        }
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
            match socket.as_mut().start_send(text_message(text)) {
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
            Some(Ok(message)) if message.is_text() => {
                if let Some(text) = SharedStr::from_websocket_text(message) {
                    self.core.text(text, now);
                }
            }
            Some(Ok(message)) if message.is_binary() => {
                self.core.binary(message.as_payload(), now);
            }
            Some(Ok(message)) if message.is_close() => {
                self.drop_socket();
                match message.as_close() {
                    // A close frame without a status reads as 1005, as the core says too.
                    Some((code, reason)) => self.core.closed(Some(code.into()), reason),
                    None => self.core.closed(None, ""),
                }
            }
            // tokio-websockets queues the pong itself; the next send pass flushes it.
            Some(Ok(message)) if message.is_ping() => self.unflushed = true,
            // Pongs mean nothing here.
            Some(Ok(_)) => {}
            // "Nothing yet": the connection is alive (issue: a signal is not a lost socket).
            // tokio's sockets turn these into `Pending` before they get here, and
            // tokio-websockets ends its stream after any I/O error (the next read is `None`).
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
                        self.close_in_background(socket, outbox, frame);
                    }
                }
            }
        }
    }

    /// Sends the close frame from a short-lived task, so that the loop goes on at once (a
    /// zombie never answers); without a runtime to spawn on, the socket is just dropped.
    fn close_in_background(
        &mut self,
        socket: Socket,
        outbox: VecDeque<String>,
        frame: CloseFrame<'static>,
    ) {
        if let Ok(runtime) = ::tokio::runtime::Handle::try_current() {
            let grace = self.close_grace;
            self.closing.retain(|task| !task.is_finished());
            self.closing.push(runtime.spawn(async move {
                let _ = ::tokio::time::timeout(grace, send_and_close(socket, outbox, Some(frame)))
                    .await;
            }));
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
        self.sleep = None;
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

/// Sends what was queued and the close frame, then drops the socket (no waiting for the
/// peer's close).
async fn send_and_close(
    mut socket: Socket,
    outbox: VecDeque<String>,
    frame: Option<CloseFrame<'static>>,
) {
    use futures_util::SinkExt;
    for text in outbox {
        if socket.feed(text_message(text)).await.is_err() {
            return;
        }
    }
    match frame {
        Some(frame) => {
            let _ = socket.send(close_message(&frame)).await;
        }
        None => {
            let _ = socket.flush().await;
        }
    }
}

/// A text message of `text`, taking over its bytes (no copy).
fn text_message(text: String) -> WsMessage {
    WsMessage::text(bytes::Bytes::from(text.into_bytes()))
}

/// The close message of `frame`. tokio-websockets refuses (by panicking) a code the
/// protocol reserves or forbids and a reason over 123 bytes, so such a code is sent as a
/// close without status and the reason is cut at the last whole character that fits.
fn close_message(frame: &CloseFrame<'_>) -> WsMessage {
    const MOST_REASON: usize = 123;
    let code = CloseCode::try_from(frame.code)
        .ok()
        .filter(|code| !code.is_reserved());
    let Some(code) = code else {
        return WsMessage::close(None, "");
    };
    let mut end = frame.reason.len().min(MOST_REASON);
    while !frame.reason.is_char_boundary(end) {
        end -= 1;
    }
    WsMessage::close(Some(code), &frame.reason[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_messages_carry_code_and_reason_and_never_panic() {
        let normal = close_message(&CloseFrame {
            code: 4000,
            reason: "resuming",
        });
        assert_eq!(
            normal.as_close(),
            Some((CloseCode::try_from(4000).unwrap(), "resuming"))
        );
        // Reserved (1005) and out-of-range (999, 5000) codes: a close without status.
        for code in [1005, 999, 5000, 0] {
            let message = close_message(&CloseFrame { code, reason: "x" });
            assert_eq!(message.as_payload().len(), 0, "{code}");
        }
        // A reason over 123 bytes is cut on a character boundary.
        let long = "é".repeat(100);
        let cut = close_message(&CloseFrame {
            code: 1000,
            reason: &long,
        });
        let (code, reason) = cut.as_close().expect("close");
        assert_eq!(u16::from(code), 1000);
        assert_eq!(reason, "é".repeat(61));
    }
}
