//! Why a Redis call failed, typed, so a fleet can turn it into an event that says why.

use std::time::Duration;

/// A Redis call that did not produce an answer.
///
/// Every variant means the same thing for safety: the question was not answered, so nothing
/// was granted. Whether the script ran on the server before a timeout or a dropped
/// connection is unknown; the scripts are written so that not knowing is safe (a spent
/// session start that nobody used is lost, never counted twice).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedisError {
    /// The URL given to [`RedisLink::open`](super::RedisLink::open) is not a Redis URL.
    /// The URL itself is not repeated (it may carry a password).
    #[error("not a Redis URL: {reason}")]
    BadUrl {
        /// What is wrong with it.
        reason: String,
    },
    /// No connection: refused, reset, dropped, or the server is not there.
    #[error("Redis at {target} is unreachable: {reason}")]
    Unreachable {
        /// `host:port` of the server.
        target: String,
        /// The client's description of the failure.
        reason: String,
    },
    /// Connecting plus the answer took longer than the call timeout (a stalled or
    /// overloaded server, a network black hole). The connection is dropped; the next call
    /// dials again.
    #[error("Redis at {target} did not answer within {after:?} ({what})")]
    TimedOut {
        /// `host:port` of the server.
        target: String,
        /// The call timeout that ran out.
        after: Duration,
        /// Which call it was.
        what: &'static str,
    },
    /// The server answered with an error (out of memory, read-only replica, still loading
    /// its data set, a script error...).
    #[error("Redis refused {what}: {reason}")]
    Server {
        /// Which call it was.
        what: &'static str,
        /// The server's error.
        reason: String,
    },
    /// The server answered something this module never writes: another program uses the
    /// same keys, or a key was edited by hand.
    #[error("unexpected Redis reply to {what}: {reason}")]
    BadReply {
        /// Which call it was.
        what: &'static str,
        /// What was wrong with it.
        reason: String,
    },
}

impl RedisError {
    /// Whether the failure is about reaching the server (unreachable or timed out), as
    /// opposed to a server that answered with an error.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            RedisError::Unreachable { .. } | RedisError::TimedOut { .. }
        )
    }

    pub(crate) fn bad_reply(what: &'static str, reason: impl Into<String>) -> Self {
        RedisError::BadReply {
            what,
            reason: reason.into(),
        }
    }
}
