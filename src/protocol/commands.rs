//! Commands the application sends through the machine (presence, voice, members, ...).
//!
//! Each [`Command`] serializes to the complete gateway message, `{"op":N,"d":{…}}`, exactly
//! as Discord documents it (`developers/events/gateway-events.mdx`, "Send Events"); ids are
//! [`Snowflake`]s and go out as JSON strings.
//!
//! # JSON form
//!
//! A `Command` also *deserializes* from that same raw gateway form, so a driver that reads
//! commands as JSON lines (e.g. from stdin) accepts Discord's documented examples verbatim:
//!
//! ```text
//! {"op":3,"d":{"since":null,"activities":[],"status":"idle","afk":true}}
//! {"op":4,"d":{"guild_id":"41771983423143937","channel_id":null,"self_mute":false,"self_deaf":false}}
//! {"op":8,"d":{"guild_id":"41771983444115456","query":"","limit":0}}
//! {"op":31,"d":{"guild_ids":["613425648685547541"]}}
//! {"op":43,"d":{"guild_id":"613425648685547541","fields":["status","voice_start_time"]}}
//! ```
//!
//! Serializing and deserializing are inverse: `Command::from_json(&c.to_json()) == Ok(c)`.
//! Ops the machine sends on its own (1 Heartbeat, 2 Identify, 6 Resume) and receive-only ops
//! are rejected. Deserializing validates what the types encode: Request Guild Members needs
//! exactly one of `query` (with `limit`) or `user_ids`, and its nonce is at most 32 bytes.
//! Unknown fields are ignored.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use serde::de::Error as _;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::protocol::opcode::OpCode;
pub use crate::protocol::snowflake::Snowflake;

/// The largest gateway message Discord accepts, in bytes. A bigger one closes the connection
/// with 4002 (decode error).
pub const MAX_FRAME_BYTES: usize = 4096;

/// The longest Request Guild Members nonce Discord honours, in bytes (a longer one is
/// silently dropped from the reply chunks).
pub const MAX_NONCE_BYTES: usize = 32;

/// Checks that an outgoing gateway message fits in [`MAX_FRAME_BYTES`].
pub fn check_frame_size(frame: &str) -> Result<(), InvalidCommand> {
    if frame.len() > MAX_FRAME_BYTES {
        Err(InvalidCommand::FrameTooLarge { size: frame.len() })
    } else {
        Ok(())
    }
}

/// Why a command cannot be sent (or a JSON command was refused).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum InvalidCommand {
    /// The serialized message is over [`MAX_FRAME_BYTES`]; Discord would close with 4002.
    #[error("the command is {size} bytes, over the gateway's {MAX_FRAME_BYTES}-byte limit")]
    FrameTooLarge {
        /// The message size in bytes.
        size: usize,
    },
    /// A Request Guild Members nonce over [`MAX_NONCE_BYTES`].
    #[error("the nonce is {len} bytes, over the {MAX_NONCE_BYTES}-byte limit")]
    NonceTooLong {
        /// The nonce length in bytes.
        len: usize,
    },
    /// A Request Guild Members payload without exactly one of `query`+`limit` or `user_ids`.
    #[error("request guild members: {0}")]
    MemberFilter(&'static str),
    /// The opcode is not one an application sends as a command (1, 2 and 6 are the
    /// machine's own; the others are receive-only or unknown).
    #[error("opcode {0} is not a command an application can send")]
    NotACommand(u64),
}

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
    /// Unix time (ms) since the client went idle, or `None` (sent as `null`).
    pub since: Option<u64>,
    /// The activities.
    pub activities: Vec<Activity>,
    /// The status.
    pub status: Status,
    /// Whether the client is AFK.
    pub afk: bool,
}

/// Op 4 Update Voice State: join, move between or leave voice channels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateVoiceState {
    /// The guild.
    pub guild_id: Snowflake,
    /// The voice channel to join; `None` (sent as `null`) disconnects.
    pub channel_id: Option<Snowflake>,
    /// Whether the bot is muted.
    pub self_mute: bool,
    /// Whether the bot is deafened.
    pub self_deaf: bool,
}

impl UpdateVoiceState {
    /// Joins (or moves to) `channel_id`, unmuted and undeafened.
    pub fn join(guild_id: Snowflake, channel_id: Snowflake) -> Self {
        UpdateVoiceState {
            guild_id,
            channel_id: Some(channel_id),
            self_mute: false,
            self_deaf: false,
        }
    }

    /// Leaves the guild's voice channel.
    pub fn leave(guild_id: Snowflake) -> Self {
        UpdateVoiceState {
            guild_id,
            channel_id: None,
            self_mute: false,
            self_deaf: false,
        }
    }
}

/// A Request Guild Members nonce: at most [`MAX_NONCE_BYTES`] bytes, echoed in the
/// GUILD_MEMBERS_CHUNK replies (and in a RATE_LIMITED dispatch's `meta`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Nonce(String);

impl Nonce {
    /// Checks the length and wraps the nonce.
    pub fn new(nonce: impl Into<String>) -> Result<Self, InvalidCommand> {
        let nonce = nonce.into();
        if nonce.len() > MAX_NONCE_BYTES {
            Err(InvalidCommand::NonceTooLong { len: nonce.len() })
        } else {
            Ok(Nonce(nonce))
        }
    }

    /// The nonce text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Nonce {
    type Error = InvalidCommand;

    fn try_from(nonce: String) -> Result<Self, InvalidCommand> {
        Nonce::new(nonce)
    }
}

impl From<Nonce> for String {
    fn from(nonce: Nonce) -> String {
        nonce.0
    }
}

/// Which members a [`RequestGuildMembers`] asks for: by username prefix or by id, never both.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberFilter {
    /// Members whose username starts with `query`. An empty `query` with `limit` 0 asks
    /// for every member (needs the GUILD_MEMBERS intent; Discord allows this once per guild
    /// per 30 s and answers a breach with a RATE_LIMITED dispatch).
    Query {
        /// The username prefix; empty for all members.
        query: String,
        /// The most members to return; 0 = no limit (only with an empty query).
        limit: u32,
    },
    /// These users (Discord returns at most 100).
    UserIds(Vec<Snowflake>),
}

/// Op 8 Request Guild Members: asks for GUILD_MEMBERS_CHUNK dispatches.
///
/// Serializes `presences` only when `true` and `nonce` only when set, so the documented
/// example `{"guild_id":"…","query":"","limit":0}` is exactly [`RequestGuildMembers::all`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestGuildMembers {
    /// The guild.
    pub guild_id: Snowflake,
    /// Which members.
    pub filter: MemberFilter,
    /// Whether to include presences (needs the GUILD_PRESENCES intent).
    pub presences: bool,
    /// Echoed in the reply chunks.
    pub nonce: Option<Nonce>,
}

impl RequestGuildMembers {
    /// Every member of the guild (`query: ""`, `limit: 0`).
    pub fn all(guild_id: Snowflake) -> Self {
        Self::query(guild_id, "", 0)
    }

    /// Members whose username starts with `query`, at most `limit` of them.
    pub fn query(guild_id: Snowflake, query: impl Into<String>, limit: u32) -> Self {
        RequestGuildMembers {
            guild_id,
            filter: MemberFilter::Query {
                query: query.into(),
                limit,
            },
            presences: false,
            nonce: None,
        }
    }

    /// These users.
    pub fn user_ids(guild_id: Snowflake, user_ids: impl Into<Vec<Snowflake>>) -> Self {
        RequestGuildMembers {
            guild_id,
            filter: MemberFilter::UserIds(user_ids.into()),
            presences: false,
            nonce: None,
        }
    }

    /// Asks for presences too.
    pub fn with_presences(mut self, presences: bool) -> Self {
        self.presences = presences;
        self
    }

    /// Sets the nonce echoed in the replies.
    pub fn with_nonce(mut self, nonce: Nonce) -> Self {
        self.nonce = Some(nonce);
        self
    }

    /// Whether this is the "all members" request that Discord limits to once per guild per
    /// 30 s (`query` empty and `limit` 0).
    pub fn is_all_members(&self) -> bool {
        matches!(&self.filter, MemberFilter::Query { query, limit: 0 } if query.is_empty())
    }
}

impl Serialize for RequestGuildMembers {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("RequestGuildMembers", 5)?;
        s.serialize_field("guild_id", &self.guild_id)?;
        match &self.filter {
            MemberFilter::Query { query, limit } => {
                s.serialize_field("query", query)?;
                s.serialize_field("limit", limit)?;
            }
            MemberFilter::UserIds(ids) => s.serialize_field("user_ids", ids)?,
        }
        if self.presences {
            s.serialize_field("presences", &true)?;
        }
        if let Some(nonce) = &self.nonce {
            s.serialize_field("nonce", nonce)?;
        }
        s.end()
    }
}

/// `user_ids` is documented as "snowflake or array of snowflakes".
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(Snowflake),
    Many(Vec<Snowflake>),
}

#[derive(Deserialize)]
struct RequestGuildMembersWire {
    guild_id: Snowflake,
    #[serde(default)]
    query: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    presences: Option<bool>,
    #[serde(default)]
    user_ids: Option<OneOrMany>,
    #[serde(default)]
    nonce: Option<Nonce>,
}

impl TryFrom<RequestGuildMembersWire> for RequestGuildMembers {
    type Error = InvalidCommand;

    fn try_from(w: RequestGuildMembersWire) -> Result<Self, InvalidCommand> {
        let filter = match (w.query, w.limit, w.user_ids) {
            (Some(query), Some(limit), None) => MemberFilter::Query { query, limit },
            (Some(_), None, None) => {
                return Err(InvalidCommand::MemberFilter("`query` needs a `limit`"))
            }
            (None, None, Some(OneOrMany::One(id))) => MemberFilter::UserIds(vec![id]),
            (None, None, Some(OneOrMany::Many(ids))) => MemberFilter::UserIds(ids),
            (None, Some(_), _) => {
                return Err(InvalidCommand::MemberFilter(
                    "`limit` is only valid with `query`",
                ))
            }
            (Some(_), _, Some(_)) => {
                return Err(InvalidCommand::MemberFilter(
                    "give either `query` or `user_ids`, not both",
                ))
            }
            (None, None, None) => {
                return Err(InvalidCommand::MemberFilter(
                    "one of `query` or `user_ids` is required",
                ))
            }
        };
        Ok(RequestGuildMembers {
            guild_id: w.guild_id,
            filter,
            presences: w.presences.unwrap_or(false),
            nonce: w.nonce,
        })
    }
}

impl<'de> Deserialize<'de> for RequestGuildMembers {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = RequestGuildMembersWire::deserialize(deserializer)?;
        RequestGuildMembers::try_from(wire).map_err(D::Error::custom)
    }
}

/// Op 31 Request Soundboard Sounds: asks for a SOUNDBOARD_SOUNDS dispatch per guild.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestSoundboardSounds {
    /// The guilds.
    pub guild_ids: Vec<Snowflake>,
}

/// A field Request Channel Info can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ChannelInfoField {
    /// The voice channel status text (`"status"`).
    Status,
    /// When the current voice session in the channel started (`"voice_start_time"`).
    VoiceStartTime,
}

/// Op 43 Request Channel Info: asks for ephemeral data of a guild's channels (answered by a
/// CHANNEL_INFO dispatch). Documented fields: `status` and `voice_start_time`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestChannelInfo {
    /// The guild.
    pub guild_id: Snowflake,
    /// The fields wanted.
    pub fields: Vec<ChannelInfoField>,
}

impl RequestChannelInfo {
    /// Asks for every documented field.
    pub fn all(guild_id: Snowflake) -> Self {
        RequestChannelInfo {
            guild_id,
            fields: vec![ChannelInfoField::Status, ChannelInfoField::VoiceStartTime],
        }
    }
}

/// A command the application asks the machine to send.
///
/// Serde: the raw gateway message `{"op":N,"d":{…}}` in both directions (see the module
/// docs).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// Op 3 Presence Update.
    UpdatePresence(UpdatePresence),
    /// Op 4 Voice State Update.
    UpdateVoiceState(UpdateVoiceState),
    /// Op 8 Request Guild Members.
    RequestGuildMembers(RequestGuildMembers),
    /// Op 31 Request Soundboard Sounds.
    RequestSoundboardSounds(RequestSoundboardSounds),
    /// Op 43 Request Channel Info.
    RequestChannelInfo(RequestChannelInfo),
}

impl Command {
    /// The opcode this command is sent with.
    pub fn opcode(&self) -> OpCode {
        match self {
            Command::UpdatePresence(_) => OpCode::PresenceUpdate,
            Command::UpdateVoiceState(_) => OpCode::VoiceStateUpdate,
            Command::RequestGuildMembers(_) => OpCode::RequestGuildMembers,
            Command::RequestSoundboardSounds(_) => OpCode::RequestSoundboardSounds,
            Command::RequestChannelInfo(_) => OpCode::RequestChannelInfo,
        }
    }

    /// The full gateway message, `{"op":N,"d":{…}}`, without a size check (see
    /// [`Command::to_frame`]).
    pub fn to_json(&self) -> String {
        // These types hold only strings, integers, booleans and sequences: serializing them
        // to JSON cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The full gateway message, checked against [`MAX_FRAME_BYTES`].
    pub fn to_frame(&self) -> Result<String, InvalidCommand> {
        let frame = self.to_json();
        check_frame_size(&frame)?;
        Ok(frame)
    }

    /// Reads a command from its raw gateway JSON form (see the module docs).
    pub fn from_json(json: &str) -> Result<Command, serde_json::Error> {
        serde_json::from_str(json)
    }
}

impl Serialize for Command {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Command", 2)?;
        s.serialize_field("op", &self.opcode().code())?;
        match self {
            Command::UpdatePresence(d) => s.serialize_field("d", d)?,
            Command::UpdateVoiceState(d) => s.serialize_field("d", d)?,
            Command::RequestGuildMembers(d) => s.serialize_field("d", d)?,
            Command::RequestSoundboardSounds(d) => s.serialize_field("d", d)?,
            Command::RequestChannelInfo(d) => s.serialize_field("d", d)?,
        }
        s.end()
    }
}

impl<'de> Deserialize<'de> for Command {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            op: u64,
            d: serde_json::Value,
        }
        fn data<T: serde::de::DeserializeOwned, E: serde::de::Error>(
            d: serde_json::Value,
        ) -> Result<T, E> {
            serde_json::from_value(d).map_err(E::custom)
        }

        let Raw { op, d } = Raw::deserialize(deserializer)?;
        Ok(match OpCode::from_u64(op) {
            Some(OpCode::PresenceUpdate) => Command::UpdatePresence(data(d)?),
            Some(OpCode::VoiceStateUpdate) => Command::UpdateVoiceState(data(d)?),
            Some(OpCode::RequestGuildMembers) => Command::RequestGuildMembers(data(d)?),
            Some(OpCode::RequestSoundboardSounds) => Command::RequestSoundboardSounds(data(d)?),
            Some(OpCode::RequestChannelInfo) => Command::RequestChannelInfo(data(d)?),
            _ => return Err(D::Error::custom(InvalidCommand::NotACommand(op))),
        })
    }
}

impl fmt::Display for Command {
    /// The opcode only: command payloads may hold user data that does not belong in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.opcode(), f)
    }
}

impl From<UpdatePresence> for Command {
    fn from(d: UpdatePresence) -> Self {
        Command::UpdatePresence(d)
    }
}

impl From<UpdateVoiceState> for Command {
    fn from(d: UpdateVoiceState) -> Self {
        Command::UpdateVoiceState(d)
    }
}

impl From<RequestGuildMembers> for Command {
    fn from(d: RequestGuildMembers) -> Self {
        Command::RequestGuildMembers(d)
    }
}

impl From<RequestSoundboardSounds> for Command {
    fn from(d: RequestSoundboardSounds) -> Self {
        Command::RequestSoundboardSounds(d)
    }
}

impl From<RequestChannelInfo> for Command {
    fn from(d: RequestChannelInfo) -> Self {
        Command::RequestChannelInfo(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use serde_json::{json, Value};

    fn value(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    /// The command serializes to exactly the documented message, and the documented message
    /// reads back as the same command.
    fn golden(command: Command, documented: Value) {
        assert_eq!(value(&command.to_json()), documented);
        assert_eq!(
            Command::from_json(&documented.to_string()).unwrap(),
            command
        );
        assert_eq!(Command::from_json(&command.to_json()).unwrap(), command);
    }

    #[test]
    fn presence_update_matches_docs() {
        let command = Command::UpdatePresence(UpdatePresence {
            since: Some(91879201),
            activities: vec![Activity {
                name: "Save the Oxford Comma".into(),
                kind: 0,
                url: None,
                state: None,
            }],
            status: Status::Online,
            afk: false,
        });
        golden(
            command,
            json!({
              "op": 3,
              "d": {
                "since": 91879201,
                "activities": [{
                  "name": "Save the Oxford Comma",
                  "type": 0
                }],
                "status": "online",
                "afk": false
              }
            }),
        );
    }

    #[test]
    fn presence_with_null_since_keeps_the_key() {
        let command = Command::UpdatePresence(UpdatePresence {
            since: None,
            activities: vec![],
            status: Status::Dnd,
            afk: true,
        });
        assert_eq!(
            value(&command.to_json()),
            json!({"op": 3, "d": {"since": null, "activities": [], "status": "dnd", "afk": true}})
        );
    }

    #[test]
    fn voice_state_update_matches_docs() {
        golden(
            UpdateVoiceState::join(Snowflake(41771983423143937), Snowflake(127121515262115840))
                .into(),
            json!({
              "op": 4,
              "d": {
                "guild_id": "41771983423143937",
                "channel_id": "127121515262115840",
                "self_mute": false,
                "self_deaf": false
              }
            }),
        );
        // Leaving sends an explicit null channel.
        golden(
            UpdateVoiceState::leave(Snowflake(41771983423143937)).into(),
            json!({"op": 4, "d": {"guild_id": "41771983423143937", "channel_id": null,
                   "self_mute": false, "self_deaf": false}}),
        );
    }

    #[test]
    fn request_guild_members_matches_docs() {
        let all = RequestGuildMembers::all(Snowflake(41771983444115456));
        assert!(all.is_all_members());
        golden(
            all.into(),
            json!({
              "op": 8,
              "d": {
                "guild_id": "41771983444115456",
                "query": "",
                "limit": 0
              }
            }),
        );
    }

    #[test]
    fn request_guild_members_by_ids_with_presences_and_nonce() {
        let request = RequestGuildMembers::user_ids(Snowflake(1), vec![Snowflake(2), Snowflake(3)])
            .with_presences(true)
            .with_nonce(Nonce::new("chunk-42").unwrap());
        assert!(!request.is_all_members());
        golden(
            request.into(),
            json!({"op": 8, "d": {"guild_id": "1", "user_ids": ["2", "3"],
                   "presences": true, "nonce": "chunk-42"}}),
        );
        // A prefix query is not the rate-limited "all members" request.
        assert!(!RequestGuildMembers::query(Snowflake(1), "ab", 10).is_all_members());
        assert!(!RequestGuildMembers::query(Snowflake(1), "", 10).is_all_members());
    }

    #[test]
    fn request_guild_members_accepts_a_single_user_id() {
        let c = Command::from_json(r#"{"op":8,"d":{"guild_id":"1","user_ids":"7"}}"#).unwrap();
        assert_eq!(
            c,
            Command::RequestGuildMembers(RequestGuildMembers::user_ids(
                Snowflake(1),
                vec![Snowflake(7)]
            ))
        );
        // ...and always writes the array form.
        assert_eq!(
            value(&c.to_json()),
            json!({"op": 8, "d": {"guild_id": "1", "user_ids": ["7"]}})
        );
    }

    #[test]
    fn request_guild_members_rejects_invalid_combinations() {
        for bad in [
            r#"{"op":8,"d":{"guild_id":"1"}}"#,
            r#"{"op":8,"d":{"guild_id":"1","query":"a"}}"#,
            r#"{"op":8,"d":{"guild_id":"1","limit":3}}"#,
            r#"{"op":8,"d":{"guild_id":"1","user_ids":["2"],"limit":3}}"#,
            r#"{"op":8,"d":{"guild_id":"1","query":"","limit":0,"user_ids":["2"]}}"#,
            // 33-byte nonce.
            r#"{"op":8,"d":{"guild_id":"1","query":"","limit":0,"nonce":"123456789012345678901234567890123"}}"#,
        ] {
            assert!(Command::from_json(bad).is_err(), "accepted {bad}");
        }
    }

    #[test]
    fn nonce_is_limited_to_32_bytes() {
        assert!(Nonce::new("x".repeat(32)).is_ok());
        assert_eq!(
            Nonce::new("x".repeat(33)),
            Err(InvalidCommand::NonceTooLong { len: 33 })
        );
        // Bytes, not characters: 11 three-byte characters are 33 bytes.
        assert_eq!(
            Nonce::new("€".repeat(11)),
            Err(InvalidCommand::NonceTooLong { len: 33 })
        );
    }

    #[test]
    fn soundboard_request_matches_docs() {
        golden(
            RequestSoundboardSounds {
                guild_ids: vec![Snowflake(613425648685547541), Snowflake(81384788765712384)],
            }
            .into(),
            json!({
              "op": 31,
              "d": {
                "guild_ids": ["613425648685547541", "81384788765712384"]
              }
            }),
        );
    }

    #[test]
    fn channel_info_request_matches_docs() {
        golden(
            RequestChannelInfo::all(Snowflake(613425648685547541)).into(),
            json!({
              "op": 43,
              "d": {
                "guild_id": "613425648685547541",
                "fields": ["status", "voice_start_time"]
              }
            }),
        );
        assert!(
            Command::from_json(r#"{"op":43,"d":{"guild_id":"1","fields":["topic"]}}"#).is_err()
        );
    }

    #[test]
    fn machine_owned_and_receive_only_ops_are_not_commands() {
        for op in [0, 1, 2, 6, 7, 9, 10, 11, 5, 99, 1000] {
            let text = alloc::format!(r#"{{"op":{op},"d":{{}}}}"#);
            let err = Command::from_json(&text).unwrap_err().to_string();
            assert!(err.contains("is not a command"), "op {op}: {err}");
        }
    }

    #[test]
    fn frame_size_limit_is_4096_bytes() {
        let fits = "x".repeat(MAX_FRAME_BYTES);
        assert_eq!(check_frame_size(&fits), Ok(()));
        assert_eq!(
            check_frame_size(&alloc::format!("{fits}y")),
            Err(InvalidCommand::FrameTooLarge { size: 4097 })
        );

        // 100 ids fit; a huge query does not.
        let ids: Vec<Snowflake> = (0..100).map(|i| Snowflake(u64::MAX - i)).collect();
        let c: Command = RequestGuildMembers::user_ids(Snowflake(u64::MAX), ids).into();
        assert!(c.to_frame().is_ok());
        let c: Command = RequestGuildMembers::query(Snowflake(1), "q".repeat(4096), 1).into();
        assert!(matches!(
            c.to_frame(),
            Err(InvalidCommand::FrameTooLarge { size }) if size > MAX_FRAME_BYTES
        ));
    }

    #[test]
    fn display_shows_only_the_opcode() {
        let c: Command = RequestGuildMembers::query(Snowflake(1), "secret-name", 1).into();
        let shown = c.to_string();
        assert!(shown.contains("8"), "{shown}");
        assert!(!shown.contains("secret"), "{shown}");
    }
}
