//! Reading the few fields of READY that the machine needs, without building a JSON tree.

use alloc::string::String;
use core::fmt;

use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;

use crate::output::ReadyInfo;

#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

/// Counts the elements of a JSON array without keeping them.
#[derive(Default)]
struct Count(usize);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CountVisitor;
        impl<'de> Visitor<'de> for CountVisitor {
            type Value = Count;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Count, A::Error> {
                let mut n = 0;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(Count(n))
            }
        }
        deserializer.deserialize_seq(CountVisitor)
    }
}

#[derive(Deserialize)]
struct ReadyData {
    v: u8,
    session_id: String,
    #[serde(default)]
    resume_gateway_url: Option<String>,
    #[serde(default)]
    user: Option<IdOnly>,
    #[serde(default)]
    application: Option<IdOnly>,
    #[serde(default)]
    guilds: Count,
}

/// Reads READY's `d`; `None` if it lacks `v` or `session_id` or is not valid JSON.
pub(crate) fn parse_ready(data: &str) -> Option<ReadyInfo> {
    let d: ReadyData = serde_json::from_str(data).ok()?;
    if d.session_id.is_empty() {
        return None;
    }
    Some(ReadyInfo {
        version: d.v,
        session_id: d.session_id,
        resume_gateway_url: d.resume_gateway_url.filter(|u| !u.is_empty()),
        user_id: d.user.map(|u| u.id),
        application_id: d.application.map(|a| a.id),
        guild_count: d.guilds.0,
    })
}

#[derive(Deserialize)]
struct HelloData {
    heartbeat_interval: u64,
}

/// Reads Hello's `heartbeat_interval` in milliseconds.
pub(crate) fn parse_hello(data: &str) -> Option<u64> {
    serde_json::from_str::<HelloData>(data)
        .ok()
        .map(|h| h.heartbeat_interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ready_basics() {
        let info = parse_ready(
            r#"{"v":10,"user":{"id":"1","username":"bot"},"guilds":[{"id":"2","unavailable":true},{"id":"3"}],
               "session_id":"abc","resume_gateway_url":"wss://resume.example","shard":[0,1],"application":{"id":"9","flags":0}}"#,
        )
        .unwrap();
        assert_eq!(info.session_id, "abc");
        assert_eq!(
            info.resume_gateway_url.as_deref(),
            Some("wss://resume.example")
        );
        assert_eq!(info.user_id.as_deref(), Some("1"));
        assert_eq!(info.application_id.as_deref(), Some("9"));
        assert_eq!(info.guild_count, 2);
        assert_eq!(info.version, 10);
        assert!(parse_ready(r#"{"v":10}"#).is_none());
        assert!(parse_ready("nope").is_none());
        assert_eq!(
            parse_hello(r#"{"heartbeat_interval":41250,"_trace":["x"]}"#),
            Some(41250)
        );
        assert_eq!(parse_hello(r#"{"heartbeat_interval":-1}"#), None);
    }
}
