//! An [`IdentifyCoordinator`] backed by Redis, so the identify queues of many processes (on
//! many hosts) act as one: each identify bucket may identify once per hold (5 s) per bot.
//!
//! One atomic round trip per question, a Lua script doing the crate's documented shape:
//!
//! ```text
//! SET {prefix}:{bucket} {owner} NX PX {hold}   OK  -> Lease::Granted
//!                                              nil -> PTTL {prefix}:{bucket} = p -> Lease::Busy { until: now + p }
//! ```
//!
//! Only durations cross the process boundary (PX, PTTL), so the processes' clocks need not
//! agree. When Redis cannot be reached the coordinator fails closed: it answers `Busy` for a
//! second and keeps the error for the caller to report, and never grants blind.
//!
//! Used by `examples/redis_identify.rs` and `tests/redis_identify.rs`.
#![allow(dead_code)]

use std::time::Duration;

use discord_gateway_proto::identify::{IdentifyCoordinator, Lease};
use discord_gateway_proto::Timestamp;

/// Takes the bucket if free (returns [`GRANTED`]), else returns the holder's remaining
/// milliseconds (PTTL: -1 for a key someone set without expiry).
const ACQUIRE: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return -100
end
return redis.call('PTTL', KEYS[1])
";

/// The script's answer when the bucket was taken.
const GRANTED: i64 = -100;

/// How long to wait before asking again after Redis failed.
pub const RETRY_AFTER_ERROR: Duration = Duration::from_secs(1);

/// A Redis-backed coordinator (blocking client; each question is one short round trip).
pub struct RedisCoordinator {
    connection: redis::Connection,
    prefix: String,
    owner: String,
    last_error: Option<String>,
}

impl RedisCoordinator {
    /// Connects to `url` (e.g. `redis://127.0.0.1:6379/`). Keys are `{prefix}:{bucket}`
    /// (`identify` in production: all processes of one bot must use the same prefix);
    /// `owner` names this process in the key's value, for debugging.
    pub fn connect(url: &str, prefix: &str, owner: &str) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| format!("bad Redis URL {url:?}: {e}"))?;
        let connection = client
            .get_connection_with_timeout(Duration::from_secs(5))
            .map_err(|e| format!("cannot connect to Redis at {url}: {e}"))?;
        connection
            .set_read_timeout(Some(Duration::from_secs(5)))
            .and_then(|()| connection.set_write_timeout(Some(Duration::from_secs(5))))
            .map_err(|e| format!("Redis socket setup: {e}"))?;
        Ok(RedisCoordinator {
            connection,
            prefix: prefix.to_string(),
            owner: owner.to_string(),
            last_error: None,
        })
    }

    /// The last Redis error, if the last question failed.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }
}

impl IdentifyCoordinator for RedisCoordinator {
    fn try_acquire(&mut self, bucket: u32, hold: Duration, now: Timestamp) -> Lease {
        let key = format!("{}:{bucket}", self.prefix);
        let hold_ms = hold.as_millis().max(1) as u64;
        let answer: redis::RedisResult<i64> = redis::cmd("EVAL")
            .arg(ACQUIRE)
            .arg(1)
            .arg(&key)
            .arg(&self.owner)
            .arg(hold_ms)
            .query(&mut self.connection);
        match answer {
            Ok(GRANTED) => {
                self.last_error = None;
                Lease::Granted
            }
            // The holder's slot ends in `ms`, in Redis' time: a duration, not a clock.
            Ok(ms) if ms >= 0 => Lease::Busy {
                until: now.saturating_add(Duration::from_millis((ms as u64).max(1))),
            },
            // A key without expiry: not ours to delete; treat it as held for a full slot.
            Ok(_) => {
                self.last_error = Some(format!("Redis key {key} has no expiry"));
                Lease::Busy {
                    until: now.saturating_add(hold),
                }
            }
            Err(e) => {
                self.last_error = Some(format!("Redis: {e}"));
                Lease::Busy {
                    until: now.saturating_add(RETRY_AFTER_ERROR),
                }
            }
        }
    }
}

/// Drives `queue` in real time until every shard in `shards` was granted, calling `on_grant`
/// for each grant (where a real process would call `grant_identify` on that shard's
/// machine). Gives up after `limit`.
pub fn grant_all(
    queue: &mut discord_gateway_proto::IdentifyQueue<RedisCoordinator>,
    shards: &[discord_gateway_proto::ShardId],
    clock: crate::common::Clock,
    limit: Duration,
    mut on_grant: impl FnMut(discord_gateway_proto::ShardId, Timestamp),
) -> Result<(), String> {
    use discord_gateway_proto::IdentifyOutput;
    let start = clock.now();
    for &shard in shards {
        queue.request(shard, start);
    }
    let mut left = shards.len();
    let mut reported: Option<String> = None;
    while left > 0 {
        let now = clock.now();
        if now.saturating_duration_since(start) > limit {
            return Err(format!("{left} shards still waiting after {limit:?}"));
        }
        queue.handle_timeout(now);
        while let Some(output) = queue.poll_output() {
            match output {
                IdentifyOutput::Grant(shard) => {
                    left -= 1;
                    on_grant(shard, now);
                }
                IdentifyOutput::Exhausted { until, .. } => {
                    return Err(format!("session starts exhausted until {until}"));
                }
                other => eprintln!("identify queue: {other:?}"),
            }
        }
        // The coordinator fails closed; say why nothing is granted (once per new error).
        let error = queue.coordinator().last_error().map(str::to_string);
        if error.is_some() && error != reported {
            eprintln!("{}; retrying", error.as_deref().unwrap_or_default());
        }
        reported = error;
        if left == 0 {
            break;
        }
        let wake = queue.poll_timeout().map_or(now, |t| t.max(now));
        std::thread::sleep(
            clock
                .instant(wake)
                .saturating_duration_since(clock.instant(now)),
        );
    }
    Ok(())
}
