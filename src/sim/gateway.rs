//! [`FakeGateway`]: a sans-IO fake Discord gateway server with scripted behaviour.
//!
//! The scenario tests and the demos share this logic; see [`FakeGateway`].

use super::compress::ServerCompressor;
use super::payloads::{self, MemberRequest, ReadyParts, SimGuild, SimMessage, SimUser};
use alloc::collections::{BTreeMap, VecDeque};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use serde_json::Value;

use crate::config::{ShardId, Token};
use crate::protocol::commands::MAX_FRAME_BYTES;
use crate::time::Timestamp;

/// One connection the fake gateway was asked to open, numbered from 1 in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnectionId(pub u32);

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What the fake does with a connection request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectBehavior {
    /// Accept after [`FakeGatewayConfig::connect_delay`], then send Hello.
    Accept,
    /// Accept, but never send Hello.
    AcceptWithoutHello,
    /// Refuse: the client sees the connection fail (`handle_closed(None)`).
    Refuse,
    /// Never answer: neither accept nor refuse (the client's connect timeout fires).
    Hang,
}

/// A rule for connection requests whose URL starts with `url_prefix`. The first matching
/// rule with uses left wins; requests matching none are accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectRule {
    /// Matches URLs that start with this text (e.g. `wss://resume.sim`).
    pub url_prefix: String,
    /// What to do with a matching request.
    pub behavior: ConnectBehavior,
    /// How many requests the rule applies to; `None`: all of them.
    pub times: Option<u32>,
}

/// Stop acknowledging heartbeats: on `connection` (every connection if `None`), only the
/// first `after_beats` heartbeats are ACKed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AckCutoff {
    /// The connection it applies to; `None`: every connection.
    pub connection: Option<ConnectionId>,
    /// How many heartbeats on such a connection are still ACKed.
    pub after_beats: u32,
}

/// The fake gateway's behaviour knobs. `Default` is a well-behaved Discord.
#[derive(Clone, Debug)]
pub struct FakeGatewayConfig {
    /// READY's `resume_gateway_url` (a base URL without query).
    pub resume_url: String,
    /// The token a client must present; a different one is closed with 4004. `None`
    /// accepts any non-empty token.
    pub token: Option<Token>,
    /// Hello's `heartbeat_interval`.
    pub hello_interval: Duration,
    /// How long after a connection opens Hello is sent; `None`: never.
    pub hello_delay: Option<Duration>,
    /// How long after a connection request the server accepts or refuses it.
    pub connect_delay: Duration,
    /// How long after a heartbeat its ACK is sent (unless [`ack_delays`](Self::ack_delays)
    /// says otherwise).
    pub ack_delay: Duration,
    /// Per-beat ACK delays on each connection: the n-th heartbeat of a connection (from 0)
    /// is ACKed after `ack_delays[n]`; beats past the list use [`ack_delay`](Self::ack_delay).
    pub ack_delays: Vec<Duration>,
    /// Heartbeats that are not ACKed.
    pub ack_cutoffs: Vec<AckCutoff>,
    /// How long after Identify READY is sent.
    pub ready_delay: Duration,
    /// How long after Resume the replay and RESUMED are sent.
    pub resume_delay: Duration,
    /// Whether READY is sent at all.
    pub send_ready: bool,
    /// Whether RESUMED is sent at all (the replay still is).
    pub send_resumed: bool,
    /// How long after a refused Resume op 9 `false` is sent.
    pub invalid_session_delay: Duration,
    /// The bot account: READY's `user`, the bot's member in each guild.
    pub user: SimUser,
    /// READY's `application.id` (a bot's application id is its user id).
    pub application_id: u64,
    /// READY's `shard`. `None` (the default) echoes the Identify's `shard`, as Discord does,
    /// and leaves it out when the Identify had none; `Some` sends this one whatever the
    /// client asked (to test a client against a confused server).
    pub ready_shard: Option<ShardId>,
    /// The bot's guilds: READY lists them as unavailable, then each one's GUILD_CREATE
    /// follows (see [`guild_create_delay`](Self::guild_create_delay)); Request Guild
    /// Members is answered from them.
    pub guilds: Vec<SimGuild>,
    /// After READY, the i-th guild's GUILD_CREATE (from 0) comes `(i + 1) *` this later, on
    /// the same connection. `None`: no GUILD_CREATE is sent (the test scripts its own).
    pub guild_create_delay: Option<Duration>,
    /// How long after a Request Guild Members (op 8) for one of [`guilds`](Self::guilds)
    /// its GUILD_MEMBERS_CHUNKs are sent (1,000 members a chunk; presences only with the
    /// GUILD_PRESENCES intent; see [`payloads`](super::payloads)). `None`: never answered.
    /// Other guilds' requests get no answer.
    pub member_chunk_delay: Option<Duration>,
    /// The wall-clock time of virtual time zero, in milliseconds since the Unix epoch:
    /// message ids (snowflakes), `timestamp` and `joined_at` derive from it and the virtual
    /// time, never from a clock. Default: 2025-01-01T00:00:00Z.
    pub epoch_unix_ms: u64,
    /// Rules for connection requests.
    pub connect_rules: Vec<ConnectRule>,
    /// Close the connection with Discord's code on a violation (4001 unknown opcode, 4002
    /// decode error or payload too large, 4003 not authenticated, 4005 already
    /// authenticated, 4008 rate limited), as Discord does. Violations are recorded either way.
    pub enforce: bool,
    /// The send rate limit: at most `.0` frames per `.1` on one connection.
    pub rate_limit: (u32, Duration),
}

impl Default for FakeGatewayConfig {
    fn default() -> Self {
        FakeGatewayConfig {
            resume_url: String::from("wss://resume.sim"),
            token: None,
            hello_interval: Duration::from_millis(41_250),
            hello_delay: Some(Duration::ZERO),
            connect_delay: Duration::ZERO,
            ack_delay: Duration::from_millis(50),
            ack_delays: Vec::new(),
            ack_cutoffs: Vec::new(),
            ready_delay: Duration::from_millis(100),
            resume_delay: Duration::from_millis(100),
            send_ready: true,
            send_resumed: true,
            invalid_session_delay: Duration::from_millis(100),
            user: SimUser::default(),
            application_id: 1000,
            ready_shard: None,
            guilds: Vec::new(),
            guild_create_delay: Some(Duration::from_millis(50)),
            member_chunk_delay: Some(Duration::from_millis(50)),
            epoch_unix_ms: 1_735_689_600_000,
            connect_rules: Vec::new(),
            enforce: true,
            rate_limit: (120, Duration::from_secs(60)),
        }
    }
}

/// When a scripted action happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Trigger {
    /// At this virtual time.
    At(Timestamp),
    /// When the n-th connection (1-based, counting accepted ones) opens.
    Connected(u32),
    /// When the n-th Hello is sent.
    HelloSent(u32),
    /// When the n-th valid Identify is received.
    Identified(u32),
    /// When the n-th READY is sent.
    ReadySent(u32),
    /// When the n-th Resume is received.
    ResumeReceived(u32),
    /// When the n-th RESUMED is sent.
    ResumedSent(u32),
    /// When the n-th heartbeat (counting every connection) is received.
    Heartbeat(u32),
    /// When the `beat`-th heartbeat (1-based) of connection `connection` is received.
    HeartbeatOn {
        /// The connection.
        connection: ConnectionId,
        /// The heartbeat's number on that connection, from 1.
        beat: u32,
    },
}

/// Something the server does, on the connection open when it happens.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScriptAction {
    /// A dispatch (op 0) with the next sequence number of the session. With no live
    /// connection, it is logged in the latest session as missed (replayed on Resume).
    Dispatch {
        /// Event name (`t`).
        name: String,
        /// Raw JSON `d`.
        data: String,
    },
    /// A MESSAGE_CREATE dispatch for this message, with a snowflake id and a `timestamp`
    /// from the virtual time it is sent at (otherwise like [`Dispatch`](Self::Dispatch)).
    /// As on Discord, a session identified without the MESSAGE_CONTENT intent gets an empty
    /// `content` for guild messages that are not the bot's own and do not mention it.
    Message(SimMessage),
    /// A dispatch for one shard, for a server that serves several shards at once (a fleet,
    /// as Discord does): it goes to the latest valid session identified as `shard`, on its
    /// live connection; with none live, it is logged in that session as missed (replayed on
    /// Resume). No such session: nothing happens. ([`Dispatch`](Self::Dispatch) goes to
    /// whichever connection opened last.)
    ShardDispatch {
        /// The shard whose session receives it (id and count, as identified).
        shard: ShardId,
        /// Event name (`t`).
        name: String,
        /// Raw JSON `d`.
        data: String,
    },
    /// Op 1: ask the client to beat now.
    RequestHeartbeat,
    /// Op 7: ask the client to reconnect and resume.
    Reconnect,
    /// Op 9 with this `d`.
    InvalidSession(bool),
    /// Op 10 Hello (again), with the configured interval.
    Hello,
    /// Op 11, unsolicited.
    Ack,
    /// Forget every session (a later Resume gets op 9 `false`).
    ForgetSessions,
    /// A raw text message, sent as is.
    Text(String),
    /// A raw text message as bytes (possibly not UTF-8).
    TextBytes(Vec<u8>),
    /// A binary message.
    Binary(Vec<u8>),
    /// Close the connection with this code and reason.
    Close {
        /// The close code.
        code: u16,
        /// The reason.
        reason: String,
    },
    /// Drop the transport with no close frame.
    Drop,
}

impl ScriptAction {
    /// A dispatch action.
    pub fn dispatch(name: impl Into<String>, data: impl Into<String>) -> Self {
        ScriptAction::Dispatch {
            name: name.into(),
            data: data.into(),
        }
    }

    /// A [`ShardDispatch`](Self::ShardDispatch) action.
    pub fn shard_dispatch(
        shard: ShardId,
        name: impl Into<String>,
        data: impl Into<String>,
    ) -> Self {
        ScriptAction::ShardDispatch {
            shard,
            name: name.into(),
            data: data.into(),
        }
    }

    /// A close action with an empty reason.
    pub fn close(code: u16) -> Self {
        ScriptAction::Close {
            code,
            reason: String::new(),
        }
    }
}

/// One scripted step: `action` happens `delay` after `trigger`, once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptStep {
    /// What starts the step.
    pub trigger: Trigger,
    /// How long after the trigger.
    pub delay: Duration,
    /// What the server does.
    pub action: ScriptAction,
}

/// What the server does on the wire, for the driver to carry to the client.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerAction {
    /// The connection is open.
    Accept,
    /// The connection attempt failed.
    Refuse,
    /// A text message.
    Text(String),
    /// A text message whose bytes may not be UTF-8.
    TextBytes(Vec<u8>),
    /// A binary message.
    Binary(Vec<u8>),
    /// A close frame; the connection is gone.
    Close {
        /// The close code.
        code: u16,
        /// The reason.
        reason: String,
    },
    /// The transport failed with no close frame.
    Drop,
}

impl fmt::Debug for ServerAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerAction::Accept => f.write_str("Accept"),
            ServerAction::Refuse => f.write_str("Refuse"),
            ServerAction::Text(text) => f.debug_tuple("Text").field(text).finish(),
            ServerAction::TextBytes(bytes) => write!(f, "TextBytes({} bytes)", bytes.len()),
            ServerAction::Binary(bytes) => write!(f, "Binary({} bytes)", bytes.len()),
            ServerAction::Close { code, reason } => write!(f, "Close({code}, {reason:?})"),
            ServerAction::Drop => f.write_str("Drop"),
        }
    }
}

/// One [`ServerAction`] on one connection, from [`FakeGateway::poll_output`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerOutput {
    /// The connection it applies to.
    pub connection: ConnectionId,
    /// What happens.
    pub action: ServerAction,
}

/// Who ended a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Closer {
    /// The client closed with this code.
    Client(u16),
    /// The server closed with this code.
    Server(u16),
    /// The server dropped the transport.
    ServerDrop,
    /// The server refused the connection.
    Refused,
}

/// What the fake knows about one connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionRecord {
    /// Its number.
    pub id: ConnectionId,
    /// The URL the client asked for, query included.
    pub url: String,
    /// When the client asked.
    pub requested_at: Timestamp,
    /// When the server accepted it.
    pub opened_at: Option<Timestamp>,
    /// When Hello was sent.
    pub hello_at: Option<Timestamp>,
    /// When it ended, and who ended it.
    pub closed: Option<(Timestamp, Closer)>,
    /// The session it identified or resumed.
    pub session_id: Option<String>,
    /// Whether the client identified on it.
    pub identified: bool,
    /// Whether the client resumed on it.
    pub resumed: bool,
    /// Heartbeats received on it.
    pub heartbeats: u32,
    /// The sequence the client should know (its Resume's `seq`, then the last dispatch sent
    /// on this connection).
    pub client_sequence: Option<u64>,
    /// Whether READY or RESUMED was sent (dispatches flow).
    live: bool,
    /// Send times of the frames received, for the rate limit.
    recent: VecDeque<Timestamp>,
}

impl ConnectionRecord {
    /// Whether the connection is open (accepted and not closed).
    pub fn is_open(&self) -> bool {
        self.opened_at.is_some() && self.closed.is_none()
    }
}

/// A frame the fake received from the client.
#[derive(Clone, Debug, PartialEq)]
pub struct ReceivedFrame {
    /// When.
    pub time: Timestamp,
    /// On which connection.
    pub connection: ConnectionId,
    /// The `op` field, if the frame had a readable one.
    pub opcode: Option<u64>,
    /// The text, with any `d.token` replaced by `<redacted>`.
    pub text: String,
    /// The parsed message (token redacted), if it was JSON.
    pub json: Option<Value>,
}

impl ReceivedFrame {
    /// The `d` field of the parsed message.
    pub fn data(&self) -> Option<&Value> {
        self.json.as_ref().and_then(|v| v.get("d"))
    }
}

/// A dispatch the server sent (or would have) in a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedDispatch {
    /// Its sequence number.
    pub sequence: u64,
    /// Event name.
    pub name: String,
    /// Raw JSON `d`.
    pub data: String,
}

/// A session on the server side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerSession {
    /// The session id.
    pub id: String,
    /// The last sequence number used.
    pub sequence: u64,
    /// Every dispatch of the session, in order (READY and RESUMED included).
    pub log: Vec<LoggedDispatch>,
    /// Whether it may still be resumed.
    pub valid: bool,
    /// The `shard` the client identified with, if it sent one.
    pub shard: Option<ShardId>,
    /// The `intents` the client identified with.
    pub intents: u64,
}

/// Something the client did that Discord would not accept.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ViolationKind {
    /// The connection URL lacks `v=10` or `encoding=json`.
    BadUrl(String),
    /// A frame over 4096 bytes.
    PayloadTooLarge(usize),
    /// More frames than the rate limit allows.
    RateLimited,
    /// Not JSON, or not an object with an integer `op`.
    Undecodable,
    /// An opcode a client may not send.
    UnknownOpcode(u64),
    /// A frame with this opcode before Hello was sent (e.g. Resume before Hello).
    BeforeHello(u64),
    /// A malformed Identify.
    BadIdentify(&'static str),
    /// A malformed Resume.
    BadResume(&'static str),
    /// A malformed heartbeat.
    BadHeartbeat(&'static str),
    /// A heartbeat whose `d` is not the last sequence the client was sent.
    HeartbeatSequence {
        /// The sequence the client should have sent.
        expected: Option<u64>,
        /// What it sent.
        got: Option<u64>,
    },
    /// Identify or Resume on a connection that already did one.
    AlreadyAuthenticated,
    /// A command with this opcode before Identify or Resume.
    NotAuthenticated(u64),
    /// A frame on a connection that is not open.
    NotOpen,
}

/// One [`ViolationKind`] with when and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// When.
    pub time: Timestamp,
    /// On which connection.
    pub connection: ConnectionId,
    /// What.
    pub kind: ViolationKind,
}

/// Scheduled work of the fake.
#[derive(Clone, Debug)]
enum Job {
    Open(ConnectionId, bool),
    Refuse(ConnectionId),
    Hello(ConnectionId),
    Ack(ConnectionId),
    Ready(ConnectionId, usize),
    /// The GUILD_CREATE of `config.guilds[.2]` in session `.1`.
    GuildCreate(ConnectionId, usize, usize),
    /// A GUILD_MEMBERS_CHUNK with this `d`.
    MembersChunk(ConnectionId, String),
    Replay(ConnectionId, usize, u64),
    InvalidSession(ConnectionId),
    Script(ScriptAction),
}

impl Job {
    fn connection(&self) -> Option<ConnectionId> {
        match *self {
            Job::Open(c, _)
            | Job::Refuse(c)
            | Job::Hello(c)
            | Job::Ack(c)
            | Job::Ready(c, _)
            | Job::GuildCreate(c, _, _)
            | Job::MembersChunk(c, _)
            | Job::Replay(c, _, _)
            | Job::InvalidSession(c) => Some(c),
            Job::Script(_) => None,
        }
    }
}

/// Counters of things that scripts can trigger on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Happening {
    Connected,
    HelloSent,
    Identified,
    ReadySent,
    ResumeReceived,
    ResumedSent,
    Heartbeat(ConnectionId, u32),
}

/// A sans-IO fake Discord gateway server.
///
/// The fake has the same shape as the machine: inputs carry a virtual `now`
/// ([`handle_connect`](FakeGateway::handle_connect), [`handle_text`](FakeGateway::handle_text),
/// [`handle_close`](FakeGateway::handle_close), [`handle_timeout`](FakeGateway::handle_timeout)),
/// and what it decides comes out of [`poll_output`](FakeGateway::poll_output) as
/// [`ServerOutput`]s, with [`poll_timeout`](FakeGateway::poll_timeout) naming its next
/// deadline. It owns no socket and reads no clock, so the same logic can sit behind a
/// virtual-time driver ([`SimDriver`](super::SimDriver)), a real loopback WebSocket server,
/// a recorder or a fuzzer.
///
/// What it does by default, like Discord: on a connection, send Hello; on Identify, start a
/// session and send READY (with a distinct `resume_gateway_url`, the Identify's `shard`, the
/// configured bot [`user`](FakeGatewayConfig::user) and [`guilds`](FakeGatewayConfig::guilds)),
/// then each guild's GUILD_CREATE; on Resume of a known session, replay the dispatches the
/// client missed, in order, then send RESUMED (op 9 `false` for an unknown or invalidated
/// session or a sequence from the future); ACK every heartbeat; answer Request Guild Members
/// with a GUILD_MEMBERS_CHUNK. The payloads have Discord's shapes (see [`payloads`](super::payloads)):
/// a model crate such as twilight-model reads them as it reads Discord's. Knobs in [`FakeGatewayConfig`] and a [`Script`](ScriptStep) of
/// [`ScriptAction`]s change that: ACK delays and missed ACKs, op 1 / 7 / 9 at a time or after
/// an event, closes with any code, dispatch streams, refused or hanging connections, a Hello
/// that never comes.
///
/// It also checks what the client sends (payload shapes, Resume or Identify before Hello,
/// the heartbeat's `d`, commands before authentication, frame size, rate limit, the URL's
/// query) and records every violation ([`violations`](FakeGateway::violations)) and every
/// frame received with its time ([`received`](FakeGateway::received)), with the token
/// redacted.
///
/// # Methods
/// - **Inputs**: [`handle_connect`](Self::handle_connect), [`handle_text`](Self::handle_text),
///   [`handle_close`](Self::handle_close), [`handle_timeout`](Self::handle_timeout).
/// - **Outputs**: [`poll_output`](Self::poll_output) until `None`;
///   [`poll_timeout`](Self::poll_timeout) for the next deadline.
/// - **Script**: [`script`](Self::script), [`at`](Self::at), [`after`](Self::after),
///   [`dispatch_stream`](Self::dispatch_stream), [`perform`](Self::perform), and the knobs
///   in [`config_mut`](Self::config_mut).
/// - **Records**: [`received`](Self::received), [`connections`](Self::connections),
///   [`violations`](Self::violations), [`sessions`](Self::sessions).
#[derive(Debug)]
pub struct FakeGateway {
    config: FakeGatewayConfig,
    /// Transport compression per connection, from its URL's `compress` parameter.
    compressors: BTreeMap<ConnectionId, ServerCompressor>,
    now: Timestamp,
    agenda: BTreeMap<(Timestamp, u64), Job>,
    order: u64,
    outbox: VecDeque<ServerOutput>,
    waiting: Vec<ScriptStep>,
    connections: Vec<ConnectionRecord>,
    sessions: Vec<ServerSession>,
    latest_session: Option<usize>,
    received: Vec<ReceivedFrame>,
    violations: Vec<Violation>,
    counts: [u32; 6],
    heartbeats: u32,
    /// Messages made by [`ScriptAction::Message`], for their snowflakes' increment.
    messages: u32,
}

impl Default for FakeGateway {
    fn default() -> Self {
        FakeGateway::new(FakeGatewayConfig::default())
    }
}

impl FakeGateway {
    /// A fake gateway with these knobs, at time zero.
    pub fn new(config: FakeGatewayConfig) -> Self {
        FakeGateway {
            config,
            compressors: BTreeMap::new(),
            now: Timestamp::ZERO,
            agenda: BTreeMap::new(),
            order: 0,
            outbox: VecDeque::new(),
            waiting: Vec::new(),
            connections: Vec::new(),
            sessions: Vec::new(),
            latest_session: None,
            received: Vec::new(),
            violations: Vec::new(),
            counts: [0; 6],
            heartbeats: 0,
            messages: 0,
        }
    }

    // ----- knobs and script -----

    /// The knobs.
    pub fn config(&self) -> &FakeGatewayConfig {
        &self.config
    }

    /// The knobs, to change them mid-run (takes effect for what happens next).
    pub fn config_mut(&mut self) -> &mut FakeGatewayConfig {
        &mut self.config
    }

    /// Adds a scripted step. A step whose trigger is [`Trigger::At`] a past time happens at
    /// the next [`handle_timeout`](Self::handle_timeout).
    pub fn script(&mut self, step: ScriptStep) {
        match step.trigger {
            Trigger::At(at) => {
                let at = at.saturating_add(step.delay);
                self.schedule(at, Job::Script(step.action));
            }
            _ => self.waiting.push(step),
        }
    }

    /// `action` at time `at`.
    pub fn at(&mut self, at: Timestamp, action: ScriptAction) -> &mut Self {
        self.script(ScriptStep {
            trigger: Trigger::At(at),
            delay: Duration::ZERO,
            action,
        });
        self
    }

    /// `action`, `delay` after `trigger`.
    pub fn after(&mut self, trigger: Trigger, delay: Duration, action: ScriptAction) -> &mut Self {
        self.script(ScriptStep {
            trigger,
            delay,
            action,
        });
        self
    }

    /// A stream of dispatches: the i-th of `events` (name, data) `first + i * spacing` after
    /// `trigger`.
    pub fn dispatch_stream<N, D>(
        &mut self,
        trigger: Trigger,
        first: Duration,
        spacing: Duration,
        events: impl IntoIterator<Item = (N, D)>,
    ) -> &mut Self
    where
        N: Into<String>,
        D: Into<String>,
    {
        let mut delay = first;
        for (name, data) in events {
            self.after(trigger, delay, ScriptAction::dispatch(name, data));
            delay = delay.saturating_add(spacing);
        }
        self
    }

    /// Adds a rule for connection requests (see [`ConnectRule`]).
    pub fn connect_rule(
        &mut self,
        url_prefix: impl Into<String>,
        behavior: ConnectBehavior,
        times: Option<u32>,
    ) -> &mut Self {
        self.config.connect_rules.push(ConnectRule {
            url_prefix: url_prefix.into(),
            behavior,
            times,
        });
        self
    }

    /// Stops ACKing after `beats` heartbeats on every connection (`None`) or one.
    pub fn stop_acking_after(&mut self, beats: u32, connection: Option<ConnectionId>) -> &mut Self {
        self.config.ack_cutoffs.push(AckCutoff {
            connection,
            after_beats: beats,
        });
        self
    }

    /// Does `action` now, on the open connection.
    pub fn perform(&mut self, now: Timestamp, action: ScriptAction) {
        self.advance(now);
        self.run_script(action);
    }

    // ----- inputs -----

    /// The client asks for a connection to `url`. Returns the connection's number; the
    /// answer (accept, refuse, or nothing) comes out of [`poll_output`](Self::poll_output).
    pub fn handle_connect(&mut self, now: Timestamp, url: &str) -> ConnectionId {
        self.advance(now);
        let id = ConnectionId(self.connections.len() as u32 + 1);
        self.connections.push(ConnectionRecord {
            id,
            url: url.to_string(),
            requested_at: self.now,
            opened_at: None,
            hello_at: None,
            closed: None,
            session_id: None,
            identified: false,
            resumed: false,
            heartbeats: 0,
            client_sequence: None,
            live: false,
            recent: VecDeque::new(),
        });
        if let Some(problem) = check_url(url) {
            self.violate(id, ViolationKind::BadUrl(problem));
        }
        if let Some(compressor) = ServerCompressor::for_url(url) {
            self.compressors.insert(id, compressor);
        }
        let at = self.now.saturating_add(self.config.connect_delay);
        match self.connect_behavior(url) {
            ConnectBehavior::Accept => self.schedule(at, Job::Open(id, true)),
            ConnectBehavior::AcceptWithoutHello => self.schedule(at, Job::Open(id, false)),
            ConnectBehavior::Refuse => self.schedule(at, Job::Refuse(id)),
            ConnectBehavior::Hang => {}
        }
        id
    }

    /// The client sent a text frame on `connection`.
    pub fn handle_text(&mut self, now: Timestamp, connection: ConnectionId, text: &str) {
        self.advance(now);
        let json: Option<Value> = serde_json::from_str(text).ok();
        let opcode = json
            .as_ref()
            .and_then(|v| v.get("op"))
            .and_then(Value::as_u64);
        let redacted = json.as_ref().map(redact);
        let had_token = json
            .as_ref()
            .and_then(|v| v.get("d"))
            .is_some_and(|d| d.get("token").is_some());
        self.received.push(ReceivedFrame {
            time: self.now,
            connection,
            opcode,
            text: match &redacted {
                Some(value) if had_token => value.to_string(),
                _ => text.to_string(),
            },
            json: redacted,
        });
        let Some(index) = self.open_index(connection) else {
            self.violate(connection, ViolationKind::NotOpen);
            return;
        };
        if text.len() > MAX_FRAME_BYTES {
            self.violate(connection, ViolationKind::PayloadTooLarge(text.len()));
            self.enforce(connection, 4002, "payload too large");
            return;
        }
        let (limit, window) = self.config.rate_limit;
        let now = self.now;
        let recent = &mut self.connections[index].recent;
        recent.push_back(now);
        while recent
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= window)
        {
            recent.pop_front();
        }
        if recent.len() > limit as usize {
            self.violate(connection, ViolationKind::RateLimited);
            if self.enforce(connection, 4008, "rate limited") {
                return;
            }
        }
        let (Some(json), Some(op)) = (json, opcode) else {
            self.violate(connection, ViolationKind::Undecodable);
            self.enforce(connection, 4002, "decode error");
            return;
        };
        if self.connections[index].hello_at.is_none() {
            self.violate(connection, ViolationKind::BeforeHello(op));
        }
        let d = json.get("d").cloned().unwrap_or(Value::Null);
        match op {
            1 => self.on_heartbeat(index, &d),
            2 => self.on_identify(index, &d),
            6 => self.on_resume(index, &d),
            3 | 4 | 8 | 31 | 43 => {
                let c = &self.connections[index];
                if !(c.identified || c.resumed) {
                    self.violate(connection, ViolationKind::NotAuthenticated(op));
                    self.enforce(connection, 4003, "not authenticated");
                    return;
                }
                if let (8, Some(delay)) = (op, self.config.member_chunk_delay) {
                    let at = self.now.saturating_add(delay);
                    for data in self.members_chunks(index, &d) {
                        self.schedule(at, Job::MembersChunk(connection, data));
                    }
                }
            }
            other => {
                self.violate(connection, ViolationKind::UnknownOpcode(other));
                self.enforce(connection, 4001, "unknown opcode");
            }
        }
    }

    /// The client closed `connection` (with `code`, or `None` if it dropped the socket, or
    /// gave up on a connection attempt). A client close with 1000 or 1001 invalidates the
    /// connection's session.
    pub fn handle_close(&mut self, now: Timestamp, connection: ConnectionId, code: Option<u16>) {
        self.advance(now);
        let Some(index) = self.index(connection) else {
            return;
        };
        if self.connections[index].closed.is_some() {
            return;
        }
        let code = code.unwrap_or(1006);
        if matches!(code, 1000 | 1001) {
            if let Some(session) = self.session_of(index) {
                self.sessions[session].valid = false;
            }
        }
        self.end(index, Closer::Client(code));
    }

    /// Time passed: do everything due at or before `now`.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.advance(now);
        while let Some(entry) = self.agenda.first_entry() {
            if entry.key().0 > self.now {
                break;
            }
            let job = entry.remove();
            self.run_job(job);
        }
    }

    // ----- outputs -----

    /// The next thing the server does on the wire, in order; `None` when nothing is due.
    pub fn poll_output(&mut self) -> Option<ServerOutput> {
        self.outbox.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.agenda.keys().next().map(|&(at, _)| at)
    }

    // ----- records -----

    /// The latest time seen.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Every frame received from the client, in order.
    pub fn received(&self) -> &[ReceivedFrame] {
        &self.received
    }

    /// The frames received with opcode `op`.
    pub fn received_op(&self, op: u64) -> impl Iterator<Item = &ReceivedFrame> + '_ {
        self.received.iter().filter(move |f| f.opcode == Some(op))
    }

    /// Every connection, in order (`connections()[n - 1]` is `ConnectionId(n)`).
    pub fn connections(&self) -> &[ConnectionRecord] {
        &self.connections
    }

    /// One connection.
    pub fn connection(&self, id: ConnectionId) -> Option<&ConnectionRecord> {
        self.index(id).map(|i| &self.connections[i])
    }

    /// The connection open now, if any.
    pub fn open_connection(&self) -> Option<ConnectionId> {
        self.connections
            .iter()
            .rev()
            .find(|c| c.is_open())
            .map(|c| c.id)
    }

    /// Everything the client did wrong, in order.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// Every session started, in order.
    pub fn sessions(&self) -> &[ServerSession] {
        &self.sessions
    }

    /// Heartbeats received on every connection.
    pub fn heartbeats_received(&self) -> u32 {
        self.heartbeats
    }

    // ----- internals -----

    fn advance(&mut self, now: Timestamp) {
        self.now = self.now.max(now);
    }

    fn schedule(&mut self, at: Timestamp, job: Job) {
        let at = at.max(self.now);
        self.order += 1;
        self.agenda.insert((at, self.order), job);
    }

    fn index(&self, id: ConnectionId) -> Option<usize> {
        let i = (id.0 as usize).checked_sub(1)?;
        (i < self.connections.len()).then_some(i)
    }

    fn open_index(&self, id: ConnectionId) -> Option<usize> {
        self.index(id).filter(|&i| self.connections[i].is_open())
    }

    fn current_index(&self) -> Option<usize> {
        self.open_connection().and_then(|c| self.index(c))
    }

    fn session_of(&self, index: usize) -> Option<usize> {
        let id = self.connections[index].session_id.as_deref()?;
        self.sessions.iter().position(|s| s.id == id)
    }

    fn violate(&mut self, connection: ConnectionId, kind: ViolationKind) {
        self.violations.push(Violation {
            time: self.now,
            connection,
            kind,
        });
    }

    /// Closes `connection` with `code` if enforcing; returns whether it did.
    fn enforce(&mut self, connection: ConnectionId, code: u16, reason: &str) -> bool {
        if !self.config.enforce {
            return false;
        }
        self.close(connection, code, reason);
        true
    }

    fn close(&mut self, connection: ConnectionId, code: u16, reason: &str) {
        let Some(index) = self.open_index(connection) else {
            return;
        };
        self.outbox.push_back(ServerOutput {
            connection,
            action: ServerAction::Close {
                code,
                reason: reason.to_string(),
            },
        });
        self.end(index, Closer::Server(code));
    }

    /// Marks a connection ended and forgets everything still planned for it.
    fn end(&mut self, index: usize, closer: Closer) {
        let id = self.connections[index].id;
        self.connections[index].closed = Some((self.now, closer));
        self.connections[index].live = false;
        self.compressors.remove(&id);
        if let Closer::Client(_) = closer {
            // The client is gone: what the server had queued for it is never received.
            // (After a server close or drop, what was queued before it still arrives first.)
            self.outbox.retain(|out| out.connection != id);
        }
        self.agenda.retain(|_, job| job.connection() != Some(id));
    }

    fn connect_behavior(&mut self, url: &str) -> ConnectBehavior {
        for rule in self.config.connect_rules.iter_mut() {
            if !url.starts_with(rule.url_prefix.as_str()) || rule.times == Some(0) {
                continue;
            }
            if let Some(times) = &mut rule.times {
                *times -= 1;
            }
            return rule.behavior;
        }
        ConnectBehavior::Accept
    }

    /// Sends a gateway message, compressed if the connection asked for it.
    fn send(&mut self, connection: ConnectionId, text: String) {
        let action = match self.compressors.get_mut(&connection) {
            Some(compressor) => ServerAction::Binary(compressor.compress(text.as_bytes())),
            None => ServerAction::Text(text),
        };
        self.outbox.push_back(ServerOutput { connection, action });
    }

    /// Counts a happening and schedules the script steps it triggers.
    fn happened(&mut self, what: Happening) {
        let count = match what {
            Happening::Heartbeat(..) => {
                self.heartbeats += 1;
                self.heartbeats
            }
            other => {
                let slot = match other {
                    Happening::Connected => 0,
                    Happening::HelloSent => 1,
                    Happening::Identified => 2,
                    Happening::ReadySent => 3,
                    Happening::ResumeReceived => 4,
                    _ => 5,
                };
                self.counts[slot] += 1;
                self.counts[slot]
            }
        };
        let fires = |trigger: Trigger| match (trigger, what) {
            (Trigger::Connected(n), Happening::Connected)
            | (Trigger::HelloSent(n), Happening::HelloSent)
            | (Trigger::Identified(n), Happening::Identified)
            | (Trigger::ReadySent(n), Happening::ReadySent)
            | (Trigger::ResumeReceived(n), Happening::ResumeReceived)
            | (Trigger::ResumedSent(n), Happening::ResumedSent)
            | (Trigger::Heartbeat(n), Happening::Heartbeat(..)) => n == count,
            (Trigger::HeartbeatOn { connection, beat }, Happening::Heartbeat(c, b)) => {
                connection == c && beat == b
            }
            _ => false,
        };
        let mut i = 0;
        while i < self.waiting.len() {
            if fires(self.waiting[i].trigger) {
                let step = self.waiting.remove(i);
                let at = self.now.saturating_add(step.delay);
                self.schedule(at, Job::Script(step.action));
            } else {
                i += 1;
            }
        }
    }

    fn run_job(&mut self, job: Job) {
        match job {
            Job::Open(id, hello) => {
                let Some(index) = self.index(id) else { return };
                if self.connections[index].closed.is_some() {
                    return;
                }
                self.connections[index].opened_at = Some(self.now);
                self.outbox.push_back(ServerOutput {
                    connection: id,
                    action: ServerAction::Accept,
                });
                if hello {
                    if let Some(delay) = self.config.hello_delay {
                        self.schedule(self.now.saturating_add(delay), Job::Hello(id));
                    }
                }
                self.happened(Happening::Connected);
            }
            Job::Refuse(id) => {
                let Some(index) = self.index(id) else { return };
                self.outbox.push_back(ServerOutput {
                    connection: id,
                    action: ServerAction::Refuse,
                });
                self.end(index, Closer::Refused);
            }
            Job::Hello(id) => self.send_hello(id),
            Job::Ack(id) => {
                if self.open_index(id).is_some() {
                    self.send(id, String::from(r#"{"op":11,"d":null}"#));
                }
            }
            Job::Ready(id, session) => self.send_ready(id, session),
            Job::GuildCreate(id, session, guild) => {
                let Some(index) = self.open_index(id) else {
                    return;
                };
                let Some(guild) = self.config.guilds.get(guild) else {
                    return;
                };
                let data = payloads::guild_create(guild, &self.config.user, self.unix_ms());
                self.dispatch(session, Some(index), "GUILD_CREATE", &data);
            }
            Job::MembersChunk(id, data) => {
                let Some(index) = self.open_index(id) else {
                    return;
                };
                if let Some(session) = self.session_of(index) {
                    self.dispatch(session, Some(index), "GUILD_MEMBERS_CHUNK", &data);
                }
            }
            Job::Replay(id, session, from) => self.replay(id, session, from),
            Job::InvalidSession(id) => {
                if self.open_index(id).is_some() {
                    self.send(id, String::from(r#"{"op":9,"d":false}"#));
                }
            }
            Job::Script(action) => self.run_script(action),
        }
    }

    fn send_hello(&mut self, id: ConnectionId) {
        let Some(index) = self.open_index(id) else {
            return;
        };
        self.connections[index].hello_at.get_or_insert(self.now);
        let interval = self.config.hello_interval.as_millis();
        self.send(
            id,
            format!(r#"{{"t":null,"s":null,"op":10,"d":{{"heartbeat_interval":{interval},"_trace":["sim-gateway"]}}}}"#),
        );
        self.happened(Happening::HelloSent);
    }

    /// Logs a dispatch in `session` and, if `connection` is given, sends it there.
    fn dispatch(&mut self, session: usize, connection: Option<usize>, name: &str, data: &str) {
        let s = &mut self.sessions[session];
        s.sequence += 1;
        let sequence = s.sequence;
        s.log.push(LoggedDispatch {
            sequence,
            name: name.to_string(),
            data: data.to_string(),
        });
        if let Some(index) = connection {
            self.connections[index].client_sequence = Some(sequence);
            let id = self.connections[index].id;
            self.send(id, dispatch_text(name, sequence, data));
        }
    }

    fn send_ready(&mut self, id: ConnectionId, session: usize) {
        let Some(index) = self.open_index(id) else {
            return;
        };
        let data = payloads::ready(&ReadyParts {
            session_id: &self.sessions[session].id,
            resume_gateway_url: &self.config.resume_url,
            user: &self.config.user,
            application_id: self.config.application_id,
            guilds: &self.config.guilds,
            shard: self.config.ready_shard.or(self.sessions[session].shard),
        });
        self.connections[index].live = true;
        self.latest_session = Some(session);
        self.dispatch(session, Some(index), "READY", &data);
        if let Some(delay) = self.config.guild_create_delay {
            let mut at = self.now;
            for guild in 0..self.config.guilds.len() {
                at = at.saturating_add(delay);
                self.schedule(at, Job::GuildCreate(id, session, guild));
            }
        }
        self.happened(Happening::ReadySent);
    }

    /// The virtual now on the wall clock ([`FakeGatewayConfig::epoch_unix_ms`]).
    fn unix_ms(&self) -> u64 {
        let since_zero = self
            .now
            .saturating_duration_since(Timestamp::ZERO)
            .as_millis();
        self.config
            .epoch_unix_ms
            .saturating_add(u64::try_from(since_zero).unwrap_or(u64::MAX))
    }

    /// The `d`s of the GUILD_MEMBERS_CHUNKs answering Request Guild Members `d` on
    /// connection `index`; none unless it asks (validly) about one of the configured guilds.
    fn members_chunks(&self, index: usize, d: &Value) -> Vec<String> {
        let Some(mut request) = MemberRequest::read(d) else {
            return Vec::new();
        };
        let Some(guild) = self.config.guilds.iter().find(|g| g.id == request.guild_id) else {
            return Vec::new();
        };
        // Presences need the GUILD_PRESENCES intent (1 << 8); without it Discord sends none.
        let intents = self
            .session_of(index)
            .map_or(0, |s| self.sessions[s].intents);
        request.presences &= intents & (1 << 8) != 0;
        // The bot joined each guild at virtual time zero.
        let joined = self.config.epoch_unix_ms;
        payloads::guild_members_chunks(guild, &self.config.user, joined, &request)
    }

    fn replay(&mut self, id: ConnectionId, session: usize, from: u64) {
        let Some(index) = self.open_index(id) else {
            return;
        };
        let missed: Vec<LoggedDispatch> = self.sessions[session]
            .log
            .iter()
            .filter(|d| d.sequence > from)
            .cloned()
            .collect();
        for d in missed {
            self.connections[index].client_sequence = Some(d.sequence);
            self.send(id, dispatch_text(&d.name, d.sequence, &d.data));
        }
        self.latest_session = Some(session);
        if self.config.send_resumed {
            self.connections[index].live = true;
            self.dispatch(session, Some(index), "RESUMED", "null");
            self.happened(Happening::ResumedSent);
        }
    }

    /// Where a scripted dispatch goes: the live connection (if any) and its session, else
    /// no connection and the latest valid session (the dispatch is missed, then replayed).
    fn script_target(&self, current: Option<usize>) -> (Option<usize>, Option<usize>) {
        let live = current.filter(|&i| self.connections[i].live);
        let session = match live {
            Some(i) => self.session_of(i),
            None => self.latest_session.filter(|&s| self.sessions[s].valid),
        };
        (live, session)
    }

    /// Where a dispatch for `shard` goes: the latest valid session identified as `shard`,
    /// and its live connection if it has one.
    fn shard_target(&self, shard: ShardId) -> Option<(Option<usize>, usize)> {
        let session = self
            .sessions
            .iter()
            .rposition(|s| s.valid && s.shard == Some(shard))?;
        let id = self.sessions[session].id.as_str();
        let live = self
            .connections
            .iter()
            .rposition(|c| c.is_open() && c.live && c.session_id.as_deref() == Some(id));
        Some((live, session))
    }

    fn run_script(&mut self, action: ScriptAction) {
        let current = self.current_index();
        let id = current.map(|i| self.connections[i].id);
        match action {
            ScriptAction::Dispatch { name, data } => {
                let (live, session) = self.script_target(current);
                if let Some(session) = session {
                    self.dispatch(session, live, &name, &data);
                }
            }
            ScriptAction::ShardDispatch { shard, name, data } => {
                if let Some((live, session)) = self.shard_target(shard) {
                    self.dispatch(session, live, &name, &data);
                }
            }
            ScriptAction::Message(message) => {
                let (live, session) = self.script_target(current);
                let Some(session) = session else { return };
                let increment = (self.messages & 0xfff) as u16;
                self.messages = self.messages.wrapping_add(1);
                let id = payloads::snowflake_at(self.unix_ms(), increment);
                // Without the MESSAGE_CONTENT intent (1 << 15) Discord blanks the content of
                // guild messages that are not the bot's own and do not mention it.
                let bot = self.config.user.id;
                let with_content = self.sessions[session].intents & (1 << 15) != 0
                    || message.guild_id.is_none()
                    || message.author.id == bot
                    || message.content.contains(&format!("<@{bot}>"));
                let data = payloads::message_create(&message, id, with_content);
                self.dispatch(session, live, "MESSAGE_CREATE", &data);
            }
            ScriptAction::ForgetSessions => {
                for s in &mut self.sessions {
                    s.valid = false;
                }
            }
            other => {
                let Some(id) = id else { return };
                let text = match other {
                    ScriptAction::RequestHeartbeat => String::from(r#"{"op":1,"d":null}"#),
                    ScriptAction::Reconnect => String::from(r#"{"op":7,"d":null}"#),
                    ScriptAction::InvalidSession(resumable) => {
                        format!(r#"{{"op":9,"d":{resumable}}}"#)
                    }
                    ScriptAction::Hello => return self.send_hello(id),
                    ScriptAction::Ack => String::from(r#"{"op":11}"#),
                    ScriptAction::Text(text) => text,
                    ScriptAction::TextBytes(bytes) => {
                        self.outbox.push_back(ServerOutput {
                            connection: id,
                            action: ServerAction::TextBytes(bytes),
                        });
                        return;
                    }
                    ScriptAction::Binary(bytes) => {
                        self.outbox.push_back(ServerOutput {
                            connection: id,
                            action: ServerAction::Binary(bytes),
                        });
                        return;
                    }
                    ScriptAction::Close { code, reason } => return self.close(id, code, &reason),
                    ScriptAction::Drop => {
                        self.outbox.push_back(ServerOutput {
                            connection: id,
                            action: ServerAction::Drop,
                        });
                        if let Some(index) = current {
                            self.end(index, Closer::ServerDrop);
                        }
                        return;
                    }
                    ScriptAction::Dispatch { .. }
                    | ScriptAction::ShardDispatch { .. }
                    | ScriptAction::Message(_)
                    | ScriptAction::ForgetSessions => return,
                };
                self.send(id, text);
            }
        }
    }

    fn on_heartbeat(&mut self, index: usize, d: &Value) {
        let id = self.connections[index].id;
        let got = match d {
            Value::Null => None,
            other => match other.as_u64() {
                Some(seq) => Some(seq),
                None => {
                    self.violate(
                        id,
                        ViolationKind::BadHeartbeat("d is neither null nor a sequence"),
                    );
                    self.enforce(id, 4002, "decode error");
                    return;
                }
            },
        };
        let expected = self.connections[index].client_sequence;
        if got != expected {
            self.violate(id, ViolationKind::HeartbeatSequence { expected, got });
        }
        let c = &mut self.connections[index];
        let beat = c.heartbeats;
        c.heartbeats += 1;
        let cut = self
            .config
            .ack_cutoffs
            .iter()
            .any(|cut| cut.connection.is_none_or(|c| c == id) && beat >= cut.after_beats);
        if !cut {
            let delay = self
                .config
                .ack_delays
                .get(beat as usize)
                .copied()
                .unwrap_or(self.config.ack_delay);
            self.schedule(self.now.saturating_add(delay), Job::Ack(id));
        }
        self.happened(Happening::Heartbeat(id, beat + 1));
    }

    /// Checks the token; closes with 4004 and returns false if it is wrong.
    fn token_ok(&mut self, id: ConnectionId, token: &str) -> bool {
        let ok = match &self.config.token {
            Some(expected) => expected.expose_secret() == token,
            None => true,
        };
        if !ok {
            self.close(id, 4004, "authentication failed");
        }
        ok
    }

    fn on_identify(&mut self, index: usize, d: &Value) {
        let id = self.connections[index].id;
        if let Err(problem) = check_identify(d) {
            self.violate(id, ViolationKind::BadIdentify(problem));
            self.enforce(id, 4002, "decode error");
            return;
        }
        if self.connections[index].identified || self.connections[index].resumed {
            self.violate(id, ViolationKind::AlreadyAuthenticated);
            self.enforce(id, 4005, "already authenticated");
            return;
        }
        if !self.token_ok(id, d["token"].as_str().unwrap_or_default()) {
            return;
        }
        let session_id = format!("sim-session-{}", self.sessions.len() + 1);
        let shard = d.get("shard").and_then(|pair| {
            let id = u32::try_from(pair.get(0)?.as_u64()?).ok()?;
            let count = u32::try_from(pair.get(1)?.as_u64()?).ok()?;
            Some(ShardId::new(id, count))
        });
        self.sessions.push(ServerSession {
            id: session_id.clone(),
            sequence: 0,
            log: Vec::new(),
            valid: true,
            shard,
            intents: d["intents"].as_u64().unwrap_or(0),
        });
        let session = self.sessions.len() - 1;
        let c = &mut self.connections[index];
        c.identified = true;
        c.session_id = Some(session_id);
        c.client_sequence = None;
        if self.config.send_ready {
            let at = self.now.saturating_add(self.config.ready_delay);
            self.schedule(at, Job::Ready(id, session));
        }
        self.happened(Happening::Identified);
    }

    fn on_resume(&mut self, index: usize, d: &Value) {
        let id = self.connections[index].id;
        let (token, session_id, seq) = match check_resume(d) {
            Ok(fields) => fields,
            Err(problem) => {
                self.violate(id, ViolationKind::BadResume(problem));
                self.enforce(id, 4002, "decode error");
                return;
            }
        };
        if self.connections[index].identified || self.connections[index].resumed {
            self.violate(id, ViolationKind::AlreadyAuthenticated);
            self.enforce(id, 4005, "already authenticated");
            return;
        }
        if !self.token_ok(id, token) {
            return;
        }
        let c = &mut self.connections[index];
        c.resumed = true;
        c.client_sequence = Some(seq);
        self.happened(Happening::ResumeReceived);
        let known = self
            .sessions
            .iter()
            .position(|s| s.id == session_id && s.valid && seq <= s.sequence);
        match known {
            Some(session) => {
                self.connections[index].session_id = Some(session_id.to_string());
                let at = self.now.saturating_add(self.config.resume_delay);
                self.schedule(at, Job::Replay(id, session, seq));
            }
            None => {
                let at = self.now.saturating_add(self.config.invalid_session_delay);
                self.schedule(at, Job::InvalidSession(id));
            }
        }
    }
}

/// A dispatch message, keys in the order Discord sends them.
fn dispatch_text(name: &str, sequence: u64, data: &str) -> String {
    format!(
        r#"{{"t":{},"s":{sequence},"op":0,"d":{data}}}"#,
        Value::from(name)
    )
}

/// The message with `d.token` (if any) replaced by `<redacted>`.
pub(crate) fn redact(message: &Value) -> Value {
    let mut message = message.clone();
    if let Some(token) = message.get_mut("d").and_then(|d| d.get_mut("token")) {
        *token = Value::from("<redacted>");
    }
    message
}

fn check_url(url: &str) -> Option<String> {
    let parsed = match url::Url::parse(url) {
        Ok(parsed) => parsed,
        Err(_) => return Some(format!("not a URL: {url}")),
    };
    if !matches!(parsed.scheme(), "ws" | "wss") {
        return Some(format!("scheme {}", parsed.scheme()));
    }
    let has = |key: &str, value: &str| parsed.query_pairs().any(|(k, v)| k == key && v == value);
    if !has("v", "10") {
        return Some(String::from("missing v=10"));
    }
    if !has("encoding", "json") {
        return Some(String::from("missing encoding=json"));
    }
    None
}

fn check_identify(d: &Value) -> Result<(), &'static str> {
    let d = d.as_object().ok_or("d is not an object")?;
    match d.get("token").and_then(Value::as_str) {
        Some(t) if !t.is_empty() => {}
        _ => return Err("token missing or empty"),
    }
    let props = d
        .get("properties")
        .and_then(Value::as_object)
        .ok_or("properties missing")?;
    for key in ["os", "browser", "device"] {
        if !props.get(key).is_some_and(Value::is_string) {
            return Err("properties lacks os, browser or device");
        }
    }
    if !d.get("intents").is_some_and(Value::is_u64) {
        return Err("intents missing or not an integer");
    }
    if let Some(shard) = d.get("shard") {
        let pair = shard
            .as_array()
            .filter(|a| a.len() == 2)
            .ok_or("shard is not [id, count]")?;
        let (id, count) = (pair[0].as_u64(), pair[1].as_u64());
        match (id, count) {
            (Some(id), Some(count)) if id < count => {}
            _ => return Err("shard is not [id, count] with id < count"),
        }
    }
    if let Some(t) = d.get("large_threshold") {
        if !t.as_u64().is_some_and(|t| (50..=250).contains(&t)) {
            return Err("large_threshold outside 50-250");
        }
    }
    if let Some(c) = d.get("compress") {
        if !c.is_boolean() {
            return Err("compress is not a boolean");
        }
    }
    Ok(())
}

fn check_resume(d: &Value) -> Result<(&str, &str, u64), &'static str> {
    let d = d.as_object().ok_or("d is not an object")?;
    let token = d
        .get("token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or("token missing or empty")?;
    let session = d
        .get("session_id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or("session_id missing or empty")?;
    let seq = d
        .get("seq")
        .and_then(Value::as_u64)
        .ok_or("seq missing or not an integer")?;
    Ok((token, session, seq))
}
