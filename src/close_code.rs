//! Close codes and what each one means for the session: resume, identify anew, or stop.
//!
//! | code | meaning | the machine |
//! |---|---|---|
//! | 4000, 4001, 4005, 4008 | unknown error, unknown opcode, already authenticated, rate limited | reconnect, resume |
//! | 4002 | decode error | reconnect, resume; in answer to an Identify (phase `Identifying`): retried once, and a second 4002 in a row stops with [`FatalReason::IdentifyUndecodable`](crate::FatalReason::IdentifyUndecodable) |
//! | 4003 | not authenticated | reconnect, identify anew |
//! | 4004 | authentication failed | stop ([`FatalReason::CloseCode`](crate::FatalReason::CloseCode)) |
//! | 4007, 4009 | invalid seq, session timed out | reconnect, identify anew |
//! | 4010-4014 | invalid shard, sharding required, invalid API version, invalid / disallowed intents | stop |
//! | 1000-range, unknown | | reconnect, resume |
//!
//! A close frame reported while the machine is connecting cannot belong to the connection
//! being opened: it is the late close of a socket the machine already closed, and is
//! ignored.

use core::fmt;

use serde::{Deserialize, Serialize};

/// A WebSocket close code as seen on the gateway.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CloseCode(pub u16);

/// What a close code tells the machine to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseAction {
    /// Reconnect and resume the session.
    Resume,
    /// Reconnect and identify: the session is gone.
    Identify,
    /// Do not reconnect.
    Fatal,
}

impl CloseCode {
    /// Normal closure: invalidates the session when the client sends it.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// Going away: invalidates the session when the client sends it.
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 4000 unknown error.
    pub const UNKNOWN_ERROR: CloseCode = CloseCode(4000);
    /// 4001 unknown opcode.
    pub const UNKNOWN_OPCODE: CloseCode = CloseCode(4001);
    /// 4002 decode error.
    pub const DECODE_ERROR: CloseCode = CloseCode(4002);
    /// 4003 not authenticated.
    pub const NOT_AUTHENTICATED: CloseCode = CloseCode(4003);
    /// 4004 authentication failed (bad token).
    pub const AUTHENTICATION_FAILED: CloseCode = CloseCode(4004);
    /// 4005 already authenticated.
    pub const ALREADY_AUTHENTICATED: CloseCode = CloseCode(4005);
    /// 4007 invalid seq.
    pub const INVALID_SEQ: CloseCode = CloseCode(4007);
    /// 4008 rate limited.
    pub const RATE_LIMITED: CloseCode = CloseCode(4008);
    /// 4009 session timed out.
    pub const SESSION_TIMED_OUT: CloseCode = CloseCode(4009);
    /// 4010 invalid shard.
    pub const INVALID_SHARD: CloseCode = CloseCode(4010);
    /// 4011 sharding required.
    pub const SHARDING_REQUIRED: CloseCode = CloseCode(4011);
    /// 4012 invalid API version.
    pub const INVALID_API_VERSION: CloseCode = CloseCode(4012);
    /// 4013 invalid intents.
    pub const INVALID_INTENTS: CloseCode = CloseCode(4013);
    /// 4014 disallowed intents.
    pub const DISALLOWED_INTENTS: CloseCode = CloseCode(4014);

    /// What the machine does when the server closes with this code. Unknown codes and
    /// 1000-range codes from the server: reconnect and resume. (One exception depends on
    /// the phase, not the code alone: 4002 in answer to two Identifies in a row stops the
    /// machine; see the module docs.)
    pub const fn action(self) -> CloseAction {
        match self.0 {
            4004 | 4010..=4014 => CloseAction::Fatal,
            4003 | 4007 | 4009 => CloseAction::Identify,
            _ => CloseAction::Resume,
        }
    }

    /// Discord's name for the code, if it has one.
    pub const fn description(self) -> Option<&'static str> {
        Some(match self.0 {
            1000 => "normal closure",
            1001 => "going away",
            4000 => "unknown error",
            4001 => "unknown opcode",
            4002 => "decode error",
            4003 => "not authenticated",
            4004 => "authentication failed",
            4005 => "already authenticated",
            4007 => "invalid seq",
            4008 => "rate limited",
            4009 => "session timed out",
            4010 => "invalid shard",
            4011 => "sharding required",
            4012 => "invalid API version",
            4013 => "invalid intents",
            4014 => "disallowed intents",
            _ => return None,
        })
    }

    /// Whether sending this code invalidates the session (1000 and 1001).
    pub const fn invalidates_session_when_sent(self) -> bool {
        matches!(self.0, 1000 | 1001)
    }
}

impl fmt::Debug for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.description() {
            Some(d) => write!(f, "{} ({d})", self.0),
            None => write!(f, "{}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_whole_table() {
        use CloseAction::*;
        let table = [
            (4000, Resume),
            (4001, Resume),
            (4002, Resume),
            (4003, Identify),
            (4004, Fatal),
            (4005, Resume),
            (4007, Identify),
            (4008, Resume),
            (4009, Identify),
            (4010, Fatal),
            (4011, Fatal),
            (4012, Fatal),
            (4013, Fatal),
            (4014, Fatal),
            (1000, Resume),
            (1001, Resume),
            (1006, Resume),
            (4999, Resume),
            (4006, Resume),
        ];
        for (code, action) in table {
            assert_eq!(CloseCode(code).action(), action, "{code}");
        }
    }
}
