//! Commands the application sends through the machine (presence, voice, members, ...).

use alloc::string::String;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::protocol::opcode::OpCode;

/// A user status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Online.
    Online,
    /// Do not disturb.
    Dnd,
    /// Away.
    Idle,
    /// Shown as offline.
    Invisible,
    /// Offline.
    Offline,
}

/// An activity in a presence update (bots may set name, type, url and state).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    /// The activity's name.
    pub name: String,
    /// 0 playing, 1 streaming, 2 listening, 3 watching, 4 custom, 5 competing.
    #[serde(rename = "type")]
    pub kind: u8,
    /// Stream URL (streaming only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Custom status text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// Op 3 Presence Update, also used as Identify's `presence`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdatePresence {
    /// Unix time (ms) since the client went idle, or `None`.
    pub since: Option<u64>,
    /// The activities.
    pub activities: Vec<Activity>,
    /// The status.
    pub status: Status,
    /// Whether the client is AFK.
    pub afk: bool,
}

/// A command the application asks the machine to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Op 3.
    UpdatePresence(UpdatePresence),
}

impl Command {
    /// The opcode this command is sent with.
    pub fn opcode(&self) -> OpCode {
        match self {
            Command::UpdatePresence(_) => OpCode::PresenceUpdate,
        }
    }

    /// The full gateway message, `{"op":N,"d":{…}}`.
    pub fn to_json(&self) -> String {
        let op = self.opcode().code();
        let data = match self {
            Command::UpdatePresence(p) => serde_json::to_string(p),
        };
        let data = data.unwrap_or_else(|_| String::from("null"));
        alloc::format!("{{\"op\":{op},\"d\":{data}}}")
    }
}
