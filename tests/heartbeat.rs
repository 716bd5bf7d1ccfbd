//! Heartbeating: first-beat jitter, the interval, `d`, op 1, ACKs and latency, the zombie
//! verdict, and time that jumps or goes backwards.
#![cfg(feature = "sim")]

mod common;

use std::time::Duration;

use common::*;
use discord_gateway_proto::config::{HeartbeatPolicy, Liveness};
use discord_gateway_proto::sim::{
    ConnectionId, FakeGateway, FakeGatewayConfig, ScriptAction, SimDriver, Trigger,
};
use discord_gateway_proto::{DisconnectReason, Event, Message, OpCode, Phase, Timestamp};

fn sim_with(gateway: FakeGatewayConfig, seed: u64) -> SimDriver {
    SimDriver::new(config(), seed, FakeGateway::new(gateway)).unwrap()
}

#[test]
fn first_beat_is_jittered_within_the_interval_then_one_every_interval() {
    let mut firsts = Vec::new();
    for seed in 0..20 {
        let mut sim = sim(seed);
        sim.run_until(at(INTERVAL * 5));
        let hello = sim.gateway().connections()[0].hello_at.unwrap();
        let beats = beats(&sim);
        let first = beats[0].saturating_duration_since(hello);
        assert!(first < INTERVAL, "seed {seed}: first beat {first:?}");
        for pair in beats.windows(2) {
            assert_eq!(
                pair[1].saturating_duration_since(pair[0]),
                INTERVAL,
                "seed {seed}"
            );
        }
        assert_eq!(beats.len(), 5, "seed {seed}: {beats:?}");
        firsts.push(first);
        assert_clean(&sim);
    }
    firsts.sort();
    firsts.dedup();
    assert!(
        firsts.len() >= 15,
        "jitter varies with the seed: {firsts:?}"
    );
    // Spread over the interval, not bunched at one end.
    assert!(firsts[0] < INTERVAL / 4 && *firsts.last().unwrap() > INTERVAL * 3 / 4);
}

#[test]
fn the_interval_comes_from_hello() {
    let mut sim = sim_with(
        FakeGatewayConfig {
            hello_interval: ms(5_000),
            ..gateway_config()
        },
        1,
    );
    sim.run_until(at_ms(30_000));
    assert_eq!(sim.machine().heartbeat_interval(), Some(ms(5_000)));
    let beats = beats(&sim);
    assert!(beats[0] < at_ms(5_000));
    for pair in beats.windows(2) {
        assert_eq!(pair[1].saturating_duration_since(pair[0]), ms(5_000));
    }
    assert_eq!(beats.len(), 6);
}

#[test]
fn heartbeat_d_is_null_before_any_sequence_then_the_last_sequence() {
    // READY comes late, so the first beats carry null.
    let mut sim = sim_with(
        FakeGatewayConfig {
            hello_interval: ms(10_000),
            ready_delay: ms(25_000),
            ..gateway_config()
        },
        9,
    );
    sim.gateway_mut().dispatch_stream(
        Trigger::ReadySent(1),
        ms(3_000),
        ms(7_000),
        (0..10).map(|i| ("MESSAGE_CREATE", format!(r#"{{"n":{i}}}"#))),
    );
    sim.run_until(at_ms(120_000));
    // For every beat, `d` is the sequence of the last dispatch before it (null if none).
    let mut last_seq = None;
    let mut checked = 0;
    for entry in sim.trace().entries() {
        use discord_gateway_proto::sim::{SimEvent, TraceKind};
        match &entry.kind {
            TraceKind::Event(SimEvent::Dispatch(d)) => last_seq = Some(d.sequence),
            TraceKind::ClientSend {
                opcode: OpCode::Heartbeat,
                text,
                ..
            } => {
                let v: serde_json::Value = serde_json::from_str(text).unwrap();
                assert_eq!(v["d"].as_u64(), last_seq, "at {}: {text}", entry.time);
                assert_eq!(v["d"].is_null(), last_seq.is_none());
                checked += 1;
            }
            _ => {}
        }
    }
    assert!(checked >= 11, "{checked}");
    let first = sim.gateway().received_op(1).next().unwrap();
    assert!(
        first.data().unwrap().is_null(),
        "beat before READY: {}",
        first.text
    );
    assert_eq!(sim.machine().session().unwrap().sequence, 11);
    // The fake checks `d` against what it sent too.
    assert_clean(&sim);
}

#[test]
fn op1_is_answered_at_once_and_does_not_move_the_schedule() {
    let plain = {
        let mut sim = sim(11);
        sim.run_until(at_ms(200_000));
        beats(&sim)
    };
    let mut sim = sim(11);
    sim.gateway_mut()
        .at(at_ms(30_000), ScriptAction::RequestHeartbeat)
        .at(at_ms(77_777), ScriptAction::RequestHeartbeat);
    sim.run_until(at_ms(200_000));
    let mut expected = plain.clone();
    expected.push(at_ms(30_000));
    expected.push(at_ms(77_777));
    expected.sort();
    assert_eq!(beats(&sim), expected);
    // Each op-1 beat was ACKed like any other: no zombie.
    assert!(disconnects(&sim).is_empty());
    assert_clean(&sim);
}

#[test]
fn acks_give_latency_last_and_average() {
    let delays: Vec<Duration> = [10, 20, 30, 40, 50, 60].into_iter().map(ms).collect();
    let mut sim = sim_with(
        FakeGatewayConfig {
            ack_delays: delays.clone(),
            ..gateway_config()
        },
        2,
    );
    assert_eq!(sim.machine().latency().last(), None);
    let end = at(INTERVAL * 6);
    sim.run_until(end);
    let acks: Vec<_> = sim
        .trace()
        .other_events()
        .filter_map(|(t, e)| match e {
            Event::HeartbeatAck { latency } => Some((t, *latency)),
            _ => None,
        })
        .collect();
    assert_eq!(acks.len(), 6);
    let beats = beats(&sim);
    for (i, (t, latency)) in acks.iter().enumerate() {
        assert_eq!(*latency, delays[i]);
        assert_eq!(*t, beats[i].saturating_add(delays[i]));
    }
    let latency = sim.machine().latency();
    assert_eq!(latency.last(), Some(ms(60)));
    // The average spans the last five samples.
    assert_eq!(latency.average(), Some(ms(40)));
}

#[test]
fn one_missed_ack_is_a_zombie_by_default_then_resume_at_the_resume_url() {
    let mut sim = sim(13);
    sim.gateway_mut()
        .stop_acking_after(2, Some(ConnectionId(1)));
    run_to_ready(&mut sim);
    let resumed = run_to_resumed(&mut sim);
    let beats_1: Vec<Timestamp> = sim
        .gateway()
        .received_op(1)
        .filter(|f| f.connection == ConnectionId(1))
        .map(|f| f.time)
        .collect();
    assert_eq!(beats_1.len(), 3, "two ACKed, the third is not");
    let verdict = beats_1[2].saturating_add(INTERVAL);
    let closes: Vec<_> = sim.trace().client_closes().collect();
    assert_eq!(closes.len(), 1);
    assert_eq!(closes[0].0, verdict, "zombie at the next due beat");
    assert!(!matches!(closes[0].1, 1000 | 1001), "{}", closes[0].1);
    let d = disconnects(&sim);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].0, verdict);
    assert_eq!(d[0].1.reason, DisconnectReason::Zombie);
    assert!(d[0].1.resume);
    let connects: Vec<_> = sim.trace().connects().collect();
    assert_eq!(connects[1], (verdict, RESUME_URL));
    let resume = sim.gateway().received_op(6).next().unwrap();
    assert_eq!(resume.time, verdict);
    assert_eq!(resume.data().unwrap()["session_id"], "sim-session-1");
    assert_eq!(resumed, verdict.saturating_add(ms(100)));
    // The zombie connection's last frame was its third beat, nothing after it.
    let last_on_1 = sim
        .gateway()
        .received()
        .iter()
        .rfind(|f| f.connection == ConnectionId(1))
        .unwrap();
    assert_eq!(last_on_1.time, beats_1[2]);
    assert_clean(&sim);
}

#[test]
fn the_missed_ack_count_is_configurable() {
    let mut sim = SimDriver::new(
        config().with_heartbeat(HeartbeatPolicy {
            missed_acks_before_zombie: 3,
            liveness: Liveness::AckOnly,
        }),
        13,
        gateway(),
    )
    .unwrap();
    sim.gateway_mut()
        .stop_acking_after(1, Some(ConnectionId(1)));
    sim.run_until(at(INTERVAL * 8));
    let beats_1: Vec<_> = sim
        .gateway()
        .received_op(1)
        .filter(|f| f.connection == ConnectionId(1))
        .map(|f| f.time)
        .collect();
    // One ACKed beat, then three unanswered: the verdict comes when the fifth is due.
    assert_eq!(beats_1.len(), 4);
    let d = disconnects(&sim);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].1.reason, DisconnectReason::Zombie);
    assert_eq!(d[0].0, beats_1[3].saturating_add(INTERVAL));
}

#[test]
fn any_message_liveness_counts_dispatches_as_proof_of_life() {
    let run = |liveness| {
        let mut sim = SimDriver::new(
            config().with_heartbeat(HeartbeatPolicy {
                missed_acks_before_zombie: 1,
                liveness,
            }),
            21,
            gateway(),
        )
        .unwrap();
        // ACKs stop, but dispatches keep flowing (an ACK stuck behind a burst).
        sim.gateway_mut()
            .stop_acking_after(1, None)
            .dispatch_stream(
                Trigger::ReadySent(1),
                ms(5_000),
                ms(10_000),
                (0..60).map(|i| ("GUILD_CREATE", format!(r#"{{"id":"{i}"}}"#))),
            );
        sim.run_until(at_ms(300_000));
        disconnect_reasons(&sim)
    };
    assert!(run(Liveness::AnyMessage).is_empty());
    assert_eq!(
        run(Liveness::AckOnly).first(),
        Some(&DisconnectReason::Zombie)
    );
}

#[test]
fn a_huge_jump_forward_fires_one_beat() {
    let mut sim = sim(17);
    run_to_ready(&mut sim);
    sim.run_until(at_ms(100_000));
    let before = beats(&sim).len();
    let wake = at_ms(100_000 + 3_600_000);
    sim.jump_to(wake);
    assert_eq!(beats(&sim).len(), before + 1, "one beat, not a burst");
    assert_eq!(*beats(&sim).last().unwrap(), wake);
    assert_eq!(
        sim.machine().poll_timeout(),
        Some(wake.saturating_add(INTERVAL))
    );
    sim.run_until(wake.saturating_add(INTERVAL * 2));
    let after: Vec<_> = beats(&sim).into_iter().filter(|&t| t >= wake).collect();
    assert_eq!(
        after,
        [
            wake,
            wake.saturating_add(INTERVAL),
            wake.saturating_add(INTERVAL * 2)
        ]
    );
    assert!(disconnects(&sim).is_empty());
}

#[test]
fn a_huge_jump_forward_gives_one_zombie_verdict() {
    let mut sim = sim(17);
    sim.gateway_mut()
        .stop_acking_after(1, Some(ConnectionId(1)));
    run_to_ready(&mut sim);
    let second = run_to_beat(&mut sim, 2);
    sim.run_for(secs(1));
    // The second beat is out and unanswered; the laptop sleeps for an hour.
    let before = beats(&sim).len();
    assert_eq!(before, 2);
    let wake = second.saturating_add(secs(3_600));
    sim.jump_to(wake);
    assert_eq!(beats(&sim).len(), before, "no beat on a dead connection");
    let d = disconnects(&sim);
    assert_eq!(d.len(), 1, "one verdict");
    assert_eq!(d[0].0, wake);
    assert_eq!(d[0].1.reason, DisconnectReason::Zombie);
    assert_eq!(sim.trace().client_closes().count(), 1);
    // An hour without an ACK: the session is stale, so the next connection identifies.
    assert!(!d[0].1.resume);
    run_to_ready(&mut sim);
    let connects: Vec<_> = sim.trace().connects().map(|(_, u)| u).collect();
    assert_eq!(connects, [MAIN_URL, MAIN_URL]);
    assert_clean(&sim);
}

#[test]
fn time_going_backwards_is_clamped() {
    let mut sim = sim(19);
    sim.gateway_mut()
        .stop_acking_after(1, Some(ConnectionId(1)));
    run_to_ready(&mut sim);
    let second = run_to_beat(&mut sim, 2); // not ACKed
    sim.run_for(ms(500));
    let now = sim.now();
    sim.input("handle_timeout(now)", |m, now| m.handle_timeout(now));
    assert_eq!(sim.machine().now(), now);
    // A timeout "in the past" does nothing.
    sim.input("handle_timeout(0)", |m, _| {
        m.handle_timeout(Timestamp::ZERO)
    });
    assert_eq!(sim.machine().now(), now);
    // An ACK stamped in the past is taken as now: the latency is measured to `now`.
    sim.input("ACK stamped at 0", |m, _| {
        m.handle_message(Timestamp::ZERO, Message::Text(r#"{"op":11,"d":null}"#))
    });
    assert_eq!(sim.machine().now(), now);
    assert_eq!(
        sim.machine().latency().last(),
        Some(now.saturating_duration_since(second))
    );
    // The schedule is untouched, and the ACK counts: no zombie at the next beat.
    sim.run_until(second.saturating_add(INTERVAL));
    assert_eq!(
        *beats(&sim).last().unwrap(),
        second.saturating_add(INTERVAL)
    );
    assert!(disconnects(&sim).is_empty());
    assert_eq!(sim.machine().phase(), Phase::Connected);
}

#[test]
fn op1_before_hello_is_out_of_phase_and_causes_no_false_zombie() {
    let mut sim = sim_with(
        FakeGatewayConfig {
            hello_delay: Some(secs(5)),
            ..gateway_config()
        },
        1,
    );
    sim.gateway_mut()
        .at(at_ms(1_000), ScriptAction::RequestHeartbeat);
    sim.run_until(at_ms(200_000));
    assert_eq!(
        protocol_errors(&sim),
        [discord_gateway_proto::ProtocolError::OutOfPhase(
            OpCode::Heartbeat,
            "awaiting hello"
        )]
    );
    // Nothing is sent before Hello, and the connection stays up.
    assert_eq!(sim.trace().client_frames().next().unwrap().0, at_ms(5_000));
    assert!(disconnects(&sim).is_empty(), "{}", sim.trace());
    assert_eq!(sim.trace().connects().count(), 1);
    assert_clean(&sim);
}
