//! What a shard hands the application: [`ShardEvent`], owned, with dispatches as name,
//! sequence and raw `d`.

use std::time::Duration;

use discord_gateway_proto::output::{RateLimited, ReadyInfo};
use discord_gateway_proto::trace::Decision;
use discord_gateway_proto::{DisconnectReason, FatalReason, ProtocolError};

use crate::identify::IdentifyBlocked;
use crate::text::SharedStr;

/// A dispatch (op 0): the event name, its sequence number and the raw JSON `d`, for the
/// application to parse with the model it likes (a serde struct of its own,
/// `twilight-model`, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DispatchEvent {
    /// The event name (`t`), e.g. `MESSAGE_CREATE`.
    pub name: SharedStr,
    /// The sequence number (`s`).
    pub sequence: u64,
    /// The `d` field as raw JSON text. Its strings and bracket balance were checked; the
    /// tokens inside are the parser's business.
    pub data: SharedStr,
}

/// Something the shard reports. Dispatches are nearly all of them; the rest tell the
/// application how the connection is doing. Match the ones you need and ignore the rest
/// (`_ => {}`): variants may be added.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ShardEvent {
    /// A dispatch, READY and RESUMED included.
    Dispatch(DispatchEvent),
    /// A connection attempt starts (the first, or a reconnect).
    Connecting {
        /// The URL, query included.
        url: String,
    },
    /// Hello arrived on a new connection.
    Hello {
        /// Discord's heartbeat interval.
        heartbeat_interval: Duration,
    },
    /// A new session started: READY's basics (the full READY follows as a
    /// [`ShardEvent::Dispatch`]).
    Ready(Box<ReadyInfo>),
    /// A resumed session goes on; `replayed` missed dispatches were delivered before this.
    Resumed {
        /// Dispatches replayed between Resume and RESUMED.
        replayed: u64,
    },
    /// Dispatches are missing: the next one came with a later sequence than expected
    /// (reported just before it; it is delivered as usual).
    SequenceGap {
        /// The sequence that should have come next.
        expected: u64,
        /// The sequence that came.
        received: u64,
    },
    /// A dispatch came with a sequence already passed (a repeat; reported just before it,
    /// delivered as usual: deduplicate by sequence if it matters).
    SequenceDuplicate {
        /// The sequence that should have come next.
        expected: u64,
        /// The sequence that came.
        received: u64,
    },
    /// A heartbeat was acknowledged.
    HeartbeatAck {
        /// Time from the beat to its ACK.
        latency: Duration,
    },
    /// Discord invalidated the session (op 9).
    InvalidSession {
        /// Whether it may be resumed.
        resumable: bool,
    },
    /// The connection is gone; the shard reconnects by itself.
    Disconnected {
        /// What ended it.
        reason: DisconnectReason,
        /// Whether the next connection resumes the session (no event lost) or identifies
        /// anew.
        resume: bool,
        /// How long until the next attempt.
        reconnect_in: Duration,
    },
    /// The socket failed: connecting, reading or sending (the text says which and why). A
    /// [`ShardEvent::Disconnected`] follows.
    TransportError(String),
    /// A RATE_LIMITED dispatch: a request (op 8) was refused.
    RateLimited(RateLimited),
    /// A message from the network could not be used; the connection goes on unless a
    /// [`ShardEvent::Disconnected`] follows.
    ProtocolError(ProtocolError),
    /// The shared identify queue's daily session starts are spent; this shard waits.
    IdentifyExhausted {
        /// How long until the budget refills.
        retry_in: Duration,
    },
    /// The shared identify coordinator cannot answer yet (Redis unreachable, the budget
    /// unreadable): this shard waits, and never identifies without its permission. Reported
    /// when the reason changes; the shard identifies as soon as the coordinator grants.
    IdentifyBlocked(IdentifyBlocked),
    /// Why the machine did what follows (only with the decision trace on).
    Decision(Decision),
    /// The shard stopped for good (a close code that must not be retried, or the reconnect
    /// attempts ran out). `next_event` returns `None` after this.
    Fatal(FatalReason),
    /// The shard was closed by the application. `next_event` returns `None` after this.
    Closed {
        /// Whether the session can still be resumed.
        session_kept: bool,
    },
}

impl ShardEvent {
    /// The dispatch, if this is one.
    pub fn as_dispatch(&self) -> Option<&DispatchEvent> {
        match self {
            ShardEvent::Dispatch(dispatch) => Some(dispatch),
            _ => None,
        }
    }

    /// Whether the shard ends after this event.
    pub fn is_final(&self) -> bool {
        matches!(self, ShardEvent::Fatal(_) | ShardEvent::Closed { .. })
    }
}
