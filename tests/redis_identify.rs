//! The Redis identify coordinator against a real redis-server: several "processes" (threads,
//! each with its own connection and its own `IdentifyQueue`) identifying at once keep the
//! per-bucket spacing.
//!
//! The server's address comes from `DISCORD_TEST_REDIS_URL`. The tests that need it are
//! `#[ignore]`d, so `cargo test` lists them as ignored; `.ci/run` starts a redis-server on
//! port 6399 and runs them with `--ignored`. Locally:
//! `DISCORD_TEST_REDIS_URL=redis://127.0.0.1:6399/ cargo test --all-features --test
//! redis_identify -- --ignored` (they fail, naming the variable, when it is not set).

#[path = "../examples/common/mod.rs"]
mod common;
#[path = "../examples/common/redis_identify.rs"]
mod redis_identify;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use discord_gateway_proto::identify::{IdentifyCoordinator, Lease};
use discord_gateway_proto::{IdentifyQueue, SessionStartLimit, ShardId, Timestamp};
use redis_identify::RedisCoordinator;

/// The test server's URL; a test that needs it fails without it.
fn redis_url() -> String {
    match std::env::var("DISCORD_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!("set DISCORD_TEST_REDIS_URL to a redis-server, e.g. redis://127.0.0.1:6399/"),
    }
}

/// A key prefix no other test (or run) shares.
fn prefix(test: &str) -> String {
    format!(
        "test-{}-{test}-{}",
        std::process::id(),
        common::random_seed()
    )
}

fn limit(max_concurrency: u32) -> SessionStartLimit {
    SessionStartLimit {
        total: 1000,
        remaining: 1000,
        reset_after: 86_400_000,
        max_concurrency,
    }
}

/// Runs `processes` queues at once, shards split round-robin; returns every grant with the
/// instant it happened.
fn fleet(
    url: &str,
    prefix: &str,
    processes: u32,
    shard_count: u32,
    max_concurrency: u32,
    hold: Duration,
) -> Vec<(Instant, ShardId)> {
    let grants = Arc::new(Mutex::new(Vec::new()));
    let clock = common::Clock::new();
    let threads: Vec<_> = (0..processes)
        .map(|p| {
            let shards: Vec<ShardId> = (0..shard_count)
                .filter(|id| id % processes == p)
                .map(|id| ShardId::new(id, shard_count))
                .collect();
            let (url, prefix, grants) = (url.to_string(), prefix.to_string(), grants.clone());
            std::thread::spawn(move || {
                let coordinator = RedisCoordinator::connect(&url, &prefix, &format!("proc-{p}"))
                    .expect("redis reachable");
                let mut queue = IdentifyQueue::with_coordinator(
                    limit(max_concurrency),
                    clock.now(),
                    coordinator,
                )
                .with_spacing(hold);
                redis_identify::grant_all(
                    &mut queue,
                    &shards,
                    clock,
                    Duration::from_secs(60),
                    |shard, at| grants.lock().unwrap().push((clock.instant(at), shard)),
                )
                .expect("every shard granted");
            })
        })
        .collect();
    for t in threads {
        t.join().expect("process thread");
    }
    let mut grants = grants.lock().unwrap().clone();
    grants.sort();
    grants
}

/// Every shard granted once; per bucket, grants at least `hold` apart (less a millisecond
/// of Redis' expiry resolution).
fn check(grants: &[(Instant, ShardId)], shard_count: u32, max_concurrency: u32, hold: Duration) {
    let mut ids: Vec<u32> = grants.iter().map(|g| g.1.id).collect();
    ids.sort();
    assert_eq!(ids, (0..shard_count).collect::<Vec<_>>(), "{grants:?}");
    let mut per_bucket: BTreeMap<u32, Vec<Instant>> = BTreeMap::new();
    for (at, shard) in grants {
        per_bucket
            .entry(shard.id % max_concurrency)
            .or_default()
            .push(*at);
    }
    let tolerance = Duration::from_millis(2);
    for (bucket, times) in per_bucket {
        for pair in times.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(
                gap + tolerance >= hold,
                "bucket {bucket}: grants only {gap:?} apart (hold {hold:?})"
            );
        }
    }
}

#[test]
#[ignore = "needs DISCORD_TEST_REDIS_URL (a redis-server; .ci/run starts one)"]
fn four_processes_one_bucket_keep_the_spacing() {
    let url = redis_url();
    let hold = Duration::from_millis(300);
    let grants = fleet(&url, &prefix("one-bucket"), 4, 8, 1, hold);
    check(&grants, 8, 1, hold);
    // One bucket: the whole start takes at least 7 holds.
    assert!(grants[7].0 - grants[0].0 + Duration::from_millis(14) >= hold * 7);
}

#[test]
#[ignore = "needs DISCORD_TEST_REDIS_URL (a redis-server; .ci/run starts one)"]
fn three_processes_four_buckets_start_in_parallel() {
    let url = redis_url();
    let hold = Duration::from_millis(300);
    let grants = fleet(&url, &prefix("four-buckets"), 3, 12, 4, hold);
    check(&grants, 12, 4, hold);
    // Four buckets identify in parallel: 12 shards need about 3 holds, not 12.
    let span = grants[11].0 - grants[0].0;
    assert!(span < hold * 6, "took {span:?}");
}

#[test]
#[ignore = "needs DISCORD_TEST_REDIS_URL (a redis-server; .ci/run starts one)"]
fn the_real_five_second_hold() {
    let url = redis_url();
    let hold = discord_gateway_proto::identify::IDENTIFY_INTERVAL;
    let grants = fleet(&url, &prefix("five-seconds"), 2, 2, 1, hold);
    check(&grants, 2, 1, hold);
}

#[test]
#[ignore = "needs DISCORD_TEST_REDIS_URL (a redis-server; .ci/run starts one)"]
fn the_coordinator_speaks_set_nx_px_and_pttl() {
    let url = redis_url();
    let prefix = prefix("lease");
    let mut a = RedisCoordinator::connect(&url, &prefix, "a").unwrap();
    let mut b = RedisCoordinator::connect(&url, &prefix, "b").unwrap();
    let hold = Duration::from_millis(400);
    let now = Timestamp::from_secs(100);
    assert_eq!(a.try_acquire(0, hold, now), Lease::Granted);
    // Another process sees the bucket busy until about the end of the hold, in its own time.
    match b.try_acquire(0, hold, Timestamp::from_secs(7)) {
        Lease::Busy { until } => {
            let left = until.saturating_duration_since(Timestamp::from_secs(7));
            assert!(
                left > Duration::from_millis(300) && left <= hold,
                "{left:?}"
            );
        }
        Lease::Granted => panic!("bucket 0 granted twice"),
    }
    // Other buckets are independent.
    assert_eq!(b.try_acquire(1, hold, now), Lease::Granted);
    std::thread::sleep(hold + Duration::from_millis(20));
    assert_eq!(b.try_acquire(0, hold, now), Lease::Granted);
    assert_eq!(a.last_error(), None);
}

#[test]
fn an_unreachable_redis_is_a_clear_error() {
    let error = RedisCoordinator::connect("redis://127.0.0.1:1/", "x", "a")
        .err()
        .expect("nothing listens on port 1");
    assert!(error.contains("cannot connect to Redis"), "{error}");
}
