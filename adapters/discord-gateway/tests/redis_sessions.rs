//! The session store against a real redis-server: save and claim, the ownership lease, its
//! expiry, hand-over, release, the session's age on Redis' clock, and takeovers by a second
//! OS process (after a crash, and after a graceful stop).
#![cfg(feature = "redis")]
// These tests run real processes and a real server: they measure real time.
#![allow(clippy::disallowed_methods)]

mod support;

use std::time::{Duration, Instant};

use discord_gateway::redis::{
    Namespace, RedisSessionStore, SessionStoreConfig, SessionStoreError, ShardLease,
};
use discord_gateway_proto::{Session, ShardId, Timestamp};
use support::*;

const SHARD: ShardId = ShardId::new(5, 16);

fn store(ns: &Namespace, owner: &str, lease_ttl: Duration) -> RedisSessionStore {
    RedisSessionStore::new(
        link(),
        ns.clone(),
        SessionStoreConfig::default()
            .with_owner(owner)
            .with_lease_ttl(lease_ttl),
    )
}

fn session(sequence: u64) -> Session {
    Session {
        id: format!("session-{sequence}"),
        sequence,
        resume_url: Some("wss://resume.example/".into()),
        last_alive: Timestamp::from_secs(10),
    }
}

fn held_by(error: SessionStoreError) -> String {
    match error {
        SessionStoreError::Held { holder, .. } => holder.token,
        other => panic!("expected Held, got {other:?}"),
    }
}

#[tokio::test]
#[ignore = "needs a redis-server: set DISCORD_TEST_REDIS_URL"]
async fn redis_session_store_claim_save_lease_expiry_and_hand_over() {
    let ns = namespace("sessions");
    let ttl = Duration::from_millis(1_000);
    let a = store(&ns, "proc-a", ttl);
    let b = store(&ns, "proc-b", ttl);

    // A fresh shard: claimed with no session; nobody else can claim it now.
    let claim = a.claim(SHARD).await.unwrap();
    assert_eq!(claim.session, None);
    let mut lease_a = claim.lease;
    assert!(lease_a.is_valid());
    assert!(held_by(b.claim(SHARD).await.unwrap_err()).starts_with("proc-a#"));

    // Saved with its last ACK 2 s old (in A's time base); B sees it, aged on Redis' clock.
    a.save(&mut lease_a, &session(10), Timestamp::from_secs(12))
        .await
        .unwrap();
    let record = b.peek(SHARD).await.unwrap();
    assert_eq!(record.holder.unwrap().token, lease_a.token());
    let stored = record.session.expect("saved");
    assert_eq!(stored.session, session(10));
    assert!(stored.ack_age >= Duration::from_secs(2));
    assert!(stored.ack_age < Duration::from_millis(2_500), "{stored:?}");
    assert_eq!(stored.saved_by, lease_a.token());
    // Rebased into B's time base.
    assert_eq!(
        stored.rebased(Timestamp::from_secs(100)).last_alive,
        Timestamp::from_secs(100).saturating_sub(stored.ack_age)
    );

    // Renewals keep the shard A's well past the lease's length.
    for _ in 0..5 {
        tokio::time::sleep(ttl / 3).await;
        a.renew(&mut lease_a).await.unwrap();
    }
    assert!(held_by(b.claim(SHARD).await.unwrap_err()).starts_with("proc-a#"));

    // A stops renewing (frozen, partitioned, crashed): locally its lease runs out first...
    tokio::time::sleep(ttl - ttl / 10).await;
    assert!(!lease_a.is_valid());
    // ...then in Redis, and B takes the shard and its session.
    tokio::time::sleep(ttl / 10 + Duration::from_millis(50)).await;
    let claim = b.claim(SHARD).await.unwrap();
    let taken = claim.session.expect("the saved session");
    assert_eq!(taken.session.sequence, 10);
    assert!(taken.ack_age >= Duration::from_secs(2) + ttl, "{taken:?}");
    let lease_b = claim.lease;
    // A can no longer save, renew or hand over: it learns who has the shard.
    match a
        .save(&mut lease_a, &session(11), Timestamp::from_secs(13))
        .await
    {
        Err(SessionStoreError::LeaseLost { holder, .. }) => {
            assert_eq!(holder.unwrap().token, lease_b.token())
        }
        other => panic!("expected LeaseLost, got {other:?}"),
    }
    assert!(matches!(
        a.renew(&mut lease_a).await,
        Err(SessionStoreError::LeaseLost { .. })
    ));
    assert!(matches!(
        a.hand_over(lease_a, &session(11), Timestamp::from_secs(13))
            .await,
        Err(SessionStoreError::LeaseLost { .. })
    ));
    assert_eq!(
        b.peek(SHARD)
            .await
            .unwrap()
            .session
            .unwrap()
            .session
            .sequence,
        10
    );

    // B hands the shard over gracefully: A claims it at once and gets the newer session.
    b.hand_over(lease_b, &session(12), Timestamp::from_secs(10))
        .await
        .unwrap();
    let claim = a.claim(SHARD).await.unwrap();
    let handed = claim.session.unwrap();
    assert_eq!(handed.session.sequence, 12);
    assert!(handed.ack_age < Duration::from_millis(500), "{handed:?}");

    // Release: the session ended; the next owner finds nothing to resume.
    a.release(claim.lease).await.unwrap();
    let record = b.peek(SHARD).await.unwrap();
    assert_eq!(record.holder, None);
    assert_eq!(record.session, None);
    assert_eq!(b.claim(SHARD).await.unwrap().session, None);
}

#[tokio::test]
#[ignore = "needs a redis-server: set DISCORD_TEST_REDIS_URL"]
async fn redis_sessions_expire_after_session_ttl_and_shards_are_keyed_by_count() {
    let ns = namespace("session-ttl");
    let store = RedisSessionStore::new(
        link(),
        ns.clone(),
        SessionStoreConfig::default().with_session_ttl(Duration::from_millis(300)),
    );
    let mut lease = store.claim(SHARD).await.unwrap().lease;
    store
        .save(&mut lease, &session(3), Timestamp::from_secs(10))
        .await
        .unwrap();
    // The same id in a resharded set is another shard.
    let other = store.claim(ShardId::new(5, 32)).await.unwrap();
    assert_eq!(other.session, None);
    assert!(store.peek(SHARD).await.unwrap().session.is_some());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(store.peek(SHARD).await.unwrap().session, None);
}

#[tokio::test]
#[ignore = "needs a redis-server: set DISCORD_TEST_REDIS_URL"]
async fn redis_an_unreadable_session_is_discarded_not_resumed() {
    let ns = namespace("corrupt");
    let store = RedisSessionStore::new(link(), ns.clone(), SessionStoreConfig::default());
    let mut lease = store.claim(SHARD).await.unwrap().lease;
    store
        .save(&mut lease, &session(3), Timestamp::from_secs(10))
        .await
        .unwrap();
    store.release(lease).await.unwrap();
    // Someone writes garbage where the session lives.
    let client = redis::Client::open(redis_url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("{}:shard:16:5:session", ns.prefix());
    redis::cmd("HSET")
        .arg(&key)
        .arg("session")
        .arg("{not json")
        .arg("ack_age_ms")
        .arg("0")
        .arg("saved_at_us")
        .arg("0")
        .arg("saved_by")
        .arg("x")
        .exec_async(&mut connection)
        .await
        .unwrap();
    let claim = store.claim(SHARD).await.unwrap();
    assert_eq!(claim.session, None);
    assert!(claim.discarded.unwrap().contains("not a saved session"));
}

/// Child role: claim the shard, save a session, report, then keep renewing until killed
/// (`crash`) or hand the shard over and exit (`graceful`).
async fn owner_process(role: &str) {
    let ns = Namespace::new(std::env::var("TEST_PREFIX").unwrap());
    let ttl = Duration::from_millis(std::env::var("TEST_LEASE_MS").unwrap().parse().unwrap());
    let store = store(&ns, "child", ttl);
    let claim = store.claim(SHARD).await.expect("the child claims first");
    let mut lease: ShardLease = claim.lease;
    // The last ACK was 1 s ago in this process's time.
    store
        .save(&mut lease, &session(42), Timestamp::from_secs(11))
        .await
        .unwrap();
    report(format!("saved {}", lease.token()));
    match role {
        "graceful" => {
            store
                .hand_over(lease, &session(43), Timestamp::from_secs(11))
                .await
                .unwrap();
            report("handed-over");
        }
        _ => loop {
            tokio::time::sleep(ttl / 4).await;
            store.renew(&mut lease).await.unwrap();
        },
    }
}

#[tokio::test]
#[ignore = "needs a redis-server: set DISCORD_TEST_REDIS_URL"]
async fn redis_a_second_process_takes_over_a_killed_owners_shard_and_session() {
    const TEST: &str = "redis_a_second_process_takes_over_a_killed_owners_shard_and_session";
    if let Some(role) = child_role() {
        return owner_process(&role).await;
    }
    let prefix = unique_prefix("takeover-crash");
    let lease_ms = 1_000u64;
    let mut child = ChildProcess::spawn(
        TEST,
        "crash",
        &[
            (URL_VARIABLE, redis_url()),
            ("TEST_PREFIX", prefix.clone()),
            ("TEST_LEASE_MS", lease_ms.to_string()),
        ],
    );
    child.wait_for(Duration::from_secs(30), "saved", |r| {
        r.iter().any(|(_, l)| l.starts_with("saved"))
    });
    let ns = Namespace::new(&prefix);
    let parent = store(&ns, "parent", Duration::from_millis(lease_ms));
    // The child is alive and renewing: the shard is its.
    for _ in 0..3 {
        assert!(held_by(parent.claim(SHARD).await.unwrap_err()).starts_with("child#"));
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    // SIGKILL: no goodbye, the lease just stops being renewed.
    child.kill();
    let killed = Instant::now();
    let claim = loop {
        match parent.claim(SHARD).await {
            Ok(claim) => break claim,
            Err(SessionStoreError::Held { .. }) => {
                assert!(
                    killed.elapsed() < Duration::from_secs(5),
                    "lease never expired"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(other) => panic!("{other:?}"),
        }
    };
    let waited = killed.elapsed();
    assert!(
        waited <= Duration::from_millis(lease_ms + 300),
        "took {waited:?}"
    );
    let taken = claim.session.expect("the dead owner's last session");
    assert_eq!(taken.session.sequence, 42);
    assert!(taken.saved_by.starts_with("child#"));
    // 1 s old when saved, plus at least the 1.2 s the parent watched, on Redis' clock.
    assert!(taken.ack_age >= Duration::from_millis(2_200), "{taken:?}");
}

#[tokio::test]
#[ignore = "needs a redis-server: set DISCORD_TEST_REDIS_URL"]
async fn redis_a_second_process_resumes_what_a_graceful_owner_handed_over() {
    const TEST: &str = "redis_a_second_process_resumes_what_a_graceful_owner_handed_over";
    if let Some(role) = child_role() {
        return owner_process(&role).await;
    }
    let prefix = unique_prefix("takeover-graceful");
    let mut child = ChildProcess::spawn(
        TEST,
        "graceful",
        &[
            (URL_VARIABLE, redis_url()),
            ("TEST_PREFIX", prefix.clone()),
            ("TEST_LEASE_MS", "30000".into()),
        ],
    );
    assert!(child.wait_exit(Duration::from_secs(30)).success());
    assert!(child.reports().iter().any(|(_, l)| l == "handed-over"));
    // No waiting for a 30 s lease: it was given up with the session.
    let parent = store(&Namespace::new(&prefix), "parent", Duration::from_secs(30));
    let claim = parent.claim(SHARD).await.unwrap();
    let handed = claim.session.expect("the handed-over session");
    assert_eq!(handed.session, session(43));
    assert!(handed.ack_age >= Duration::from_secs(1));
}
