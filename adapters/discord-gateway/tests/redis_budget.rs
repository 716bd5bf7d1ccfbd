//! The fleet identify queue against a real redis-server, one process: the budget's
//! creation and refresh rules, spending, exhaustion, the fence, the bucket spacing, and the
//! budget read from its source when Redis has none.
#![cfg(feature = "redis")]
// These tests run real processes and a real server: they measure real time.
#![allow(clippy::disallowed_methods)]

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use discord_gateway::redis::{
    IdentifyDecision, IdentifyQueueConfig, IdentifyRefused, IdentifyWait, LimitSourceError,
    RedisIdentifyQueue, RedisLink,
};
use discord_gateway_proto::{SessionStartLimit, ShardId};
use support::*;

const SPACING: Duration = Duration::from_millis(200);

fn queue(test: &str) -> RedisIdentifyQueue {
    RedisIdentifyQueue::new(
        link(),
        namespace(test),
        IdentifyQueueConfig::default()
            .with_spacing(SPACING)
            .with_reserve(0),
    )
}

fn granted(decision: IdentifyDecision) -> discord_gateway::redis::IdentifyGrant {
    match decision {
        IdentifyDecision::Granted(grant) => grant,
        other => panic!("expected a grant, got {other:?}"),
    }
}

#[tokio::test]
#[ignore = "needs a redis-server: set DISCORD_TEST_REDIS_URL"]
async fn redis_budget_is_created_once_and_refreshes_only_lower_it() {
    let q = queue("budget-rules");
    assert_eq!(q.budget().await.unwrap(), None);

    let first = q.update_budget(limit(10, 4)).await.unwrap();
    assert!(first.created);
    assert_eq!(first.state.remaining, 10);
    assert_eq!(first.state.max_concurrency, 4);
    let ttl = first.state.resets_in.expect("the budget expires");
    assert!(ttl > Duration::from_secs(86_000) && ttl <= Duration::from_secs(86_400));
    assert_eq!(q.max_concurrency(), 4);

    // A second publisher with a higher number does not raise it, nor move the expiry...
    let higher = q
        .update_budget(SessionStartLimit {
            reset_after: 1_000,
            ..limit(50, 4)
        })
        .await
        .unwrap();
    assert!(!higher.created);
    assert_eq!(higher.state.remaining, 10);
    assert!(higher.state.resets_in.unwrap() > Duration::from_secs(86_000));
    // ...a lower one lowers it, and a new max_concurrency is taken.
    let lower = q.update_budget(limit(7, 16)).await.unwrap();
    assert!(!lower.created);
    assert_eq!(lower.state.remaining, 7);
    assert_eq!(lower.state.max_concurrency, 16);
    let read = q.budget().await.unwrap().expect("a budget");
    assert_eq!(
        (read.remaining, read.total, read.max_concurrency),
        (7, 1000, 16)
    );
    // The expiry runs on (read a moment later, never later than before).
    assert!(read.resets_in <= lower.state.resets_in);

    // An operator may replace it outright.
    let replaced = q.replace_budget(limit(30, 16)).await.unwrap();
    assert!(replaced.created);
    assert_eq!(replaced.state.remaining, 30);
}

#[tokio::test]
#[ignore = "needs a redis-server: set DISCORD_TEST_REDIS_URL"]
async fn redis_budget_holds_back_the_reserve_and_expires_at_reset_after() {
    let ns = namespace("reserve");
    let q = RedisIdentifyQueue::new(
        link(),
        ns.clone(),
        IdentifyQueueConfig::default().with_spacing(SPACING),
    );
    // Default reserve: one per bucket.
    let update = q
        .update_budget(SessionStartLimit {
            reset_after: 300,
            ..limit(20, 4)
        })
        .await
        .unwrap();
    assert_eq!(update.state.remaining, 16);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(q.budget().await.unwrap(), None, "expired at reset_after");
    assert_eq!(
        q.try_identify(ShardId::new(0, 4)).await.unwrap(),
        IdentifyDecision::BudgetUnknown
    );
}

#[tokio::test]
#[ignore = "needs a redis-server: set DISCORD_TEST_REDIS_URL"]
async fn redis_identify_spends_one_unit_per_grant_and_stops_at_zero() {
    let q = queue("spend");
    // Without a budget nothing is granted, and nothing is written.
    assert_eq!(
        q.try_identify(ShardId::new(0, 4)).await.unwrap(),
        IdentifyDecision::BudgetUnknown
    );
    q.update_budget(limit(3, 4)).await.unwrap();
    // The fence: nobody identifies for one spacing after the budget is created.
    match q.try_identify(ShardId::new(0, 4)).await.unwrap() {
        IdentifyDecision::Busy { bucket, retry_in } => {
            assert_eq!(bucket, 0);
            assert!(
                retry_in <= SPACING && retry_in > Duration::ZERO,
                "{retry_in:?}"
            );
        }
        other => panic!("expected the fence, got {other:?}"),
    }
    assert_eq!(q.budget().await.unwrap().unwrap().remaining, 3);
    tokio::time::sleep(SPACING).await;

    // Four buckets: shards 0, 1, 2 go at once, each spending one unit.
    let mut remaining = Vec::new();
    let mut times = Vec::new();
    for id in 0..3 {
        let grant = granted(q.try_identify(ShardId::new(id, 4)).await.unwrap());
        assert_eq!(grant.bucket, id);
        remaining.push(grant.remaining);
        times.push(grant.server_time_us);
    }
    assert_eq!(remaining, [2, 1, 0]);
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    // Shard 3 has a free bucket but the budget is spent: refused, and its bucket untouched.
    match q.try_identify(ShardId::new(3, 4)).await.unwrap() {
        IdentifyDecision::Exhausted { resets_in } => {
            assert!(resets_in.unwrap() > Duration::from_secs(86_000))
        }
        other => panic!("expected exhaustion, got {other:?}"),
    }
    // acquire says so too, without waiting.
    let refused = q.acquire(ShardId::new(3, 4), |_| {}).await.unwrap_err();
    assert!(matches!(refused, IdentifyRefused::Exhausted { .. }));
    assert_eq!(q.budget().await.unwrap().unwrap().remaining, 0);
    // A refresh from Discord with more left does not revive a spent budget.
    q.update_budget(limit(500, 4)).await.unwrap();
    assert!(matches!(
        q.try_identify(ShardId::new(3, 4)).await.unwrap(),
        IdentifyDecision::Exhausted { .. }
    ));
}

#[tokio::test]
#[ignore = "needs a redis-server: set DISCORD_TEST_REDIS_URL"]
async fn redis_bucket_slot_spaces_identifies_and_spends_nothing_while_busy() {
    let q = queue("bucket");
    q.update_budget(limit(100, 2)).await.unwrap();
    tokio::time::sleep(SPACING).await;
    let first = granted(q.try_identify(ShardId::new(0, 4)).await.unwrap());
    // Same bucket (2 % 2 == 0): busy for about one spacing, nothing spent.
    let IdentifyDecision::Busy { bucket, retry_in } =
        q.try_identify(ShardId::new(2, 4)).await.unwrap()
    else {
        panic!("bucket 0 must be busy")
    };
    assert_eq!(bucket, 0);
    assert!(retry_in <= SPACING, "{retry_in:?}");
    assert_eq!(q.budget().await.unwrap().unwrap().remaining, 99);
    // The other bucket is free.
    granted(q.try_identify(ShardId::new(1, 4)).await.unwrap());
    // acquire waits out the slot and reports the wait.
    let waits = Arc::new(Mutex::new(Vec::new()));
    let seen = waits.clone();
    let second = q
        .acquire(ShardId::new(2, 4), move |w| seen.lock().unwrap().push(w))
        .await
        .unwrap();
    let gap = Duration::from_micros(second.server_time_us - first.server_time_us);
    assert!(gap + Duration::from_millis(1) >= SPACING, "{gap:?}");
    assert!(matches!(
        waits.lock().unwrap().first(),
        Some(IdentifyWait::Busy { bucket: 0, .. })
    ));
    assert_eq!(second.remaining, 97);
}

#[tokio::test]
#[ignore = "needs a redis-server: set DISCORD_TEST_REDIS_URL"]
async fn redis_processes_bucket_with_the_stored_max_concurrency() {
    let ns = namespace("concurrency");
    let publisher = RedisIdentifyQueue::new(
        link(),
        ns.clone(),
        IdentifyQueueConfig::default()
            .with_spacing(SPACING)
            .with_reserve(0),
    );
    publisher.update_budget(limit(100, 4)).await.unwrap();
    tokio::time::sleep(SPACING).await;
    // A process that never read the budget assumes max_concurrency 1; Redis corrects it,
    // so shard 5 lands in bucket 1, not bucket 0.
    let late = RedisIdentifyQueue::new(
        link(),
        ns,
        IdentifyQueueConfig::default()
            .with_spacing(SPACING)
            .with_reserve(0),
    );
    assert_eq!(late.max_concurrency(), 1);
    let grant = granted(late.try_identify(ShardId::new(5, 8)).await.unwrap());
    assert_eq!(grant.bucket, 1);
    assert_eq!(late.max_concurrency(), 4);
    granted(late.try_identify(ShardId::new(4, 8)).await.unwrap());
}

#[tokio::test]
#[ignore = "needs a redis-server: set DISCORD_TEST_REDIS_URL"]
async fn redis_acquire_reads_the_budget_from_its_source_when_redis_has_none() {
    let fetches = Arc::new(AtomicU32::new(0));
    let counter = fetches.clone();
    let source = move || {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok::<_, LimitSourceError>(limit(5, 1))
        }
    };
    let q = RedisIdentifyQueue::new(
        link(),
        namespace("source"),
        IdentifyQueueConfig::default()
            .with_spacing(SPACING)
            .with_reserve(1)
            .with_limit_source(source),
    );
    let waits = Arc::new(Mutex::new(Vec::new()));
    let seen = waits.clone();
    let start = Instant::now();
    let grant = q
        .acquire(ShardId::ONE, move |w| seen.lock().unwrap().push(w))
        .await
        .unwrap();
    // Read once, published less the reserve, then one spent; the fence was waited out.
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    assert_eq!(grant.remaining, 3);
    assert!(start.elapsed() >= SPACING - Duration::from_millis(5));
    let waits = waits.lock().unwrap();
    assert_eq!(waits.first(), Some(&IdentifyWait::FetchingLimit));
    assert!(waits.iter().any(|w| matches!(w, IdentifyWait::Busy { .. })));
}

#[tokio::test]
#[ignore = "needs a redis-server: set DISCORD_TEST_REDIS_URL"]
async fn redis_acquire_without_a_budget_or_source_refuses() {
    let q = queue("no-source");
    assert_eq!(
        q.acquire(ShardId::ONE, |_| {}).await.unwrap_err(),
        IdentifyRefused::NoBudget
    );
}

#[tokio::test]
#[ignore = "needs a redis-server: set DISCORD_TEST_REDIS_URL"]
async fn redis_a_failing_limit_source_is_reported_and_retried() {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    // First a request that never answers, then an error, then the limit.
    let source = move || {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            match n {
                0 => std::future::pending().await,
                1 => Err::<SessionStartLimit, LimitSourceError>("HTTP 502".into()),
                _ => Ok(limit(10, 1)),
            }
        }
    };
    let q = RedisIdentifyQueue::new(
        link(),
        namespace("source-fails"),
        IdentifyQueueConfig::default()
            .with_spacing(SPACING)
            .with_reserve(0)
            .with_retry_after_error(Duration::from_millis(50))
            .with_limit_source(source)
            .with_limit_source_timeout(Duration::from_millis(100)),
    );
    let waits = Arc::new(Mutex::new(Vec::new()));
    let seen = waits.clone();
    let grant = q
        .acquire(ShardId::ONE, move |w| seen.lock().unwrap().push(w))
        .await
        .unwrap();
    assert_eq!(grant.remaining, 9);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let failures: Vec<IdentifyWait> = waits
        .lock()
        .unwrap()
        .iter()
        .filter(|w| matches!(w, IdentifyWait::LimitSourceFailed(_)))
        .cloned()
        .collect();
    assert_eq!(
        failures,
        [
            IdentifyWait::LimitSourceFailed("no answer within 100ms".into()),
            IdentifyWait::LimitSourceFailed("HTTP 502".into()),
        ]
    );
}

#[tokio::test]
async fn an_unreachable_redis_is_a_typed_error_within_the_call_timeout() {
    // Port 1 on loopback: nothing listens there.
    let link =
        RedisLink::open_with_timeout("redis://127.0.0.1:1/", Duration::from_millis(500)).unwrap();
    let start = Instant::now();
    let error = link.ping().await.unwrap_err();
    assert!(error.is_unavailable(), "{error:?}");
    assert!(start.elapsed() < Duration::from_secs(2));
    assert!(error.to_string().contains("127.0.0.1:1"), "{error}");
    // And a queue on it grants nothing.
    let q = RedisIdentifyQueue::new(
        link,
        namespace("unreachable"),
        IdentifyQueueConfig::default(),
    );
    assert!(q.try_identify(ShardId::ONE).await.is_err());
}

#[test]
fn a_bad_redis_url_is_refused_without_repeating_it() {
    let error = RedisLink::open("http://user:hunter2@example.com/").unwrap_err();
    assert!(matches!(
        error,
        discord_gateway::redis::RedisError::BadUrl { .. }
    ));
    assert!(!error.to_string().contains("hunter2"), "{error}");
    let link = RedisLink::open("redis://:hunter2@127.0.0.1:6399/").unwrap();
    assert!(!format!("{link:?}").contains("hunter2"));
}
