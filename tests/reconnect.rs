//! Reconnecting: the backoff policy (exponential with jitter by default, the seed's linear
//! preset, the attempt cap) and the timeouts for connect, Hello and READY / RESUMED.
#![cfg(feature = "sim")]

mod common;

use std::time::Duration;

use common::*;
use discord_gateway_proto::sim::{ConnectBehavior, ScriptAction, SimDriver};
use discord_gateway_proto::{
    Backoff, BackoffSchedule, DisconnectReason, Event, FatalReason, OpCode, Phase, Timestamp,
};

/// A machine whose connections to the main URL are refused `times` times (all if `None`).
fn refusing(
    config: discord_gateway_proto::GatewayConfig,
    times: Option<u32>,
    seed: u64,
) -> SimDriver {
    let mut gateway = gateway();
    gateway.connect_rule(MAIN, ConnectBehavior::Refuse, times);
    SimDriver::new(config, seed, gateway).unwrap()
}

fn connect_times(sim: &SimDriver) -> Vec<Timestamp> {
    sim.trace().connects().map(|(t, _)| t).collect()
}

fn gaps(times: &[Timestamp]) -> Vec<Duration> {
    times
        .windows(2)
        .map(|w| w[1].saturating_duration_since(w[0]))
        .collect()
}

#[test]
fn default_backoff_is_exponential_with_jitter() {
    let mut per_seed = Vec::new();
    for seed in [1, 2] {
        let mut sim = refusing(config(), None, seed);
        sim.run_until(at_ms(600_000));
        let gaps = gaps(&connect_times(&sim));
        // The first retry (attempt 0) is immediate, then 1 s, 2 s, 4 s ... 60 s, each drawn
        // from the upper half [d/2, d).
        assert_eq!(gaps[0], Duration::ZERO);
        for (i, gap) in gaps.iter().enumerate().skip(1) {
            let full = secs(1u64 << (i - 1).min(20)).min(secs(60));
            assert!(
                *gap >= full / 2 && *gap < full,
                "seed {seed} attempt {i}: {gap:?}"
            );
        }
        assert!(gaps.len() > 12);
        // Every failure is reported with the time of the next attempt.
        let d = disconnects(&sim);
        let times = connect_times(&sim);
        for (i, (_, d)) in d.iter().enumerate() {
            assert_eq!(d.reason, DisconnectReason::TransportLost);
            if let Some(next) = times.get(i + 1) {
                assert_eq!(d.reconnect_at, *next);
            }
        }
        per_seed.push(gaps);
    }
    assert_ne!(per_seed[0], per_seed[1], "jitter depends on the seed");
}

#[test]
fn the_seed_linear_preset_waits_4_s_plus_2_s_per_try() {
    let mut sim = refusing(config().with_reconnect(Backoff::seed_linear()), Some(6), 1);
    let ready = run_to_ready(&mut sim);
    let times = connect_times(&sim);
    assert_eq!(
        gaps(&times),
        [secs(4), secs(4), secs(6), secs(8), secs(10), secs(12)]
    );
    assert_eq!(ready, times[6].saturating_add(ms(100)));
    // READY resets the count: the next loss waits the first delay again.
    let drop_at = sim.now();
    sim.server(ScriptAction::Drop);
    sim.run_for(secs(30));
    let times = connect_times(&sim);
    assert_eq!(times[7], drop_at.saturating_add(secs(4)));
    assert_eq!(sim.machine().reconnect_attempts(), 0);
}

#[test]
fn a_custom_linear_schedule_is_capped() {
    let backoff = Backoff {
        schedule: BackoffSchedule::Linear {
            initial: secs(1),
            step: secs(3),
            max: secs(5),
        },
        first_delay: ms(250),
        max_attempts: None,
    };
    let mut sim = refusing(config().with_reconnect(backoff), Some(5), 1);
    run_to_ready(&mut sim);
    assert_eq!(
        gaps(&connect_times(&sim)),
        [ms(250), secs(1), secs(4), secs(5), secs(5)]
    );
}

#[test]
fn the_attempt_cap_ends_in_a_fatal_stop() {
    let mut sim = refusing(
        config().with_reconnect(Backoff::default().with_max_attempts(3)),
        None,
        1,
    );
    sim.run_until(at_ms(600_000));
    // The first connection and three retries.
    let times = connect_times(&sim);
    assert_eq!(times.len(), 4);
    let reason = FatalReason::ReconnectAttemptsExhausted { attempts: 3 };
    assert_eq!(sim.machine().phase(), Phase::Fatal(reason));
    let last_event = sim.trace().other_events().last().unwrap();
    assert_eq!(*last_event.1, Event::Fatal(reason));
    assert!(last_event.0 < at_ms(10_000));
    assert_eq!(sim.machine().poll_timeout(), None);
    let before = sim.trace().len();
    sim.run_for(secs(3_600));
    sim.input("timeout", |m, now| m.handle_timeout(now));
    assert_eq!(sim.trace().len(), before + 1, "only the input itself");
}

#[test]
fn a_success_resets_the_attempt_count() {
    let mut sim = refusing(config(), Some(3), 7);
    run_to_ready(&mut sim);
    assert_eq!(sim.machine().reconnect_attempts(), 0);
    let before = sim.trace().connects().count();
    let drop_at = sim.now().saturating_add(secs(10));
    sim.gateway_mut().at(drop_at, ScriptAction::Drop);
    sim.run_until(drop_at);
    // Immediate again, not the fourth step of the curve.
    assert_eq!(connect_times(&sim)[before], drop_at);
}

#[test]
fn connect_timeout() {
    let mut gateway = gateway();
    gateway.connect_rule(MAIN, ConnectBehavior::Hang, Some(1));
    let mut sim = SimDriver::new(config().with_timeouts(timeouts(10, 20, 60)), 1, gateway).unwrap();
    sim.run_until(at_ms(9_999));
    assert_eq!(sim.machine().phase(), Phase::Connecting);
    run_to_ready(&mut sim);
    assert_eq!(disconnect_reasons(&sim), [DisconnectReason::ConnectTimeout]);
    // The machine gives up on the pending connection and tries again at once.
    let closes: Vec<_> = sim.trace().client_closes().collect();
    assert_eq!(closes.len(), 1);
    assert_eq!(closes[0].0, at_ms(10_000));
    assert_eq!(connect_times(&sim), [at_ms(0), at_ms(10_000)]);
    assert_clean(&sim);
}

#[test]
fn a_hanging_resume_url_falls_back_to_the_main_url() {
    let mut gateway = gateway();
    gateway
        .connect_rule(RESUME, ConnectBehavior::Hang, None)
        .at(at_ms(20_000), ScriptAction::Reconnect);
    let mut sim = SimDriver::new(config(), 1, gateway).unwrap();
    run_to_ready(&mut sim);
    sim.run_until(at_ms(20_000));
    run_to_resumed(&mut sim);
    let connects: Vec<_> = sim.trace().connects().collect();
    assert_eq!(connects[1], (at_ms(20_000), RESUME_URL));
    assert_eq!(connects[2].1, MAIN_URL);
    // The default connect timeout is 30 s.
    let d = disconnects(&sim);
    assert_eq!(d[1].0, at_ms(50_000));
    assert_eq!(d[1].1.reason, DisconnectReason::ConnectTimeout);
    assert!(
        d[1].1.resume,
        "the session is kept: resume through the main URL"
    );
    assert_eq!(sim.trace().sent_opcodes().last(), Some(&OpCode::Resume));
    assert_eq!(sim.gateway().received_op(6).count(), 1);
    assert_eq!(sim.gateway().received_op(2).count(), 1);
}

#[test]
fn hello_timeout() {
    let mut gateway = gateway();
    gateway.connect_rule(MAIN, ConnectBehavior::AcceptWithoutHello, Some(1));
    let mut sim = SimDriver::new(config(), 1, gateway).unwrap();
    run_to_ready(&mut sim);
    let d = disconnects(&sim);
    assert_eq!(d.len(), 1);
    // The default Hello timeout is 20 s from the socket opening.
    assert_eq!(d[0].0, at_ms(20_000));
    assert_eq!(d[0].1.reason, DisconnectReason::HelloTimeout);
    let closes: Vec<_> = sim.trace().client_closes().collect();
    assert_eq!(closes.len(), 1);
    assert_eq!(closes[0].0, at_ms(20_000));
    assert!(!matches!(closes[0].1, 1000 | 1001));
    assert_eq!(sim.trace().send_times(OpCode::Identify), [at_ms(20_000)]);
}

#[test]
fn ready_timeout() {
    let mut sim = sim(1);
    sim.gateway_mut().config_mut().send_ready = false;
    sim.run_until(at_ms(59_999));
    assert_eq!(sim.machine().phase(), Phase::Identifying);
    sim.gateway_mut().config_mut().send_ready = true;
    run_to_ready(&mut sim);
    let d = disconnects(&sim);
    assert_eq!(d.len(), 1);
    // 60 s after Identify.
    assert_eq!(d[0].0, at_ms(60_000));
    assert_eq!(d[0].1.reason, DisconnectReason::ReadyTimeout);
    assert_eq!(sim.trace().client_closes().next().unwrap().0, at_ms(60_000));
    assert_eq!(
        sim.trace().send_times(OpCode::Identify),
        [at_ms(0), at_ms(60_000)]
    );
    assert_clean(&sim);
}

#[test]
fn resumed_timeout() {
    let mut sim =
        SimDriver::new(config().with_timeouts(timeouts(30, 20, 15)), 1, gateway()).unwrap();
    sim.gateway_mut().at(at_ms(20_000), ScriptAction::Reconnect);
    run_to_ready(&mut sim);
    sim.gateway_mut().config_mut().send_resumed = false;
    sim.run_until(at_ms(35_000));
    sim.gateway_mut().config_mut().send_resumed = true;
    run_to_resumed(&mut sim);
    let d = disconnects(&sim);
    assert_eq!(d.len(), 2);
    assert_eq!(d[1].0, at_ms(35_000), "15 s after Resume");
    assert_eq!(d[1].1.reason, DisconnectReason::ReadyTimeout);
    assert!(d[1].1.resume, "one failed resume keeps the session");
    let resumes: Vec<_> = sim.gateway().received_op(6).map(|f| f.time).collect();
    assert_eq!(resumes[0], at_ms(20_000));
    assert_eq!(resumes.len(), 2);
    assert_clean(&sim);
}
