//! The fleet on a real Redis, against one `FakeGatewayServer` serving every shard:
//!
//! - the identify schedule of 32 shards split over two fleets (two Redis connections, as
//!   two processes have), with `max_concurrency` 1 and 16, measured where Discord measures
//!   it (at the gateway), and the daily budget, never exceeded;
//! - shards moving between real OS processes (this test binary re-run as a child): the
//!   first process hands its shards over on a graceful stop, the second claims them and
//!   resumes, and the dispatches sent while no process ran them are replayed, none lost;
//! - Redis killed mid-run (a private redis-server): connected shards keep running, waiting
//!   identifies say why and never proceed, and after the restart they identify.
#![cfg(feature = "redis")]
// These tests run real processes and a real server: they measure real time.
#![allow(clippy::disallowed_methods)]

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use discord_gateway::fleet::{Fleet, FleetEvent};
use discord_gateway::proto::identify::IDENTIFY_INTERVAL;
use discord_gateway::proto::shard::shard_range;
use discord_gateway::proto::sim::{FakeGateway, FakeGatewayConfig, ScriptAction};
use discord_gateway::proto::Timestamp;
use discord_gateway::redis::{
    IdentifyQueueConfig, LimitSourceError, Namespace, RedisIdentifyQueue, RedisLink,
    RedisSessionStore, SessionStoreConfig,
};
use discord_gateway::testing::FakeGatewayServer;
use discord_gateway::{GatewayConfig, IdentifyBlocked, Intents, ShardEvent, ShardId, Token};
use support::*;

const LIMIT: Duration = Duration::from_secs(60);

fn gateway() -> FakeGatewayServer {
    FakeGatewayServer::start(FakeGateway::new(FakeGatewayConfig {
        ready_delay: Duration::from_millis(10),
        resume_delay: Duration::from_millis(10),
        ack_delay: Duration::from_millis(5),
        guild_create_delay: None,
        ..FakeGatewayConfig::default()
    }))
}

fn config(url: &str) -> GatewayConfig {
    GatewayConfig::new(Token::new("test-token"), Intents::GUILDS).with_gateway_url(url)
}

fn queue_on(link: RedisLink, ns: &Namespace, spacing: Duration) -> RedisIdentifyQueue {
    RedisIdentifyQueue::new(
        link,
        ns.clone(),
        IdentifyQueueConfig::default()
            .with_spacing(spacing)
            .with_reserve(0)
            .with_retry_after_error(Duration::from_millis(100)),
    )
}

/// Reads the fleets' merged events until `done` holds; panics after `limit`.
async fn until(
    fleet: &mut Fleet,
    limit: Duration,
    mut done: impl FnMut(&FleetEvent) -> bool,
) -> Vec<FleetEvent> {
    let mut seen = Vec::new();
    let run = async {
        while let Some(event) = fleet.next_event().await {
            let stop = done(&event);
            seen.push(event);
            if stop {
                return;
            }
        }
    };
    if tokio::time::timeout(limit, run).await.is_err() {
        panic!("not done within {limit:?}: {seen:#?}");
    }
    seen
}

fn is_ready(event: &FleetEvent) -> Option<ShardId> {
    match event {
        FleetEvent::Shard {
            shard,
            event: ShardEvent::Ready(_),
        } => Some(*shard),
        _ => None,
    }
}

/// The fake's identifies: (when, shard id).
fn identifies(gateway: &FakeGateway) -> Vec<(Timestamp, u32)> {
    gateway
        .received_op(2)
        .map(|f| {
            let id = f.data().expect("d")["shard"][0].as_u64().expect("id") as u32;
            (f.time, id)
        })
        .collect()
}

// ----- the identify schedule -----

/// Starts 32 shards over two fleets (each its own Redis connection) at once; reads both
/// until `expected_ready` shards are READY and `expected_exhausted` said the budget is
/// spent. Returns the fake, the shard count per fleet that reported exhaustion.
async fn run_schedule(
    prefix: &str,
    spacing: Duration,
    budget: u32,
    max_concurrency: u32,
    expected_ready: usize,
    expected_exhausted: usize,
) -> (FakeGateway, Namespace, usize) {
    let ns = namespace(prefix);
    let server = gateway();
    let publisher = queue_on(link(), &ns, spacing);
    publisher
        .update_budget(limit(budget, max_concurrency))
        .await
        .unwrap();
    let mut fleets: Vec<Fleet> = (0..2)
        .map(|process| {
            let shards = shard_range(process, 2, 32).map(|id| ShardId::new(id, 32));
            Fleet::builder(config(server.url()))
                .redis_identify(queue_on(link(), &ns, spacing))
                .start(shards)
                .expect("fleet")
        })
        .collect();
    let mut ready = 0;
    let mut exhausted = 0;
    let mut exhausted_shards = std::collections::BTreeSet::new();
    let collect = async {
        while ready < expected_ready || exhausted < expected_exhausted {
            let (a, b) = fleets.split_at_mut(1);
            let event = tokio::select! {
                e = a[0].next_event() => e,
                e = b[0].next_event() => e,
            };
            match event {
                Some(e) if is_ready(&e).is_some() => ready += 1,
                Some(FleetEvent::Shard {
                    shard,
                    event: ShardEvent::IdentifyExhausted { .. },
                }) => {
                    exhausted += 1;
                    exhausted_shards.insert(shard);
                }
                Some(_) => {}
                None => panic!("a fleet ended"),
            }
        }
    };
    tokio::time::timeout(LIMIT, collect)
        .await
        .unwrap_or_else(|_| panic!("{ready} ready, {exhausted} exhausted"));
    // Each exhausted shard said so once.
    assert_eq!(exhausted, exhausted_shards.len());
    for fleet in &fleets {
        fleet.shutdown(false).await;
    }
    (server.stop_async().await, ns, exhausted)
}

/// Per bucket, the identify times at the gateway, in order.
fn per_bucket(
    identifies: &[(Timestamp, u32)],
    max_concurrency: u32,
) -> BTreeMap<u32, Vec<Timestamp>> {
    let mut buckets: BTreeMap<u32, Vec<Timestamp>> = BTreeMap::new();
    for (at, id) in identifies {
        buckets.entry(id % max_concurrency).or_default().push(*at);
    }
    for times in buckets.values_mut() {
        times.sort_unstable();
    }
    buckets
}

/// Consecutive identifies of a bucket, as the gateway received them, are a spacing apart
/// (less `slack`: the time from Redis' grant to the Identify reaching the gateway varies a
/// little from one shard to the next; two identifies in one slot would be ~0 apart).
fn assert_spacing(buckets: &BTreeMap<u32, Vec<Timestamp>>, spacing: Duration, slack: Duration) {
    for (bucket, times) in buckets {
        for pair in times.windows(2) {
            let gap = pair[1].saturating_duration_since(pair[0]);
            assert!(
                gap + slack >= spacing,
                "bucket {bucket}: identifies {gap:?} apart (spacing {spacing:?})"
            );
        }
    }
}

async fn remaining(ns: &Namespace) -> u32 {
    queue_on(link(), ns, IDENTIFY_INTERVAL)
        .budget()
        .await
        .unwrap()
        .expect("a budget")
        .remaining
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a redis-server: set DISCORD_TEST_REDIS_URL"]
async fn redis_fleet_schedule_32_shards_max_concurrency_1() {
    // Discord's 5 s would make this 155 s: 200 ms keeps the same shape.
    let spacing = Duration::from_millis(200);
    let started = Instant::now();
    let (gateway, ns, _) = run_schedule("fleet-mc1", spacing, 1000, 1, 32, 0).await;
    let identifies = identifies(&gateway);
    assert_eq!(identifies.len(), 32);
    let buckets = per_bucket(&identifies, 1);
    assert_spacing(&buckets, spacing, Duration::from_millis(100));
    let times = &buckets[&0];
    let span = times[31].saturating_duration_since(times[0]);
    assert!(
        span + Duration::from_millis(100) >= spacing * 31,
        "{span:?}"
    );
    assert!(span < spacing * 31 + Duration::from_secs(3), "{span:?}");
    assert_eq!(remaining(&ns).await, 1000 - 32);
    eprintln!(
        "mc 1, spacing {spacing:?}: 32 identifies over {span:?} (ideal {:?}); whole run {:?}",
        spacing * 31,
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a redis-server: set DISCORD_TEST_REDIS_URL"]
async fn redis_fleet_schedule_32_shards_max_concurrency_16_at_discords_5_seconds() {
    let spacing = IDENTIFY_INTERVAL;
    let (gateway, ns, _) = run_schedule("fleet-mc16", spacing, 1000, 16, 32, 0).await;
    let identifies = identifies(&gateway);
    assert_eq!(identifies.len(), 32);
    let buckets = per_bucket(&identifies, 16);
    assert_eq!(buckets.len(), 16);
    assert!(buckets.values().all(|t| t.len() == 2), "{buckets:?}");
    assert_spacing(&buckets, spacing, Duration::from_millis(100));
    // Sixteen buckets at once: the second wave one spacing after the first, not sixteen.
    let first = identifies.iter().map(|(t, _)| *t).min().unwrap();
    let last = identifies.iter().map(|(t, _)| *t).max().unwrap();
    let span = last.saturating_duration_since(first);
    assert!(span < spacing + Duration::from_secs(2), "{span:?}");
    assert_eq!(remaining(&ns).await, 1000 - 32);
    eprintln!("mc 16, spacing {spacing:?}: 32 identifies over {span:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a redis-server: set DISCORD_TEST_REDIS_URL"]
async fn redis_fleet_schedule_stops_at_the_daily_budget_and_says_so() {
    let spacing = Duration::from_millis(200);
    let (gateway, ns, exhausted) = run_schedule("fleet-budget", spacing, 20, 16, 20, 12).await;
    // Exactly the budget reached the gateway; every other shard said why it waits.
    assert_eq!(identifies(&gateway).len(), 20);
    assert_eq!(exhausted, 12);
    assert_spacing(
        &per_bucket(&identifies(&gateway), 16),
        spacing,
        Duration::from_millis(100),
    );
    assert_eq!(remaining(&ns).await, 0);
}

// ----- moving shards between processes -----

const MIGRATION_TEST: &str = "redis_fleet_shards_move_between_processes_and_resume_with_replay";

/// A child process: a fleet of shards 0 and 1 (of 2) with the Redis identify queue and
/// session store, reporting what it sees, until the parent says `stop`: then it shuts
/// down keeping the sessions (handed over) and exits.
async fn migration_child(role: &str) {
    let ns = Namespace::new(std::env::var("TEST_PREFIX").unwrap());
    let url = std::env::var("TEST_GATEWAY").unwrap();
    let store = RedisSessionStore::new(
        link(),
        ns.clone(),
        SessionStoreConfig::default()
            .with_lease_ttl(Duration::from_secs(3))
            .with_owner(role),
    );
    let mut fleet = Fleet::builder(config(&url))
        .redis_identify(queue_on(link(), &ns, Duration::from_millis(300)))
        .session_store(store)
        .start([ShardId::new(0, 2), ShardId::new(1, 2)])
        .expect("fleet");
    let mut orders = instructions();
    loop {
        tokio::select! {
            event = fleet.next_event() => match event {
                Some(event) => report_event(&event),
                None => return,
            },
            order = orders.recv() => {
                assert_eq!(order.as_deref(), Some("stop"));
                let sessions = fleet.shutdown(true).await;
                assert!(sessions.iter().all(|(_, s)| s.is_some()), "{sessions:?}");
                while let Some(event) = fleet.next_event().await {
                    report_event(&event);
                }
                report("handed over");
                return;
            }
        }
    }
}

fn report_event(event: &FleetEvent) {
    match event {
        FleetEvent::Claimed { shard, resuming } => {
            report(format!("claimed {} {resuming}", shard.id))
        }
        FleetEvent::Shard { shard, event } => match event {
            ShardEvent::Ready(_) => report(format!("ready {}", shard.id)),
            ShardEvent::Resumed { replayed } => report(format!("resumed {} {replayed}", shard.id)),
            // Every dispatch after READY: the events, and RESUMED (which has a sequence too).
            ShardEvent::Dispatch(d) if d.name != "READY" => report(format!(
                "dispatch {} {} {} {}",
                shard.id, d.sequence, d.name, d.data
            )),
            _ => {}
        },
        _ => {}
    }
}

/// Per shard, the dispatches a child reported after READY: (sequence, the event's data,
/// or the name for RESUMED).
fn reported_dispatches(child: &ChildProcess) -> BTreeMap<u32, Vec<(u64, String)>> {
    let mut seen: BTreeMap<u32, Vec<(u64, String)>> = BTreeMap::new();
    for (_, line) in child.reports() {
        let fields: Vec<&str> = line.split(' ').collect();
        if fields[0] == "dispatch" {
            let what = match fields[3] {
                "EVENT" => fields[4].trim_matches('"').to_string(),
                name => name.to_string(),
            };
            seen.entry(fields[1].parse().unwrap())
                .or_default()
                .push((fields[2].parse().unwrap(), what));
        }
    }
    seen
}

fn count_reports(child: &ChildProcess, prefix: &str) -> usize {
    child
        .reports()
        .iter()
        .filter(|(_, l)| l.starts_with(prefix))
        .count()
}

/// Sends `n` EVENT dispatches named `tag0..` to each of the two shards.
fn send_events(server: &FakeGatewayServer, tag: &str, n: u32) {
    for i in 0..n {
        for id in 0..2 {
            server.perform(ScriptAction::shard_dispatch(
                ShardId::new(id, 2),
                "EVENT",
                format!(r#""{tag}{i}""#),
            ));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a redis-server: set DISCORD_TEST_REDIS_URL"]
async fn redis_fleet_shards_move_between_processes_and_resume_with_replay() {
    if let Some(role) = child_role() {
        return migration_child(&role).await;
    }
    let prefix = unique_prefix("migration");
    let server = gateway();
    queue_on(link(), &Namespace::new(&prefix), Duration::from_millis(300))
        .update_budget(limit(1000, 1))
        .await
        .unwrap();
    let env = [
        (URL_VARIABLE, redis_url()),
        ("TEST_PREFIX", prefix.clone()),
        ("TEST_GATEWAY", server.url().to_string()),
    ];

    // Process A runs both shards: it identifies them and receives a0..a2 on each.
    let mut a = ChildProcess::spawn(MIGRATION_TEST, "process-a", &env);
    a.wait_for(LIMIT, "both shards ready", |r| {
        r.iter().filter(|(_, l)| l.starts_with("ready")).count() == 2
    });
    send_events(&server, "a", 3);
    a.wait_for(LIMIT, "a's dispatches", |r| {
        r.iter().filter(|(_, l)| l.starts_with("dispatch")).count() == 6
    });
    // A stops gracefully: both sessions handed over in Redis.
    a.tell("stop");
    assert!(a.wait_exit(LIMIT).success());
    assert_eq!(count_reports(&a, "handed over"), 1);

    // Nobody runs the shards: b0..b2 wait in their sessions on the gateway.
    send_events(&server, "b", 3);

    // Process B takes both shards over and resumes them: b0..b2 are replayed, then c0..c1
    // arrive live.
    let mut b = ChildProcess::spawn(MIGRATION_TEST, "process-b", &env);
    b.wait_for(LIMIT, "both shards resumed", |r| {
        r.iter().filter(|(_, l)| l.starts_with("resumed")).count() == 2
    });
    send_events(&server, "c", 2);
    b.wait_for(LIMIT, "b's dispatches", |r| {
        r.iter().filter(|(_, l)| l.starts_with("dispatch")).count() == 12
    });
    b.tell("stop");
    assert!(b.wait_exit(LIMIT).success());

    // A claimed fresh and identified; B claimed both sessions and resumed, with 3 replayed.
    let claims = |child: &ChildProcess| -> Vec<String> {
        child
            .reports()
            .into_iter()
            .map(|(_, l)| l)
            .filter(|l| l.starts_with("claimed"))
            .collect()
    };
    let mut a_claims = claims(&a);
    a_claims.sort();
    assert_eq!(a_claims, ["claimed 0 false", "claimed 1 false"]);
    let mut b_claims = claims(&b);
    b_claims.sort();
    assert_eq!(b_claims, ["claimed 0 true", "claimed 1 true"]);
    for line in b.reports().into_iter().map(|(_, l)| l) {
        if line.starts_with("resumed") {
            assert!(line.ends_with(" 3"), "{line}");
        }
    }

    // Per shard, the sequences run on from A to B without a gap or a repeat (READY was 1),
    // and every event arrived once, in order: A's live ones, the replay of what was sent
    // while no process ran the shard, RESUMED, then B's live ones.
    let (from_a, from_b) = (reported_dispatches(&a), reported_dispatches(&b));
    for id in 0..2 {
        let all: Vec<(u64, String)> = [from_a[&id].clone(), from_b[&id].clone()].concat();
        let sequences: Vec<u64> = all.iter().map(|(s, _)| *s).collect();
        assert_eq!(
            sequences,
            (2..=10).collect::<Vec<_>>(),
            "shard {id}: {all:?}"
        );
        let data: Vec<&str> = all.iter().map(|(_, d)| d.as_str()).collect();
        assert_eq!(
            data,
            ["a0", "a1", "a2", "b0", "b1", "b2", "RESUMED", "c0", "c1"],
            "shard {id}"
        );
        assert_eq!(from_a[&id].len(), 3, "shard {id}: {all:?}");
    }

    let gateway = server.stop_async().await;
    assert_eq!(
        gateway.received_op(2).count(),
        2,
        "one identify per shard, by A"
    );
    assert_eq!(
        gateway.received_op(6).count(),
        2,
        "one resume per shard, by B"
    );
    assert!(
        gateway.violations().is_empty(),
        "{:?}",
        gateway.violations()
    );
}

// ----- Redis stopped mid-run -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a redis-server binary on PATH (.ci/run installs one)"]
async fn redis_fleet_runs_through_a_redis_outage_and_identifies_after_it() {
    let mut redis = PrivateRedis::start();
    let server = gateway();
    let fetches = Arc::new(AtomicU32::new(0));
    let source = {
        let fetches = fetches.clone();
        move || {
            let fetches = fetches.clone();
            async move {
                fetches.fetch_add(1, Ordering::SeqCst);
                Ok::<_, LimitSourceError>(limit(100, 1))
            }
        }
    };
    let link = RedisLink::open_with_timeout(&redis.url(), Duration::from_millis(300)).unwrap();
    let ns = Namespace::new("fleet-outage");
    let spacing = Duration::from_secs(1);
    let queue = RedisIdentifyQueue::new(
        link.clone(),
        ns.clone(),
        IdentifyQueueConfig::default()
            .with_spacing(spacing)
            .with_reserve(0)
            .with_retry_after_error(Duration::from_millis(100))
            .with_limit_source(source),
    );
    let store = RedisSessionStore::new(
        link,
        ns.clone(),
        SessionStoreConfig::default().with_lease_ttl(Duration::from_millis(1500)),
    );
    let set: Vec<ShardId> = (0..4).map(|id| ShardId::new(id, 4)).collect();
    let mut fleet = Fleet::builder(config(server.url()))
        .redis_identify(queue.clone())
        .session_store(store)
        .start(set.clone())
        .expect("fleet");

    // One bucket, 1 s apart (after the fence the new budget sets): two shards identify
    // (whichever asked first), the other two wait their turn.
    let mut running = Vec::new();
    until(&mut fleet, LIMIT, |e| {
        running.extend(is_ready(e));
        running.len() == 2
    })
    .await;
    let waiting: Vec<ShardId> = set
        .iter()
        .copied()
        .filter(|s| !running.contains(s))
        .collect();

    // Redis dies (its data with it) before shard 2's turn.
    redis.kill();
    let outage = Duration::from_secs(4);
    let killed = Instant::now();
    let mut during = Vec::new();
    let mut sent = 0;
    while killed.elapsed() < outage {
        // The connected shards deliver as if nothing happened.
        if sent < 6 {
            server.perform(ScriptAction::shard_dispatch(
                running[sent % 2],
                "DURING",
                sent.to_string(),
            ));
            sent += 1;
        }
        if let Ok(Some(event)) =
            tokio::time::timeout(Duration::from_millis(100), fleet.next_event()).await
        {
            during.push(event);
        }
    }
    let identifies_during = server
        .inspect_async(|g| g.received_op(2).count())
        .await
        .unwrap();
    assert_eq!(identifies_during, 2, "an identify without Redis");
    let delivered: Vec<(u32, String)> = during
        .iter()
        .filter_map(FleetEvent::as_dispatch)
        .filter(|(_, d)| d.name == "DURING")
        .map(|(s, d)| (s.id, d.data.to_string()))
        .collect();
    assert_eq!(delivered.len(), 6, "{during:#?}");
    // The waiting shards wait and say why, once each (not once per retry).
    for &shard in &waiting {
        let blocked: Vec<&IdentifyBlocked> = during
            .iter()
            .filter_map(|e| match e {
                FleetEvent::Shard {
                    shard: s,
                    event: ShardEvent::IdentifyBlocked(why),
                } if *s == shard => Some(why),
                _ => None,
            })
            .collect();
        assert_eq!(blocked.len(), 1, "shard {shard}: {blocked:?}");
        assert!(matches!(blocked[0], IdentifyBlocked::StoreUnavailable(_)));
    }
    // The running shards' lease renewals fail, and say so.
    assert!(
        during.iter().any(
            |e| matches!(e, FleetEvent::StoreUnavailable { shard, .. } if *shard == running[0])
        ),
        "{during:#?}"
    );
    assert!(!during.iter().any(|e| matches!(
        e,
        FleetEvent::LeaseLost { .. }
            | FleetEvent::Shard {
                event: ShardEvent::Disconnected { .. },
                ..
            }
    )));

    // Redis is back, empty: the budget is read again, and the waiting shards identify.
    redis.restart();
    let mut ready = Vec::new();
    let after = until(&mut fleet, LIMIT, |e| {
        ready.extend(is_ready(e));
        ready.len() == 2
    })
    .await;
    ready.sort();
    assert_eq!(ready, waiting);
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
    // The running shards took their leases back without a reconnect.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for status in fleet.statuses() {
        assert_eq!(status.reconnects, 0, "{status:?}");
        assert!(status.ready, "{status:?}");
    }
    assert!(
        !after
            .iter()
            .any(|e| matches!(e, FleetEvent::LeaseLost { .. })),
        "{after:#?}"
    );
    let budget = queue
        .budget()
        .await
        .unwrap()
        .expect("the budget read again");
    assert_eq!(budget.remaining, 98);
    fleet.shutdown(true).await;
    let gateway = server.stop_async().await;
    assert_eq!(gateway.received_op(2).count(), 4);
    assert_eq!(gateway.connections().len(), 4, "a shard reconnected");
}

// ----- a lease taken by another process -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a redis-server: set DISCORD_TEST_REDIS_URL"]
async fn redis_fleet_stops_a_shard_whose_lease_another_process_took() {
    let ns = namespace("lease-taken");
    let server = gateway();
    let queue = queue_on(link(), &ns, Duration::from_millis(100));
    queue.update_budget(limit(1000, 1)).await.unwrap();
    let config_store = SessionStoreConfig::default().with_lease_ttl(Duration::from_millis(900));
    let store = RedisSessionStore::new(link(), ns.clone(), config_store.clone().with_owner("us"));
    let shard = ShardId::new(0, 1);
    let mut fleet = Fleet::builder(config(server.url()))
        .redis_identify(queue)
        .session_store(store)
        .start([shard])
        .expect("fleet");
    until(&mut fleet, LIMIT, |e| is_ready(e).is_some()).await;

    // Another process takes the shard: its lease key is gone (say, it expired while this
    // one was cut off) and the other claims it.
    let mut raw = redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("DEL")
        .arg(ns.lease(shard))
        .query_async(&mut raw)
        .await
        .unwrap();
    let other = RedisSessionStore::new(link(), ns.clone(), config_store.with_owner("them"));
    let taken = other
        .claim(shard)
        .await
        .expect("the other process claims it");
    let token = taken.lease.token().to_string();

    // Our next renewal learns it: the shard stops here (its session kept, not handed
    // over), and the fleet waits for the lease.
    let events = until(&mut fleet, LIMIT, |e| {
        matches!(e, FleetEvent::ClaimWaiting { .. })
    })
    .await;
    assert!(
        events.iter().any(|e| matches!(
            e,
            FleetEvent::LeaseLost { shard: s, holder: Some(h) } if *s == shard && *h == token
        )),
        "{events:#?}"
    );
    assert!(matches!(
        events.last(),
        Some(FleetEvent::ClaimWaiting { holder, .. }) if *holder == token
    ));
    let closed = server
        .wait_until_async(Duration::from_secs(5), |g| {
            g.connections().first().is_some_and(|c| c.closed.is_some())
        })
        .await;
    assert!(closed, "the shard still runs here");
    assert!(fleet.sender(shard).is_none());

    // The other process lets it go without a session: ours, kept here, is resumed.
    other.release(taken.lease).await.unwrap();
    let events = until(&mut fleet, LIMIT, |e| {
        matches!(
            e,
            FleetEvent::Shard {
                event: ShardEvent::Resumed { .. },
                ..
            }
        )
    })
    .await;
    assert!(
        events.contains(&FleetEvent::Claimed {
            shard,
            resuming: true
        }),
        "{events:#?}"
    );
    fleet.shutdown(true).await;
    let gateway = server.stop_async().await;
    assert_eq!(gateway.received_op(2).count(), 1);
    assert_eq!(gateway.received_op(6).count(), 1);
}
