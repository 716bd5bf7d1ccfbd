//! Reading the `RATE_LIMITED` dispatch: Discord refused a request sent on the gateway
//! (today only op 8 Request Guild Members for all members, once per guild per 30 s).
//!
//! Documented shape of `d` (`developers/events/gateway-events.mdx`, "Rate Limited"):
//! `{"opcode": integer, "retry_after": float seconds, "meta": object}`, where `meta` for op 8
//! is `{"guild_id": snowflake, "nonce"?: string}`.

use alloc::string::{String, ToString};
use core::time::Duration;

use serde::Deserialize;

use crate::output::RateLimited;
use crate::protocol::opcode::OpCode;
use crate::protocol::snowflake::Snowflake;

/// The event name of the dispatch this module reads.
pub const RATE_LIMITED_EVENT: &str = "RATE_LIMITED";

/// `meta` of a refused Request Guild Members (op 8).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct RequestGuildMembersRateLimit {
    /// The guild whose members were requested.
    pub guild_id: Snowflake,
    /// The nonce of the refused request, if it had one.
    #[serde(default)]
    pub nonce: Option<String>,
}

#[derive(Deserialize)]
struct Wire {
    opcode: u8,
    retry_after: f64,
    #[serde(default)]
    meta: Option<serde_json::Value>,
}

impl RateLimited {
    /// Reads the `d` of a `RATE_LIMITED` dispatch (raw JSON text). `None` if it is not the
    /// documented shape, or `retry_after` is negative or not finite. `meta` is kept as
    /// compact JSON text (`"null"` when absent).
    pub fn parse(data: &str) -> Option<RateLimited> {
        let wire: Wire = serde_json::from_str(data).ok()?;
        if !wire.retry_after.is_finite() || wire.retry_after < 0.0 {
            return None;
        }
        let meta = match wire.meta {
            Some(meta) => meta.to_string(),
            None => String::from("null"),
        };
        Some(RateLimited {
            opcode: wire.opcode,
            retry_after: wire.retry_after,
            meta,
        })
    }

    /// The opcode of the refused request, if this crate knows it.
    pub fn refused_opcode(&self) -> Option<OpCode> {
        OpCode::from_u64(u64::from(self.opcode))
    }

    /// How long to wait before retrying (saturating for absurd values).
    pub fn retry_after_duration(&self) -> Duration {
        Duration::try_from_secs_f64(self.retry_after).unwrap_or(Duration::MAX)
    }

    /// The typed `meta` when the refused request is a Request Guild Members (op 8).
    pub fn request_guild_members_meta(&self) -> Option<RequestGuildMembersRateLimit> {
        if self.opcode != OpCode::RequestGuildMembers.code() {
            return None;
        }
        serde_json::from_str(&self.meta).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::envelope::read_envelope;

    /// The dispatch as the 2025-08-14 change log shows it (its `...` placeholders filled in).
    const DOCUMENTED: &str = r#"{
      "op": 0,
      "t": "RATE_LIMITED",
      "s": 12,
      "d": {
        "opcode": 8,
        "retry_after": 27.25,
        "meta": {
          "guild_id": "41771983444115456",
          "nonce": "chunk-42"
        }
      }
    }"#;

    #[test]
    fn parses_the_documented_dispatch() {
        let envelope = read_envelope(DOCUMENTED).unwrap();
        assert_eq!(envelope.event_name, Some(RATE_LIMITED_EVENT));
        let limited = RateLimited::parse(envelope.data.unwrap()).unwrap();
        assert_eq!(limited.opcode, 8);
        assert_eq!(limited.refused_opcode(), Some(OpCode::RequestGuildMembers));
        assert_eq!(
            limited.retry_after_duration(),
            Duration::from_millis(27_250)
        );
        assert_eq!(
            limited.request_guild_members_meta(),
            Some(RequestGuildMembersRateLimit {
                guild_id: Snowflake(41771983444115456),
                nonce: Some("chunk-42".into()),
            })
        );
        let meta: serde_json::Value = serde_json::from_str(&limited.meta).unwrap();
        assert_eq!(
            meta,
            serde_json::json!({"guild_id": "41771983444115456", "nonce": "chunk-42"})
        );
    }

    #[test]
    fn nonce_is_optional_and_unknown_fields_are_ignored() {
        let limited = RateLimited::parse(
            r#"{"meta":{"guild_id":"5"},"retry_after":1,"opcode":8,"extra":true}"#,
        )
        .unwrap();
        assert_eq!(
            limited.request_guild_members_meta(),
            Some(RequestGuildMembersRateLimit {
                guild_id: Snowflake(5),
                nonce: None
            })
        );
    }

    #[test]
    fn other_opcodes_keep_raw_meta_only() {
        let limited = RateLimited::parse(r#"{"opcode":3,"retry_after":0.5}"#).unwrap();
        assert_eq!(limited.meta, "null");
        assert_eq!(limited.request_guild_members_meta(), None);
        assert_eq!(limited.retry_after_duration(), Duration::from_millis(500));
    }

    #[test]
    fn rejects_malformed_data() {
        for bad in [
            "",
            "null",
            "[]",
            r#"{"opcode":8}"#,
            r#"{"retry_after":1.0}"#,
            r#"{"opcode":"8","retry_after":1.0}"#,
            r#"{"opcode":8,"retry_after":-1.0}"#,
            r#"{"opcode":300,"retry_after":1.0}"#,
        ] {
            assert_eq!(RateLimited::parse(bad), None, "accepted {bad:?}");
        }
    }
}
