//! The fleet's identify schedule in real time on Redis: 32 shards split over two queues
//! (two connections, as two processes would have), every shard asking at once.
//!
//! Discord's spacing is 5 s per bucket. With `max_concurrency` 1 that makes 31 × 5 s =
//! 155 s for 32 shards, so that schedule runs with a 200 ms spacing; with
//! `max_concurrency` 16 the schedule takes one spacing, and runs at the real 5 s.
#![cfg(feature = "redis")]
// These tests run real processes and a real server: they measure real time.
#![allow(clippy::disallowed_methods)]

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use discord_gateway::redis::{
    IdentifyGrant, IdentifyQueueConfig, IdentifyRefused, Namespace, RedisIdentifyQueue,
};
use discord_gateway_proto::identify::IDENTIFY_INTERVAL;
use discord_gateway_proto::shard::shard_range;
use discord_gateway_proto::ShardId;
use support::*;

const SHARDS: u32 = 32;

/// Starts all 32 shards at once, half on each of two queues; returns each shard's outcome.
async fn start_fleet(
    ns: &Namespace,
    spacing: Duration,
    budget: u32,
    max_concurrency: u32,
) -> Vec<Result<IdentifyGrant, IdentifyRefused>> {
    let queues: Vec<RedisIdentifyQueue> = (0..2)
        .map(|_| {
            RedisIdentifyQueue::new(
                link(),
                ns.clone(),
                IdentifyQueueConfig::default()
                    .with_spacing(spacing)
                    .with_reserve(0),
            )
        })
        .collect();
    queues[0]
        .update_budget(limit(budget, max_concurrency))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for (process, q) in queues.iter().enumerate() {
        for id in shard_range(process as u32, 2, SHARDS) {
            let q = q.clone();
            tasks.push(tokio::spawn(async move {
                q.acquire(ShardId::new(id, SHARDS), |_| {}).await
            }));
            // Each process starts its shards in order.
            tokio::task::yield_now().await;
        }
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    outcomes
}

/// Per bucket, the grants' Redis times, in order.
fn per_bucket(grants: &[IdentifyGrant], max_concurrency: u32) -> BTreeMap<u32, Vec<u64>> {
    let mut buckets: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for g in grants {
        assert_eq!(g.bucket, g.shard.id % max_concurrency);
        buckets.entry(g.bucket).or_default().push(g.server_time_us);
    }
    for times in buckets.values_mut() {
        times.sort_unstable();
    }
    buckets
}

fn assert_spacing(buckets: &BTreeMap<u32, Vec<u64>>, spacing: Duration) {
    for (bucket, times) in buckets {
        for pair in times.windows(2) {
            let gap = Duration::from_micros(pair[1] - pair[0]);
            // Redis expires keys with 1 ms resolution.
            assert!(
                gap + Duration::from_millis(1) >= spacing,
                "bucket {bucket}: grants {gap:?} apart"
            );
        }
    }
}

fn grants(outcomes: Vec<Result<IdentifyGrant, IdentifyRefused>>) -> Vec<IdentifyGrant> {
    outcomes
        .into_iter()
        .map(|o| o.expect("every shard granted"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a redis-server: set DISCORD_TEST_REDIS_URL"]
async fn redis_schedule_32_shards_max_concurrency_1() {
    let spacing = Duration::from_millis(200);
    let ns = namespace("schedule-mc1");
    let grants = grants(start_fleet(&ns, spacing, 1000, 1).await);
    let buckets = per_bucket(&grants, 1);
    assert_eq!(buckets[&0].len(), 32);
    assert_spacing(&buckets, spacing);
    // One bucket: 31 spacings from first to last, and not much more (no slot wasted).
    let times = &buckets[&0];
    let span = Duration::from_micros(times[31] - times[0]);
    assert!(span + Duration::from_millis(31) >= spacing * 31, "{span:?}");
    assert!(span < spacing * 31 + Duration::from_secs(3), "{span:?}");
    // The budget: one unit per shard.
    let state = RedisIdentifyQueue::new(link(), ns, IdentifyQueueConfig::default())
        .budget()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.remaining, 1000 - 32);
    let mut left: Vec<u32> = grants.iter().map(|g| g.remaining).collect();
    left.sort_unstable();
    assert_eq!(left, (1000 - 32..1000).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a redis-server: set DISCORD_TEST_REDIS_URL"]
async fn redis_schedule_32_shards_max_concurrency_16_at_discords_5_seconds() {
    let spacing = IDENTIFY_INTERVAL;
    let ns = namespace("schedule-mc16");
    let grants = grants(start_fleet(&ns, spacing, 1000, 16).await);
    let buckets = per_bucket(&grants, 16);
    assert_eq!(buckets.len(), 16);
    assert!(buckets.values().all(|t| t.len() == 2), "{buckets:?}");
    assert_spacing(&buckets, spacing);
    // Sixteen buckets at once: the second wave one spacing after the first, not 16.
    let first = grants.iter().map(|g| g.server_time_us).min().unwrap();
    let last = grants.iter().map(|g| g.server_time_us).max().unwrap();
    let span = Duration::from_micros(last - first);
    assert!(span < spacing + Duration::from_secs(2), "{span:?}");
    let state = RedisIdentifyQueue::new(link(), ns, IdentifyQueueConfig::default())
        .budget()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.remaining, 1000 - 32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a redis-server: set DISCORD_TEST_REDIS_URL"]
async fn redis_schedule_stops_at_the_daily_budget() {
    let spacing = Duration::from_millis(200);
    let ns = namespace("schedule-budget");
    let outcomes = start_fleet(&ns, spacing, 20, 16).await;
    let (granted, refused): (Vec<_>, Vec<_>) = outcomes.into_iter().partition(|o| o.is_ok());
    assert_eq!(granted.len(), 20);
    assert_eq!(refused.len(), 12);
    assert!(refused
        .iter()
        .all(|o| matches!(o, Err(IdentifyRefused::Exhausted { .. }))));
    let grants = grants(granted);
    assert_spacing(&per_bucket(&grants, 16), spacing);
    let mut left: Vec<u32> = grants.iter().map(|g| g.remaining).collect();
    left.sort_unstable();
    assert_eq!(left, (0..20).collect::<Vec<_>>());
    // Redis' count agrees: spent to zero, not below.
    let state = RedisIdentifyQueue::new(link(), ns, IdentifyQueueConfig::default())
        .budget()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.remaining, 0);
}
