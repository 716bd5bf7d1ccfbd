//! The blocking shard: [`Shard`], an iterator of events for a plain thread (no async
//! runtime), and its command handle [`ShardSender`], usable from any other thread.
//!
//! The I/O loop runs inside [`Shard::next_event`] on the caller's thread. The socket is
//! non-blocking underneath and the thread waits in the OS's readiness queue (mio's `Poll`)
//! for whichever comes first:
//!
//! - the socket (a message, room to send, a connection opening);
//! - the machine's next deadline (a heartbeat, a timeout, a reconnect), to the millisecond;
//! - a command or a close from a [`ShardSender`] on another thread, or a turn granted by a
//!   shared identify queue: these wake the wait at once through a cross-thread waker (an
//!   eventfd on Linux), so a command waits for one thread wake-up (microseconds), not for
//!   a polling tick;
//! - a signal (`EINTR`, e.g. Ctrl-C with a handler installed): the wait simply starts again;
//!   an interruption is never taken for a lost connection (issue #14 item 13).
//!
//! Connecting never blocks the thread either (DNS on a helper thread, TCP, TLS and the
//! WebSocket upgrade moved on as the socket becomes ready), so commands and timers are
//! served while a connection opens, and the machine's connect timeout bounds the attempt.
//!
//! While the application handles an event (between two `next_event` calls) nothing runs:
//! commands from other threads and the socket wait for the next call, as with the async
//! shards. Call `next_event` again promptly (within a fraction of the heartbeat interval).

mod connect;
mod stream;
mod wake;

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use discord_gateway_proto::config::ConfigError;
use discord_gateway_proto::{
    CloseFrame, Command, GatewayConfig, GatewayMachine, Intents, Latency, Phase, Session, ShardId,
    Token,
};
use futures_util::Stream as _;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame as WsCloseFrame;
use tungstenite::Message as WsMessage;

use crate::core::{Action, ShardCore};
use crate::event::ShardEvent;
use crate::options::ShardOptions;
use crate::sender::{self, Requests, SendError};
use crate::websocket::ConnectSettings;
use connect::{Attempt, Progress};
use stream::{Received, Socket};
use wake::Waiter;

pub use crate::sender::ShardSender;

/// One gateway connection (one shard of a bot), driven by the thread that asks for its
/// events: an iterator of [`ShardEvent`]s, no async runtime.
///
/// ```no_run
/// use discord_gateway::blocking::Shard;
/// use discord_gateway::{Intents, ShardEvent, ShardId};
///
/// # fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let token = std::env::var("DISCORD_TOKEN")?;
/// let mut shard = Shard::new(ShardId::ONE, token, Intents::GUILD_MESSAGES)?;
/// // Commands from another thread: the loop wakes for them at once.
/// let sender = shard.sender();
/// std::thread::spawn(move || {
///     let presence = r#"{"op":3,"d":{"since":null,"activities":[],"status":"idle","afk":false}}"#;
///     let _ = sender.send_blocking(discord_gateway::Command::from_json(presence).unwrap());
/// });
/// for event in shard.iter() {
///     if let ShardEvent::Dispatch(dispatch) = event {
///         println!("{} #{}: {} bytes", dispatch.name, dispatch.sequence, dispatch.data.len());
///     }
/// }
/// # Ok(())
/// # }
/// ```
///
/// The shard connects on the first call, identifies (or resumes a saved session),
/// heartbeats, reconnects and resumes after a loss, and only stops for good on a fatal
/// close code or [`close`](Self::close). See the [module docs](self) for how it waits.
pub struct Shard {
    core: ShardCore,
    settings: Arc<ConnectSettings>,
    send_timeout: Duration,
    close_grace: Duration,
    waiter: Waiter,
    connecting: Option<Attempt>,
    socket: Option<Socket>,
    /// Frames decided and not yet taken by the socket.
    outbox: VecDeque<WsMessage>,
    /// Whether frames were handed to the socket and not yet written out.
    unflushed: bool,
    /// When the current send started waiting for the socket (for the send timeout).
    send_started: Option<Instant>,
    /// Sockets the machine closed whose close frame is still leaving, each until its
    /// close grace ends; the loop goes on meanwhile.
    closing: Vec<(Socket, Instant)>,
    requests: Requests,
    sender: ShardSender,
    ended: bool,
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard")
            .field("core", &self.core)
            .field("connecting", &self.connecting)
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
    ///
    /// # Panics
    /// If the OS refuses a readiness queue (out of file descriptors): a shard cannot run
    /// without one.
    pub fn from_config(
        config: impl Into<Arc<GatewayConfig>>,
        mut options: ShardOptions,
    ) -> Result<Self, ConfigError> {
        let core = ShardCore::new(config.into(), &mut options)?;
        let (sender, requests) = sender::channel();
        let waiter = match Waiter::new() {
            Ok(waiter) => waiter,
            Err(error) => panic!("cannot create the shard's readiness queue: {error}"),
        };
        Ok(Shard {
            core,
            settings: Arc::new(ConnectSettings::take_from(&mut options)),
            send_timeout: options.send_timeout,
            close_grace: options.close_grace,
            waiter,
            connecting: None,
            socket: None,
            outbox: VecDeque::new(),
            unflushed: false,
            send_started: None,
            closing: Vec::new(),
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

    /// A handle for sending commands (or closing) from other threads. (On the thread that
    /// runs the shard use [`command`](Self::command): a `send_blocking` there would wait
    /// for itself.)
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

    /// Sends a command from the thread that runs the shard (other threads use a
    /// [`ShardSender`]). Rate limited and held until READY like every command; it goes out
    /// on the next [`next_event`](Self::next_event) call.
    pub fn command(&mut self, command: Command) -> Result<(), SendError> {
        self.core.command(command)
    }

    /// [`command`](Self::command) for raw gateway JSON.
    pub fn command_json(&mut self, json: &str) -> Result<(), SendError> {
        self.core.command(sender::parse(json)?)
    }

    /// Closes the shard: sends the close frame (blocking at most the close grace for it to
    /// leave, never waiting for the peer's answer) and drops the socket. With
    /// `keep_session`, the session stays resumable and is returned: save it, then start the
    /// next run with [`Shard::resume`]. Without, the session ends (the bot goes offline at
    /// once).
    ///
    /// The iterator then yields [`ShardEvent::Closed`] and ends.
    pub fn close(&mut self, keep_session: bool) -> Option<Session> {
        let session = self.core.shutdown(keep_session);
        let (texts, frame) = self.core.take_last_frames();
        self.outbox.extend(texts.into_iter().map(WsMessage::text));
        self.connecting = None;
        self.refuse_requests();
        let outbox = std::mem::take(&mut self.outbox);
        #[allow(clippy::disallowed_methods)] // the adapter owns the clock
        let until = Instant::now() + self.close_grace;
        if let Some(mut socket) = self.socket.take() {
            if start_close(&mut socket, outbox, frame) {
                // Wait for room on the socket until the frame left or the grace ended.
                #[allow(clippy::disallowed_methods)] // the adapter owns the clock
                while Instant::now() < until && matches!(stream::flush(&mut socket), Ok(false)) {
                    self.waiter.wait(Some(until));
                }
            }
        }
        self.reset_send_state();
        session
    }

    // ----- events -----

    /// The next event, blocking the thread until there is one; `None` once the shard has
    /// stopped for good (after [`ShardEvent::Fatal`] or [`ShardEvent::Closed`]).
    pub fn next_event(&mut self) -> Option<ShardEvent> {
        self.next_before(None).ok()
    }

    /// [`next_event`](Self::next_event), waiting at most `timeout`:
    /// `Err(RecvTimeoutError::Timeout)` if no event came in time (the shard went on
    /// heartbeating meanwhile), `Err(RecvTimeoutError::Disconnected)` once the shard has
    /// stopped for good. For a thread that has other work between events.
    pub fn next_event_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<ShardEvent, RecvTimeoutError> {
        #[allow(clippy::disallowed_methods)] // the adapter owns the clock
        let until = Instant::now() + timeout;
        self.next_before(Some(until))
    }

    /// The events, as an iterator borrowing the shard (`for event in shard.iter()`); break
    /// out of it to [`close`](Self::close) the shard.
    pub fn iter(&mut self) -> Iter<'_> {
        Iter { shard: self }
    }

    /// The loop: runs until an event is ready, the shard ends, or `until` passes.
    fn next_before(&mut self, until: Option<Instant>) -> Result<ShardEvent, RecvTimeoutError> {
        loop {
            if let Some(event) = self.core.pop_event() {
                return Ok(event);
            }
            if self.ended {
                return Err(RecvTimeoutError::Disconnected);
            }
            self.take_actions();
            if self.core.finished() {
                if let Some(event) = self.core.pop_event() {
                    return Ok(event);
                }
                // The last close frame goes out (within the close grace) before the stream
                // ends: a program that exits then has still said goodbye.
                #[allow(clippy::disallowed_methods)] // the adapter owns the clock
                self.flush_closing(Instant::now());
                if !self.closing.is_empty() {
                    self.waiter.wait(self.deadline());
                    continue;
                }
                self.finish();
                return Err(RecvTimeoutError::Disconnected);
            }
            if self.step() {
                continue;
            }
            // Nothing is ready: wait for the socket, a wake-up or the next deadline.
            #[allow(clippy::disallowed_methods)] // the adapter owns the clock
            let now = Instant::now();
            if until.is_some_and(|until| now >= until) {
                return Err(RecvTimeoutError::Timeout);
            }
            let deadline = match (self.deadline(), until) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if deadline.is_some_and(|deadline| deadline <= now) {
                continue;
            }
            self.waiter.wait(deadline);
        }
    }

    /// One pass over everything that may be ready, in the tokio shard's order: the timer
    /// by the clock, requests, identify, the connection attempt, sending, receiving.
    /// Returns whether anything happened.
    fn step(&mut self) -> bool {
        #[allow(clippy::disallowed_methods)] // the adapter owns the clock
        let now = Instant::now();
        self.flush_closing(now);
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
        let waker = self.waiter.waker().clone();
        let mut cx = Context::from_waker(&waker);
        if let Poll::Ready(Some(request)) = Pin::new(&mut self.requests).poll_next(&mut cx) {
            self.core.request(request);
            return true;
        }
        if self.core.poll_identify(&waker) {
            return true;
        }
        if let Some(attempt) = self.connecting.as_mut() {
            match attempt.advance(self.waiter.registry()) {
                Progress::Pending => {}
                Progress::Open(socket) => {
                    self.connecting = None;
                    self.socket = Some(socket);
                    self.core.connected();
                    return true;
                }
                Progress::Failed(error) => {
                    self.connecting = None;
                    self.core
                        .connect_failed(format!("connection failed: {error}"));
                    return true;
                }
            }
        }
        if let Err(error) = self.send(now) {
            self.drop_socket();
            self.core.transport_error(error);
            return true;
        }
        self.receive(now)
    }

    /// Hands queued frames to the socket and writes them out as far as it takes them.
    /// `Err` when the connection is lost.
    fn send(&mut self, now: Instant) -> Result<(), String> {
        let Some(socket) = self.socket.as_mut() else {
            return Ok(());
        };
        while let Some(message) = self.outbox.pop_front() {
            self.unflushed = true;
            if let Some(message) = stream::write(socket, message)? {
                // tungstenite's buffer is full: retry after the socket took some.
                self.outbox.push_front(message);
                break;
            }
        }
        if self.unflushed && stream::flush(socket)? {
            self.unflushed = false;
        }
        if self.unflushed || !self.outbox.is_empty() {
            self.send_started.get_or_insert(now);
        } else {
            self.send_started = None;
        }
        Ok(())
    }

    /// Reads one message, if one is complete (`now`: this pass's clock reading). Returns
    /// whether anything happened (`false` means the socket has nothing more: the wait may
    /// begin).
    fn receive(&mut self, now: Instant) -> bool {
        let Some(socket) = self.socket.as_mut() else {
            return false;
        };
        match stream::receive(socket) {
            Received::Message(WsMessage::Text(text)) => self.core.text(text.into(), now),
            Received::Message(WsMessage::Binary(bytes)) => self.core.binary(&bytes, now),
            // Pings are answered by tungstenite (its pong leaves with the next flush);
            // pongs and raw frames mean nothing here.
            Received::Message(_) => {
                self.unflushed = true;
            }
            Received::Closed(frame) => {
                self.drop_socket();
                match frame {
                    Some((code, reason)) => self.core.closed(Some(code), &reason),
                    None => self.core.closed(None, ""),
                }
            }
            Received::Nothing => return false,
            Received::Lost(None) => {
                self.drop_socket();
                self.core.transport_lost();
            }
            Received::Lost(Some(error)) => {
                self.drop_socket();
                self.core
                    .transport_error(format!("connection error: {error}"));
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
                    let registry = self.waiter.registry();
                    match Attempt::start(&url, &self.settings, registry, self.waiter.wake_handle())
                    {
                        Ok(attempt) => self.connecting = Some(attempt),
                        Err(error) => self
                            .core
                            .connect_failed(format!("connection failed: {error}")),
                    }
                }
                Action::Send(text) => {
                    if self.socket.is_some() {
                        self.outbox.push_back(WsMessage::text(text));
                    }
                }
                Action::Close(frame) => {
                    self.connecting = None;
                    let outbox = std::mem::take(&mut self.outbox);
                    let socket = self.socket.take();
                    self.reset_send_state();
                    if let Some(mut socket) = socket {
                        // The loop goes on at once (a zombie never answers); a frame the
                        // socket has no room for yet keeps leaving within the close grace.
                        if start_close(&mut socket, outbox, Some(frame)) {
                            #[allow(clippy::disallowed_methods)] // the adapter owns the clock
                            let until = Instant::now() + self.close_grace;
                            self.closing.push((socket, until));
                        }
                    }
                }
            }
        }
    }

    /// Writes out what the closing sockets still hold; drops those done or out of time.
    fn flush_closing(&mut self, now: Instant) {
        self.closing.retain_mut(|(socket, until)| {
            now < *until && matches!(stream::flush(socket), Ok(false))
        });
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
        let closing = self.closing.iter().map(|(_, until)| *until).min();
        [self.core.deadline(), send, closing]
            .into_iter()
            .flatten()
            .min()
    }

    fn finish(&mut self) {
        self.ended = true;
        self.drop_socket();
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

impl Iterator for Shard {
    type Item = ShardEvent;

    /// [`Shard::next_event`].
    fn next(&mut self) -> Option<ShardEvent> {
        self.next_event()
    }
}

/// The events of a [`Shard`], borrowed ([`Shard::iter`]).
#[derive(Debug)]
pub struct Iter<'a> {
    shard: &'a mut Shard,
}

impl Iterator for Iter<'_> {
    type Item = ShardEvent;

    fn next(&mut self) -> Option<ShardEvent> {
        self.shard.next_event()
    }
}

/// Queues what was waiting and the close frame on `socket` and writes out what the socket
/// takes now. Returns whether some of it is still waiting for room (keep flushing until
/// the grace ends); `false` when all of it left or the connection is gone.
fn start_close(
    socket: &mut Socket,
    outbox: VecDeque<WsMessage>,
    frame: Option<CloseFrame<'static>>,
) -> bool {
    for message in outbox {
        if !matches!(stream::write(socket, message), Ok(None)) {
            return false;
        }
    }
    let Some(frame) = frame else {
        return matches!(stream::flush(socket), Ok(false));
    };
    let frame = WsCloseFrame {
        code: CloseCode::from(frame.code),
        reason: frame.reason.into(),
    };
    match socket.close(Some(frame)) {
        Ok(()) => false,
        Err(e) if crate::websocket::is_transient(&e) => true,
        Err(_) => false,
    }
}
