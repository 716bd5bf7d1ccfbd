//! The fake gateway itself: its checks of what a client sends must fire, or the scenario
//! tests' "no violations" would prove nothing. Driven by hand, without a machine.
#![cfg(feature = "sim")]

mod common;

use common::*;
use discord_gateway_proto::sim::{
    Closer, ConnectBehavior, ConnectionId, FakeGateway, FakeGatewayConfig, ScriptAction,
    ServerAction, ServerOutput, Trigger, ViolationKind,
};
use discord_gateway_proto::Timestamp;

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
