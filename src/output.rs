//! What the machine asks of its driver: [`Output`] and the [`Event`]s it reports.

use alloc::boxed::Box;
use alloc::string::String;
use core::fmt;
use core::ops::Range;
use core::time::Duration;

use serde::{Deserialize, Serialize};

use crate::close_code::CloseCode;
use crate::protocol::envelope::EnvelopeError;
use crate::protocol::opcode::OpCode;
use crate::time::Timestamp;

/// One action for the driver, from [`GatewayMachine::poll_output`](crate::GatewayMachine::poll_output).
///
/// Borrowed data (frame text, dispatch payloads) lives in the machine's reused buffers and
/// is valid until the next call on the machine; copy what you keep.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output<'a> {
    /// Open a WebSocket to `url`, then report [`handle_connected`] or [`handle_closed`]`(None)`.
    ///
    /// [`handle_connected`]: crate::GatewayMachine::handle_connected
    /// [`handle_closed`]: crate::GatewayMachine::handle_closed
    Connect {
        /// The full URL, query included.
        url: &'a str,
    },
    /// Send this text message on the open socket.
    Send(Frame<'a>),
    /// Send a close frame if possible and drop the socket without waiting for an answer.
    /// Report nothing more from that socket.
    Close(CloseFrame<'static>),
    /// Something the application may want to know.
    Event(Event<'a>),
    /// Nothing is queued: sleep until the deadline (then call `handle_timeout`) or the next
    /// socket event, whichever comes first. `None`: no timer is armed.
    Wait(Option<Timestamp>),
}

/// An outgoing gateway message: JSON text.
///
/// Its `Debug` output hides the text of Identify and Resume, which carry the token.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The opcode, for logging and metrics.
    pub opcode: OpCode,
    /// The JSON text to send as one WebSocket text message.
    pub text: &'a str,
}

impl fmt::Debug for Frame<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Frame");
        s.field("opcode", &self.opcode);
        match self.opcode {
            OpCode::Identify | OpCode::Resume => s.field(
                "text",
                &format_args!("<{} bytes, token redacted>", self.text.len()),
            ),
            _ => s.field("text", &self.text),
        };
        s.finish()
    }
}

/// A WebSocket close: code and reason. Used for closes the machine asks for and for closes
/// the driver reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseFrame<'a> {
    /// The close code.
    pub code: u16,
    /// The reason text (may be empty).
    pub reason: &'a str,
}

/// A dispatch (op 0): event name, sequence and the raw JSON `d`, for the application to parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dispatch<'a> {
    /// The event name, e.g. `MESSAGE_CREATE`.
    pub name: &'a str,
    /// The sequence number.
    pub sequence: u64,
    /// The `d` field, as raw JSON text. The envelope reader delimits it exactly and checks
    /// its strings and bracket balance, but not the tokens between: parsing it is where a
    /// malformed `d` is reported (see [`read_envelope`](crate::protocol::envelope::read_envelope)).
    pub data: &'a str,
    /// Where `name` and `data` lie in the text message this dispatch was read from, when
    /// that message is the one the driver gave as it was: [`Message::Text`] or
    /// [`Message::TextBytes`] to [`handle_message`], or a buffer handed to
    /// [`handle_text_buffer`]. `None` for a decompressed message (the text exists only in
    /// the machine) and for a dispatch copied out because the driver did not drain.
    ///
    /// A driver whose WebSocket library keeps each message in shared memory (tungstenite's
    /// `Utf8Bytes` is `bytes::Bytes`) can hand the application slices of that message
    /// instead of copies: [`Dispatch::name_range`] and [`Dispatch::data_range`].
    ///
    /// [`Message::Text`]: crate::Message::Text
    /// [`Message::TextBytes`]: crate::Message::TextBytes
    /// [`handle_message`]: crate::GatewayMachine::handle_message
    /// [`handle_text_buffer`]: crate::GatewayMachine::handle_text_buffer
    pub spans: Option<MessageSpans>,
}

/// Where a [`Dispatch`]'s name and data start in the message it was read from (see
/// [`Dispatch::spans`]). Their lengths are those of `name` and `data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageSpans {
    /// The byte offset of the event name (inside the quotes of `"t"`).
    pub name_start: u32,
    /// The byte offset of the raw `d` JSON.
    pub data_start: u32,
}

impl MessageSpans {
    /// The spans of `name` and `data`, given as byte ranges of a message; `None` if an
    /// offset does not fit in a `u32` (a message over 4 GiB).
    pub(crate) fn new(name: &Range<usize>, data: &Range<usize>) -> Option<Self> {
        Some(MessageSpans {
            name_start: u32::try_from(name.start).ok()?,
            data_start: u32::try_from(data.start).ok()?,
        })
    }
}

impl Dispatch<'_> {
    /// The byte range of [`name`](Self::name) in the message the driver gave, if
    /// [`spans`](Self::spans) is known.
    pub fn name_range(&self) -> Option<Range<usize>> {
        let start = self.spans?.name_start as usize;
        Some(start..start + self.name.len())
    }

    /// The byte range of [`data`](Self::data) in the message the driver gave, if
    /// [`spans`](Self::spans) is known.
    pub fn data_range(&self) -> Option<Range<usize>> {
        let start = self.spans?.data_start as usize;
        Some(start..start + self.data.len())
    }

    /// Copies the dispatch out of the machine's buffer.
    pub fn to_owned(&self) -> OwnedDispatch {
        OwnedDispatch {
            name: self.name.into(),
            sequence: self.sequence,
            data: self.data.into(),
        }
    }
}

/// A [`Dispatch`] that owns its data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedDispatch {
    /// The event name.
    pub name: String,
    /// The sequence number.
    pub sequence: u64,
    /// The `d` field, as raw JSON text.
    pub data: String,
}

/// The basics of READY that the machine itself reads. The full READY also arrives as a
/// [`Dispatch`] right after this event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyInfo {
    /// The gateway version (`v`).
    pub version: u8,
    /// The new session's id.
    pub session_id: String,
    /// Where resumes of this session go.
    pub resume_gateway_url: Option<String>,
    /// The bot user's id.
    pub user_id: Option<String>,
    /// The application's id.
    pub application_id: Option<String>,
    /// How many guilds READY listed (as unavailable; GUILD_CREATEs follow).
    pub guild_count: usize,
}

/// Something the application may want to know.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<'a> {
    /// Hello arrived: the heartbeat interval is known.
    Hello {
        /// Discord's heartbeat interval.
        heartbeat_interval: Duration,
    },
    /// The machine wants to identify (a new session). Answer with
    /// [`grant_identify`](crate::GatewayMachine::grant_identify) when the identify queue allows.
    IdentifyRequested,
    /// READY: a new session started. (Boxed: it is the largest event by far and comes
    /// once per session, and every queued or returned output is as large as the largest.)
    Ready(Box<ReadyInfo>),
    /// RESUMED: the session goes on; `replayed` dispatches were replayed before it.
    Resumed {
        /// Dispatches received between sending Resume and RESUMED.
        replayed: u64,
    },
    /// A dispatch (including READY and RESUMED themselves).
    Dispatch(Dispatch<'a>),
    /// A dispatch arrived with a sequence number past the next one: the dispatches
    /// `expected..received` were not received (the server skipped them, or they were lost
    /// on the way). Reported just before that dispatch, which is delivered as usual; the
    /// session's sequence moves on to `received`. The count starts at READY (or at the
    /// saved sequence when resuming) and runs through replayed dispatches.
    SequenceGap {
        /// The sequence number that should have come next.
        expected: u64,
        /// The sequence number that came.
        received: u64,
    },
    /// A dispatch arrived with a sequence number already passed: a duplicate, or an older
    /// dispatch sent again. Reported just before that dispatch, which is delivered as usual
    /// (deduplicate by sequence if it matters); the session's sequence stays. A run of
    /// repeats in order (`received`, `received + 1`, ...) is reported once, at its first
    /// dispatch.
    SequenceDuplicate {
        /// The sequence number that should have come next.
        expected: u64,
        /// The sequence number that came (below `expected`).
        received: u64,
    },
    /// A heartbeat was acknowledged.
    HeartbeatAck {
        /// Time from the beat to its ACK.
        latency: Duration,
    },
    /// Discord said the session is invalid (op 9).
    InvalidSession {
        /// Whether it may be resumed.
        resumable: bool,
    },
    /// A message from the network could not be used. The connection goes on unless a
    /// [`Event::Disconnected`] follows.
    ProtocolError(ProtocolError),
    /// The connection is gone; the machine will reconnect (unless terminal).
    Disconnected(Disconnect),
    /// A RATE_LIMITED dispatch (op 8 request refused).
    RateLimited(RateLimited),
    /// The machine stopped for good; only `Wait(None)` follows.
    Fatal(FatalReason),
    /// Why the machine did what follows (only with
    /// [`set_trace`](crate::GatewayMachine::set_trace) on).
    Decision(crate::trace::Decision),
    /// [`shutdown`](crate::GatewayMachine::shutdown) finished; only `Wait(None)` follows.
    Shutdown {
        /// Whether the session can still be resumed (from [`session`](crate::GatewayMachine::session)).
        session_kept: bool,
    },
}

/// Why a connection ended and what the machine does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disconnect {
    /// What ended it.
    pub reason: DisconnectReason,
    /// Whether the next connection resumes (`true`) or identifies.
    pub resume: bool,
    /// When the machine will connect again.
    pub reconnect_at: Timestamp,
}

/// What ended a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The server closed with this code.
    ServerClose(CloseCode),
    /// The transport failed with no close frame.
    TransportLost,
    /// The socket did not open in time.
    ConnectTimeout,
    /// Hello did not arrive in time.
    HelloTimeout,
    /// READY or RESUMED did not arrive in time.
    ReadyTimeout,
    /// No ACK between beats: the connection is a zombie.
    Zombie,
    /// Discord asked for a reconnect (op 7).
    ReconnectRequested,
    /// Discord invalidated the session (op 9).
    InvalidSession {
        /// Whether it may be resumed.
        resumable: bool,
    },
    /// The machine closed because of bad input it could not recover from on this connection.
    Protocol,
}

/// Why the machine stopped for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum FatalReason {
    /// A close code that must not be retried (4004, 4010-4014).
    #[error("the gateway closed with {0}, which must not be retried")]
    CloseCode(CloseCode),
    /// The backoff policy's attempt cap was reached.
    #[error("gave up after {attempts} failed reconnect attempts")]
    ReconnectAttemptsExhausted {
        /// Attempts made.
        attempts: u32,
    },
    /// The gateway closed with 4002 (decode error) in answer to two Identifies in a row: it
    /// cannot read the Identify this configuration produces, and sending it again would not
    /// change that. Check the configuration (presence, properties, intents).
    #[error("the gateway could not decode the Identify this configuration produces (4002 twice in a row)")]
    IdentifyUndecodable,
}

/// A message from the network that could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A text message was not UTF-8.
    #[error("text message is not valid UTF-8")]
    InvalidUtf8,
    /// The envelope could not be read.
    #[error("unreadable message: {0}")]
    Envelope(#[from] EnvelopeError),
    /// An opcode this crate does not know (ignored).
    #[error("unknown opcode {0}")]
    UnknownOpcode(u64),
    /// An opcode a client never receives (e.g. Identify).
    #[error("unexpected opcode {0} from the server")]
    UnexpectedOpcode(OpCode),
    /// A known opcode whose payload is missing or malformed.
    #[error("malformed payload for {0}")]
    MalformedPayload(OpCode),
    /// A binary message arrived but compression is off.
    #[error("binary message received but compression is off")]
    UnexpectedBinary,
    /// Decompression failed.
    #[error("decompression failed: {0}")]
    Decompress(#[from] crate::inflate::InflateError),
    /// A message arrived in a phase where it makes no sense (e.g. an ACK before Hello).
    #[error("{0} received while {1}")]
    OutOfPhase(OpCode, &'static str),
    /// A message arrived while no connection is open (a driver reporting a stale socket).
    #[error("message received with no open connection")]
    NotConnected,
    /// A dispatch whose envelope is damaged (e.g. an invalid escape inside `d`) but whose
    /// `t`, `s` and `d` could still be told apart: the dispatch is delivered right after
    /// this error, with `d` as it came (the application's parser meets the bad bytes), and
    /// the session's sequence counts it.
    #[error("dispatch {sequence} delivered as it came, but its message is damaged: {error}")]
    DamagedDispatch {
        /// The dispatch's sequence number.
        sequence: u64,
        /// What the envelope reader found wrong.
        error: EnvelopeError,
    },
    /// A dispatch whose `s` could be read but whose `t` or `d` could not even be delimited
    /// (e.g. a truncated message): it cannot be delivered, so the session must not move
    /// past it. The machine closes the connection (keeping the session) and resumes from
    /// the last sequence delivered, so the server replays it.
    #[error("dispatch {sequence} is unreadable and was not delivered (resuming to get it again): {error}")]
    LostDispatch {
        /// The dispatch's sequence number.
        sequence: u64,
        /// What the envelope reader found wrong.
        error: EnvelopeError,
    },
}

/// A RATE_LIMITED dispatch: a request was refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateLimited {
    /// The opcode of the refused request (8 for Request Guild Members).
    pub opcode: u8,
    /// Seconds to wait before retrying.
    pub retry_after: f64,
    /// Request details (for op 8: `guild_id`, `nonce`), as raw JSON.
    pub meta: String,
}

impl Eq for RateLimited {}
