//! The fleet against one `FakeGatewayServer` serving every shard: identify turns per
//! bucket, the merged stream tagged by shard, commands to one shard, status, shards added
//! and removed (and resumed) while it runs, a consumer that stalls while heartbeats keep
//! their time, resharding with both sets delivering until the switch, and the end of the
//! stream after a shutdown.

use std::collections::BTreeMap;
use std::time::Duration;

use discord_gateway::fleet::{Fleet, FleetEvent, ShardState, StopReason};
use discord_gateway::proto::shard::shard_for_guild;
use discord_gateway::proto::sim::{FakeGateway, FakeGatewayConfig, ScriptAction, ViolationKind};
use discord_gateway::proto::Timestamp;
use discord_gateway::testing::FakeGatewayServer;
use discord_gateway::{
    GatewayConfig, Intents, Phase, SessionStartLimit, ShardEvent, ShardId, SharedIdentifyQueue,
    Token,
};

const LIMIT: Duration = Duration::from_secs(20);

fn gateway(hello_interval: Duration) -> FakeGatewayServer {
    FakeGatewayServer::start(FakeGateway::new(FakeGatewayConfig {
        hello_interval,
        ack_delay: Duration::from_millis(5),
        ready_delay: Duration::from_millis(10),
        resume_delay: Duration::from_millis(10),
        guild_create_delay: None,
        ..FakeGatewayConfig::default()
    }))
}

fn config(server: &FakeGatewayServer) -> GatewayConfig {
    GatewayConfig::new(Token::new("test-token"), Intents::GUILDS).with_gateway_url(server.url())
}

fn queue(max_concurrency: u32, spacing: Duration) -> SharedIdentifyQueue {
    SharedIdentifyQueue::new(SessionStartLimit {
        total: 1000,
        remaining: 1000,
        reset_after: 86_400_000,
        max_concurrency,
    })
    .with_spacing(spacing)
}

fn shards(count: u32) -> impl Iterator<Item = ShardId> {
    (0..count).map(move |id| ShardId::new(id, count))
}

/// Reads the fleet until `done` holds for an event (included); panics after [`LIMIT`].
async fn until(fleet: &mut Fleet, mut done: impl FnMut(&FleetEvent) -> bool) -> Vec<FleetEvent> {
    let mut seen = Vec::new();
    let run = async {
        while let Some(event) = fleet.next_event().await {
            let stop = done(&event);
            seen.push(event);
            if stop {
                return;
            }
        }
        panic!("the fleet's stream ended");
    };
    if tokio::time::timeout(LIMIT, run).await.is_err() {
        panic!("not done within {LIMIT:?}: {seen:#?}");
    }
    seen
}

/// Reads until every shard of `set` is READY.
async fn until_ready(fleet: &mut Fleet, set: &[ShardId]) -> Vec<FleetEvent> {
    let mut waiting: Vec<ShardId> = set.to_vec();
    until(fleet, |e| {
        if let FleetEvent::Shard {
            shard,
            event: ShardEvent::Ready(_),
        } = e
        {
            waiting.retain(|s| s != shard);
        }
        waiting.is_empty()
    })
    .await
}

/// The dispatches named `name` in `events`, with their shard and data.
fn dispatches<'a>(events: &'a [FleetEvent], name: &str) -> Vec<(ShardId, &'a str)> {
    events
        .iter()
        .filter_map(FleetEvent::as_dispatch)
        .filter(|(_, d)| d.name == name)
        .map(|(shard, d)| (shard, d.data.as_str()))
        .collect()
}

/// The fake's identifies: (when, `[id, count]`).
fn identifies(gateway: &FakeGateway) -> Vec<(Timestamp, ShardId)> {
    gateway
        .received_op(2)
        .map(|f| {
            let shard = &f.data().expect("d")["shard"];
            let id = shard[0].as_u64().expect("id") as u32;
            let count = shard[1].as_u64().expect("count") as u32;
            (f.time, ShardId::new(id, count))
        })
        .collect()
}

fn serious_violations(gateway: &FakeGateway) -> Vec<ViolationKind> {
    gateway
        .violations()
        .iter()
        .map(|v| v.kind.clone())
        .filter(|kind| {
            !matches!(kind, ViolationKind::HeartbeatSequence { expected: Some(e), got: Some(g) } if g < e)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_identify_in_turn_per_bucket_and_their_events_are_merged_and_tagged() {
    let server = gateway(Duration::from_millis(300));
    let spacing = Duration::from_millis(200);
    let set: Vec<ShardId> = shards(4).collect();
    let mut fleet = Fleet::builder(config(&server))
        .identify_queue(queue(2, spacing))
        .start(set.clone())
        .expect("fleet");
    assert_eq!(fleet.shard_count(), 4);
    until_ready(&mut fleet, &set).await;

    // One dispatch for each shard, sent to that shard's session only.
    for shard in &set {
        server.perform(ScriptAction::shard_dispatch(
            *shard,
            "MESSAGE_CREATE",
            format!(r#"{{"for":{}}}"#, shard.id),
        ));
    }
    let mut got = BTreeMap::new();
    let events = until(&mut fleet, |e| {
        if let Some((shard, d)) = e.as_dispatch() {
            if d.name == "MESSAGE_CREATE" {
                got.insert(shard, d.data.to_string());
            }
        }
        got.len() == 4
    })
    .await;
    for shard in &set {
        assert_eq!(got[shard], format!(r#"{{"for":{}}}"#, shard.id));
    }
    // Heartbeats come round: every shard reports its latency, and its status shows it.
    let mut acked = Vec::new();
    until(&mut fleet, |e| {
        if let FleetEvent::Shard {
            shard,
            event: ShardEvent::HeartbeatAck { .. },
        } = e
        {
            if !acked.contains(shard) {
                acked.push(*shard);
            }
        }
        acked.len() == 4
    })
    .await;
    drop(events);
    for status in fleet.statuses() {
        assert_eq!(status.state, ShardState::Running);
        assert_eq!(status.phase, Phase::Connected);
        assert!(status.ready);
        assert!(status.latency.last().is_some(), "{status:?}");
        assert_eq!((status.reconnects, status.identifies), (0, 1));
    }

    let gateway = server.stop_async().await;
    // Two buckets (0 and 2; 1 and 3), each one identify per spacing, lower buckets first.
    let identifies = identifies(&gateway);
    assert_eq!(identifies.len(), 4);
    for bucket in 0..2 {
        let times: Vec<Timestamp> = identifies
            .iter()
            .filter(|(_, s)| s.id % 2 == bucket)
            .map(|(t, _)| *t)
            .collect();
        assert_eq!(times.len(), 2);
        let gap = times[1].saturating_duration_since(times[0]);
        assert!(gap >= spacing, "bucket {bucket}: identifies {gap:?} apart");
    }
    assert!(
        serious_violations(&gateway).is_empty(),
        "{:?}",
        gateway.violations()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_goes_to_its_shard_only() {
    let server = gateway(Duration::from_secs(30));
    let set: Vec<ShardId> = shards(3).collect();
    let mut fleet = Fleet::builder(config(&server))
        .identify_queue(queue(3, Duration::from_millis(50)))
        .start(set.clone())
        .expect("fleet");
    until_ready(&mut fleet, &set).await;
    let target = ShardId::new(1, 3);
    let sender = fleet.sender(target).expect("a running shard");
    sender
        .send_json(r#"{"op":3,"d":{"since":null,"activities":[],"status":"idle","afk":false}}"#)
        .await
        .expect("sent");
    assert!(fleet.sender(ShardId::new(7, 9)).is_none());
    let arrived = server
        .wait_until_async(Duration::from_secs(5), |g| g.received_op(3).count() == 1)
        .await;
    assert!(arrived);
    let gateway = server.stop_async().await;
    let presence = gateway.received_op(3).next().expect("op 3");
    let session = gateway
        .connection(presence.connection)
        .and_then(|c| c.session_id.clone())
        .expect("an identified connection");
    let session = gateway
        .sessions()
        .iter()
        .find(|s| s.id == session)
        .expect("its session");
    assert_eq!(session.shard, Some(target));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_are_added_removed_and_resumed_while_the_fleet_runs() {
    let server = gateway(Duration::from_secs(30));
    let (a, b) = (ShardId::new(0, 2), ShardId::new(1, 2));
    let mut fleet = Fleet::builder(config(&server))
        .identify_queue(queue(1, Duration::from_millis(50)))
        .start([a])
        .expect("fleet");
    until_ready(&mut fleet, &[a]).await;
    assert_eq!(
        fleet.add(a),
        Err(discord_gateway::fleet::FleetError::AlreadyRunning(a))
    );
    fleet.add(b).expect("added");
    until_ready(&mut fleet, &[b]).await;
    assert_eq!(fleet.shards(), [a, b]);

    // Remove b keeping its session; dispatches sent meanwhile wait in the fake.
    let session = fleet
        .remove(b, true)
        .await
        .expect("in the fleet")
        .expect("kept");
    let events = until(&mut fleet, |e| matches!(e, FleetEvent::Stopped { .. })).await;
    assert!(matches!(
        events.last(),
        Some(FleetEvent::Stopped { shard, reason: StopReason::Removed, session: Some(kept) })
            if *shard == b && kept.id == session.id
    ));
    assert_eq!(fleet.shards(), [a]);
    assert!(fleet.status(b).is_none());
    server.perform(ScriptAction::shard_dispatch(b, "MISSED", "1"));

    // Back, resuming: the missed dispatch is replayed, no new identify.
    fleet.resume(b, session).expect("resumed");
    let events = until(&mut fleet, |e| {
        matches!(e, FleetEvent::Shard { shard, event: ShardEvent::Resumed { .. } } if *shard == b)
    })
    .await;
    assert_eq!(dispatches(&events, "MISSED"), [(b, "1")]);
    let gateway = server.stop_async().await;
    assert_eq!(gateway.received_op(2).count(), 2);
    assert_eq!(gateway.received_op(6).count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_consumer_does_not_stop_heartbeats_and_loses_nothing() {
    // The machine's shortest heartbeat interval.
    let interval = Duration::from_secs(1);
    let server = gateway(interval);
    let shard = ShardId::new(0, 1);
    let mut fleet = Fleet::builder(config(&server))
        .event_capacity(4)
        .start([shard])
        .expect("fleet");
    until_ready(&mut fleet, &[shard]).await;
    let beats_before = server
        .inspect_async(|g| g.heartbeats_received())
        .await
        .expect("running");
    // The application stops reading for 4 s while a dispatch comes every 10 ms: the
    // channel (4) fills, the shard stops reading its socket, and beats on.
    let stall = Duration::from_secs(4);
    let ticks_sent = 400;
    for n in 0..ticks_sent {
        server.perform(ScriptAction::dispatch("TICK", n.to_string()));
        tokio::time::sleep(stall / ticks_sent).await;
    }
    let beats_during_stall = server
        .inspect_async(|g| g.heartbeats_received())
        .await
        .expect("running")
        - beats_before;
    assert!(fleet.queued_events() <= 4);
    // Every dispatch arrives, in order, none twice.
    let mut ticks = Vec::new();
    until(&mut fleet, |e| {
        if let Some((_, d)) = e.as_dispatch() {
            if d.name == "TICK" {
                ticks.push(d.data.parse::<u32>().expect("n"));
            }
        }
        ticks.len() == ticks_sent as usize
    })
    .await;
    assert_eq!(ticks, (0..ticks_sent).collect::<Vec<_>>());
    let status = fleet.status(shard).expect("running");
    assert_eq!(status.reconnects, 0, "a false zombie verdict: {status:?}");
    let gateway = server.stop_async().await;
    assert!(
        beats_during_stall >= 3,
        "{beats_during_stall} beats in {stall:?}"
    );
    assert_eq!(gateway.connections().len(), 1);
    let beats: Vec<Timestamp> = gateway.received_op(1).map(|f| f.time).collect();
    for pair in beats.windows(2) {
        let gap = pair[1].saturating_duration_since(pair[0]);
        assert!(
            gap < interval + Duration::from_millis(200),
            "beats {gap:?} apart: {beats:?}"
        );
    }
    assert!(
        serious_violations(&gateway).is_empty(),
        "{:?}",
        gateway.violations()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resharding_brings_the_new_set_up_before_switching_and_closing_the_old() {
    let server = gateway(Duration::from_secs(30));
    let old: Vec<ShardId> = shards(2).collect();
    let new: Vec<ShardId> = shards(4).collect();
    let mut fleet = Fleet::builder(config(&server))
        .identify_queue(queue(4, Duration::from_millis(100)))
        .start(old.clone())
        .expect("fleet");
    until_ready(&mut fleet, &old).await;
    // A guild whose shard differs between the sets: 2 of 4, 0 of 2.
    let guild: u64 = 2 << 22;
    assert_eq!(fleet.shard_for_guild(guild), ShardId::new(0, 2));
    assert_eq!(shard_for_guild(guild, 4), 2);

    fleet.reshard(new.clone()).expect("reshard");
    assert_eq!(
        fleet.reshard(new.clone()),
        Err(discord_gateway::fleet::FleetError::Resharding(4))
    );
    let mut events = until(&mut fleet, |e| {
        matches!(e, FleetEvent::ReshardStarted { .. })
    })
    .await;
    assert_eq!(
        events.pop(),
        Some(FleetEvent::ReshardStarted { from: 2, to: 4 })
    );
    // The first new shard READY: the overlap. The old set still delivers, the new one too.
    until(&mut fleet, |e| {
        matches!(e, FleetEvent::Shard { shard, event: ShardEvent::Ready(_) } if shard.count == 4)
    })
    .await;
    server.perform(ScriptAction::shard_dispatch(
        ShardId::new(0, 2),
        "GUILD_EVENT",
        "1",
    ));
    let events = until(&mut fleet, |e| matches!(e, FleetEvent::Resharded { .. })).await;
    assert_eq!(
        events.last(),
        Some(&FleetEvent::Resharded { from: 2, to: 4 })
    );
    assert_eq!(
        dispatches(&events, "GUILD_EVENT"),
        [(ShardId::new(0, 2), "1")]
    );
    // Every new shard was READY before the switch.
    let ready: Vec<ShardId> = events
        .iter()
        .filter_map(|e| match e {
            FleetEvent::Shard {
                shard,
                event: ShardEvent::Ready(_),
            } => Some(*shard),
            _ => None,
        })
        .collect();
    assert!(ready.len() >= 3, "{ready:?}");
    assert_eq!(fleet.shard_count(), 4);
    assert_eq!(fleet.shard_for_guild(guild), ShardId::new(2, 4));
    // The same guild's event from both sets during the overlap: tagged apart, one of them
    // the guild's shard in the fleet's set.
    server.perform(ScriptAction::shard_dispatch(
        ShardId::new(2, 4),
        "GUILD_EVENT",
        "2",
    ));
    // The old set closes.
    let mut stopped = Vec::new();
    let mut seen = false;
    let events = until(&mut fleet, |e| {
        if let FleetEvent::Stopped {
            shard,
            reason,
            session,
        } = e
        {
            assert_eq!(*reason, StopReason::Replaced);
            assert!(session.is_none());
            stopped.push(*shard);
        }
        seen |= e
            .as_dispatch()
            .is_some_and(|(_, d)| d.name == "GUILD_EVENT");
        stopped.len() == 2 && seen
    })
    .await;
    stopped.sort();
    assert_eq!(stopped, old);
    let second = dispatches(&events, "GUILD_EVENT");
    assert_eq!(second, [(ShardId::new(2, 4), "2")]);
    assert_eq!(fleet.shards(), new);
    assert!(fleet.statuses().iter().all(|s| s.ready));
    let ended = server
        .wait_until_async(Duration::from_secs(5), |g| {
            g.sessions().iter().filter(|s| s.valid).count() == 4
        })
        .await;
    assert!(ended, "the old sessions were not ended");
    let gateway = server.stop_async().await;
    assert_eq!(identifies(&gateway).len(), 6);
    // The old sessions were ended (close 1000), the new ones run.
    let valid: Vec<Option<ShardId>> = gateway
        .sessions()
        .iter()
        .filter(|s| s.valid)
        .map(|s| s.shard)
        .collect();
    assert_eq!(valid.len(), 4, "{valid:?}");
    assert!(valid.iter().all(|s| s.is_some_and(|s| s.count == 4)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_shutdown_the_stream_ends_with_every_shards_stop() {
    let server = gateway(Duration::from_secs(30));
    let set: Vec<ShardId> = shards(3).collect();
    let mut fleet = Fleet::builder(config(&server))
        .identify_queue(queue(3, Duration::from_millis(50)))
        .start(set.clone())
        .expect("fleet");
    until_ready(&mut fleet, &set).await;
    let sessions = fleet.shutdown(true).await;
    assert_eq!(sessions.len(), 3);
    assert!(sessions.iter().all(|(_, s)| s.is_some()));
    assert_eq!(
        fleet.add(ShardId::new(0, 3)),
        Err(discord_gateway::fleet::FleetError::ShutDown)
    );
    let mut stopped = 0;
    let rest = tokio::time::timeout(LIMIT, async {
        while let Some(event) = fleet.next_event().await {
            stopped += usize::from(matches!(event, FleetEvent::Stopped { .. }));
        }
    })
    .await;
    assert!(rest.is_ok(), "the stream did not end");
    assert_eq!(stopped, 3);
    server.stop_async().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_that_ends_by_itself_leaves_the_fleet() {
    let server = gateway(Duration::from_secs(30));
    let (a, b) = (ShardId::new(0, 2), ShardId::new(1, 2));
    let mut fleet = Fleet::builder(config(&server))
        .identify_queue(queue(2, Duration::from_millis(50)))
        .start([a])
        .expect("fleet");
    until_ready(&mut fleet, &[a]).await;
    // Closed by the application through its sender, keeping the session: the fleet lets
    // it go and says so, with the session.
    let kept = fleet
        .sender(a)
        .expect("running")
        .close(true)
        .await
        .expect("kept");
    let events = until(&mut fleet, |e| matches!(e, FleetEvent::Stopped { .. })).await;
    assert!(matches!(
        events.last(),
        Some(FleetEvent::Stopped { shard, reason: StopReason::Ended, session: Some(s) })
            if *shard == a && s.id == kept.id
    ));
    assert!(fleet.shards().is_empty());
    // A fatal close (4004: the token is wrong) ends a shard for good: Fatal, then Stopped.
    fleet.add(b).expect("added");
    until_ready(&mut fleet, &[b]).await;
    server.perform(ScriptAction::close(4004));
    let events = until(&mut fleet, |e| matches!(e, FleetEvent::Stopped { .. })).await;
    assert!(events.iter().any(|e| matches!(
        e,
        FleetEvent::Shard { shard, event: ShardEvent::Fatal(_) } if *shard == b
    )));
    assert_eq!(
        events.last(),
        Some(&FleetEvent::Stopped {
            shard: b,
            reason: StopReason::Ended,
            session: None
        })
    );
    assert!(fleet.shards().is_empty());
    server.stop_async().await;
}
