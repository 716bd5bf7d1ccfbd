//! The recording format, version 1: one JSON object per line.
//!
//! The first line is a [`Header`]; every later line is a [`Line`], tagged by `"kind"`:
//! inputs (with their time `t` in microseconds), the results of commands, and the outputs
//! the machine produced. Outputs are recorded so that a replay can tell whether the crate
//! still behaves the same. Decision-trace events are not recorded (they explain behaviour,
//! they are not behaviour); a replay regenerates them.
//!
//! ```text
//! {"format":"discord-gateway-proto-recording","version":1,"seed":7,"start":0,"shard":{"id":0,"count":1},"session":null,"config":{…}}
//! {"kind":"connect","url":"wss://gateway.discord.gg/?v=10&encoding=json"}
//! {"kind":"wait","deadline":30000000}
//! {"kind":"connected","t":120000}
//! {"kind":"text","t":150000,"data":"{\"op\":10,…}"}
//! {"kind":"event","event":"Hello { heartbeat_interval: 41.25s }"}
//! ```

use alloc::string::String;

use serde::{Deserialize, Serialize};

use crate::config::{GatewayConfig, ShardId};
use crate::session::Session;

/// The `format` value of every recording's header.
pub const FORMAT_NAME: &str = "discord-gateway-proto-recording";
/// The version this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// What the token is replaced with everywhere in a recording.
pub const REDACTED: &str = "<redacted>";

/// The first line: everything needed to rebuild the machine.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Header {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// The format version ([`FORMAT_VERSION`]).
    pub version: u32,
    /// The machine's seed: all of its randomness.
    pub seed: u64,
    /// The machine's start time (microseconds).
    pub start: u64,
    /// The shard the machine ran.
    pub shard: ShardId,
    /// The session it started from, if any.
    pub session: Option<Session>,
    /// The configuration, token left out.
    pub config: GatewayConfig,
}

/// One line after the header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Line {
    // ----- inputs -----
    /// `handle_connected`.
    Connected {
        /// Time in microseconds.
        t: u64,
    },
    /// `handle_message` with `Message::Text`.
    Text {
        /// Time in microseconds.
        t: u64,
        /// The message.
        data: String,
    },
    /// `handle_message` with `Message::TextBytes` (base64).
    TextBytes {
        /// Time in microseconds.
        t: u64,
        /// The bytes, base64.
        base64: String,
    },
    /// `handle_message` with `Message::Binary` (base64).
    Binary {
        /// Time in microseconds.
        t: u64,
        /// The bytes, base64.
        base64: String,
    },
    /// `handle_closed`.
    Closed {
        /// Time in microseconds.
        t: u64,
        /// The close code, `None` for a transport failure.
        code: Option<u16>,
        /// The close reason.
        #[serde(default)]
        reason: String,
    },
    /// `handle_timeout`.
    Timeout {
        /// Time in microseconds.
        t: u64,
    },
    /// `send`, as the serialized frame.
    Command {
        /// Time in microseconds.
        t: u64,
        /// The opcode.
        op: u8,
        /// The frame text.
        frame: String,
    },
    /// `grant_identify`.
    Grant {
        /// Time in microseconds.
        t: u64,
    },
    /// `shutdown`.
    Shutdown {
        /// Time in microseconds.
        t: u64,
        /// Whether the session was kept.
        keep_session: bool,
    },
    // ----- command results -----
    /// The command succeeded.
    Ok,
    /// The command failed.
    Err {
        /// The error, as displayed.
        error: String,
    },
    // ----- outputs -----
    /// `Output::Connect`.
    Connect {
        /// The URL.
        url: String,
    },
    /// `Output::Send`.
    Send {
        /// The opcode.
        op: u8,
        /// The frame text (token redacted).
        text: String,
    },
    /// `Output::Close`.
    Close {
        /// The close code.
        code: u16,
        /// The reason.
        reason: String,
    },
    /// `Output::Event` with a dispatch (its data is in the input line before it).
    Dispatch {
        /// Event name.
        name: String,
        /// Sequence.
        seq: u64,
        /// Length of the raw `d` in bytes.
        len: usize,
    },
    /// Any other `Output::Event`, in its `Debug` form.
    Event {
        /// The event.
        event: String,
    },
    /// `Output::Wait`.
    Wait {
        /// The deadline in microseconds, if any.
        deadline: Option<u64>,
    },
}

impl Line {
    /// Whether this line is an input (as opposed to an output or a command result).
    pub fn is_input(&self) -> bool {
        matches!(
            self,
            Line::Connected { .. }
                | Line::Text { .. }
                | Line::TextBytes { .. }
                | Line::Binary { .. }
                | Line::Closed { .. }
                | Line::Timeout { .. }
                | Line::Command { .. }
                | Line::Grant { .. }
                | Line::Shutdown { .. }
        )
    }
}
