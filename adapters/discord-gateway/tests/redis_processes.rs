//! Three OS processes (this test binary, re-run in a child role) identify through one Redis:
//! they share one bucket's spacing and one daily budget; one is killed with SIGKILL while it
//! works. The budget is never exceeded, the spacing holds across processes (measured on
//! Redis' clock, which every grant carries), and the survivors go on until the budget is
//! spent.
#![cfg(feature = "redis")]
// These tests run real processes and a real server: they measure real time.
#![allow(clippy::disallowed_methods)]

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use discord_gateway::redis::{IdentifyQueueConfig, IdentifyRefused, Namespace, RedisIdentifyQueue};
use discord_gateway_proto::ShardId;
use support::*;

const TEST: &str = "redis_three_processes_share_one_bucket_and_one_budget_through_a_kill";
/// Discord's spacing is 5 s; 250 ms keeps the test short while leaving the same margins.
const SPACING: Duration = Duration::from_millis(250);
const BUDGET: u32 = 18;
const PROCESSES: u32 = 3;
const SHARDS_EACH: u32 = 20;
const SHARD_COUNT: u32 = PROCESSES * SHARDS_EACH;

fn queue(prefix: &str) -> RedisIdentifyQueue {
    RedisIdentifyQueue::new(
        link(),
        Namespace::new(prefix),
        IdentifyQueueConfig::default()
            .with_spacing(SPACING)
            .with_reserve(0)
            .with_retry_after_error(Duration::from_millis(100)),
    )
}

/// Child role `p`: identify its 20 shards one after another, reporting each grant
/// (`grant <shard> <server µs> <remaining>`), until the budget says no.
async fn worker(process: u32) {
    let q = queue(&std::env::var("TEST_PREFIX").unwrap());
    for id in process * SHARDS_EACH..(process + 1) * SHARDS_EACH {
        match q.acquire(ShardId::new(id, SHARD_COUNT), |_| {}).await {
            Ok(grant) => report(format!(
                "grant {id} {} {}",
                grant.server_time_us, grant.remaining
            )),
            Err(IdentifyRefused::Exhausted { .. }) => {
                report("exhausted");
                break;
            }
            Err(other) => panic!("{other}"),
        }
    }
    report("done");
}

#[derive(Debug)]
struct Grant {
    process: u32,
    shard: u32,
    server_us: u64,
    remaining: u32,
    after_kill: bool,
}

#[tokio::test]
#[ignore = "needs a redis-server: set DISCORD_TEST_REDIS_URL"]
async fn redis_three_processes_share_one_bucket_and_one_budget_through_a_kill() {
    if let Some(role) = child_role() {
        return worker(role.parse().unwrap()).await;
    }
    let prefix = unique_prefix("three-processes");
    let q = queue(&prefix);
    // Every shard in one bucket: max_concurrency 1.
    q.update_budget(limit(BUDGET, 1)).await.unwrap();

    let mut children: Vec<ChildProcess> = (0..PROCESSES)
        .map(|p| {
            ChildProcess::spawn(
                TEST,
                &p.to_string(),
                &[(URL_VARIABLE, redis_url()), ("TEST_PREFIX", prefix.clone())],
            )
        })
        .collect();

    // Kill process 1 once it has identified twice: mid-run, most likely waiting in
    // `acquire` (with the bucket taken by someone), possibly just granted.
    children[1].wait_for(Duration::from_secs(60), "two grants", |r| {
        r.iter().filter(|(_, l)| l.starts_with("grant")).count() >= 2
    });
    children[1].kill();
    let killed_at = std::time::Instant::now();

    for p in [0, 2] {
        let status = children[p as usize].wait_exit(Duration::from_secs(60));
        assert!(status.success(), "survivor {p} failed: {status}");
    }

    let mut grants = Vec::new();
    for (p, child) in children.iter().enumerate() {
        for (at, line) in child.reports() {
            let fields: Vec<&str> = line.split(' ').collect();
            if fields[0] == "grant" {
                grants.push(Grant {
                    process: p as u32,
                    shard: fields[1].parse().unwrap(),
                    server_us: fields[2].parse().unwrap(),
                    remaining: fields[3].parse().unwrap(),
                    after_kill: at > killed_at,
                });
            }
        }
    }
    grants.sort_by_key(|g| g.server_us);

    // The budget: never exceeded. Redis spent all of it; every reported grant is a distinct
    // unit; at most one unit went to the killed process without being reported (granted
    // in its last instant).
    let state = q
        .budget()
        .await
        .unwrap()
        .expect("the budget is still there");
    assert_eq!(state.remaining, 0);
    let units: BTreeSet<u32> = grants.iter().map(|g| g.remaining).collect();
    assert_eq!(units.len(), grants.len(), "a unit spent twice: {grants:?}");
    assert!(grants.len() as u32 <= BUDGET, "{grants:?}");
    assert!(grants.len() as u32 >= BUDGET - 1, "{grants:?}");
    let shards: BTreeSet<u32> = grants.iter().map(|g| g.shard).collect();
    assert_eq!(shards.len(), grants.len(), "a shard identified twice");

    // The spacing, on Redis' clock: consecutive grants in the one bucket at least one
    // spacing apart (less Redis' 1 ms expiry resolution), whichever process made them.
    for pair in grants.windows(2) {
        let gap = Duration::from_micros(pair[1].server_us - pair[0].server_us);
        assert!(
            gap + Duration::from_millis(1) >= SPACING,
            "grants {:?} and {:?} only {gap:?} apart",
            pair[0],
            pair[1]
        );
    }
    // The killed process and at least one other took part (who wins each slot is a race:
    // there is no fairness across processes), and the survivors went on after the kill
    // and said why they stopped.
    let took_part: BTreeSet<u32> = grants.iter().map(|g| g.process).collect();
    assert!(
        took_part.contains(&1) && took_part.len() >= 2,
        "{took_part:?}"
    );
    assert!(grants.iter().any(|g| g.after_kill && g.process != 1));
    for p in [0usize, 2] {
        let reports: Vec<String> = children[p].reports().into_iter().map(|r| r.1).collect();
        assert!(reports.contains(&"exhausted".to_string()), "{reports:?}");
        assert_eq!(reports.last().map(String::as_str), Some("done"));
    }
    assert!(!children[1].reports().iter().any(|(_, l)| l == "done"));
}
