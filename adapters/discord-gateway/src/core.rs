//! [`ShardCore`]: the runtime-independent half of every shard. It owns the machine, the
//! clock and the identify hook; the runtime's loop reports what the socket, the timer and
//! the command channel did, and carries out the [`Action`]s the core hands back, while the
//! core turns the machine's outputs into owned [`ShardEvent`]s.
//!
//! The loop's whole job, for any runtime:
//!
//! ```text
//! loop {
//!     events:   pop_event()            -> give it to the application first
//!     actions:  pop_action()           -> Connect: drop the socket, start connecting
//!                                         Send: queue the text on the open socket
//!                                         Close: send the frame in the background, drop
//!     timer:    timer_due(now)         -> timeout()
//!     requests: a ShardSender request  -> request(r)
//!     identify: poll_identify(waker)   (every pass; only matters with a shared queue)
//!     nothing:  sleep until deadline() or a wake-up
//!     connect:  attempt finished       -> connected() / connect_failed(why)
//!     socket:   text / binary / close  -> text(t) / binary(b) / closed(Some(frame))
//!               error                  -> transport_error(why) (never for is_transient ones)
//!               EOF                    -> transport_lost()
//!     sending:  failed or timed out    -> transport_error(why)
//!     finished() and no events left    -> the shard's stream ends
//! }
//! ```

use std::collections::VecDeque;
use std::io::Write;
use std::sync::Arc;
use std::task::Waker;
use std::time::Instant;

use discord_gateway_proto::config::ConfigError;
use discord_gateway_proto::record::RecordingMachine;
use discord_gateway_proto::{
    CloseFrame, Command, Dispatch, Event, GatewayConfig, GatewayMachine, Message, Output, Phase,
    Session, ShardId, StartOptions,
};

use crate::clock::Clock;
use crate::event::{DispatchEvent, ShardEvent};
use crate::identify::{GrantPoll, SharedIdentifyQueue};
use crate::options::{fresh_seed, ShardOptions};
use crate::sender::{Request, SendError};
use crate::text::SharedStr;

/// Something the runtime must do with its socket, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Drop any socket or attempt and open a WebSocket to this URL; then report
    /// [`ShardCore::connected`] or [`ShardCore::connect_failed`].
    Connect(String),
    /// Send this text on the open socket (if there is none, drop it: the loss was or will
    /// be reported).
    Send(String),
    /// Send this close frame if possible, in the background with a short grace, and drop
    /// the socket (or abandon the attempt) at once; report nothing more from it.
    Close(CloseFrame<'static>),
}

/// The machine, plain or recording (with where the recording goes). The plain machine, the
/// usual case, stays inline: no pointer to follow on every message.
#[allow(clippy::large_enum_variant)]
enum Machine {
    Plain(GatewayMachine),
    Recording(Box<RecordingMachine>, Option<Box<dyn Write + Send>>),
}

macro_rules! on_machine {
    ($machine:expr, $m:ident => $body:expr) => {
        match $machine {
            Machine::Plain($m) => $body,
            Machine::Recording($m, _) => $body,
        }
    };
}

impl Machine {
    fn inner(&self) -> &GatewayMachine {
        match self {
            Machine::Plain(machine) => machine,
            Machine::Recording(recording, _) => recording.machine(),
        }
    }

    #[inline]
    fn poll_output(&mut self) -> Output<'_> {
        on_machine!(self, m => m.poll_output())
    }

    /// Writes the recorded lines out; a writer that fails is dropped (the shard goes on).
    fn flush_recording(&mut self) {
        let Machine::Recording(recording, writer) = self else {
            return;
        };
        while let Some(line) = recording.pop_line() {
            let Some(out) = writer.as_mut() else { continue };
            if writeln!(out, "{line}").is_err() {
                *writer = None;
            }
        }
        if let Some(out) = writer.as_mut() {
            if out.flush().is_err() {
                *writer = None;
            }
        }
    }
}

/// The runtime-independent shard (see the module docs).
pub(crate) struct ShardCore {
    machine: Machine,
    clock: Clock,
    shard: ShardId,
    identify: Option<SharedIdentifyQueue>,
    /// Whether this shard waits for a grant from the shared queue.
    identify_wanted: bool,
    /// When the shared queue next moves by itself, while waiting.
    identify_deadline: Option<Instant>,
    /// The queue's exhaustions already reported.
    exhaustions_seen: u64,
    actions: VecDeque<Action>,
    events: VecDeque<ShardEvent>,
    /// The text message being handled, for dispatches to be slices of.
    message: Option<SharedStr>,
    /// A fatal close or a shutdown happened: after the last actions and events, the end.
    stopped: bool,
}

impl std::fmt::Debug for ShardCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardCore")
            .field("machine", self.machine.inner())
            .field("actions", &self.actions.len())
            .field("events", &self.events.len())
            .field("stopped", &self.stopped)
            .finish_non_exhaustive()
    }
}

impl ShardCore {
    /// A core for `config` as `options` say (the options' runtime parts are left for the
    /// loop). Its first action is `Connect`.
    pub(crate) fn new(
        config: Arc<GatewayConfig>,
        options: &mut ShardOptions,
    ) -> Result<Self, ConfigError> {
        let clock = Clock::start();
        let now = clock.now();
        let shard = options.shard.unwrap_or(config.shard);
        let seed = options.seed.unwrap_or_else(|| fresh_seed(&config, shard));
        let start = StartOptions {
            shard: Some(shard),
            session: options.session.take(),
        };
        let mut machine = match options.record.take() {
            Some(writer) => Machine::Recording(
                Box::new(RecordingMachine::new(config, start, seed, now)?),
                Some(writer),
            ),
            None => Machine::Plain(GatewayMachine::with_options(config, start, seed, now)?),
        };
        on_machine!(&mut machine, m => m.set_trace(options.trace));
        let mut core = ShardCore {
            machine,
            clock,
            shard,
            identify: options.identify_queue.take(),
            identify_wanted: false,
            identify_deadline: None,
            exhaustions_seen: 0,
            actions: VecDeque::new(),
            events: VecDeque::new(),
            message: None,
            stopped: false,
        };
        core.drain();
        Ok(core)
    }

    // ----- getters -----

    /// The machine, for its getters (phase, session, latency...).
    pub(crate) fn machine(&self) -> &GatewayMachine {
        self.machine.inner()
    }

    /// The shard this core runs.
    pub(crate) fn shard(&self) -> ShardId {
        self.shard
    }

    /// The session as it stands (to save it).
    pub(crate) fn session(&self) -> Option<Session> {
        self.machine.inner().session().cloned()
    }

    /// Whether the machine's timer is due at `now`: then call [`timeout`](Self::timeout).
    #[inline]
    pub(crate) fn timer_due(&self, now: Instant) -> bool {
        self.machine
            .inner()
            .poll_timeout()
            .is_some_and(|t| self.clock.instant(t) <= now)
    }

    /// When the loop must wake by itself next: the machine's timer, or the shared identify
    /// queue moving on (checked by [`poll_identify`](Self::poll_identify), which every pass
    /// of the loop calls).
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let machine = self
            .machine
            .inner()
            .poll_timeout()
            .map(|t| self.clock.instant(t));
        let identify = self.identify_deadline.filter(|_| self.identify_wanted);
        match (machine, identify) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether the machine stopped for good and every action was taken: once the events
    /// are given out, the shard ends.
    pub(crate) fn finished(&self) -> bool {
        self.stopped && self.actions.is_empty()
    }

    // ----- outputs -----

    /// The next event for the application.
    #[inline]
    pub(crate) fn pop_event(&mut self) -> Option<ShardEvent> {
        self.events.pop_front()
    }

    /// The next thing to do with the socket.
    #[inline]
    pub(crate) fn pop_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// After [`shutdown`](Self::shutdown): the texts still to send and the close frame to
    /// end with, taken from the actions left (a `Connect` among them is moot now).
    pub(crate) fn take_last_frames(&mut self) -> (Vec<String>, Option<CloseFrame<'static>>) {
        let mut texts = Vec::new();
        let mut frame = None;
        while let Some(action) = self.actions.pop_front() {
            match action {
                Action::Send(text) => texts.push(text),
                Action::Close(close) => frame = Some(close),
                Action::Connect(_) => {}
            }
        }
        (texts, frame)
    }

    // ----- inputs -----

    /// The socket asked for by the last `Connect` is open.
    pub(crate) fn connected(&mut self) {
        let now = self.clock.now();
        on_machine!(&mut self.machine, m => m.handle_connected(now));
        self.drain();
    }

    /// The connection attempt failed (refused, TLS, handshake, DNS...): `error` says why.
    pub(crate) fn connect_failed(&mut self, error: String) {
        self.transport_error(error);
    }

    /// The connection is gone without a close frame because of `error` (reported to the
    /// application first).
    pub(crate) fn transport_error(&mut self, error: String) {
        self.events.push_back(ShardEvent::TransportError(error));
        self.transport_lost();
    }

    /// One text message, its bytes shared: dispatches read from it are slices of it. `at` is
    /// when it was read: the loop's own clock reading for the pass (one clock read per
    /// message, not two).
    #[inline]
    pub(crate) fn text(&mut self, text: SharedStr, at: Instant) {
        let now = self.clock.timestamp(at);
        let message = self.message.insert(text);
        on_machine!(&mut self.machine, m => m.handle_message(now, Message::Text(message.as_str())));
        self.drain();
        // Let the socket's read buffer be reused as soon as the application is done.
        self.message = None;
    }

    /// One binary message (compressed), read at `at` (as for [`text`](Self::text)).
    pub(crate) fn binary(&mut self, bytes: &[u8], at: Instant) {
        let now = self.clock.timestamp(at);
        on_machine!(&mut self.machine, m => m.handle_message(now, Message::Binary(bytes)));
        self.drain();
    }

    /// The server's close frame (`None` as the code of a frame without a status: 1005).
    pub(crate) fn closed(&mut self, code: Option<u16>, reason: &str) {
        let now = self.clock.now();
        let frame = CloseFrame {
            code: code.unwrap_or(1005),
            reason,
        };
        on_machine!(&mut self.machine, m => m.handle_closed(now, Some(frame)));
        self.drain();
    }

    /// The connection is gone without a close frame: an I/O error, EOF, a failed or
    /// timed-out send.
    pub(crate) fn transport_lost(&mut self) {
        let now = self.clock.now();
        on_machine!(&mut self.machine, m => m.handle_closed(now, None));
        self.drain();
    }

    /// The deadline passed (spurious calls are harmless).
    pub(crate) fn timeout(&mut self) {
        let now = self.clock.now();
        on_machine!(&mut self.machine, m => m.handle_timeout(now));
        self.drain();
    }

    /// A command from the application.
    pub(crate) fn command(&mut self, command: Command) -> Result<(), SendError> {
        let now = self.clock.now();
        let result = on_machine!(&mut self.machine, m => m.send(now, command));
        self.drain();
        result.map_err(SendError::from)
    }

    /// Closes for good; returns the session if `keep_session` kept it. The `Close` action
    /// follows.
    pub(crate) fn shutdown(&mut self, keep_session: bool) -> Option<Session> {
        let now = self.clock.now();
        // `Err` only if the machine had stopped already (a fatal close ended the session).
        let result = on_machine!(&mut self.machine, m => m.shutdown(now, keep_session));
        self.drain();
        self.stopped = true;
        // `false` ends the session just now.
        (keep_session && result.is_ok())
            .then(|| self.session())
            .flatten()
    }

    /// A request from a `ShardSender`, answered.
    pub(crate) fn request(&mut self, request: Request) {
        match request {
            Request::Command { command, reply } => {
                let result = self.command(command);
                if let Some(reply) = reply {
                    let _ = reply.send(result);
                }
            }
            Request::Close {
                keep_session,
                reply,
            } => {
                let session = self.shutdown(keep_session);
                if let Some(reply) = reply {
                    let _ = reply.send(session);
                }
            }
        }
    }

    /// With a shared identify queue: whether this shard's turn came (it then identifies) or
    /// the queue has news; `waker` is woken when another shard's call grants this one.
    /// Returns whether anything happened.
    pub(crate) fn poll_identify(&mut self, waker: &Waker) -> bool {
        if !self.identify_wanted {
            return false;
        }
        let Some(queue) = &self.identify else {
            return false;
        };
        match queue.poll_grant(self.shard, waker) {
            GrantPoll::Granted => {
                self.identify_wanted = false;
                self.identify_deadline = None;
                let now = self.clock.now();
                // Unused if the connection dropped meanwhile: the machine asks again.
                let _ = on_machine!(&mut self.machine, m => m.grant_identify(now));
                self.drain();
                true
            }
            GrantPoll::Waiting {
                deadline,
                exhausted: (count, retry_in),
                blocked,
            } => {
                self.identify_deadline = deadline;
                let mut news = false;
                if count > self.exhaustions_seen {
                    self.exhaustions_seen = count;
                    self.events
                        .push_back(ShardEvent::IdentifyExhausted { retry_in });
                    news = true;
                }
                if let Some(blocked) = blocked {
                    self.events.push_back(ShardEvent::IdentifyBlocked(blocked));
                    news = true;
                }
                news
            }
        }
    }

    /// Takes every output of the machine: actions queued for the loop, events converted
    /// and queued for the application; identify requests granted (single shard) or put to
    /// the shared queue.
    fn drain(&mut self) {
        loop {
            let identify = self.drain_outputs();
            self.machine.flush_recording();
            if !identify {
                break;
            }
            match &self.identify {
                None => {
                    let now = self.clock.now();
                    let _ = on_machine!(&mut self.machine, m => m.grant_identify(now));
                }
                Some(queue) => {
                    queue.request(self.shard);
                    self.identify_wanted = true;
                    break;
                }
            }
        }
        if self.identify_wanted && self.machine.inner().phase() != Phase::AwaitingIdentifyGrant {
            // The connection dropped (or the shard stopped) while waiting: leave the queue.
            self.identify_wanted = false;
            self.identify_deadline = None;
            if let Some(queue) = &self.identify {
                queue.cancel(self.shard);
            }
        }
    }

    /// Drains the machine until `Wait`; returns whether it asked to identify.
    #[inline]
    fn drain_outputs(&mut self) -> bool {
        let mut identify = false;
        let ShardCore {
            machine,
            clock,
            actions,
            events,
            message,
            stopped,
            ..
        } = self;
        loop {
            match machine.poll_output() {
                Output::Wait(_) => return identify,
                Output::Event(Event::Dispatch(dispatch)) => events.push_back(ShardEvent::Dispatch(
                    owned_dispatch(&dispatch, message.as_ref()),
                )),
                Output::Connect { url } => {
                    actions.push_back(Action::Connect(url.to_owned()));
                    events.push_back(ShardEvent::Connecting {
                        url: url.to_owned(),
                    });
                }
                Output::Send(frame) => actions.push_back(Action::Send(frame.text.to_owned())),
                Output::Close(frame) => actions.push_back(Action::Close(frame)),
                Output::Event(Event::IdentifyRequested) => identify = true,
                Output::Event(event) => {
                    if let Some(event) = owned_event(event, clock) {
                        *stopped |= event.is_final();
                        events.push_back(event);
                    }
                }
                // Outputs the protocol crate may add later: nothing this crate knows to do.
                _ => {}
            }
        }
    }
}

impl Drop for ShardCore {
    fn drop(&mut self) {
        if let (true, Some(queue)) = (self.identify_wanted, &self.identify) {
            queue.cancel(self.shard);
        }
    }
}

/// A dispatch the application can keep: slices of the shared message when the machine
/// says where they lie in it, otherwise a copy of `d` (one allocation) and the name from
/// the table of known events (none), or copied if unknown.
#[inline]
fn owned_dispatch(dispatch: &Dispatch<'_>, message: Option<&SharedStr>) -> DispatchEvent {
    if let (Some(message), Some(name), Some(data)) =
        (message, dispatch.name_range(), dispatch.data_range())
    {
        if let (Some(name), Some(data)) = (message.slice(name), message.slice(data)) {
            return DispatchEvent {
                name,
                sequence: dispatch.sequence,
                data,
            };
        }
    }
    DispatchEvent {
        name: crate::names::known(dispatch.name)
            .unwrap_or_else(|| SharedStr::copy_from(dispatch.name)),
        sequence: dispatch.sequence,
        data: SharedStr::copy_from(dispatch.data),
    }
}

/// Every other event the application may care about, owned; `None` for the ones the core
/// handles itself.
fn owned_event(event: Event<'_>, clock: &Clock) -> Option<ShardEvent> {
    Some(match event {
        Event::Hello { heartbeat_interval } => ShardEvent::Hello { heartbeat_interval },
        Event::Ready(info) => ShardEvent::Ready(info),
        Event::Resumed { replayed } => ShardEvent::Resumed { replayed },
        Event::SequenceGap { expected, received } => ShardEvent::SequenceGap { expected, received },
        Event::SequenceDuplicate { expected, received } => {
            ShardEvent::SequenceDuplicate { expected, received }
        }
        Event::HeartbeatAck { latency } => ShardEvent::HeartbeatAck { latency },
        Event::InvalidSession { resumable } => ShardEvent::InvalidSession { resumable },
        Event::ProtocolError(error) => ShardEvent::ProtocolError(error),
        Event::Disconnected(disconnect) => ShardEvent::Disconnected {
            reason: disconnect.reason,
            resume: disconnect.resume,
            reconnect_in: clock.until(disconnect.reconnect_at),
        },
        Event::RateLimited(limited) => ShardEvent::RateLimited(limited),
        Event::Fatal(reason) => ShardEvent::Fatal(reason),
        Event::Decision(decision) => ShardEvent::Decision(decision),
        Event::Shutdown { session_kept } => ShardEvent::Closed { session_kept },
        // Dispatches and identify requests are taken before; events added to the protocol
        // crate later are not reported until this crate knows them.
        #[allow(unreachable_patterns)]
        _ => return None,
    })
}

#[cfg(test)]
mod alloc_tests {
    //! What the core allocates per dispatch, measured with the counting allocator: the
    //! machine, the conversion to a `ShardEvent`, and the application dropping it. (The
    //! socket's own allocations are measured end to end in `tests/dispatch_alloc.rs`.)

    use super::*;
    use crate::counting_alloc::allocations;
    use bytes::BytesMut;
    use discord_gateway_proto::{Compression, Intents, Token};

    const HELLO: &str = r#"{"op":10,"d":{"heartbeat_interval":41250}}"#;
    const READY: &str = r#"{"t":"READY","s":1,"op":0,"d":{"v":10,"session_id":"abc","resume_gateway_url":"wss://resume.example","user":{"id":"1"},"guilds":[]}}"#;
    const ROUNDS: u64 = 1000;

    fn message(sequence: u64) -> String {
        format!(
            r#"{{"t":"MESSAGE_CREATE","s":{sequence},"op":0,"d":{{"id":"{sequence}","content":"hello number {sequence}","author":{{"id":"7","username":"someone"}},"channel_id":"5"}}}}"#
        )
    }

    fn core(compression: Compression) -> ShardCore {
        let config =
            GatewayConfig::new(Token::new("t"), Intents::GUILDS).with_compression(compression);
        let mut core =
            ShardCore::new(Arc::new(config), &mut ShardOptions::new().seed(1)).expect("config");
        assert!(matches!(core.pop_action(), Some(Action::Connect(_))));
        core.connected();
        core
    }

    /// Messages as tungstenite hands them over: frozen slices of one shared read buffer.
    fn shared(texts: &[String]) -> Vec<SharedStr> {
        let mut buffer = BytesMut::with_capacity(texts.iter().map(String::len).sum());
        texts
            .iter()
            .map(|text| {
                buffer.extend_from_slice(text.as_bytes());
                let bytes = buffer.split_to(text.len()).freeze();
                SharedStr::from(tungstenite::Utf8Bytes::try_from(bytes).expect("UTF-8"))
            })
            .collect()
    }

    fn drain_events(core: &mut ShardCore) -> usize {
        let mut n = 0;
        while let Some(event) = core.pop_event() {
            n += usize::from(matches!(event, ShardEvent::Dispatch(_)));
        }
        n
    }

    #[test]
    fn an_uncompressed_dispatch_allocates_nothing_and_shares_the_message() {
        let mut core = core(Compression::None);
        let texts: Vec<String> = [HELLO.to_string(), READY.to_string()]
            .into_iter()
            .chain((2..ROUNDS + 2).map(message))
            .collect();
        let mut messages = shared(&texts).into_iter();
        for _ in 0..2 {
            core.text(messages.next().expect("handshake"), Instant::now());
            drain_events(&mut core);
        }
        // A first dispatch warms the machine's and the event queue's buffers.
        core.text(messages.next().expect("message"), Instant::now());
        let first = core.pop_event();
        let Some(ShardEvent::Dispatch(dispatch)) = first else {
            panic!("{first:?}");
        };
        assert_eq!(dispatch.name, "MESSAGE_CREATE");
        assert!(
            dispatch.data.starts_with(r#"{"id":"2","#),
            "{}",
            dispatch.data
        );
        // `d` is the very bytes of the message, not a copy.
        let message = &texts[2];
        let offset = message.find(r#"{"id""#).expect("d");
        assert_eq!(dispatch.data.len(), message.len() - offset - 1);
        drop(dispatch);

        let before = allocations();
        let mut dispatches = 0;
        for message in messages {
            core.text(message, Instant::now());
            dispatches += drain_events(&mut core);
        }
        let allocated = allocations() - before;
        assert_eq!(dispatches as u64, ROUNDS - 1);
        assert_eq!(
            allocated, 0,
            "{allocated} allocations for {dispatches} dispatches"
        );
    }

    #[test]
    fn a_zlib_stream_dispatch_allocates_once() {
        use std::io::Write as _;
        let mut core = core(Compression::ZlibStream);
        let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut compress = |text: &str| {
            encoder.write_all(text.as_bytes()).expect("compress");
            encoder.flush().expect("sync flush");
            std::mem::take(encoder.get_mut())
        };
        let handshake = [compress(HELLO), compress(READY)];
        let messages: Vec<Vec<u8>> = (2..ROUNDS + 2).map(|s| compress(&message(s))).collect();
        for bytes in &handshake {
            core.binary(bytes, Instant::now());
            drain_events(&mut core);
        }
        core.binary(&messages[0], Instant::now());
        assert_eq!(drain_events(&mut core), 1);

        let before = allocations();
        let mut dispatches = 0;
        for bytes in &messages[1..] {
            core.binary(bytes, Instant::now());
            dispatches += drain_events(&mut core);
        }
        let allocated = allocations() - before;
        assert_eq!(dispatches as u64, ROUNDS - 1);
        // One allocation per dispatch: its `d`, copied out of the inflated text (the name
        // comes from the table of known events).
        assert_eq!(
            allocated,
            ROUNDS - 1,
            "{allocated} allocations for {dispatches} dispatches"
        );
    }
}
