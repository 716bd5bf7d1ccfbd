//! Sessions: RESUMED with replay, op 9, the stale-session cutoff, the failed-resume
//! circuit breaker, and a saved session resumed by a new machine (process restart).
#![cfg(feature = "sim")]

mod common;

use common::*;
use discord_gateway_proto::config::SessionPolicy;
use discord_gateway_proto::sim::{
    ConnectBehavior, FakeGateway, FakeGatewayConfig, ScriptAction, SimDriver, Trigger,
};
use discord_gateway_proto::{
    DisconnectReason, Event, OpCode, Phase, Session, StartOptions, Timestamp,
};

fn message(n: u32) -> ScriptAction {
    ScriptAction::dispatch("MESSAGE_CREATE", format!(r#"{{"n":{n}}}"#))
}

#[test]
fn resume_replays_missed_dispatches_in_order_then_resumed() {
    let mut sim = SimDriver::new(
        config(),
        8,
        FakeGateway::new(FakeGatewayConfig {
            connect_delay: ms(500),
            ..gateway_config()
        }),
    )
    .unwrap();
    sim.gateway_mut()
        .at(at_ms(5_000), message(1))
        .at(at_ms(6_000), message(2))
        .at(at_ms(20_000), ScriptAction::Drop)
        // While the client reconnects: missed.
        .at(at_ms(20_100), message(3))
        .at(at_ms(20_200), message(4))
        .at(at_ms(20_300), message(5))
        // After RESUMED: live again.
        .at(at_ms(30_000), message(6));
    run_to_ready(&mut sim);
    sim.run_until(at_ms(20_000));
    assert_eq!(sim.machine().session().unwrap().sequence, 3);
    let resumed = run_to_resumed(&mut sim);
    sim.run_until(at_ms(31_000));

    let resume = sim.gateway().received_op(6).next().unwrap();
    assert_eq!(resume.data().unwrap()["seq"], 3);
    // Connect at 20.0 (immediate first reconnect), accepted at 20.5, Hello and Resume at
    // 20.5, replay and RESUMED 100 ms later.
    assert_eq!(resume.time, at_ms(20_500));
    assert_eq!(resumed, at_ms(20_600));
    let after_drop: Vec<_> = sim
        .trace()
        .dispatches()
        .filter(|(t, _)| *t > at_ms(20_000))
        .map(|(t, d)| (t, d.name.as_str(), d.sequence, d.data.as_str()))
        .collect();
    assert_eq!(
        after_drop,
        [
            (at_ms(20_600), "MESSAGE_CREATE", 4, r#"{"n":3}"#),
            (at_ms(20_600), "MESSAGE_CREATE", 5, r#"{"n":4}"#),
            (at_ms(20_600), "MESSAGE_CREATE", 6, r#"{"n":5}"#),
            (at_ms(20_600), "RESUMED", 7, "null"),
            (at_ms(30_000), "MESSAGE_CREATE", 8, r#"{"n":6}"#),
        ]
    );
    assert!(sim
        .trace()
        .other_events()
        .any(|(t, e)| t == resumed && *e == Event::Resumed { replayed: 3 }));
    assert_eq!(sim.machine().session().unwrap().sequence, 8);
    assert_eq!(sim.machine().phase(), Phase::Connected);
    assert_clean(&sim);
}

#[test]
fn resuming_an_unknown_session_gets_op9_false_and_identifies() {
    let mut sim = sim(9);
    sim.gateway_mut()
        .at(at_ms(19_000), ScriptAction::ForgetSessions)
        .at(at_ms(20_000), ScriptAction::Reconnect);
    run_to_ready(&mut sim);
    sim.run_until(at_ms(20_000));
    let ready = run_to_ready(&mut sim);
    let resume = sim.gateway().received_op(6).next().unwrap();
    assert_eq!(resume.time, at_ms(20_000));
    let invalid: Vec<_> = sim
        .trace()
        .other_events()
        .filter(|(_, e)| matches!(e, Event::InvalidSession { .. }))
        .collect();
    assert_eq!(invalid.len(), 1);
    assert_eq!(
        invalid[0],
        (at_ms(20_100), &Event::InvalidSession { resumable: false })
    );
    let connects: Vec<_> = sim.trace().connects().collect();
    assert_eq!(connects.len(), 3);
    assert_eq!(connects[1].1, RESUME_URL);
    assert_eq!(connects[2].1, MAIN_URL);
    let wait = connects[2].0.saturating_duration_since(at_ms(20_100));
    assert!(wait >= secs(1) && wait < secs(5), "{wait:?}");
    assert_eq!(
        sim.trace().send_times(OpCode::Identify).last(),
        Some(&connects[2].0)
    );
    assert_eq!(sim.machine().session().unwrap().id, "sim-session-2");
    assert!(ready > connects[2].0);
    assert_clean(&sim);
}

#[test]
fn op9_true_resumes_at_once() {
    let mut sim = sim(10);
    sim.gateway_mut()
        .at(at_ms(20_000), ScriptAction::InvalidSession(true));
    run_to_ready(&mut sim);
    run_to_resumed(&mut sim);
    let d = disconnects(&sim);
    assert_eq!(d.len(), 1);
    assert_eq!(
        d[0].1.reason,
        DisconnectReason::InvalidSession { resumable: true }
    );
    assert!(d[0].1.resume);
    assert_eq!(d[0].1.reconnect_at, at_ms(20_000));
    let closes: Vec<_> = sim.trace().client_closes().collect();
    assert_eq!(closes.len(), 1);
    assert!(!matches!(closes[0].1, 1000 | 1001));
    let connects: Vec<_> = sim.trace().connects().collect();
    assert_eq!(connects[1], (at_ms(20_000), RESUME_URL));
    assert_eq!(
        sim.gateway().received_op(6).next().unwrap().time,
        at_ms(20_000)
    );
    assert_eq!(sim.gateway().received_op(2).count(), 1);
    assert_clean(&sim);
}

#[test]
fn op9_false_drops_the_session_and_identifies_after_1_to_5_s() {
    let mut waits = Vec::new();
    for seed in 0..12 {
        let mut sim = sim(seed);
        sim.gateway_mut()
            .at(at_ms(20_000), ScriptAction::InvalidSession(false));
        run_to_ready(&mut sim);
        sim.run_until(at_ms(20_000));
        assert_eq!(sim.machine().session(), None);
        let d = disconnects(&sim);
        assert_eq!(d.len(), 1);
        assert_eq!(
            d[0].1.reason,
            DisconnectReason::InvalidSession { resumable: false }
        );
        assert!(!d[0].1.resume);
        run_to_ready(&mut sim);
        let connects: Vec<_> = sim.trace().connects().collect();
        assert_eq!(connects.len(), 2);
        assert_eq!(connects[1].1, MAIN_URL);
        assert_eq!(connects[1].0, d[0].1.reconnect_at);
        let wait = connects[1].0.saturating_duration_since(at_ms(20_000));
        assert!(wait >= secs(1) && wait < secs(5), "seed {seed}: {wait:?}");
        assert_eq!(sim.gateway().received_op(6).count(), 0);
        assert_eq!(sim.trace().send_times(OpCode::Identify)[1], connects[1].0);
        waits.push(wait);
        assert_clean(&sim);
    }
    waits.sort();
    waits.dedup();
    assert!(waits.len() > 6, "the wait is random: {waits:?}");
}

#[test]
fn a_resume_with_a_sequence_from_the_future_gets_op9_false() {
    // A saved session claims more than the server ever sent.
    let mut first = sim(1);
    run_to_ready(&mut first);
    first.shutdown(true).unwrap();
    let mut session = first.machine().session().unwrap().clone();
    session.sequence = 99;
    let (_, gateway, _) = first.into_parts();
    let now = gateway.now().saturating_add(secs(5));
    let mut sim = SimDriver::with_options(
        config(),
        StartOptions {
            session: Some(session),
            ..StartOptions::default()
        },
        2,
        now,
        gateway,
    )
    .unwrap();
    run_to_ready(&mut sim);
    let resume = sim.gateway().received_op(6).next().unwrap();
    assert_eq!(resume.data().unwrap()["seq"], 99);
    assert!(sim
        .trace()
        .other_events()
        .any(|(_, e)| *e == Event::InvalidSession { resumable: false }));
    assert_eq!(sim.machine().session().unwrap().id, "sim-session-2");
}

#[test]
fn failed_resumes_in_a_row_drop_the_session() {
    // Every Resume is answered with op 9 true: after three failures the machine identifies.
    let mut sim = sim(12);
    sim.gateway_mut().at(at_ms(20_000), ScriptAction::Reconnect);
    for n in 1..=3 {
        sim.gateway_mut().after(
            Trigger::ResumeReceived(n),
            ms(10),
            ScriptAction::InvalidSession(true),
        );
    }
    run_to_ready(&mut sim);
    sim.run_until(at_ms(20_000));
    run_to_ready(&mut sim);
    assert_eq!(sim.gateway().received_op(6).count(), 3);
    let urls: Vec<_> = sim.trace().connects().map(|(_, u)| u).collect();
    assert_eq!(
        urls,
        [MAIN_URL, RESUME_URL, RESUME_URL, RESUME_URL, MAIN_URL]
    );
    let d = disconnects(&sim);
    assert_eq!(d.len(), 4);
    assert!(d[..3].iter().all(|(_, d)| d.resume));
    assert!(!d[3].1.resume);
    // Failed attempts count up: exponential backoff between them.
    let gaps: Vec<_> = sim
        .trace()
        .connects()
        .skip(1)
        .collect::<Vec<_>>()
        .windows(2)
        .map(|w| w[1].0.saturating_duration_since(w[0].0))
        .collect();
    assert!(gaps[0] >= ms(510) && gaps[0] < ms(1_010), "{gaps:?}");
    assert!(gaps[1] >= ms(1_010) && gaps[1] < ms(2_010), "{gaps:?}");
    assert_clean(&sim);
}

/// A gateway whose first connection works, and whose later ones (to either URL) open but
/// never say Hello: an outage the session cannot be resumed through.
fn gateway_silent_after_the_first_connection() -> FakeGateway {
    let mut gateway = gateway();
    gateway
        .connect_rule(MAIN, ConnectBehavior::Accept, Some(1))
        .connect_rule(MAIN, ConnectBehavior::AcceptWithoutHello, None)
        .connect_rule(RESUME, ConnectBehavior::AcceptWithoutHello, None)
        .at(at_ms(20_000), ScriptAction::Drop);
    gateway
}

#[test]
fn a_stale_session_is_not_resumed_after_a_long_outage() {
    // Neither URL says Hello: each attempt times out, alternating between the resume URL
    // and the main URL, backoff grows, and once the last ACK is over 15 minutes old the
    // machine identifies at the main URL.
    let mut sim =
        SimDriver::new(config(), 14, gateway_silent_after_the_first_connection()).unwrap();
    run_to_ready(&mut sim);
    sim.run_until(at_ms(20_000));
    let last_alive = sim.machine().session().unwrap().last_alive;
    assert!(last_alive < at_ms(20_000));
    let cutoff = last_alive.saturating_add(secs(15 * 60));
    sim.run_until(cutoff);
    assert!(sim.machine().session().is_some(), "kept until the cutoff");
    sim.gateway_mut().config_mut().connect_rules.clear();
    run_to_ready(&mut sim);
    let connects: Vec<_> = sim.trace().connects().skip(1).collect();
    let (identify_at, identify_url) = *connects.last().unwrap();
    assert_eq!(identify_url, MAIN_URL);
    assert!(identify_at > cutoff, "{identify_at} vs {cutoff}");
    for (i, &(t, url)) in connects[..connects.len() - 1].iter().enumerate() {
        let want = if i % 2 == 0 { RESUME_URL } else { MAIN_URL };
        assert_eq!(url, want, "at {t}");
        assert!(
            t <= cutoff,
            "a resume attempt at {t} after the cutoff {cutoff}"
        );
    }
    assert!(connects.len() > 5);
    let d = disconnects(&sim);
    assert!(d[1..]
        .iter()
        .all(|(_, d)| d.reason == DisconnectReason::HelloTimeout));
    assert!(!d.last().unwrap().1.resume);
    assert_eq!(sim.gateway().received_op(6).count(), 0);
    assert_eq!(sim.gateway().received_op(2).count(), 2);
    assert_clean(&sim);
}

#[test]
fn the_stale_cutoff_is_configurable() {
    let policy = SessionPolicy {
        stale_after: secs(60),
        max_failed_resumes: u32::MAX,
    };
    let mut sim = SimDriver::new(
        config().with_session_policy(policy),
        14,
        gateway_silent_after_the_first_connection(),
    )
    .unwrap();
    run_to_ready(&mut sim);
    sim.run_until(at_ms(20_000));
    let last_alive = sim.machine().session().unwrap().last_alive;
    sim.run_until(last_alive.saturating_add(secs(60)));
    sim.gateway_mut().config_mut().connect_rules.clear();
    run_to_ready(&mut sim);
    let (t, url) = sim.trace().connects().last().unwrap();
    assert_eq!(url, MAIN_URL);
    assert!(t > last_alive.saturating_add(secs(60)));
    assert!(t < last_alive.saturating_add(secs(180)), "{t}");
}

/// Runs to READY, sees two dispatches, then shuts down keeping the session; returns the
/// saved session (through JSON) and the fake gateway.
fn saved_session() -> (Session, FakeGateway) {
    let mut sim = sim(15);
    sim.gateway_mut()
        .at(at_ms(3_000), message(1))
        .at(at_ms(4_000), message(2));
    run_to_ready(&mut sim);
    sim.run_until(at_ms(10_000));
    sim.shutdown(true).unwrap();
    let session = sim.machine().session().unwrap().clone();
    let json = serde_json::to_string(&session).unwrap();
    let restored: Session = serde_json::from_str(&json).unwrap();
    assert_eq!(restored, session, "serde round trip");
    assert_eq!(restored.sequence, 3);
    let (_, gateway, _) = sim.into_parts();
    (restored, gateway)
}

#[test]
fn a_new_machine_resumes_a_saved_session() {
    let (session, mut gateway) = saved_session();
    // Missed while the process was down.
    gateway.at(at_ms(12_000), message(3));
    let restart = at_ms(15_000);
    let mut sim = SimDriver::with_options(
        config(),
        StartOptions {
            session: Some(session),
            ..StartOptions::default()
        },
        99,
        restart,
        gateway,
    )
    .unwrap();
    let resumed = run_to_resumed(&mut sim);
    let connects: Vec<_> = sim.trace().connects().collect();
    assert_eq!(connects, [(restart, RESUME_URL)]);
    assert_eq!(sim.trace().sent_opcodes()[0], OpCode::Resume);
    let resume = sim.gateway().received_op(6).next().unwrap();
    assert_eq!(resume.time, restart);
    assert_eq!(resume.data().unwrap()["session_id"], "sim-session-1");
    assert_eq!(resume.data().unwrap()["seq"], 3);
    let replayed: Vec<_> = sim
        .trace()
        .dispatches()
        .map(|(_, d)| (d.name.clone(), d.sequence))
        .collect();
    assert_eq!(
        replayed,
        [
            ("MESSAGE_CREATE".to_string(), 4),
            ("RESUMED".to_string(), 5)
        ]
    );
    assert_eq!(resumed, restart.saturating_add(ms(100)));
    assert_eq!(
        sim.gateway().received_op(2).count(),
        1,
        "only the first process identified"
    );
    assert_clean(&sim);
}

#[test]
fn a_saved_session_past_the_cutoff_identifies() {
    for (age, resumes) in [(secs(14 * 60), true), (secs(16 * 60), false)] {
        let (session, gateway) = saved_session();
        let restart = at_ms(20_000).saturating_add(age);
        let session = session.with_ack_age(age, restart);
        let mut sim = SimDriver::with_options(
            config(),
            StartOptions {
                session: Some(session),
                ..StartOptions::default()
            },
            3,
            restart,
            gateway,
        )
        .unwrap();
        sim.run_for(secs(1));
        let url = sim.trace().connects().next().unwrap().1.to_string();
        let first = sim.trace().sent_opcodes()[0];
        if resumes {
            assert_eq!(
                (url.as_str(), first),
                (RESUME_URL, OpCode::Resume),
                "{age:?}"
            );
        } else {
            assert_eq!(
                (url.as_str(), first),
                (MAIN_URL, OpCode::Identify),
                "{age:?}"
            );
        }
    }
}

/// A driver whose clock starts at zero restores a session older than the process (issue
/// #14): the session is as old as it is, so the stale cutoff judges it right, with no need
/// to start the clock at the session's age.
#[test]
fn a_session_older_than_the_process_keeps_its_age_with_a_clock_from_zero() {
    for (age, resumes) in [(secs(14 * 60), true), (secs(16 * 60), false)] {
        let (session, _) = saved_session();
        let session = session.with_ack_age(age, Timestamp::ZERO);
        assert_eq!(session.ack_age(Timestamp::ZERO), age);
        let mut sim = SimDriver::with_options(
            config(),
            StartOptions {
                session: Some(session),
                ..StartOptions::default()
            },
            3,
            Timestamp::ZERO,
            gateway(),
        )
        .unwrap();
        sim.run_for(secs(1));
        let url = sim.trace().connects().next().unwrap().1.to_string();
        let first = sim.trace().sent_opcodes()[0];
        let expected = if resumes {
            (RESUME_URL, OpCode::Resume)
        } else {
            (MAIN_URL, OpCode::Identify)
        };
        assert_eq!((url.as_str(), first), expected, "{age:?}");
        // The clock was never shifted: the first connect is at zero.
        assert_eq!(sim.trace().connects().next().unwrap().0, Timestamp::ZERO);
    }
}
