//! Redis frozen, then killed, mid-run, on a private redis-server of the test's own
//! (no persistence: it restarts empty). Calls time out instead of hanging; identifies wait,
//! report why, and never proceed without Redis; after the restart the budget is read again
//! from its source (never assumed full), the fence keeps the spacing across the loss, and
//! identifies proceed. Session saves fail fast with a typed error, so a running shard's
//! periodic save never holds it up.
#![cfg(feature = "redis")]
// These tests run real processes and a real server: they measure real time.
#![allow(clippy::disallowed_methods)]

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use discord_gateway::redis::{
    IdentifyQueueConfig, IdentifyWait, LimitSourceError, Namespace, RedisError, RedisIdentifyQueue,
    RedisLink, RedisSessionStore, SessionStoreConfig, SessionStoreError,
};
use discord_gateway_proto::{Session, ShardId, Timestamp};
use support::*;

const SPACING: Duration = Duration::from_millis(300);
const CALL_TIMEOUT: Duration = Duration::from_millis(300);
const RETRY: Duration = Duration::from_millis(100);

/// Discord's side of the budget: what `GET /gateway/bot` would say, and how often it was
/// asked.
#[derive(Default)]
struct Discord {
    remaining: AtomicU32,
    fetches: AtomicU32,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a redis-server binary on PATH (.ci/run installs one)"]
async fn redis_outage_identifies_wait_and_resume_with_the_budget_read_again() {
    let mut server = PrivateRedis::start();
    let discord = Arc::new(Discord::default());
    discord.remaining.store(50, Ordering::SeqCst);
    let source = {
        let discord = discord.clone();
        move || {
            let discord = discord.clone();
            async move {
                discord.fetches.fetch_add(1, Ordering::SeqCst);
                Ok::<_, LimitSourceError>(limit(discord.remaining.load(Ordering::SeqCst), 1))
            }
        }
    };
    let link = RedisLink::open_with_timeout(&server.url(), CALL_TIMEOUT).unwrap();
    let ns = Namespace::new("outage");
    let q = RedisIdentifyQueue::new(
        link.clone(),
        ns.clone(),
        IdentifyQueueConfig::default()
            .with_spacing(SPACING)
            .with_reserve(1)
            .with_retry_after_error(RETRY)
            .with_limit_source(source),
    );
    let store = RedisSessionStore::new(link.clone(), ns, SessionStoreConfig::default());
    let session = Session {
        id: "s".into(),
        sequence: 7,
        resume_url: None,
        last_alive: Timestamp::from_secs(1),
    };

    // Before: the budget comes from the source (50 less the reserve); three identifies,
    // which Discord counts.
    for id in 0..3 {
        let grant = q.acquire(ShardId::new(id, 8), |_| {}).await.unwrap();
        discord.remaining.fetch_sub(1, Ordering::SeqCst);
        assert_eq!(grant.remaining, 49 - 1 - id);
    }
    assert_eq!(discord.fetches.load(Ordering::SeqCst), 1);
    let mut lease = store.claim(ShardId::new(0, 8)).await.unwrap().lease;

    // Frozen (SIGSTOP: the socket accepts, nothing answers): each call gives up at its
    // deadline with a typed error instead of hanging.
    server.signal("STOP");
    let start = Instant::now();
    let error = q.try_identify(ShardId::new(3, 8)).await.unwrap_err();
    assert!(matches!(error, RedisError::TimedOut { .. }), "{error:?}");
    let saved = store
        .save(&mut lease, &session, Timestamp::from_secs(2))
        .await;
    assert!(
        matches!(
            saved,
            Err(SessionStoreError::Redis(RedisError::TimedOut { .. }))
        ),
        "{saved:?}"
    );
    assert!(start.elapsed() < CALL_TIMEOUT * 2 + Duration::from_millis(400));
    server.signal("CONT");
    // Thawed: the next call dials afresh and is answered.
    store
        .save(&mut lease, &session, Timestamp::from_secs(2))
        .await
        .unwrap();

    // Down (SIGKILL: the data is gone). A shard asks to identify: it waits and says why.
    server.kill();
    let waits = Arc::new(Mutex::new(Vec::new()));
    let identify = {
        let q = q.clone();
        let waits = waits.clone();
        tokio::spawn(async move {
            let grant = q
                .acquire(ShardId::new(3, 8), move |w| waits.lock().unwrap().push(w))
                .await;
            (grant, Instant::now())
        })
    };
    // A running shard's save fails fast: nothing here holds a shard up.
    let start = Instant::now();
    let saved = store
        .save(&mut lease, &session, Timestamp::from_secs(3))
        .await;
    assert!(
        matches!(saved, Err(SessionStoreError::Redis(ref e)) if e.is_unavailable()),
        "{saved:?}"
    );
    assert!(start.elapsed() <= CALL_TIMEOUT + Duration::from_millis(200));
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(!identify.is_finished(), "identified without Redis");
    let unavailable = waits
        .lock()
        .unwrap()
        .iter()
        .filter(|w| matches!(w, IdentifyWait::RedisUnavailable(e) if e.is_unavailable()))
        .count();
    assert!(unavailable >= 3, "{:?}", waits.lock().unwrap());

    // Back, empty. The budget is read again from Discord (47 left there: not the 50 of the
    // morning, not a full budget), less the reserve; the fence holds everyone for one
    // spacing; then the shard identifies.
    server.restart();
    let restarted = Instant::now();
    let (grant, granted_at) = tokio::time::timeout(Duration::from_secs(10), identify)
        .await
        .expect("identified after the restart")
        .unwrap();
    let grant = grant.unwrap();
    assert_eq!(discord.fetches.load(Ordering::SeqCst), 2);
    assert_eq!(grant.remaining, 47 - 1 - 1);
    assert!(
        granted_at.duration_since(restarted) >= SPACING - Duration::from_millis(10),
        "the fence was not waited out: {:?}",
        granted_at.duration_since(restarted)
    );
    let waits = waits.lock().unwrap();
    assert!(waits.contains(&IdentifyWait::FetchingLimit), "{waits:?}");
    assert!(
        matches!(waits.last(), Some(IdentifyWait::Busy { .. })),
        "{waits:?}"
    );
}
