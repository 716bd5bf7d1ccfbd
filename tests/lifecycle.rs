//! Lifecycle: Hello then Identify or Resume, READY's session and resume URL, which URL each
//! connection goes to, and identify gating.
#![cfg(feature = "sim")]

mod common;

use common::*;
use discord_gateway_proto::sim::{
    ConnectBehavior, FakeGatewayConfig, GrantPolicy, ScriptAction, SimDriver, SimEvent, Trigger,
};
use discord_gateway_proto::{
    Command, CommandError, DisconnectReason, Event, Intents, OpCode, Phase, ShardId,
};

#[test]
fn hello_then_identify_for_a_new_session() {
    let mut sim = SimDriver::new(
        config()
            .with_shard(ShardId::new(1, 4))
            .with_large_threshold(100),
        1,
        gateway(),
    )
    .unwrap();
    let ready = run_to_ready(&mut sim);
    let connects: Vec<_> = sim.trace().connects().collect();
    assert_eq!(connects, [(at_ms(0), MAIN_URL)]);
    let frames = sim.gateway().received();
    assert_eq!(frames[0].opcode, Some(2), "Identify is the first frame");
    assert_eq!(
        frames[0].time,
        sim.gateway().connections()[0].hello_at.unwrap()
    );
    let d = frames[0].data().unwrap();
    assert_eq!(d["token"], "<redacted>", "the record never keeps the token");
    assert_eq!(d["shard"], serde_json::json!([1, 4]));
    assert_eq!(d["large_threshold"], 100);
    assert_eq!(
        d["intents"],
        (Intents::GUILDS | Intents::GUILD_MESSAGES).bits()
    );
    assert_eq!(d["properties"]["os"], "linux");
    assert_eq!(ready, at_ms(100));
    assert_eq!(sim.machine().phase(), Phase::Connected);
    assert_clean(&sim);
}

#[test]
fn identify_waits_for_hello() {
    let mut sim = SimDriver::new(
        config(),
        1,
        discord_gateway_proto::sim::FakeGateway::new(FakeGatewayConfig {
            hello_delay: Some(secs(3)),
            ..gateway_config()
        }),
    )
    .unwrap();
    sim.run_until(at_ms(2_999));
    assert!(sim.trace().client_frames().next().is_none());
    assert_eq!(sim.machine().phase(), Phase::AwaitingHello);
    run_to_ready(&mut sim);
    assert_eq!(sim.trace().send_times(OpCode::Identify), [at_ms(3_000)]);
    assert_clean(&sim);
}

#[test]
fn ready_gives_the_session_id_and_resume_url() {
    let mut sim = sim(1);
    run_to_ready(&mut sim);
    let session = sim.machine().session().unwrap();
    assert_eq!(session.id, sim.gateway().sessions()[0].id);
    assert_eq!(session.sequence, 1);
    assert_eq!(session.resume_url.as_deref(), Some(RESUME));
    let info = sim.machine().ready_info().unwrap();
    assert_eq!(info.session_id, "sim-session-1");
    assert_eq!(info.resume_gateway_url.as_deref(), Some(RESUME));
    // READY is reported as an event and as the dispatch itself.
    let dispatches: Vec<_> = sim
        .trace()
        .dispatches()
        .map(|(_, d)| (d.name.clone(), d.sequence))
        .collect();
    assert_eq!(dispatches, [("READY".to_string(), 1)]);
}

#[test]
fn resume_waits_for_hello_and_goes_to_the_resume_url_with_the_same_query() {
    let mut sim = SimDriver::new(
        config().with_gateway_url("ws://127.0.0.1:9000/gateway"),
        2,
        discord_gateway_proto::sim::FakeGateway::new(FakeGatewayConfig {
            hello_delay: Some(secs(2)),
            ..gateway_config()
        }),
    )
    .unwrap();
    sim.gateway_mut().at(at_ms(10_000), ScriptAction::Reconnect);
    run_to_resumed(&mut sim);
    let connects: Vec<_> = sim.trace().connects().collect();
    assert_eq!(
        connects,
        [
            (at_ms(0), "ws://127.0.0.1:9000/gateway?v=10&encoding=json"),
            (at_ms(10_000), RESUME_URL)
        ]
    );
    let query = |u: &str| url::Url::parse(u).unwrap().query().map(String::from);
    assert_eq!(query(connects[0].1), query(connects[1].1));
    // The Resume is sent when Hello arrives, not before.
    let hello = sim.gateway().connections()[1].hello_at.unwrap();
    assert_eq!(hello, at_ms(12_000));
    let on_second: Vec<_> = sim
        .gateway()
        .received()
        .iter()
        .filter(|f| f.connection.0 == 2)
        .collect();
    assert_eq!(on_second[0].opcode, Some(6));
    assert_eq!(on_second[0].time, hello);
    assert_clean(&sim);
}

#[test]
fn op7_reconnect_closes_with_a_resumable_code_and_resumes() {
    let mut sim = sim(3);
    sim.gateway_mut().at(at_ms(20_000), ScriptAction::Reconnect);
    run_to_ready(&mut sim);
    let resumed = run_to_resumed(&mut sim);
    let closes: Vec<_> = sim.trace().client_closes().collect();
    assert_eq!(closes.len(), 1);
    assert_eq!(closes[0].0, at_ms(20_000));
    assert!(!matches!(closes[0].1, 1000 | 1001));
    assert_eq!(
        disconnect_reasons(&sim),
        [DisconnectReason::ReconnectRequested]
    );
    assert_eq!(resumed, at_ms(20_100));
    assert_eq!(
        sim.gateway().received_op(6).next().unwrap().time,
        at_ms(20_000)
    );
    assert_eq!(sim.gateway().received_op(2).count(), 1);
    assert_clean(&sim);
}

#[test]
fn op7_instead_of_hello_resumes_nothing_and_identifies() {
    // Op 7 may come at any time, even instead of Hello. With no session there is nothing to
    // resume: the next connection identifies.
    let mut gateway = gateway();
    gateway
        .connect_rule(MAIN, ConnectBehavior::AcceptWithoutHello, Some(1))
        .at(at_ms(1_000), ScriptAction::Reconnect);
    let mut sim = SimDriver::new(config(), 3, gateway).unwrap();
    run_to_ready(&mut sim);
    let connects: Vec<_> = sim.trace().connects().map(|(_, u)| u).collect();
    assert_eq!(connects, [MAIN_URL, MAIN_URL]);
    assert_eq!(sim.trace().send_times(OpCode::Identify), [at_ms(1_000)]);
    assert_eq!(
        disconnect_reasons(&sim),
        [DisconnectReason::ReconnectRequested]
    );
    assert_clean(&sim);
}

#[test]
fn a_failed_connect_to_the_resume_url_falls_back_to_the_main_url_and_resumes() {
    let mut sim = sim(4);
    sim.gateway_mut()
        .connect_rule(RESUME, ConnectBehavior::Refuse, None)
        .at(at_ms(20_000), ScriptAction::Reconnect);
    run_to_ready(&mut sim);
    sim.run_until(at_ms(20_000));
    let resumed = run_to_resumed(&mut sim);
    let connects: Vec<_> = sim.trace().connects().collect();
    assert_eq!(connects.len(), 3);
    assert_eq!(connects[1], (at_ms(20_000), RESUME_URL));
    assert_eq!(connects[2].1, MAIN_URL);
    let d = disconnects(&sim);
    assert_eq!(d[1].1.reason, DisconnectReason::TransportLost);
    assert!(
        d[1].1.resume,
        "the session is kept: resume through the main URL"
    );
    // The fallback is the second attempt in a row: exponential backoff's first step.
    let wait = connects[2].0.saturating_duration_since(connects[1].0);
    assert!(wait >= ms(500) && wait < ms(1_000), "{wait:?}");
    assert_eq!(connects[2].0, d[1].1.reconnect_at);
    let resumes: Vec<_> = sim
        .gateway()
        .received_op(6)
        .map(|f| f.connection.0)
        .collect();
    assert_eq!(resumes, [3], "Resume sent on the main URL's connection");
    assert_eq!(sim.gateway().received_op(2).count(), 1);
    assert_eq!(sim.machine().session().unwrap().id, "sim-session-1");
    assert!(resumed > connects[2].0);
    assert_clean(&sim);
}

#[test]
fn identify_gating_waits_for_the_grant() {
    let mut sim = SimDriver::new(config().with_auto_grant(false), 5, gateway())
        .unwrap()
        .with_grant_policy(GrantPolicy::Never);
    sim.run_until(at_ms(60_000));
    let requested: Vec<_> = sim
        .trace()
        .other_events()
        .filter(|(_, e)| **e == Event::IdentifyRequested)
        .map(|(t, _)| t)
        .collect();
    assert_eq!(requested, [at_ms(0)]);
    assert_eq!(sim.machine().phase(), Phase::AwaitingIdentifyGrant);
    assert_eq!(sim.gateway().received_op(2).count(), 0);
    // The connection is kept alive meanwhile.
    assert!(sim.gateway().received_op(1).count() >= 1);
    sim.run_until(at_ms(61_234));
    assert_eq!(sim.grant_identify(), Ok(()));
    assert_eq!(sim.trace().send_times(OpCode::Identify), [at_ms(61_234)]);
    assert_eq!(
        sim.grant_identify(),
        Err(CommandError::IdentifyNotRequested)
    );
    run_to_ready(&mut sim);
    assert_clean(&sim);
}

#[test]
fn a_grant_before_any_request_is_refused() {
    let mut sim = SimDriver::new(
        config().with_auto_grant(false),
        5,
        discord_gateway_proto::sim::FakeGateway::new(FakeGatewayConfig {
            hello_delay: Some(secs(1)),
            ..gateway_config()
        }),
    )
    .unwrap()
    .with_grant_policy(GrantPolicy::Never);
    assert_eq!(
        sim.grant_identify(),
        Err(CommandError::IdentifyNotRequested)
    );
    sim.run_until(at_ms(5_000));
    assert_eq!(sim.gateway().received_op(2).count(), 0);
}

#[test]
fn identify_gating_with_a_delayed_grant() {
    let mut sim = SimDriver::new(config().with_auto_grant(false), 5, gateway())
        .unwrap()
        .with_grant_policy(GrantPolicy::After(secs(5)));
    sim.gateway_mut()
        .at(at_ms(30_000), ScriptAction::InvalidSession(false));
    run_to_ready(&mut sim);
    sim.run_until(at_ms(60_000));
    let requested: Vec<_> = sim
        .trace()
        .other_events()
        .filter(|(_, e)| **e == Event::IdentifyRequested)
        .map(|(t, _)| t)
        .collect();
    let identifies = sim.trace().send_times(OpCode::Identify);
    assert_eq!(requested.len(), 2);
    assert_eq!(identifies.len(), 2);
    for (r, i) in requested.iter().zip(&identifies) {
        assert_eq!(i.saturating_duration_since(*r), secs(5));
    }
    assert_clean(&sim);
}

#[test]
fn auto_grant_identifies_without_asking() {
    let mut sim = sim(5);
    run_to_ready(&mut sim);
    assert!(!sim
        .trace()
        .other_events()
        .any(|(_, e)| *e == Event::IdentifyRequested));
    assert_eq!(sim.trace().send_times(OpCode::Identify), [at_ms(0)]);
}

#[test]
fn commands_wait_for_ready_then_go_out_in_order() {
    use discord_gateway_proto::protocol::commands::{Status, UpdatePresence};
    let presence = |status| {
        Command::UpdatePresence(UpdatePresence {
            since: None,
            activities: vec![],
            status,
            afk: false,
        })
    };
    let mut sim = sim(6);
    // Sent while connecting: held until READY.
    sim.send(presence(Status::Idle)).unwrap();
    sim.send(presence(Status::Dnd)).unwrap();
    assert_eq!(sim.machine().queued_commands(), 2);
    let ready = run_to_ready(&mut sim);
    let presences: Vec<_> = sim
        .gateway()
        .received_op(3)
        .map(|f| {
            (
                f.time,
                f.data().unwrap()["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(presences, [(ready, "idle".into()), (ready, "dnd".into())]);
    // Once connected, at once.
    sim.run_until(at_ms(5_000));
    sim.send(presence(Status::Online)).unwrap();
    assert_eq!(
        sim.gateway().received_op(3).last().unwrap().time,
        at_ms(5_000)
    );
    assert_clean(&sim);
}

#[test]
fn dispatch_stream_arrives_in_order_with_sequences() {
    let mut sim = sim(7);
    sim.gateway_mut().dispatch_stream(
        Trigger::ReadySent(1),
        ms(10),
        ms(10),
        (0..50).map(|i| ("GUILD_CREATE", format!(r#"{{"id":"{}"}}"#, 2000 + i))),
    );
    run_to_ready(&mut sim);
    sim.run_for(secs(5));
    let seqs: Vec<_> = sim.trace().dispatches().map(|(_, d)| d.sequence).collect();
    assert_eq!(seqs, (1..=51).collect::<Vec<_>>());
    let times: Vec<_> = sim.trace().dispatches().skip(1).map(|(t, _)| t).collect();
    assert_eq!(times[0], at_ms(110));
    assert_eq!(times[49], at_ms(600));
    assert_eq!(sim.machine().session().unwrap().sequence, 51);
    assert!(sim
        .trace()
        .events()
        .all(|(_, e)| !matches!(e, SimEvent::Other(Event::ProtocolError(_)))));
}

#[cfg(feature = "zlib-stream")]
#[test]
fn resumes_keep_the_compress_parameter() {
    use discord_gateway_proto::Compression;
    let mut sim = SimDriver::new(
        config().with_compression(Compression::ZlibStream),
        3,
        gateway(),
    )
    .unwrap();
    sim.gateway_mut().at(at_ms(20_000), ScriptAction::Reconnect);
    sim.run_until(at_ms(20_000));
    let urls: Vec<_> = sim.trace().connects().map(|(_, u)| u.to_string()).collect();
    assert_eq!(
        urls,
        [
            "wss://gateway.sim/?v=10&encoding=json&compress=zlib-stream",
            "wss://resume.sim/?v=10&encoding=json&compress=zlib-stream"
        ]
    );
}
