//! Many machines, one identify queue: in virtual time, 16 and 32 shards start together and
//! identify through an `IdentifyQueue`; the Identify frames Discord receives are spaced at
//! least 5 s apart within each `max_concurrency` bucket, lower buckets first, and the daily
//! session-start budget is never overspent.
#![cfg(feature = "sim")]

mod common;

use std::collections::BTreeMap;

use common::*;
use discord_gateway_proto::identify::IDENTIFY_INTERVAL;
use discord_gateway_proto::sim::{GrantPolicy, SimDriver};
use discord_gateway_proto::{
    Event, IdentifyOutput, IdentifyQueue, OpCode, Phase, SessionStartLimit, ShardId, Timestamp,
};

struct Fleet {
    shards: Vec<SimDriver>,
    cursors: Vec<usize>,
    queue: IdentifyQueue,
    exhausted: Vec<Timestamp>,
}

impl Fleet {
    fn new(count: u32, limit: SessionStartLimit) -> Self {
        let shards = (0..count)
            .map(|id| {
                let config = config()
                    .with_auto_grant(false)
                    .with_shard(ShardId::new(id, count));
                SimDriver::new(config, u64::from(id), gateway())
                    .unwrap()
                    .with_grant_policy(GrantPolicy::Never)
            })
            .collect::<Vec<_>>();
        Fleet {
            cursors: vec![0; shards.len()],
            shards,
            queue: IdentifyQueue::new(limit, Timestamp::ZERO),
            exhausted: Vec::new(),
        }
    }

    /// Steps every shard and the queue to the earliest deadline, up to `until`.
    fn run_until(&mut self, until: Timestamp) {
        loop {
            let next = self
                .shards
                .iter()
                .filter_map(SimDriver::next_deadline)
                .chain(self.queue.poll_timeout())
                .min();
            let Some(now) = next.filter(|t| *t <= until) else {
                break;
            };
            for (index, shard) in self.shards.iter_mut().enumerate() {
                shard.run_until(now);
                let fresh = shard.trace().since(self.cursors[index]);
                self.cursors[index] = shard.trace().len();
                if fresh
                    .other_events()
                    .any(|(_, e)| matches!(e, Event::IdentifyRequested))
                {
                    self.queue.request(shard.machine().shard(), now);
                }
            }
            self.queue.handle_timeout(now);
            while let Some(output) = self.queue.poll_output() {
                match output {
                    IdentifyOutput::Grant(id) => {
                        self.shards[id.id as usize].grant_identify().unwrap();
                    }
                    IdentifyOutput::Exhausted { .. } => self.exhausted.push(now),
                    other => panic!("an identify output this test does not know: {other:?}"),
                }
            }
        }
    }

    /// When each shard's Identify frames went out.
    fn identify_times(&self) -> BTreeMap<u32, Vec<Timestamp>> {
        self.shards
            .iter()
            .map(|s| {
                (
                    s.machine().shard().id,
                    s.trace().send_times(OpCode::Identify),
                )
            })
            .collect()
    }
}

fn limit(max_concurrency: u32, remaining: u32) -> SessionStartLimit {
    SessionStartLimit {
        total: 1000,
        remaining,
        reset_after: 86_400_000,
        max_concurrency,
    }
}

fn check_fleet(count: u32, max_concurrency: u32) {
    let mut fleet = Fleet::new(count, limit(max_concurrency, 1000));
    fleet.run_until(at(secs(3_600)));
    let times = fleet.identify_times();
    for shard in &fleet.shards {
        assert_eq!(
            shard.machine().phase(),
            Phase::Connected,
            "{:?}",
            shard.machine()
        );
    }
    // Exactly one identify per shard.
    assert!(times.values().all(|t| t.len() == 1), "{times:?}");
    // Per bucket: at least 5 s apart, in shard order.
    for bucket in 0..max_concurrency {
        let mut in_bucket: Vec<(u32, Timestamp)> = times
            .iter()
            .filter(|(id, _)| **id % max_concurrency == bucket)
            .map(|(id, t)| (*id, t[0]))
            .collect();
        in_bucket.sort_by_key(|(_, t)| *t);
        let ids: Vec<u32> = in_bucket.iter().map(|(id, _)| *id).collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        assert_eq!(ids, sorted, "bucket {bucket} started out of order");
        for pair in in_bucket.windows(2) {
            let gap = pair[1].1.saturating_duration_since(pair[0].1);
            assert!(
                gap >= IDENTIFY_INTERVAL,
                "bucket {bucket}: {pair:?} only {gap:?} apart"
            );
        }
    }
    // Buckets in order: bucket b's first identify is no later than bucket b+1's.
    let firsts: Vec<Timestamp> = (0..max_concurrency)
        .map(|b| {
            times
                .iter()
                .filter(|(id, _)| **id % max_concurrency == b)
                .map(|(_, t)| t[0])
                .min()
                .unwrap()
        })
        .collect();
    assert!(firsts.windows(2).all(|w| w[0] <= w[1]), "{firsts:?}");
    // The whole fleet takes ceil(count / max_concurrency) - 1 intervals, no more.
    let last = times.values().map(|t| t[0]).max().unwrap();
    let rounds = u64::from(count.div_ceil(max_concurrency) - 1);
    assert!(
        last <= at(IDENTIFY_INTERVAL * rounds as u32 + secs(1)),
        "last identify at {last}"
    );
    assert_eq!(fleet.queue.remaining(), 1000 - count);
}

#[test]
fn sixteen_shards_one_bucket() {
    check_fleet(16, 1);
}

#[test]
fn sixteen_shards_four_buckets() {
    check_fleet(16, 4);
}

#[test]
fn thirty_two_shards_sixteen_buckets() {
    check_fleet(32, 16);
}

#[test]
fn the_daily_budget_is_never_overspent() {
    let mut fleet = Fleet::new(16, limit(4, 10));
    fleet.run_until(at(secs(600)));
    let identified = fleet
        .identify_times()
        .values()
        .filter(|t| !t.is_empty())
        .count();
    assert_eq!(identified, 10, "only `remaining` shards may identify");
    assert!(!fleet.exhausted.is_empty(), "the queue must say it ran out");
    let waiting = fleet
        .shards
        .iter()
        .filter(|s| s.machine().phase() == Phase::AwaitingIdentifyGrant)
        .count();
    assert_eq!(
        waiting, 6,
        "the others wait for the budget instead of identifying"
    );
}
