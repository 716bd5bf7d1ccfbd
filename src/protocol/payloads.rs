//! The payloads the machine itself sends: Identify, Resume, Heartbeat.

use alloc::string::String;
use core::fmt::Write;

use serde::Serialize;

use crate::config::{GatewayConfig, IdentifyProperties, ShardId};
use crate::protocol::commands::UpdatePresence;

#[derive(Serialize)]
struct Identify<'a> {
    token: &'a str,
    properties: &'a IdentifyProperties,
    #[serde(skip_serializing_if = "core::ops::Not::not")]
    compress: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    large_threshold: Option<u8>,
    shard: [u32; 2],
    #[serde(skip_serializing_if = "Option::is_none")]
    presence: Option<&'a UpdatePresence>,
    intents: u64,
}

#[derive(Serialize)]
struct Envelope<T> {
    op: u8,
    d: T,
}

#[derive(Serialize)]
struct Resume<'a> {
    token: &'a str,
    session_id: &'a str,
    seq: Option<u64>,
}

/// `{"op":2,"d":{…}}` for this config and shard.
pub(crate) fn identify(config: &GatewayConfig, shard: ShardId) -> String {
    let d = Identify {
        token: config.token.expose_secret(),
        properties: &config.properties,
        compress: config.compression.identify_compress(),
        large_threshold: config.large_threshold,
        shard: [shard.id, shard.count],
        presence: config.presence.as_ref(),
        intents: config.intents.bits(),
    };
    // Serializing plain structs of strings and numbers cannot fail.
    serde_json::to_string(&Envelope { op: 2, d }).unwrap_or_default()
}

/// `{"op":6,"d":{"token":…,"session_id":…,"seq":…}}`.
pub(crate) fn resume(config: &GatewayConfig, session_id: &str, seq: Option<u64>) -> String {
    let d = Resume {
        token: config.token.expose_secret(),
        session_id,
        seq,
    };
    serde_json::to_string(&Envelope { op: 6, d }).unwrap_or_default()
}

/// Writes `{"op":1,"d":SEQ}` into `out` (cleared first), reusing its capacity.
pub(crate) fn heartbeat(out: &mut String, seq: Option<u64>) {
    out.clear();
    // Writing to a String cannot fail.
    let _ = match seq {
        Some(s) => write!(out, "{{\"op\":1,\"d\":{s}}}"),
        None => out.write_str("{\"op\":1,\"d\":null}"),
    };
}
