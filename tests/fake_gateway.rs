//! The fake gateway itself: its checks of what a client sends must fire, or the scenario
//! tests' "no violations" would prove nothing. Driven by hand, without a machine.
#![cfg(feature = "sim")]

mod common;

use common::*;
use discord_gateway_proto::sim::{
    Closer, ConnectBehavior, ConnectionId, FakeGateway, FakeGatewayConfig, ScriptAction,
    ServerAction, ServerOutput, SimGuild, SimMessage, SimUser, Trigger, ViolationKind,
};
use discord_gateway_proto::{ShardId, Timestamp};

const IDENTIFY: &str = r#"{"op":2,"d":{"token":"SIM.TOKEN.s3cr3t-never-printed","properties":{"os":"linux","browser":"x","device":"x"},"intents":1,"shard":[0,1]}}"#;

/// Runs the fake to `now` and returns what it sent.
fn outputs(gw: &mut FakeGateway, now: Timestamp) -> Vec<ServerOutput> {
    gw.handle_timeout(now);
    std::iter::from_fn(|| gw.poll_output()).collect()
}

fn texts(out: &[ServerOutput]) -> Vec<String> {
    out.iter()
        .filter_map(|o| match &o.action {
            ServerAction::Text(t) => Some(t.clone()),
            _ => None,
        })
        .collect()
}

fn kinds(gw: &FakeGateway) -> Vec<ViolationKind> {
    gw.violations().iter().map(|v| v.kind.clone()).collect()
}

/// A gateway with one open connection that got Hello.
fn open() -> (FakeGateway, ConnectionId) {
    let mut gw = gateway();
    let c = gw.handle_connect(at_ms(0), MAIN_URL);
    let out = outputs(&mut gw, at_ms(0));
    assert_eq!(out[0].action, ServerAction::Accept);
    assert!(texts(&out)[0].contains(r#""op":10"#));
    (gw, c)
}

fn last_close(out: &[ServerOutput]) -> Option<u16> {
    out.iter().rev().find_map(|o| match o.action {
        ServerAction::Close { code, .. } => Some(code),
        _ => None,
    })
}

#[test]
fn identify_ready_heartbeat_ack() {
    let (mut gw, c) = open();
    gw.handle_text(at_ms(10), c, IDENTIFY);
    assert!(outputs(&mut gw, at_ms(50)).is_empty());
    let out = outputs(&mut gw, at_ms(110));
    let ready: serde_json::Value = serde_json::from_str(&texts(&out)[0]).unwrap();
    assert_eq!(ready["t"], "READY");
    assert_eq!(ready["s"], 1);
    assert_eq!(ready["d"]["session_id"], "sim-session-1");
    assert_eq!(ready["d"]["resume_gateway_url"], RESUME);
    gw.handle_text(at_ms(200), c, r#"{"op":1,"d":1}"#);
    assert_eq!(gw.poll_timeout(), Some(at_ms(250)));
    assert_eq!(
        texts(&outputs(&mut gw, at_ms(250))),
        [r#"{"op":11,"d":null}"#]
    );
    assert!(gw.violations().is_empty());
    assert_eq!(gw.received()[0].data().unwrap()["token"], "<redacted>");
    assert!(!gw.received()[0].text.contains("s3cr3t"));
}

#[test]
fn resume_before_hello_is_a_violation() {
    let mut gw = FakeGateway::new(FakeGatewayConfig {
        hello_delay: Some(secs(5)),
        ..gateway_config()
    });
    let c = gw.handle_connect(at_ms(0), MAIN_URL);
    outputs(&mut gw, at_ms(0));
    gw.handle_text(
        at_ms(1),
        c,
        r#"{"op":6,"d":{"token":"SIM.TOKEN.s3cr3t-never-printed","session_id":"x","seq":1}}"#,
    );
    assert_eq!(kinds(&gw)[0], ViolationKind::BeforeHello(6));
    // Unknown session: op 9 false.
    assert_eq!(
        texts(&outputs(&mut gw, at_ms(200))),
        [r#"{"op":9,"d":false}"#]
    );
}

#[test]
fn malformed_payloads_are_violations_closed_with_4002() {
    let cases = [
        (
            r#"{"op":2,"d":{"token":"t","properties":{"os":"linux","browser":"x","device":"x"}}}"#,
            "identify without intents",
        ),
        (
            r#"{"op":2,"d":{"token":"t","properties":{},"intents":1}}"#,
            "identify without properties",
        ),
        (
            r#"{"op":2,"d":{"token":"t","properties":{"os":"a","browser":"b","device":"c"},"intents":1,"shard":[1,1]}}"#,
            "shard id >= count",
        ),
        (
            r#"{"op":6,"d":{"token":"t","session_id":"x"}}"#,
            "resume without seq",
        ),
        (r#"{"op":1,"d":"x"}"#, "heartbeat with a string d"),
        ("not json", "not json"),
    ];
    for (frame, what) in cases {
        let (mut gw, c) = open();
        gw.handle_text(at_ms(10), c, frame);
        assert_eq!(gw.violations().len(), 1, "{what}: {:?}", gw.violations());
        assert_eq!(
            last_close(&outputs(&mut gw, at_ms(10))),
            Some(4002),
            "{what}"
        );
        assert_eq!(
            gw.connection(c).unwrap().closed,
            Some((at_ms(10), Closer::Server(4002)))
        );
    }
}

#[test]
fn auth_rules() {
    // A command before Identify: 4003.
    let (mut gw, c) = open();
    gw.handle_text(at_ms(10), c, r#"{"op":3,"d":{}}"#);
    assert_eq!(kinds(&gw), [ViolationKind::NotAuthenticated(3)]);
    assert_eq!(last_close(&outputs(&mut gw, at_ms(10))), Some(4003));
    // Identify twice: 4005.
    let (mut gw, c) = open();
    gw.handle_text(at_ms(10), c, IDENTIFY);
    gw.handle_text(at_ms(20), c, IDENTIFY);
    assert_eq!(kinds(&gw), [ViolationKind::AlreadyAuthenticated]);
    assert_eq!(last_close(&outputs(&mut gw, at_ms(20))), Some(4005));
    // A wrong token: 4004, not a violation.
    let (mut gw, c) = open();
    gw.handle_text(at_ms(10), c, &IDENTIFY.replace("s3cr3t", "other"));
    assert!(gw.violations().is_empty());
    assert_eq!(last_close(&outputs(&mut gw, at_ms(10))), Some(4004));
    // An opcode a client never sends: 4001.
    let (mut gw, c) = open();
    gw.handle_text(at_ms(10), c, r#"{"op":11}"#);
    assert_eq!(kinds(&gw), [ViolationKind::UnknownOpcode(11)]);
    assert_eq!(last_close(&outputs(&mut gw, at_ms(10))), Some(4001));
}

#[test]
fn heartbeat_d_must_be_the_last_sequence_sent() {
    let (mut gw, c) = open();
    gw.handle_text(at_ms(10), c, IDENTIFY);
    outputs(&mut gw, at_ms(110));
    gw.handle_text(at_ms(200), c, r#"{"op":1,"d":null}"#);
    gw.handle_text(at_ms(300), c, r#"{"op":1,"d":5}"#);
    gw.handle_text(at_ms(400), c, r#"{"op":1,"d":1}"#);
    assert_eq!(
        kinds(&gw),
        [
            ViolationKind::HeartbeatSequence {
                expected: Some(1),
                got: None
            },
            ViolationKind::HeartbeatSequence {
                expected: Some(1),
                got: Some(5)
            },
        ]
    );
}

#[test]
fn size_rate_and_url_checks() {
    let (mut gw, c) = open();
    gw.handle_text(at_ms(10), c, IDENTIFY);
    let big = format!(r#"{{"op":3,"d":"{}"}}"#, "x".repeat(5000));
    gw.handle_text(at_ms(20), c, &big);
    assert!(matches!(kinds(&gw)[0], ViolationKind::PayloadTooLarge(n) if n > 4096));
    assert_eq!(last_close(&outputs(&mut gw, at_ms(20))), Some(4002));

    let (mut gw, c) = open();
    gw.handle_text(at_ms(10), c, IDENTIFY);
    for i in 0..119 {
        gw.handle_text(at_ms(100 + i * 100), c, r#"{"op":3,"d":{}}"#);
    }
    assert!(
        gw.violations().is_empty(),
        "120 in a minute (Identify included) is fine"
    );
    gw.handle_text(at_ms(20_000), c, r#"{"op":3,"d":{}}"#);
    assert_eq!(kinds(&gw), [ViolationKind::RateLimited]);
    assert_eq!(last_close(&outputs(&mut gw, at_ms(20_000))), Some(4008));

    let mut gw = gateway();
    gw.handle_connect(at_ms(0), "wss://gateway.sim/?encoding=json");
    gw.handle_connect(at_ms(0), "wss://gateway.sim/?v=10");
    assert!(matches!(
        &kinds(&gw)[..],
        [ViolationKind::BadUrl(_), ViolationKind::BadUrl(_)]
    ));
}

#[test]
fn frames_on_a_closed_connection_are_violations() {
    let (mut gw, c) = open();
    gw.handle_close(at_ms(10), c, Some(4000));
    gw.handle_text(at_ms(20), c, r#"{"op":1,"d":null}"#);
    assert_eq!(kinds(&gw), [ViolationKind::NotOpen]);
}

#[test]
fn resume_replays_in_order_and_a_1000_close_ends_the_session() {
    let (mut gw, c) = open();
    gw.handle_text(at_ms(10), c, IDENTIFY);
    outputs(&mut gw, at_ms(110));
    gw.handle_close(at_ms(1_000), c, Some(4000));
    gw.perform(at_ms(1_100), ScriptAction::dispatch("A", "1"));
    gw.perform(at_ms(1_200), ScriptAction::dispatch("B", "2"));
    let c2 = gw.handle_connect(at_ms(2_000), RESUME_URL);
    outputs(&mut gw, at_ms(2_000));
    gw.handle_text(
        at_ms(2_000),
        c2,
        r#"{"op":6,"d":{"token":"SIM.TOKEN.s3cr3t-never-printed","session_id":"sim-session-1","seq":1}}"#,
    );
    let replay = texts(&outputs(&mut gw, at_ms(2_100)));
    assert_eq!(
        replay,
        [
            r#"{"t":"A","s":2,"op":0,"d":1}"#,
            r#"{"t":"B","s":3,"op":0,"d":2}"#,
            r#"{"t":"RESUMED","s":4,"op":0,"d":null}"#
        ]
    );
    gw.handle_close(at_ms(3_000), c2, Some(1000));
    assert!(!gw.sessions()[0].valid);
    assert!(gw.violations().is_empty());
}

#[test]
fn connect_rules_and_triggers() {
    let mut gw = gateway();
    gw.connect_rule(MAIN, ConnectBehavior::Refuse, Some(1))
        .connect_rule(MAIN, ConnectBehavior::Hang, Some(1))
        .after(Trigger::Connected(1), secs(2), ScriptAction::Reconnect);
    let c1 = gw.handle_connect(at_ms(0), MAIN_URL);
    assert_eq!(
        outputs(&mut gw, at_ms(0))[0],
        ServerOutput {
            connection: c1,
            action: ServerAction::Refuse
        }
    );
    let c2 = gw.handle_connect(at_ms(1), MAIN_URL);
    assert!(outputs(&mut gw, at_ms(60_000)).is_empty(), "hangs");
    gw.handle_close(at_ms(60_000), c2, None);
    let c3 = gw.handle_connect(at_ms(60_000), MAIN_URL);
    let out = outputs(&mut gw, at_ms(60_000));
    assert_eq!(
        out[0],
        ServerOutput {
            connection: c3,
            action: ServerAction::Accept
        }
    );
    assert_eq!(gw.poll_timeout(), Some(at_ms(62_000)));
    assert_eq!(
        texts(&outputs(&mut gw, at_ms(62_000))),
        [r#"{"op":7,"d":null}"#]
    );
    assert_eq!(gw.open_connection(), Some(c3));
}

#[test]
fn a_client_close_discards_what_was_planned_for_the_connection() {
    let (mut gw, c) = open();
    gw.handle_text(at_ms(10), c, IDENTIFY);
    gw.handle_close(at_ms(50), c, Some(4000));
    assert_eq!(gw.poll_timeout(), None, "the READY for it is cancelled");
    assert!(outputs(&mut gw, at_ms(1_000)).is_empty());
}

/// Runs the fake deadline by deadline up to `until` (as a driver does: jobs run at their
/// own time, so what they trigger is timed from it) and returns what it sent.
fn outputs_until(gw: &mut FakeGateway, until: Timestamp) -> Vec<ServerOutput> {
    let mut out = Vec::new();
    while let Some(due) = gw.poll_timeout().filter(|&t| t <= until) {
        out.extend(outputs(gw, due));
    }
    out.extend(outputs(gw, until));
    out
}

/// The dispatches among `out`: `(t, d)`.
fn dispatches(out: &[ServerOutput]) -> Vec<(String, serde_json::Value)> {
    texts(out)
        .iter()
        .map(|t| serde_json::from_str::<serde_json::Value>(t).unwrap())
        .filter(|v| v["op"] == 0)
        .map(|v| (v["t"].as_str().unwrap().to_string(), v["d"].clone()))
        .collect()
}

#[test]
fn ready_echoes_the_identify_shard_and_leaves_it_out_without_one() {
    let identify = |shard: &str| {
        format!(
            r#"{{"op":2,"d":{{"token":"t","properties":{{"os":"linux","browser":"x","device":"x"}},"intents":1{shard}}}}}"#
        )
    };
    let ready_shard = |config: FakeGatewayConfig, shard: &str| {
        let mut gw = FakeGateway::new(config);
        let c = gw.handle_connect(at_ms(0), MAIN_URL);
        outputs(&mut gw, at_ms(0));
        gw.handle_text(at_ms(1), c, &identify(shard));
        let out = outputs(&mut gw, at_ms(200));
        let (name, d) = dispatches(&out).remove(0);
        assert_eq!(name, "READY");
        assert_eq!(gw.sessions()[0].shard.is_some(), d.get("shard").is_some());
        d.get("shard").cloned()
    };
    let default = FakeGatewayConfig::default;
    assert_eq!(
        ready_shard(default(), r#","shard":[3,8]"#),
        Some(serde_json::json!([3, 8]))
    );
    assert_eq!(ready_shard(default(), ""), None);
    let fixed = FakeGatewayConfig {
        ready_shard: Some(ShardId::new(1, 2)),
        ..default()
    };
    assert_eq!(
        ready_shard(fixed, r#","shard":[3,8]"#),
        Some(serde_json::json!([1, 2]))
    );
}

#[test]
fn guild_creates_follow_ready_one_delay_apart_and_only_after_identify() {
    let bot = SimUser::bot(77, "robot");
    let mut gw = FakeGateway::new(FakeGatewayConfig {
        user: bot.clone(),
        guilds: vec![SimGuild::new(10, "ten"), SimGuild::new(20, "twenty")],
        guild_create_delay: Some(ms(30)),
        ..gateway_config()
    });
    let (c, _) = (
        gw.handle_connect(at_ms(0), MAIN_URL),
        outputs(&mut gw, at_ms(0)),
    );
    gw.handle_text(at_ms(10), c, IDENTIFY);
    // READY at 110 ms lists both guilds as unavailable.
    let ready = dispatches(&outputs(&mut gw, at_ms(110)));
    assert_eq!(ready.len(), 1);
    assert_eq!(ready[0].1["user"]["id"], "77");
    assert_eq!(ready[0].1["user"]["username"], "robot");
    assert_eq!(
        ready[0].1["guilds"],
        serde_json::json!([{"id":"10","unavailable":true},{"id":"20","unavailable":true}])
    );
    assert!(outputs(&mut gw, at_ms(139)).is_empty());
    let first = dispatches(&outputs(&mut gw, at_ms(140)));
    assert_eq!(first[0].0, "GUILD_CREATE");
    assert_eq!(first[0].1["name"], "ten");
    assert_eq!(first[0].1["members"][0]["user"]["id"], "77");
    assert!(outputs(&mut gw, at_ms(169)).is_empty());
    let second = dispatches(&outputs(&mut gw, at_ms(170)));
    assert_eq!(second[0].1["name"], "twenty");
    assert_eq!(gw.sessions()[0].sequence, 3);

    // A resumed session gets no GUILD_CREATE again.
    gw.handle_close(at_ms(200), c, Some(4000));
    let c2 = gw.handle_connect(at_ms(300), RESUME_URL);
    outputs(&mut gw, at_ms(300));
    gw.handle_text(
        at_ms(301),
        c2,
        r#"{"op":6,"d":{"token":"SIM.TOKEN.s3cr3t-never-printed","session_id":"sim-session-1","seq":3}}"#,
    );
    let resumed: Vec<String> = dispatches(&outputs(&mut gw, at_ms(2_000)))
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(resumed, ["RESUMED"]);
    assert!(gw.violations().is_empty(), "{:?}", gw.violations());
}

#[test]
fn no_guild_create_when_the_delay_is_none() {
    let mut gw = FakeGateway::new(FakeGatewayConfig {
        guilds: vec![SimGuild::new(10, "ten")],
        guild_create_delay: None,
        ..gateway_config()
    });
    let c = gw.handle_connect(at_ms(0), MAIN_URL);
    outputs(&mut gw, at_ms(0));
    gw.handle_text(at_ms(10), c, IDENTIFY);
    let names: Vec<String> = dispatches(&outputs(&mut gw, at_ms(10_000)))
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(names, ["READY"]);
}

#[test]
fn member_requests_for_known_guilds_are_answered_after_the_delay() {
    let guild = SimGuild::new(10, "ten")
        .with_member(SimUser::person(1, "alice"))
        .with_member(SimUser::person(2, "albert"))
        .with_member(SimUser::person(3, "bob"));
    let mut gw = FakeGateway::new(FakeGatewayConfig {
        guilds: vec![guild],
        guild_create_delay: None,
        member_chunk_delay: Some(ms(40)),
        ..gateway_config()
    });
    let c = gw.handle_connect(at_ms(0), MAIN_URL);
    outputs(&mut gw, at_ms(0));
    gw.handle_text(at_ms(10), c, IDENTIFY);
    outputs(&mut gw, at_ms(200));
    // A query, with a nonce; an unknown guild (no answer); explicit ids.
    gw.handle_text(
        at_ms(300),
        c,
        r#"{"op":8,"d":{"guild_id":"10","query":"Al","limit":1,"nonce":"n1"}}"#,
    );
    gw.handle_text(
        at_ms(301),
        c,
        r#"{"op":8,"d":{"guild_id":"99","query":"","limit":0}}"#,
    );
    gw.handle_text(
        at_ms(302),
        c,
        r#"{"op":8,"d":{"guild_id":"10","user_ids":["3","4"],"presences":true}}"#,
    );
    assert!(outputs(&mut gw, at_ms(339)).is_empty());
    let first = dispatches(&outputs(&mut gw, at_ms(340)));
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].0, "GUILD_MEMBERS_CHUNK");
    assert_eq!(first[0].1["nonce"], "n1");
    assert_eq!(first[0].1["members"].as_array().unwrap().len(), 1);
    assert_eq!(first[0].1["members"][0]["user"]["username"], "alice");
    let rest = dispatches(&outputs(&mut gw, at_ms(10_000)));
    assert_eq!(rest.len(), 1, "only the known guild is answered: {rest:?}");
    assert_eq!(rest[0].1["members"][0]["user"]["id"], "3");
    assert_eq!(rest[0].1["not_found"], serde_json::json!(["4"]));
    // Presences were asked for, but the session lacks the GUILD_PRESENCES intent.
    assert!(rest[0].1.get("presences").is_none());
    assert!(gw.violations().is_empty(), "{:?}", gw.violations());
}

#[test]
fn member_chunks_hold_1000_members_and_presences_need_the_intent() {
    let mut guild = SimGuild::new(10, "big");
    for id in 1..=2_500 {
        guild = guild.with_member(SimUser::person(id, format!("user{id}")));
    }
    let mut gw = FakeGateway::new(FakeGatewayConfig {
        guilds: vec![guild],
        guild_create_delay: None,
        ..gateway_config()
    });
    let c = gw.handle_connect(at_ms(0), MAIN_URL);
    outputs(&mut gw, at_ms(0));
    // Intents GUILDS | GUILD_MEMBERS | GUILD_PRESENCES.
    gw.handle_text(
        at_ms(10),
        c,
        &IDENTIFY.replace(r#""intents":1"#, r#""intents":259"#),
    );
    outputs(&mut gw, at_ms(200));
    gw.handle_text(
        at_ms(300),
        c,
        r#"{"op":8,"d":{"guild_id":"10","query":"","limit":0,"presences":true,"nonce":"all"}}"#,
    );
    let chunks = dispatches(&outputs(&mut gw, at_ms(350)));
    let sizes: Vec<usize> = chunks
        .iter()
        .map(|(_, d)| d["members"].as_array().unwrap().len())
        .collect();
    // The bot and its 2,500 fellow members.
    assert_eq!(sizes, [1000, 1000, 501]);
    for (i, (name, d)) in chunks.iter().enumerate() {
        assert_eq!(name, "GUILD_MEMBERS_CHUNK");
        assert_eq!(d["chunk_index"], i);
        assert_eq!(d["chunk_count"], 3);
        assert_eq!(d["nonce"], "all");
        assert_eq!(d["presences"].as_array().unwrap().len(), sizes[i]);
    }
    // A prefix returns at most 100.
    gw.handle_text(
        at_ms(400),
        c,
        r#"{"op":8,"d":{"guild_id":"10","query":"user1","limit":0}}"#,
    );
    let chunk = dispatches(&outputs(&mut gw, at_ms(450)));
    assert_eq!(chunk[0].1["members"].as_array().unwrap().len(), 100);
}

#[test]
fn guild_message_content_needs_the_message_content_intent() {
    let guild = SimGuild::new(10, "ten");
    let bot = SimUser::default();
    let author = SimUser::person(5, "eve");
    let mut gw = FakeGateway::new(FakeGatewayConfig {
        guild_create_delay: None,
        ..gateway_config()
    });
    for content in ["plain".to_string(), format!("hey <@{}>", bot.id)] {
        gw.after(
            Trigger::ReadySent(1),
            ms(100),
            ScriptAction::Message(SimMessage::in_guild(&guild, author.clone(), content)),
        );
    }
    gw.after(
        Trigger::ReadySent(1),
        ms(100),
        ScriptAction::Message(SimMessage::direct(6, author, "direct")),
    );
    let c = gw.handle_connect(at_ms(0), MAIN_URL);
    outputs(&mut gw, at_ms(0));
    // Intents GUILDS only.
    gw.handle_text(at_ms(10), c, IDENTIFY);
    let contents: Vec<String> = dispatches(&outputs_until(&mut gw, at_ms(1_000)))
        .into_iter()
        .filter(|(name, _)| name == "MESSAGE_CREATE")
        .map(|(_, d)| d["content"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(contents, ["", "hey <@1000>", "direct"]);
}

#[test]
fn scripted_messages_get_snowflakes_and_timestamps_of_the_virtual_time() {
    let guild = SimGuild::new(10, "ten");
    let author = SimUser::person(5, "eve");
    let mut gw = FakeGateway::new(FakeGatewayConfig {
        epoch_unix_ms: 1_700_000_000_000,
        guild_create_delay: None,
        ..gateway_config()
    });
    gw.after(
        Trigger::ReadySent(1),
        ms(1_000),
        ScriptAction::Message(SimMessage::in_guild(&guild, author.clone(), "one")),
    )
    .after(
        Trigger::ReadySent(1),
        ms(1_000),
        ScriptAction::Message(SimMessage::direct(6, author, "two")),
    );
    let c = gw.handle_connect(at_ms(0), MAIN_URL);
    outputs(&mut gw, at_ms(0));
    // Intents GUILDS | GUILD_MESSAGES | MESSAGE_CONTENT.
    gw.handle_text(
        at_ms(10),
        c,
        &IDENTIFY.replace(r#""intents":1"#, r#""intents":33281"#),
    );
    let out = dispatches(&outputs_until(&mut gw, at_ms(5_000)));
    let messages: Vec<&serde_json::Value> = out
        .iter()
        .filter(|(name, _)| name == "MESSAGE_CREATE")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(messages.len(), 2, "{out:?}");
    // READY at 110 ms, the messages 1 s later: 1_700_000_001_110 on the wall clock.
    let id = |m: &serde_json::Value| m["id"].as_str().unwrap().parse::<u64>().unwrap();
    let expected = (1_700_000_001_110u64 - 1_420_070_400_000) << 22;
    assert_eq!(id(messages[0]), expected);
    assert_eq!(id(messages[1]), expected | 1);
    assert_eq!(messages[0]["timestamp"], "2023-11-14T22:13:21.110000+00:00");
    assert_eq!(messages[0]["content"], "one");
    assert_eq!(messages[0]["guild_id"], "10");
    assert_eq!(messages[0]["channel_id"], "10");
    assert_eq!(messages[1]["channel_id"], "6");
    assert!(messages[1].get("guild_id").is_none());
}

#[test]
fn shard_dispatches_go_to_their_shards_session_and_are_replayed_when_it_is_away() {
    let identify = |shard: u32| {
        format!(
            r#"{{"op":2,"d":{{"token":"SIM.TOKEN.s3cr3t-never-printed","properties":{{"os":"linux","browser":"x","device":"x"}},"intents":1,"shard":[{shard},2]}}}}"#
        )
    };
    let mut gw = gateway();
    let a = gw.handle_connect(at_ms(0), MAIN_URL);
    let b = gw.handle_connect(at_ms(0), MAIN_URL);
    outputs(&mut gw, at_ms(0));
    gw.handle_text(at_ms(1), a, &identify(0));
    gw.handle_text(at_ms(1), b, &identify(1));
    outputs(&mut gw, at_ms(200));
    let (s0, s1) = (ShardId::new(0, 2), ShardId::new(1, 2));
    // Shard 0's dispatch goes to connection a, though b opened last.
    gw.perform(at_ms(300), ScriptAction::shard_dispatch(s0, "A", "1"));
    let out = outputs(&mut gw, at_ms(300));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].connection, a);
    assert_eq!(texts(&out), [r#"{"t":"A","s":2,"op":0,"d":1}"#]);
    // Shard 1 away (a close that keeps the session): its dispatch is logged as missed...
    gw.handle_close(at_ms(400), b, Some(4000));
    gw.perform(at_ms(500), ScriptAction::shard_dispatch(s1, "B", "2"));
    assert!(outputs(&mut gw, at_ms(500)).is_empty());
    // ... an unknown shard's goes nowhere...
    gw.perform(
        at_ms(500),
        ScriptAction::shard_dispatch(ShardId::new(5, 8), "X", "0"),
    );
    assert!(outputs(&mut gw, at_ms(500)).is_empty());
    // ... and shard 1's is replayed on its Resume.
    let c = gw.handle_connect(at_ms(600), RESUME_URL);
    outputs(&mut gw, at_ms(600));
    gw.handle_text(
        at_ms(600),
        c,
        r#"{"op":6,"d":{"token":"SIM.TOKEN.s3cr3t-never-printed","session_id":"sim-session-2","seq":1}}"#,
    );
    assert_eq!(
        texts(&outputs(&mut gw, at_ms(700))),
        [
            r#"{"t":"B","s":2,"op":0,"d":2}"#,
            r#"{"t":"RESUMED","s":3,"op":0,"d":null}"#
        ]
    );
    assert_eq!(gw.sessions()[0].sequence, 2);
    assert!(gw.violations().is_empty(), "{:?}", gw.violations());
}
