//! The bodies of the fuzz targets in `fuzz/fuzz_targets/`, shared with `tests/fuzz_corpus.rs`,
//! which replays the committed corpus (`fuzz/corpus/<target>/`) through them so that a
//! plain `cargo test --all-features` checks every input the fuzzer kept, without a fuzzer.
//!
//! Each body takes the fuzzer's raw bytes and panics when a property is violated. The
//! properties (and the intended differences that are excluded from them) are documented on
//! each body and in `fuzz/README.md`.

#![allow(dead_code)]

use std::borrow::Cow;
use std::fmt;

use arbitrary::{Arbitrary, Unstructured};
use discord_gateway_proto::config::{HeartbeatPolicy, Limits, Liveness, SessionPolicy, Timeouts};
use discord_gateway_proto::protocol::commands::{
    Activity, ChannelInfoField, MemberFilter, Nonce, RequestChannelInfo, RequestGuildMembers,
    RequestSoundboardSounds, Status, UpdatePresence, UpdateVoiceState, MAX_NONCE_BYTES,
};
use discord_gateway_proto::protocol::envelope::{
    read_envelope, salvage_envelope, Envelope, EnvelopeError,
};
use discord_gateway_proto::record::{replay, ReplayError};
use discord_gateway_proto::{
    Backoff, CloseFrame, Command, CommandError, Event, GatewayConfig, GatewayMachine, Intents,
    Message, OpCode, Output, Phase, Session, Snowflake, StartOptions, Timestamp, Token,
    MAX_FRAME_BYTES,
};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

#[cfg(feature = "zstd-stream")]
#[path = "zstd_stream.rs"]
mod zstd_support;

// ===================================================================================
// 1. The envelope reader, cross-checked against serde_json.
// ===================================================================================

/// Target `envelope`: arbitrary bytes; if UTF-8, `read_envelope` must not panic and must
/// agree with serde_json (see [`check_envelope`]), and `salvage_envelope` must not panic
/// and must agree with it (see [`check_salvage`]).
pub fn envelope(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let result = read_envelope(text);
    check_salvage(text, result);
    check_envelope(text, result);
}

/// The lenient reader of the error path (`salvage_envelope`) against the strict one: on a
/// text the strict reader accepts it reads the same fields; on any text, what it returns
/// lies within the text, and a `d` it delimits has balanced brackets outside strings.
pub fn check_salvage(text: &str, strict: Result<Envelope<'_>, EnvelopeError>) {
    let salvage = salvage_envelope(text);
    if let Ok(e) = strict {
        assert_eq!(
            (
                salvage.op,
                salvage.sequence,
                salvage.event_name,
                salvage.data
            ),
            (Some(e.op), e.sequence, e.event_name, e.data),
            "the lenient reader disagrees with the strict one on {text:?}"
        );
    }
    let within = |part: &str| {
        let start = part.as_ptr() as usize;
        let base = text.as_ptr() as usize;
        start >= base && start + part.len() <= base + text.len()
    };
    assert!(salvage.event_name.is_none_or(within));
    if let Some(d) = salvage.data {
        assert!(within(d) && !d.is_empty());
        let mut depth = 0i64;
        let mut in_string = false;
        let mut escaped = false;
        for b in d.bytes() {
            match (in_string, escaped, b) {
                (true, true, _) => escaped = false,
                (true, false, b'\\') => escaped = true,
                (true, false, b'"') => in_string = false,
                (false, _, b'"') => in_string = true,
                (false, _, b'{' | b'[') => depth += 1,
                (false, _, b'}' | b']') => depth -= 1,
                _ => {}
            }
            assert!(depth >= 0, "d closes more than it opens: {d:?}");
        }
        assert!(depth == 0 && !in_string, "d is not delimited: {d:?}");
    }
}

/// One top-level member of an object as serde_json sees it.
#[derive(Debug)]
struct Member {
    /// The decoded key.
    key: String,
    /// Whether the key was written with escapes (the reader matches keys as written).
    escaped: bool,
    value: Value,
}

/// The top-level members of a JSON object, in order, duplicates kept.
#[derive(Debug)]
struct Members(Vec<Member>);

/// A key, remembering whether serde_json could borrow it (no escapes) or had to decode it.
struct Key(String, bool);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Key, E> {
                Ok(Key(v.to_owned(), false))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(Key(v.to_owned(), true))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some(Key(key, escaped)) = map.next_key()? {
                    let value = map.next_value()?;
                    members.push(Member {
                        key,
                        escaped,
                        value,
                    });
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(MembersVisitor)
    }
}

impl Members {
    /// The members whose key is written exactly as `key` (no escapes): what the reader sees.
    fn plain<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.0
            .iter()
            .filter(move |m| !m.escaped && m.key == key)
            .map(|m| &m.value)
    }

    fn unique<'a>(&'a self, key: &'a str) -> Option<&'a Value> {
        let mut found = self.plain(key);
        let first = found.next();
        assert!(found.next().is_none(), "caller checked for duplicates");
        first
    }
}

/// serde_json errors that the reader, by design, does not raise (the reader only checks
/// structure; its caller parses `d` with serde_json anyway):
/// - numbers outside f64's range (`1e400`): the reader skips numbers it does not need;
/// - `\u` escapes that are lone or broken surrogates: the reader checks only that an escape
///   has four hex digits, it does not decode strings;
/// - the recursion limit: serde_json counts the top-level object against its 128 levels,
///   the reader's [`MAX_DEPTH`](discord_gateway_proto::protocol::envelope::MAX_DEPTH)
///   counts the levels *inside* a field's value, so a message 129 levels deep passes the
///   reader (and its `d`, 128 deep, still parses with serde_json).
const EXCLUDED_SERDE_ERRORS: [&str; 5] = [
    "number out of range",
    "lone leading surrogate in hex escape",
    "unexpected end of hex escape",
    "invalid unicode code point",
    "recursion limit exceeded",
];

/// The bytes of `text` outside strings, with their positions, found naively a byte at a
/// time (quotes, and everything between them with its escapes, left out).
fn outside_strings(text: &str) -> impl Iterator<Item = (usize, u8)> + '_ {
    let (mut in_string, mut escaped) = (false, false);
    text.bytes().enumerate().filter(move |&(_, b)| {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            false
        } else {
            in_string = b == b'"';
            !in_string
        }
    })
}

/// The deepest nesting of `[`/`{` outside strings (the top-level object counts as 1).
/// Only meaningful for structurally valid JSON.
fn nesting_depth(text: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    for (_, b) in outside_strings(text) {
        match b {
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// The byte ranges of the top-level members' values that are objects or arrays.
fn top_level_containers(text: &str) -> Vec<std::ops::Range<usize>> {
    let (mut found, mut depth, mut start) = (Vec::new(), 0usize, None);
    for (i, b) in outside_strings(text) {
        match b {
            b'[' | b'{' => {
                if depth == 1 {
                    start = Some(i);
                }
                depth += 1;
            }
            b']' | b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 1 {
                    if let Some(start) = start.take() {
                        found.push(start..i + 1);
                    }
                }
            }
            _ => {}
        }
    }
    found
}

/// What the reader promises about an object or array value it skips, checked naively:
/// strings are closed, hold no control character and only JSON's escapes; no backslash
/// outside a string; brackets balance (kinds not matched), at most 128 deep, and the
/// value ends at its last byte.
fn container_is_delimited(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    let (mut depth, mut in_string, mut i) = (0usize, false, 0);
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'"' => in_string = false,
                b'\\' => {
                    match bytes.get(i + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {}
                        Some(b'u') => {
                            let hex = bytes.get(i + 2..i + 6);
                            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                                return false;
                            }
                        }
                        _ => return false,
                    }
                    i += 1;
                }
                0..=0x1f => return false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'\\' => return false,
                b'[' | b'{' => {
                    depth += 1;
                    if depth > 128 {
                        return false;
                    }
                }
                b']' | b'}' => {
                    if depth == 0 {
                        return false;
                    }
                    depth -= 1;
                    if depth == 0 && i + 1 != bytes.len() {
                        return false;
                    }
                }
                _ => {}
            }
        }
        i += 1;
    }
    depth == 0 && !in_string && matches!(bytes.first(), Some(b'{' | b'['))
}

/// `text` with every top-level object or array value replaced by `null`, after checking
/// each is delimited as the reader promises.
fn null_top_level_containers(text: &str) -> String {
    let mut nulled = text.to_owned();
    for range in top_level_containers(text).into_iter().rev() {
        assert!(
            container_is_delimited(&text[range.clone()]),
            "the reader accepted a value whose strings or brackets are broken: {text:?}"
        );
        nulled.replace_range(range, "null");
    }
    nulled
}

/// Decodes the raw contents of a JSON string (as written between the quotes).
fn decode_raw_string(raw: &str) -> String {
    serde_json::from_str(&format!("\"{raw}\"")).expect("the reader returned an invalid string")
}

fn is_json_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// The cross-check of one reader `result` for `text` against serde_json:
///
/// - **Ok ⇒ valid JSON, but inside object and array values**: serde_json accepts the text,
///   except for [`EXCLUDED_SERDE_ERRORS`]; or, when the error is inside a top-level
///   object or array value (whose tokens the reader leaves to the application's parser),
///   serde_json accepts the text with those values replaced by `null`, and each of them is
///   delimited as the reader promises (strings, escapes, bracket balance).
/// - **Ok ⇒ same fields**: `op`, `s`, `t`, `d` equal the top-level members serde_json finds
///   under those exact keys (`t` decoded from its raw form, `d` compared as parsed values;
///   `d`'s raw text is exactly the value, no surrounding whitespace).
/// - **serde_json accepts ⇒ Ok**: when serde_json accepts an object whose `op` is a u64,
///   whose `s` is absent, null or a u64, whose `t` is absent, null or a string, and where
///   none of `op`, `s`, `t`, `d` appears twice, the reader accepts it.
///
/// Intended differences, excluded: top-level keys written with escapes (`"o\u0070"`) are
/// not the field they decode to (the reader matches keys as written; Discord never escapes
/// them), so members are matched by raw key; the reader rejects a duplicated `op`/`s`/`t`/`d`
/// where serde_json keeps the last one; `t` is returned raw, escapes not decoded.
pub fn check_envelope(text: &str, result: Result<Envelope<'_>, EnvelopeError>) {
    let members = serde_json::from_str::<Members>(text);
    match result {
        Ok(envelope) => {
            let excluded = |error: &serde_json::Error| {
                let message = error.to_string();
                if message.starts_with("recursion limit exceeded") {
                    let depth = nesting_depth(text);
                    assert!(depth <= 129, "the reader accepted depth {depth}: {text:?}");
                }
                EXCLUDED_SERDE_ERRORS.iter().any(|e| message.starts_with(e))
            };
            // Whether object and array values were replaced by `null` before comparing.
            let mut nulled = false;
            let members = match members {
                Ok(members) => members,
                Err(error) if excluded(&error) => return,
                Err(_) => {
                    nulled = true;
                    match serde_json::from_str::<Members>(&null_top_level_containers(text)) {
                        Ok(members) => members,
                        Err(error) if excluded(&error) => return,
                        Err(error) => panic!(
                            "the reader accepted what serde_json rejects ({error}): {text:?}"
                        ),
                    }
                }
            };
            for key in ["op", "s", "t", "d"] {
                assert!(
                    members.plain(key).count() <= 1,
                    "the reader accepted a duplicated {key:?}: {text:?}"
                );
            }
            assert_eq!(
                members.unique("op").and_then(Value::as_u64),
                Some(envelope.op),
                "op differs: {text:?}"
            );
            let s = match members.unique("s") {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_u64().expect("the reader accepted a non-u64 s")),
            };
            assert_eq!(s, envelope.sequence, "s differs: {text:?}");
            let t = match members.unique("t") {
                None | Some(Value::Null) => None,
                Some(Value::String(t)) => Some(t.clone()),
                Some(other) => panic!("the reader accepted t = {other}: {text:?}"),
            };
            assert_eq!(
                t,
                envelope.event_name.map(decode_raw_string),
                "t differs: {text:?}"
            );
            match (members.unique("d"), envelope.data) {
                (None, None) => {}
                (Some(Value::Null), Some(raw)) if nulled && raw != "null" => {
                    assert!(container_is_delimited(raw), "d is not delimited: {raw:?}");
                }
                (Some(expected), Some(raw)) => {
                    let bytes = raw.as_bytes();
                    assert!(
                        !bytes.is_empty()
                            && !is_json_ws(bytes[0])
                            && !is_json_ws(bytes[bytes.len() - 1]),
                        "d is not trimmed: {raw:?}"
                    );
                    let parsed: Value = serde_json::from_str(raw)
                        .unwrap_or_else(|e| panic!("d is not valid JSON ({e}): {raw:?}"));
                    assert_eq!(&parsed, expected, "d differs: {text:?}");
                }
                (expected, found) => {
                    panic!("d: serde_json found {expected:?}, the reader {found:?}: {text:?}")
                }
            }
        }
        Err(error) => {
            if let EnvelopeError::Malformed { offset, .. } = error {
                assert!(offset <= text.len(), "offset {offset} past the end");
            }
            let Ok(members) = members else { return };
            let well_formed = ["op", "s", "t", "d"]
                .iter()
                .all(|key| members.plain(key).count() <= 1)
                && members.unique("op").is_some_and(Value::is_u64)
                && members
                    .unique("s")
                    .is_none_or(|s| s.is_null() || s.is_u64())
                && members
                    .unique("t")
                    .is_none_or(|t| t.is_null() || t.is_string());
            assert!(
                !well_formed,
                "the reader rejected ({error}) a message serde_json reads: {text:?}"
            );
        }
    }
}

// ===================================================================================
// 2. Command serialization round trips.
// ===================================================================================

/// A fuzz-local mirror of [`Command`], so the fuzzer builds commands field by field.
#[derive(Arbitrary, Debug, Clone)]
pub enum ArbCommand {
    Presence {
        since: Option<u64>,
        activities: Vec<ArbActivity>,
        status: u8,
        afk: bool,
    },
    Voice {
        guild: u64,
        channel: Option<u64>,
        mute: bool,
        deaf: bool,
    },
    Members {
        guild: u64,
        filter: ArbFilter,
        presences: bool,
        nonce: Option<String>,
    },
    Soundboard {
        guilds: Vec<u64>,
    },
    ChannelInfo {
        guild: u64,
        fields: Vec<bool>,
    },
}

#[derive(Arbitrary, Debug, Clone)]
pub struct ArbActivity {
    name: String,
    kind: u8,
    url: Option<String>,
    state: Option<String>,
}

#[derive(Arbitrary, Debug, Clone)]
pub enum ArbFilter {
    Query { query: String, limit: u32 },
    UserIds(Vec<u64>),
}

/// The longest prefix of `s` that fits in `max` bytes on a char boundary.
fn truncate(mut s: String, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s
}

impl ArbCommand {
    pub fn build(self) -> Command {
        match self {
            ArbCommand::Presence {
                since,
                activities,
                status,
                afk,
            } => Command::UpdatePresence(UpdatePresence {
                since,
                activities: activities
                    .into_iter()
                    .map(|a| Activity {
                        name: a.name,
                        kind: a.kind,
                        url: a.url,
                        state: a.state,
                    })
                    .collect(),
                status: [
                    Status::Online,
                    Status::Dnd,
                    Status::Idle,
                    Status::Invisible,
                    Status::Offline,
                ][usize::from(status) % 5],
                afk,
            }),
            ArbCommand::Voice {
                guild,
                channel,
                mute,
                deaf,
            } => Command::UpdateVoiceState(UpdateVoiceState {
                guild_id: Snowflake(guild),
                channel_id: channel.map(Snowflake),
                self_mute: mute,
                self_deaf: deaf,
            }),
            ArbCommand::Members {
                guild,
                filter,
                presences,
                nonce,
            } => Command::RequestGuildMembers(RequestGuildMembers {
                guild_id: Snowflake(guild),
                filter: match filter {
                    ArbFilter::Query { query, limit } => MemberFilter::Query { query, limit },
                    ArbFilter::UserIds(ids) => {
                        MemberFilter::UserIds(ids.into_iter().map(Snowflake).collect())
                    }
                },
                presences,
                nonce: nonce.map(|n| {
                    Nonce::new(truncate(n, MAX_NONCE_BYTES)).expect("truncated to the limit")
                }),
            }),
            ArbCommand::Soundboard { guilds } => {
                Command::RequestSoundboardSounds(RequestSoundboardSounds {
                    guild_ids: guilds.into_iter().map(Snowflake).collect(),
                })
            }
            ArbCommand::ChannelInfo { guild, fields } => {
                Command::RequestChannelInfo(RequestChannelInfo {
                    guild_id: Snowflake(guild),
                    fields: fields
                        .into_iter()
                        .map(|f| {
                            if f {
                                ChannelInfoField::Status
                            } else {
                                ChannelInfoField::VoiceStartTime
                            }
                        })
                        .collect(),
                })
            }
        }
    }
}

/// Target `commands`. The first byte picks the mode:
/// - even: the rest builds a command ([`ArbCommand`]); `to_json` must be the documented
///   shape ([`check_command_json`]) and `from_json(to_json(c)) == c`;
/// - odd: the rest, if UTF-8, is fed to `from_json`; a command it accepts must serialize to
///   the documented shape and read back as itself (parse → serialize is a fixpoint).
pub fn commands(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let command = if mode % 2 == 0 {
        let Ok(arb) = Unstructured::new(rest).arbitrary::<ArbCommand>() else {
            return;
        };
        arb.build()
    } else {
        let Ok(text) = std::str::from_utf8(rest) else {
            return;
        };
        match Command::from_json(text) {
            Ok(command) => command,
            Err(_) => return,
        }
    };
    let json = command.to_json();
    check_command_json(&command, &json);
    assert_eq!(
        Command::from_json(&json).as_ref().ok(),
        Some(&command),
        "round trip failed: {json}"
    );
    match command.to_frame() {
        Ok(frame) => {
            assert!(json.len() <= MAX_FRAME_BYTES);
            assert_eq!(frame, json);
        }
        Err(_) => assert!(json.len() > MAX_FRAME_BYTES),
    }
}

fn snowflake_json(value: &Value, id: Snowflake) {
    assert_eq!(
        value,
        &Value::String(id.get().to_string()),
        "snowflake form"
    );
}

/// `json` is `{"op":N,"d":{…}}` with exactly these two keys, N the command's opcode, and `d`
/// holding the command's fields in their documented JSON types (ids as strings, `since` and
/// `channel_id` as explicit nulls, optional Request Guild Members fields only when set).
/// The envelope reader reads the same op and `d`.
pub fn check_command_json(command: &Command, json: &str) {
    let value: Value = serde_json::from_str(json).expect("to_json is not valid JSON");
    let object = value.as_object().expect("to_json is not an object");
    assert_eq!(object.len(), 2, "extra top-level keys: {json}");
    assert_eq!(
        object.get("op").and_then(Value::as_u64),
        Some(u64::from(command.opcode().code()))
    );
    let d = object
        .get("d")
        .and_then(Value::as_object)
        .expect("d is not an object");
    let envelope = read_envelope(json).expect("the reader rejects a command");
    assert_eq!(envelope.op, u64::from(command.opcode().code()));
    assert_eq!(
        serde_json::from_str::<Value>(envelope.data.expect("no d")).ok(),
        object.get("d").cloned()
    );
    let keys = |expected: &[&str]| {
        let mut found: Vec<&str> = d.keys().map(String::as_str).collect();
        found.sort_unstable();
        let mut expected = expected.to_vec();
        expected.sort_unstable();
        assert_eq!(found, expected, "keys of d: {json}");
    };
    match command {
        Command::UpdatePresence(p) => {
            keys(&["since", "activities", "status", "afk"]);
            assert_eq!(d["since"], p.since.map_or(Value::Null, Value::from));
            assert_eq!(d["afk"], Value::Bool(p.afk));
            let status = d["status"].as_str().expect("status is a string");
            assert!(["online", "dnd", "idle", "invisible", "offline"].contains(&status));
            let activities = d["activities"].as_array().expect("activities");
            assert_eq!(activities.len(), p.activities.len());
            for (value, activity) in activities.iter().zip(&p.activities) {
                let a = value.as_object().expect("activity object");
                assert_eq!(a["name"], Value::String(activity.name.clone()));
                assert_eq!(a["type"], Value::from(activity.kind));
                assert_eq!(
                    a.get("url").and_then(Value::as_str),
                    activity.url.as_deref()
                );
                assert_eq!(
                    a.get("state").and_then(Value::as_str),
                    activity.state.as_deref()
                );
                let extra =
                    2 + usize::from(activity.url.is_some()) + usize::from(activity.state.is_some());
                assert_eq!(a.len(), extra, "activity keys: {json}");
            }
        }
        Command::UpdateVoiceState(v) => {
            keys(&["guild_id", "channel_id", "self_mute", "self_deaf"]);
            snowflake_json(&d["guild_id"], v.guild_id);
            match v.channel_id {
                Some(id) => snowflake_json(&d["channel_id"], id),
                None => assert!(d["channel_id"].is_null()),
            }
            assert_eq!(d["self_mute"], Value::Bool(v.self_mute));
            assert_eq!(d["self_deaf"], Value::Bool(v.self_deaf));
        }
        Command::RequestGuildMembers(r) => {
            let mut expected = vec!["guild_id"];
            match &r.filter {
                MemberFilter::Query { query, limit } => {
                    expected.extend(["query", "limit"]);
                    assert_eq!(d["query"], Value::String(query.clone()));
                    assert_eq!(d["limit"], Value::from(*limit));
                }
                MemberFilter::UserIds(ids) => {
                    expected.push("user_ids");
                    let found = d["user_ids"].as_array().expect("user_ids array");
                    assert_eq!(found.len(), ids.len());
                    for (value, id) in found.iter().zip(ids) {
                        snowflake_json(value, *id);
                    }
                }
            }
            if r.presences {
                expected.push("presences");
                assert_eq!(d["presences"], Value::Bool(true));
            }
            if let Some(nonce) = &r.nonce {
                expected.push("nonce");
                assert_eq!(d["nonce"], Value::String(nonce.as_str().into()));
            }
            keys(&expected);
            snowflake_json(&d["guild_id"], r.guild_id);
        }
        Command::RequestSoundboardSounds(s) => {
            keys(&["guild_ids"]);
            let found = d["guild_ids"].as_array().expect("guild_ids array");
            assert_eq!(found.len(), s.guild_ids.len());
            for (value, id) in found.iter().zip(&s.guild_ids) {
                snowflake_json(value, *id);
            }
        }
        Command::RequestChannelInfo(c) => {
            keys(&["guild_id", "fields"]);
            snowflake_json(&d["guild_id"], c.guild_id);
            let found = d["fields"].as_array().expect("fields array");
            assert_eq!(found.len(), c.fields.len());
            for (value, field) in found.iter().zip(&c.fields) {
                let name = match field {
                    ChannelInfoField::Status => "status",
                    ChannelInfoField::VoiceStartTime => "voice_start_time",
                    other => panic!("a field this check does not know: {other:?}"),
                };
                assert_eq!(value, &Value::String(name.into()));
            }
        }
        other => panic!("a command this check does not know: {other:?}"),
    }
}

// ===================================================================================
// 3. The whole machine, driven by steps.
// ===================================================================================

/// How far time moves before a step.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Delta {
    Zero,
    Millis(u16),
    Secs(u8),
    /// A long jump forward (suspend): up to ~10 days.
    Hours(u8),
    /// The input carries a `now` earlier than the latest one (the machine clamps it).
    Back(u16),
}

/// A dispatch sequence number.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Seq {
    /// One more than the highest sent so far.
    Next,
    /// A replay of an old number.
    Old(u8),
    Any(u64),
}

/// A text message: a realistic frame, a realistic frame with fuzz bytes spliced in, or raw
/// fuzz text.
#[derive(Arbitrary, Debug, Clone)]
pub enum ArbFrame {
    Hello {
        interval_ms: u32,
    },
    Ready {
        seq: Seq,
        session: u8,
        resume_url: bool,
    },
    Resumed {
        seq: Seq,
    },
    Dispatch {
        name: u8,
        seq: Seq,
    },
    RateLimited {
        seq: Seq,
        retry_after: u16,
    },
    Ack,
    BeatRequest,
    Reconnect,
    InvalidSession(bool),
    /// A dictionary frame with `insert` spliced in at `at`, after deleting `delete` bytes.
    Mutated {
        base: u8,
        at: u16,
        delete: u8,
        insert: Vec<u8>,
    },
    Raw(String),
}

const DISPATCH_NAMES: [&str; 6] = [
    "MESSAGE_CREATE",
    "GUILD_CREATE",
    "PRESENCE_UPDATE",
    "TYPING_START",
    "READY",
    "RESUMED",
];

/// A close reported by the driver.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum ArbClose {
    /// The transport failed: no close frame.
    Lost,
    /// One of the codes Discord documents (and 1000/1001).
    Known(u8),
    Any(u16),
}

const KNOWN_CLOSE_CODES: [u16; 17] = [
    1000, 1001, 4000, 4001, 4002, 4003, 4004, 4005, 4007, 4008, 4009, 4010, 4011, 4012, 4013, 4014,
    1006,
];

/// One step of a run.
#[derive(Arbitrary, Debug, Clone)]
pub enum Step {
    Connected(Delta),
    Text(Delta, ArbFrame),
    TextBytes(Delta, Vec<u8>),
    Binary(Delta, Vec<u8>),
    Closed(Delta, ArbClose),
    /// `handle_timeout` at the machine's deadline plus `late_ms` (what a driver does).
    TimeoutAtDeadline {
        late_ms: u16,
    },
    /// `handle_timeout` at an arbitrary time (spurious, early or very late).
    Timeout(Delta),
    Command(Delta, ArbCommand),
    Grant(Delta),
    Shutdown(Delta, bool),
}

/// The machine's configuration and start, chosen by the fuzzer.
#[derive(Arbitrary, Debug, Clone)]
pub struct ArbStart {
    seed: u64,
    start_secs: u16,
    auto_grant: bool,
    any_message_liveness: bool,
    missed_acks: u8,
    max_failed_resumes: u8,
    max_attempts: Option<u8>,
    command_queue: u8,
    short_timeouts: bool,
    saved_session: Option<(u64, bool)>,
    trace: bool,
}

/// The driver's view of the socket, mirroring what the machine asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Socket {
    /// No socket (before the first Connect, or after a close).
    None,
    /// `Connect` was output; the driver has not reported the socket open yet.
    Connecting,
    Open,
}

/// What the checker knows about the current connection.
#[derive(Debug, Default)]
struct Connection {
    hello: bool,
    granted: bool,
    identified: bool,
    resumed: bool,
    /// When each frame was sent on this connection (machine time).
    sends: Vec<Timestamp>,
}

/// The invariants checker: fed every output and every input result, it panics on the
/// first violation. Public so tests can show that it catches violations.
#[derive(Debug)]
pub struct Checker {
    auto_grant: bool,
    socket: Socket,
    conn: Connection,
    /// A Fatal or Shutdown event was output: only `Wait(None)` may follow.
    terminal: bool,
    /// The last (session id, sequence) seen while a session existed.
    last_session: Option<(String, u64)>,
}

/// The most outputs one drain may take.
pub const MAX_POLLS: usize = 10_000;
/// The most Send frames in any 60 s window of one connection.
pub const MAX_SENDS_PER_WINDOW: usize = 120;
const WINDOW_MICROS: u64 = 60_000_000;

impl Checker {
    pub fn new(auto_grant: bool) -> Self {
        Checker {
            auto_grant,
            socket: Socket::None,
            conn: Connection::default(),
            terminal: false,
            last_session: None,
        }
    }

    /// The driver reported the socket open (only meaningful after a `Connect`).
    pub fn on_connected(&mut self) {
        if self.socket == Socket::Connecting {
            self.socket = Socket::Open;
        }
    }

    /// The driver reported a socket closed, with a close frame or without (`None`: the
    /// transport failed). A socket being opened has no close frame to give: a frame
    /// reported then is the late close of the socket closed before, and the attempt goes on.
    pub fn on_closed(&mut self, frame: Option<CloseFrame<'_>>) {
        if frame.is_some() && self.socket == Socket::Connecting {
            return;
        }
        self.socket = Socket::None;
    }

    /// `grant_identify` returned `Ok`.
    pub fn on_granted(&mut self) {
        self.conn.granted = true;
    }

    /// One output, at machine time `now`, with the machine's session at that point.
    pub fn on_output(&mut self, output: &Output<'_>, now: Timestamp, session: Option<&Session>) {
        if self.terminal {
            assert_eq!(
                output,
                &Output::Wait(None),
                "output after a Fatal or Shutdown event"
            );
            return;
        }
        match output {
            Output::Connect { .. } => {
                assert_ne!(
                    self.socket,
                    Socket::Open,
                    "Connect while a socket is open (no Close output)"
                );
                self.socket = Socket::Connecting;
                self.conn = Connection::default();
            }
            Output::Close(_) => {
                assert_ne!(self.socket, Socket::None, "Close without a socket");
                self.socket = Socket::None;
            }
            Output::Event(Event::Hello { .. }) => {
                assert!(!self.conn.hello, "two Hellos on one connection");
                self.conn.hello = true;
            }
            Output::Event(Event::Fatal(_) | Event::Shutdown { .. }) => self.terminal = true,
            Output::Send(frame) => {
                assert_eq!(self.socket, Socket::Open, "Send without an open socket");
                assert!(frame.text.len() <= MAX_FRAME_BYTES, "frame over 4096 bytes");
                let envelope = read_envelope(frame.text).expect("a frame the reader rejects");
                assert_eq!(
                    envelope.op,
                    u64::from(frame.opcode.code()),
                    "opcode mismatch"
                );
                match frame.opcode {
                    OpCode::Resume => {
                        assert!(self.conn.hello, "Resume before Hello");
                        assert!(
                            !self.conn.resumed && !self.conn.identified,
                            "second handshake"
                        );
                        assert!(session.is_some(), "Resume without a session");
                        self.conn.resumed = true;
                    }
                    OpCode::Identify => {
                        assert!(self.conn.hello, "Identify before Hello");
                        assert!(
                            self.auto_grant || self.conn.granted,
                            "Identify without a grant"
                        );
                        assert!(
                            !self.conn.resumed && !self.conn.identified,
                            "second handshake"
                        );
                        self.conn.identified = true;
                    }
                    OpCode::Heartbeat => {
                        assert!(self.conn.hello, "Heartbeat before Hello");
                        let expected = session.map_or(Value::Null, |s| Value::from(s.sequence));
                        let d: Value = serde_json::from_str(envelope.data.expect("beat has d"))
                            .expect("beat d is JSON");
                        assert_eq!(d, expected, "heartbeat carries a stale sequence");
                    }
                    _ => assert!(
                        self.conn.identified || self.conn.resumed,
                        "command before the handshake"
                    ),
                }
                self.conn.sends.push(now);
                let sends = &self.conn.sends;
                if sends.len() > MAX_SENDS_PER_WINDOW {
                    let first = sends[sends.len() - 1 - MAX_SENDS_PER_WINDOW];
                    assert!(
                        now.as_micros() - first.as_micros() >= WINDOW_MICROS,
                        "{} sends within 60 s on one connection (from {first} to {now})",
                        MAX_SENDS_PER_WINDOW + 1
                    );
                }
            }
            _ => {}
        }
    }

    /// After a drain: the session's sequence never goes back while the session lives.
    pub fn on_session(&mut self, session: Option<&Session>) {
        match (session, &self.last_session) {
            (Some(s), Some((id, seq))) if *id == s.id => {
                assert!(
                    s.sequence >= *seq,
                    "sequence went back from {seq} to {}",
                    s.sequence
                );
            }
            _ => {}
        }
        self.last_session = session.map(|s| (s.id.clone(), s.sequence));
    }
}

/// A run of the machine under the [`Checker`].
struct Run {
    machine: GatewayMachine,
    checker: Checker,
    /// The driver's clock.
    now: Timestamp,
    /// The highest dispatch sequence delivered.
    seq: u64,
    /// Print each step and its outputs (`FUZZ_VERBOSE=1`, to read a crash's story).
    verbose: bool,
    /// The driver's receive buffer: every other valid text is handed over in it
    /// (`handle_text_buffer`) instead of lent, so both paths meet every state.
    buffer: String,
    /// Texts fed so far.
    texts: u64,
}

impl Run {
    fn input_time(&mut self, delta: Delta) -> Timestamp {
        match delta {
            Delta::Zero => self.now,
            Delta::Millis(ms) => self.advance(u64::from(ms) * 1_000),
            Delta::Secs(s) => self.advance(u64::from(s) * 1_000_000),
            Delta::Hours(h) => self.advance(u64::from(h) * 3_600_000_000),
            Delta::Back(ms) => {
                Timestamp::from_micros(self.now.as_micros().saturating_sub(u64::from(ms) * 1_000))
            }
        }
    }

    fn advance(&mut self, micros: u64) -> Timestamp {
        self.now = Timestamp::from_micros(self.now.as_micros().saturating_add(micros));
        self.now
    }

    fn seq(&mut self, seq: Seq) -> u64 {
        let s = match seq {
            Seq::Next => self.seq.saturating_add(1),
            Seq::Old(back) => self.seq.saturating_sub(u64::from(back)),
            Seq::Any(s) => s,
        };
        self.seq = self.seq.max(s);
        s
    }

    /// Drains outputs until `Wait`, checking each; returns the `Wait` deadline.
    fn drain(&mut self) -> Option<Timestamp> {
        for _ in 0..MAX_POLLS {
            let now = self.machine.now();
            let session = self.machine.session().cloned();
            let output = self.machine.poll_output();
            if self.verbose {
                eprintln!("    {output:?}");
            }
            self.checker.on_output(&output, now, session.as_ref());
            if let Output::Wait(deadline) = output {
                assert_eq!(
                    deadline,
                    self.machine.poll_timeout(),
                    "Wait != poll_timeout"
                );
                // Polling again at rest changes nothing.
                assert_eq!(self.machine.poll_output(), Output::Wait(deadline));
                self.checker.on_session(self.machine.session());
                return deadline;
            }
        }
        panic!("poll_output did not reach Wait within {MAX_POLLS} polls");
    }

    fn frame_text(&mut self, frame: ArbFrame) -> Result<String, Vec<u8>> {
        Ok(match frame {
            ArbFrame::Hello { interval_ms } => {
                format!(
                    r#"{{"t":null,"s":null,"op":10,"d":{{"heartbeat_interval":{interval_ms},"_trace":["gw"]}}}}"#
                )
            }
            ArbFrame::Ready {
                seq,
                session,
                resume_url,
            } => {
                let url = if resume_url {
                    r#","resume_gateway_url":"ws://127.0.0.2:9""#
                } else {
                    ""
                };
                format!(
                    r#"{{"t":"READY","s":{},"op":0,"d":{{"v":10,"user":{{"id":"42","username":"bot"}},"guilds":[{{"id":"1","unavailable":true}}],"session_id":"sess-{session}"{url},"shard":[0,1],"application":{{"id":"42"}}}}}}"#,
                    self.seq(seq)
                )
            }
            ArbFrame::Resumed { seq } => {
                format!(r#"{{"t":"RESUMED","s":{},"op":0,"d":{{}}}}"#, self.seq(seq))
            }
            ArbFrame::Dispatch { name, seq } => {
                let name = DISPATCH_NAMES[usize::from(name) % DISPATCH_NAMES.len()];
                format!(
                    r#"{{"t":"{name}","s":{},"op":0,"d":{{"id":"7","content":"hi \"op\":7 }}","guild_id":"81384788765712384"}}}}"#,
                    self.seq(seq)
                )
            }
            ArbFrame::RateLimited { seq, retry_after } => format!(
                r#"{{"t":"RATE_LIMITED","s":{},"op":0,"d":{{"opcode":8,"retry_after":{}.5,"meta":{{"guild_id":"1","nonce":"n"}}}}}}"#,
                self.seq(seq),
                retry_after
            ),
            ArbFrame::Ack => r#"{"t":null,"s":null,"op":11,"d":null}"#.into(),
            ArbFrame::BeatRequest => r#"{"t":null,"s":null,"op":1,"d":null}"#.into(),
            ArbFrame::Reconnect => r#"{"t":null,"s":null,"op":7,"d":null}"#.into(),
            ArbFrame::InvalidSession(resumable) => {
                format!(r#"{{"t":null,"s":null,"op":9,"d":{resumable}}}"#)
            }
            ArbFrame::Mutated {
                base,
                at,
                delete,
                insert,
            } => {
                let base = match base % 6 {
                    0 => ArbFrame::Hello { interval_ms: 41250 },
                    1 => ArbFrame::Ready {
                        seq: Seq::Next,
                        session: 0,
                        resume_url: true,
                    },
                    2 => ArbFrame::Resumed { seq: Seq::Next },
                    3 => ArbFrame::Dispatch {
                        name: 0,
                        seq: Seq::Next,
                    },
                    4 => ArbFrame::InvalidSession(true),
                    _ => ArbFrame::Ack,
                };
                let mut bytes = self.frame_text(base)?.into_bytes();
                let at = usize::from(at) % (bytes.len() + 1);
                let end = (at + usize::from(delete)).min(bytes.len());
                bytes.splice(at..end, insert);
                return String::from_utf8(bytes).map_err(|e| e.into_bytes());
            }
            ArbFrame::Raw(text) => text,
        })
    }

    fn step(&mut self, step: Step) {
        let before = self.machine.phase();
        if self.verbose {
            eprintln!("[{}] {before:?}: {step:?}", self.now);
        }
        let mut timeout_at = None;
        match step {
            Step::Connected(delta) => {
                let now = self.input_time(delta);
                if before == Phase::Connecting {
                    self.checker.on_connected();
                }
                self.machine.handle_connected(now);
            }
            Step::Text(delta, frame) => {
                let now = self.input_time(delta);
                match self.frame_text(frame) {
                    Ok(text) if self.texts % 2 == 1 => {
                        self.texts += 1;
                        self.buffer.push_str(&text);
                        self.machine.handle_text_buffer(now, &mut self.buffer);
                        assert!(
                            self.buffer.is_empty(),
                            "a handed-over buffer comes back empty"
                        );
                    }
                    Ok(text) => {
                        self.texts += 1;
                        self.machine.handle_message(now, Message::Text(&text));
                    }
                    Err(bytes) => self.machine.handle_message(now, Message::TextBytes(&bytes)),
                }
            }
            Step::TextBytes(delta, bytes) => {
                let now = self.input_time(delta);
                self.machine.handle_message(now, Message::TextBytes(&bytes));
            }
            Step::Binary(delta, bytes) => {
                let now = self.input_time(delta);
                self.machine.handle_message(now, Message::Binary(&bytes));
            }
            Step::Closed(delta, close) => {
                let now = self.input_time(delta);
                let frame = match close {
                    ArbClose::Lost => None,
                    ArbClose::Known(i) => Some(CloseFrame {
                        code: KNOWN_CLOSE_CODES[usize::from(i) % KNOWN_CLOSE_CODES.len()],
                        reason: "",
                    }),
                    ArbClose::Any(code) => Some(CloseFrame {
                        code,
                        reason: "fuzz",
                    }),
                };
                self.checker.on_closed(frame);
                self.machine.handle_closed(now, frame);
            }
            Step::TimeoutAtDeadline { late_ms } => {
                if let Some(deadline) = self.machine.poll_timeout() {
                    let at = deadline
                        .as_micros()
                        .saturating_add(u64::from(late_ms) * 1_000);
                    self.now = self.now.max(Timestamp::from_micros(at));
                }
                let now = self.now;
                self.machine.handle_timeout(now);
                timeout_at = Some(self.machine.now());
            }
            Step::Timeout(delta) => {
                let now = self.input_time(delta);
                self.machine.handle_timeout(now);
                timeout_at = Some(self.machine.now());
            }
            Step::Command(delta, command) => {
                let now = self.input_time(delta);
                let command = command.build();
                let size = command.to_json().len();
                let result = self.machine.send(now, command);
                match result {
                    Ok(()) => assert!(!before.is_terminal() && size <= MAX_FRAME_BYTES),
                    Err(CommandError::Stopped) => assert!(before.is_terminal()),
                    Err(CommandError::PayloadTooLarge { size: s, .. }) => {
                        assert!(!before.is_terminal() && size == s && s > MAX_FRAME_BYTES)
                    }
                    Err(CommandError::QueueFull { .. }) => assert!(!before.is_terminal()),
                    Err(other) => panic!("send returned {other:?}"),
                }
            }
            Step::Grant(delta) => {
                let now = self.input_time(delta);
                let result = self.machine.grant_identify(now);
                let expected = match before {
                    Phase::AwaitingIdentifyGrant => Ok(()),
                    p if p.is_terminal() => Err(CommandError::Stopped),
                    _ => Err(CommandError::IdentifyNotRequested),
                };
                assert_eq!(result, expected, "grant_identify in {before:?}");
                if result.is_ok() {
                    self.checker.on_granted();
                }
            }
            Step::Shutdown(delta, keep) => {
                let now = self.input_time(delta);
                let expected = if before.is_terminal() {
                    Err(CommandError::Stopped)
                } else {
                    Ok(())
                };
                assert_eq!(
                    self.machine.shutdown(now, keep),
                    expected,
                    "shutdown in {before:?}"
                );
            }
        }
        let deadline = self.drain();
        if let Some(t) = timeout_at {
            // The driver never busy-loops: after handle_timeout(t), the next deadline is
            // later than t.
            assert!(
                deadline.is_none_or(|d| d > t),
                "deadline {deadline:?} not after the timeout at {t}"
            );
        }
        if self.machine.phase().is_terminal() {
            assert_eq!(
                self.machine.poll_timeout(),
                None,
                "terminal with a deadline"
            );
        }
    }
}

/// Target `machine`: the whole machine driven by arbitrary [`Step`]s from an arbitrary
/// start, checked after every step by the [`Checker`] and [`Run::drain`]:
/// - `poll_output` reaches `Wait` within [`MAX_POLLS`], `Wait`'s deadline is `poll_timeout`;
/// - after `handle_timeout(t)`, the deadline is later than `t` (or none);
/// - after a Fatal or Shutdown event, only `Wait(None)`; `poll_timeout` is `None`;
/// - Resume/Identify/Heartbeat only after Hello on the connection, Identify only after a
///   grant (or with auto-grant), Resume only with a session, one handshake per connection,
///   commands only after the handshake; every frame is valid, its op matches, ≤ 4096 bytes;
///   heartbeats carry the session's current sequence;
/// - `Connect` never while a socket is open; `Send` only on an open socket;
/// - the session's sequence never decreases;
/// - at most 120 frames in any 60 s window of one connection;
/// - command and grant results are the documented ones for the phase;
/// - no panic.
///
/// Exclusion: times stay far below `Timestamp::MAX` (at most ~255 steps of ~10 days), where
/// "a deadline later than now" cannot hold.
pub fn machine(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(start) = u.arbitrary::<ArbStart>() else {
        return;
    };
    let mut config = GatewayConfig::new(Token::new("fuzz-token"), Intents::GUILDS)
        .with_gateway_url("ws://127.0.0.1:9/gateway")
        .with_auto_grant(start.auto_grant)
        .with_heartbeat(HeartbeatPolicy {
            missed_acks_before_zombie: u32::from(start.missed_acks % 4).max(1),
            liveness: if start.any_message_liveness {
                Liveness::AnyMessage
            } else {
                Liveness::AckOnly
            },
        })
        .with_session_policy(SessionPolicy {
            max_failed_resumes: u32::from(start.max_failed_resumes % 5),
            ..SessionPolicy::default()
        })
        .with_reconnect(Backoff {
            max_attempts: start.max_attempts.map(|n| u32::from(n % 8)),
            ..Backoff::default()
        })
        .with_limits(Limits {
            command_queue: usize::from(start.command_queue),
            ..Limits::default()
        });
    if start.short_timeouts {
        config = config.with_timeouts(Timeouts {
            connect: std::time::Duration::from_millis(500),
            hello: std::time::Duration::from_millis(300),
            ready: std::time::Duration::from_secs(1),
        });
    }
    let now = Timestamp::from_secs(u64::from(start.start_secs));
    let session = start.saved_session.map(|(seq, url)| Session {
        id: "saved".into(),
        sequence: seq,
        resume_url: url.then(|| "ws://127.0.0.3:9".into()),
        last_alive: now,
    });
    let options = StartOptions {
        shard: None,
        session,
    };
    let machine = GatewayMachine::with_options(config, options, start.seed, now)
        .expect("the fuzz config is valid");
    let mut run = Run {
        machine,
        checker: Checker::new(start.auto_grant),
        now,
        seq: 0,
        verbose: std::env::var_os("FUZZ_VERBOSE").is_some(),
        buffer: String::new(),
        texts: 0,
    };
    run.machine.set_trace(start.trace);
    run.drain();
    for _ in 0..255 {
        if u.is_empty() {
            break;
        }
        let Ok(step) = u.arbitrary::<Step>() else {
            break;
        };
        run.step(step);
    }
}

// ===================================================================================
// 5. Replay of arbitrary recordings.
// ===================================================================================

/// The header of `tests/fixtures/recording-v1.jsonl`, prepended when the first byte is even
/// so the fuzzer spends its time on lines rather than on headers.
const HEADER: &str = r#"{"format":"discord-gateway-proto-recording","version":1,"seed":7,"start":0,"shard":{"id":0,"count":1},"session":null,"config":{"intents":513,"shard":{"id":0,"count":1},"properties":{"os":"linux","browser":"discord-gateway-proto","device":"discord-gateway-proto"},"large_threshold":null,"presence":null,"gateway_url":"ws://127.0.0.1:9/gateway","compression":"none","heartbeat":{"missed_acks_before_zombie":1,"liveness":"AckOnly"},"session":{"stale_after":{"secs":900,"nanos":0},"max_failed_resumes":3},"identify":{"auto_grant":false,"invalid_session_delay":[{"secs":1,"nanos":0},{"secs":5,"nanos":0}]},"reconnect":{"schedule":{"Exponential":{"initial":{"secs":1,"nanos":0},"max":{"secs":60,"nanos":0},"jitter":true}},"first_delay":{"secs":0,"nanos":0},"max_attempts":null},"timeouts":{"connect":{"secs":30,"nanos":0},"hello":{"secs":20,"nanos":0},"ready":{"secs":60,"nanos":0}},"limits":{"command_queue":64,"max_message_size":67108864,"max_buffered_compressed":16777216}}}"#;

/// Target `replay`: arbitrary text as a recording (first byte even: after a valid header).
/// `replay` never panics; every error but `Empty` names a line that exists, and its message
/// starts with `line N:`; a success counts no more lines than there are.
pub fn replay_recording(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let text: Cow<'_, str> = if mode % 2 == 0 {
        format!("{HEADER}\n{text}").into()
    } else {
        text.into()
    };
    let lines: Vec<&str> = text.lines().collect();
    match replay(lines.iter().copied(), |_| {}) {
        Ok(summary) => assert!(summary.lines <= lines.len()),
        Err(ReplayError::Empty) => assert!(lines.is_empty(), "Empty for {} lines", lines.len()),
        Err(error) => {
            let line = match &error {
                ReplayError::BadLine { line, .. } | ReplayError::Mismatch { line, .. } => *line,
                _ => 1,
            };
            assert!(
                (1..=lines.len()).contains(&line),
                "error names line {line} of {}: {error}",
                lines.len()
            );
            let message = error.to_string();
            assert!(
                message.starts_with(&format!("line {line}: ")),
                "error does not name its line: {message}"
            );
        }
    }
}

// ===================================================================================
// 4. The inflaters (zlib-stream, payload, zstd-stream).
// ===================================================================================

/// The compressions built in, in a fixed order.
#[cfg(any(feature = "zlib-stream", feature = "zstd-stream"))]
fn compressions() -> Vec<discord_gateway_proto::Compression> {
    #[allow(unused_mut)]
    let mut all = Vec::new();
    #[cfg(feature = "zlib-stream")]
    all.extend([
        discord_gateway_proto::Compression::ZlibStream,
        discord_gateway_proto::Compression::Payload,
    ]);
    #[cfg(feature = "zstd-stream")]
    all.push(discord_gateway_proto::Compression::ZstdStream);
    all
}

/// Splits `data` into messages, each prefixed by a one-byte length (a length past the end
/// takes the rest).
#[cfg(any(feature = "zlib-stream", feature = "zstd-stream"))]
fn split_messages(mut data: &[u8]) -> Vec<&[u8]> {
    let mut messages = Vec::new();
    while let Some((&len, rest)) = data.split_first() {
        let len = usize::from(len).min(rest.len());
        messages.push(&rest[..len]);
        data = &rest[len..];
    }
    messages
}

/// Compresses `messages` as the gateway does for `compression`: one zlib stream with a sync
/// flush per message, one standalone zlib stream per message, or one zstd frame that never
/// ends, flushed per message.
#[cfg(any(feature = "zlib-stream", feature = "zstd-stream"))]
fn compress(compression: discord_gateway_proto::Compression, messages: &[&[u8]]) -> Vec<Vec<u8>> {
    use discord_gateway_proto::Compression;
    #[cfg(feature = "zlib-stream")]
    use std::io::Write;
    match compression {
        #[cfg(feature = "zlib-stream")]
        Compression::ZlibStream => {
            let mut encoder =
                flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            messages
                .iter()
                .map(|m| {
                    encoder.write_all(m).expect("compress");
                    encoder.flush().expect("sync flush");
                    std::mem::take(encoder.get_mut())
                })
                .collect()
        }
        #[cfg(feature = "zlib-stream")]
        Compression::Payload => messages
            .iter()
            .map(|m| {
                let mut encoder =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
                encoder.write_all(m).expect("compress");
                encoder.finish().expect("finish")
            })
            .collect(),
        #[cfg(feature = "zstd-stream")]
        Compression::ZstdStream => {
            let mut stream = zstd_support::ZstdStream::new(1);
            messages.iter().map(|m| stream.message(m)).collect()
        }
        other => unreachable!("not a compression built in: {other:?}"),
    }
}

/// Target `inflate`. The first byte picks the compression, the limits and the mode; the
/// rest is split into messages ([`split_messages`]).
/// - raw mode: each message is fed to a [`Decompressor`](discord_gateway_proto::inflate::Decompressor)
///   as compressed bytes; it must not panic, an `Ok(true)` message is at most
///   `max_message_size` bytes, the output buffer never grows past `max_message_size + 1`
///   bytes of capacity, `Ok(false)` leaves it empty, and the decompressor's own memory stays
///   bounded (zlib: its state plus at most twice `max_buffered_compressed`; zstd: the
///   `Limits::max_window` cap, 8 MiB, plus its buffers). After an error it is reset, as the
///   machine does.
/// - round-trip mode: the messages are compressed as the gateway does and must come back
///   byte for byte, or fail with `MessageTooLarge` exactly when over the limit.
/// - machine mode: the raw messages go to a connected machine with that compression as
///   binary WebSocket messages; besides the machine checks of the `machine` target's drain,
///   `heap_bytes` stays within the same bounds plus the received-message buffer.
#[cfg(any(feature = "zlib-stream", feature = "zstd-stream"))]
pub fn inflate(data: &[u8]) {
    use discord_gateway_proto::inflate::{Decompressor, InflateError};
    use discord_gateway_proto::Compression;

    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let all = compressions();
    let compression = all[usize::from(mode & 3) % all.len()];
    let max_message_size = [0, 16, 1000, 70_000][usize::from(mode >> 2) & 3];
    let max_buffered_compressed = [0, 64, 4096, 1 << 20][usize::from(mode >> 4) & 3];
    let limits = Limits {
        command_queue: 1,
        max_message_size,
        max_buffered_compressed,
        ..Limits::default()
    };
    /// The zlib-rs inflate state with its window (46.4 KiB measured), rounded up.
    const ZLIB_STATE: usize = 64 * 1024;
    /// libzstd's context with the largest window `Limits::max_window` lets a frame declare
    /// (8 MiB by default) and its block buffers: 8 MiB + 478 KiB measured, rounded up.
    const ZSTD_MAX: usize = discord_gateway_proto::config::DEFAULT_MAX_WINDOW + 1024 * 1024;
    let decompressor_bound = match compression {
        Compression::ZstdStream => ZSTD_MAX,
        _ => ZLIB_STATE + 2 * max_buffered_compressed,
    };
    let messages = split_messages(rest);
    match mode >> 6 {
        0 | 1 => {
            let mut d = Decompressor::new(compression, &limits).expect("available compression");
            let mut out = Vec::new();
            for message in messages {
                let result = d.feed(message, &mut out);
                assert!(
                    out.capacity() <= max_message_size + 1,
                    "output capacity {} over the limit {max_message_size}",
                    out.capacity()
                );
                match result {
                    Ok(true) => assert!(out.len() <= max_message_size),
                    Ok(false) => assert!(out.is_empty(), "Ok(false) with output"),
                    Err(InflateError::NotCompressed) => panic!("compression is on"),
                    Err(_) => d.reset(),
                }
                assert!(
                    d.heap_bytes() <= decompressor_bound,
                    "decompressor holds {} bytes",
                    d.heap_bytes()
                );
            }
        }
        2 => {
            let mut d = Decompressor::new(compression, &limits).expect("available compression");
            let mut out = Vec::new();
            for (message, compressed) in messages.iter().zip(compress(compression, &messages)) {
                let result = d.feed(&compressed, &mut out);
                if message.len() > max_message_size {
                    assert_eq!(
                        result,
                        Err(InflateError::MessageTooLarge {
                            limit: max_message_size
                        })
                    );
                    // The stream is broken after an error: start over, as the machine does.
                    return;
                }
                match result {
                    Ok(true) => assert_eq!(&out[..], *message, "round trip"),
                    // zstd: a message that decompressed to nothing is not a message.
                    Ok(false) => assert!(message.is_empty() && out.is_empty()),
                    Err(error) => panic!("{error} for a valid message of {}", message.len()),
                }
            }
        }
        _ => {
            let config = GatewayConfig::new(Token::new("fuzz-token"), Intents::GUILDS)
                .with_gateway_url("ws://127.0.0.1:9/gateway")
                .with_compression(compression)
                .with_limits(limits);
            let now = Timestamp::from_secs(1);
            let machine = GatewayMachine::with_options(config, StartOptions::default(), 1, now)
                .expect("valid config");
            let mut run = Run {
                machine,
                checker: Checker::new(false),
                now,
                seq: 0,
                verbose: false,
                buffer: String::new(),
                texts: 0,
            };
            run.drain();
            run.step(Step::Connected(Delta::Zero));
            for message in messages {
                run.step(Step::Binary(Delta::Millis(1), message.to_vec()));
                let bound = decompressor_bound + 2 * (max_message_size + 1) + 64 * 1024;
                assert!(
                    run.machine.heap_bytes() <= bound,
                    "machine holds {} bytes",
                    run.machine.heap_bytes()
                );
            }
        }
    }
}
