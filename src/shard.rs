//! Shard math and the `GET /gateway/bot` response.
//!
//! - A guild's events go to shard `(guild_id >> 22) % shard_count`; DMs go to shard 0.
//! - A fleet of `n` processes splits the shards into `n` contiguous, balanced ranges
//!   ([`shard_range`]); with `shard_id % max_concurrency` identify buckets, contiguous
//!   ranges let every process start its shards in bucket order.
//! - [`GatewayBot`] is what `GET /gateway/bot` returns: the URL, the recommended shard
//!   count and the daily [`SessionStartLimit`] the identify queue enforces.

use alloc::string::String;
use core::ops::Range;
use core::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::ShardId;
use crate::time::Timestamp;

/// Discord's cap on guilds per shard; a shard over it is closed with 4011 (sharding
/// required).
pub const MAX_GUILDS_PER_SHARD: u64 = 2_500;

/// The shard that receives a guild's events: `(guild_id >> 22) % shard_count`.
/// `shard_count` 0 is treated as 1 (every guild on shard 0) instead of dividing by zero.
pub const fn shard_for_guild(guild_id: u64, shard_count: u32) -> u32 {
    let count = if shard_count == 0 {
        1
    } else {
        shard_count as u64
    };
    ((guild_id >> 22) % count) as u32
}

/// The fewest shards that keep every shard under [`MAX_GUILDS_PER_SHARD`] (at least 1).
/// Prefer [`GatewayBot::shards`], Discord's recommendation.
pub const fn min_shards(guild_count: u64) -> u32 {
    let shards = guild_count.div_ceil(MAX_GUILDS_PER_SHARD);
    if shards == 0 {
        1
    } else if shards > u32::MAX as u64 {
        u32::MAX
    } else {
        shards as u32
    }
}

/// The shard ids process `process` (of `processes`) runs: contiguous ranges, in process
/// order, whose sizes differ by at most one (the first `shard_count % processes` processes
/// take one more). Empty when `process >= processes`.
pub fn shard_range(process: u32, processes: u32, shard_count: u32) -> Range<u32> {
    if process >= processes {
        return 0..0;
    }
    let base = shard_count / processes;
    let extra = shard_count % processes;
    let start = process * base + process.min(extra);
    let len = base + u32::from(process < extra);
    start..start + len
}

/// The process (of `processes`) whose [`shard_range`] holds `shard_id`, for routing a
/// guild's work to the process that receives its events. `None` when out of range.
pub fn process_for_shard(shard_id: u32, processes: u32, shard_count: u32) -> Option<u32> {
    if shard_id >= shard_count || processes == 0 {
        return None;
    }
    let base = shard_count / processes;
    let extra = shard_count % processes;
    // The first `extra` processes hold `base + 1` shards each.
    let big = extra * (base + 1);
    Some(if shard_id < big {
        shard_id / (base + 1)
    } else {
        extra + (shard_id - big) / base
    })
}

/// The daily session-start budget from `GET /gateway/bot`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionStartLimit {
    /// Session starts allowed per reset period.
    pub total: u32,
    /// Session starts left in this period. Running out terminates sessions and may reset
    /// the token: never identify past it.
    pub remaining: u32,
    /// Milliseconds until `remaining` is back to `total`.
    pub reset_after: u64,
    /// How many identify buckets (`shard_id % max_concurrency`) may start concurrently,
    /// each once per 5 s.
    pub max_concurrency: u32,
}

impl SessionStartLimit {
    /// `reset_after` as a [`Duration`].
    pub const fn reset_after_duration(&self) -> Duration {
        Duration::from_millis(self.reset_after)
    }

    /// When the budget refills, for a response received at `received_at`.
    pub fn resets_at(&self, received_at: Timestamp) -> Timestamp {
        received_at.saturating_add(self.reset_after_duration())
    }

    /// The identify bucket of a shard: `shard_id % max_concurrency` (`max_concurrency` 0
    /// counts as 1).
    pub const fn bucket(&self, shard_id: u32) -> u32 {
        shard_id
            % if self.max_concurrency == 0 {
                1
            } else {
                self.max_concurrency
            }
    }
}

/// The response of `GET /gateway/bot`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayBot {
    /// The WebSocket URL to connect to (`wss://gateway.discord.gg`).
    pub url: String,
    /// The recommended number of shards.
    pub shards: u32,
    /// The daily session-start budget.
    pub session_start_limit: SessionStartLimit,
}

impl GatewayBot {
    /// Every shard of the recommended count, in order.
    pub fn shard_ids(&self) -> impl Iterator<Item = ShardId> {
        let count = self.shards;
        (0..count).map(move |id| ShardId::new(id, count))
    }

    /// The shards process `process` of `processes` runs (see [`shard_range`]).
    pub fn shard_ids_for_process(
        &self,
        process: u32,
        processes: u32,
    ) -> impl Iterator<Item = ShardId> {
        let count = self.shards;
        shard_range(process, processes, count).map(move |id| ShardId::new(id, count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    #[test]
    fn guild_routing_uses_the_snowflake_timestamp() {
        // 41771983444115456 >> 22 = 9959216939.
        let guild = 41771983444115456u64;
        assert_eq!(shard_for_guild(guild, 1), 0);
        assert_eq!(shard_for_guild(guild, 9), 8);
        assert_eq!(shard_for_guild(guild, 16), 11);
        // The low 22 bits (worker, process, increment) do not matter.
        assert_eq!(shard_for_guild(guild | 0x3f_ffff, 16), 11);
        assert_eq!(shard_for_guild((guild >> 22) << 22, 16), 11);
        assert_eq!(shard_for_guild(guild, 0), 0);
    }

    #[test]
    fn min_shards_follows_the_2500_cap() {
        assert_eq!(min_shards(0), 1);
        assert_eq!(min_shards(2_500), 1);
        assert_eq!(min_shards(2_501), 2);
        assert_eq!(min_shards(6_000), 3);
    }

    #[test]
    fn ranges_are_contiguous_and_balanced() {
        let ranges: Vec<_> = (0..3).map(|p| shard_range(p, 3, 10)).collect();
        assert_eq!(ranges, [0..4, 4..7, 7..10]);
        assert_eq!(shard_range(3, 3, 10), 0..0);
        assert_eq!(shard_range(0, 0, 10), 0..0);
        // More processes than shards: the tail gets nothing.
        let ranges: Vec<_> = (0..4).map(|p| shard_range(p, 4, 2)).collect();
        assert_eq!(ranges, [0..1, 1..2, 2..2, 2..2]);
    }

    proptest! {
        #[test]
        fn ranges_partition_the_shards(count in 0u32..5_000, processes in 1u32..200) {
            let mut next = 0;
            let mut sizes = Vec::new();
            for p in 0..processes {
                let r = shard_range(p, processes, count);
                prop_assert_eq!(r.start, next);
                next = r.end;
                sizes.push(r.len());
                for shard in r {
                    prop_assert_eq!(process_for_shard(shard, processes, count), Some(p));
                }
            }
            prop_assert_eq!(next, count);
            let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
            prop_assert!(max - min <= 1);
            prop_assert_eq!(process_for_shard(count, processes, count), None);
        }
    }

    #[test]
    fn reads_the_documented_gateway_bot_response() {
        // `GET /gateway/bot` example response from Discord's gateway docs.
        let body = r#"{
          "url": "wss://gateway.discord.gg/",
          "shards": 9,
          "session_start_limit": {
            "total": 1000,
            "remaining": 999,
            "reset_after": 14400000,
            "max_concurrency": 1
          }
        }"#;
        let bot: GatewayBot = serde_json::from_str(body).unwrap();
        assert_eq!(
            bot,
            GatewayBot {
                url: "wss://gateway.discord.gg/".into(),
                shards: 9,
                session_start_limit: SessionStartLimit {
                    total: 1000,
                    remaining: 999,
                    reset_after: 14_400_000,
                    max_concurrency: 1,
                },
            }
        );
        let limit = bot.session_start_limit;
        assert_eq!(limit.reset_after_duration(), Duration::from_secs(4 * 3600));
        assert_eq!(
            limit.resets_at(Timestamp::from_secs(10)),
            Timestamp::from_secs(10 + 4 * 3600)
        );
        assert_eq!(limit.bucket(7), 0);
        let shards: Vec<_> = bot.shard_ids().collect();
        assert_eq!(shards.len(), 9);
        assert_eq!(shards[8], ShardId::new(8, 9));
        let mine: Vec<_> = bot.shard_ids_for_process(1, 2).collect();
        assert_eq!(mine, [5, 6, 7, 8].map(|id| ShardId::new(id, 9)));
    }
}
