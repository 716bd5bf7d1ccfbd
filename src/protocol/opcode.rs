//! Gateway opcodes.

use core::fmt;

/// A gateway opcode: the `op` field of every message.
///
/// Not exhaustive: Discord adds opcodes (31 and 43 came late), and a `match` in your code
/// should not break when this crate learns one.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
#[repr(u8)]
#[non_exhaustive]
pub enum OpCode {
    /// An event was dispatched (receive).
    Dispatch = 0,
    /// Keep the connection alive (send); from the server: beat now.
    Heartbeat = 1,
    /// Start a new session (send).
    Identify = 2,
    /// Update the client's presence (send).
    PresenceUpdate = 3,
    /// Join, move or leave a voice channel (send).
    VoiceStateUpdate = 4,
    /// Resume a previous session (send).
    Resume = 6,
    /// Reconnect and resume now (receive).
    Reconnect = 7,
    /// Request guild members (send).
    RequestGuildMembers = 8,
    /// The session is invalid; `d` says whether it may be resumed (receive).
    InvalidSession = 9,
    /// Sent right after connecting, with the heartbeat interval (receive).
    Hello = 10,
    /// A heartbeat was received (receive).
    HeartbeatAck = 11,
    /// Request a guild's soundboard sounds (send).
    RequestSoundboardSounds = 31,
    /// Request ephemeral channel information (send).
    RequestChannelInfo = 43,
}

impl OpCode {
    /// The opcode for a raw `op` number, or `None` if it is not one this crate knows.
    pub const fn from_u64(op: u64) -> Option<OpCode> {
        Some(match op {
            0 => OpCode::Dispatch,
            1 => OpCode::Heartbeat,
            2 => OpCode::Identify,
            3 => OpCode::PresenceUpdate,
            4 => OpCode::VoiceStateUpdate,
            6 => OpCode::Resume,
            7 => OpCode::Reconnect,
            8 => OpCode::RequestGuildMembers,
            9 => OpCode::InvalidSession,
            10 => OpCode::Hello,
            11 => OpCode::HeartbeatAck,
            31 => OpCode::RequestSoundboardSounds,
            43 => OpCode::RequestChannelInfo,
            _ => return None,
        })
    }

    /// The raw number.
    pub const fn code(self) -> u8 {
        self as u8
    }
}

impl fmt::Display for OpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} ({})", self, self.code())
    }
}
