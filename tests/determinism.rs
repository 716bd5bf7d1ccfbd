//! Determinism: the same seed and inputs give the same trace, byte for byte; another seed
//! gives other random choices (jitter, backoff, the invalid-session wait).
#![cfg(feature = "sim")]

mod common;

use common::*;
use discord_gateway_proto::sim::{ConnectBehavior, ScriptAction, SimDriver, Trace, Trigger};
use discord_gateway_proto::OpCode;

/// A busy scenario: dispatches, op 1, a zombie, op 7, op 9 false, a refused resume URL
/// (fallback), backoff, and a few commands.
fn scenario(seed: u64) -> (Trace, String) {
    let mut gateway = gateway();
    gateway
        .dispatch_stream(
            Trigger::ReadySent(1),
            ms(100),
            ms(1_500),
            (0..40).map(|i| ("MESSAGE_CREATE", format!(r#"{{"n":{i}}}"#))),
        )
        .at(at_ms(30_000), ScriptAction::RequestHeartbeat)
        .at(at_ms(100_000), ScriptAction::Reconnect)
        .after(
            Trigger::ResumedSent(1),
            secs(50),
            ScriptAction::InvalidSession(false),
        )
        .connect_rule(RESUME, ConnectBehavior::Refuse, Some(1))
        .stop_acking_after(3, None);
    let mut sim = SimDriver::new(config(), seed, gateway).unwrap();
    sim.run_until(at_ms(40_000));
    sim.shutdown(true).unwrap();
    let mut sim2 = {
        let (machine, gateway, _) = sim.into_parts();
        let session = machine.session().cloned();
        SimDriver::with_options(
            config(),
            discord_gateway_proto::StartOptions {
                session,
                ..Default::default()
            },
            seed.wrapping_add(1),
            at_ms(45_000),
            gateway,
        )
        .unwrap()
    };
    sim2.run_until(at_ms(900_000));
    let printed = sim2.trace().to_string();
    (sim2.trace().clone(), printed)
}

#[test]
fn same_seed_same_trace() {
    let (a, printed_a) = scenario(42);
    let (b, printed_b) = scenario(42);
    assert!(a.len() > 100, "a busy scenario: {}", a.len());
    assert_eq!(a, b);
    assert_eq!(printed_a, printed_b);
}

#[test]
fn another_seed_other_choices() {
    let (a, _) = scenario(42);
    let (b, _) = scenario(43);
    assert_ne!(a, b);
    // The first beat after the first Hello differs: the jitter comes from the seed.
    let first_beat = |t: &Trace| t.send_times(OpCode::Heartbeat)[0];
    let firsts: Vec<_> = (0..8).map(|s| first_beat(&scenario(s).0)).collect();
    let mut distinct = firsts.clone();
    distinct.sort();
    distinct.dedup();
    assert!(distinct.len() >= 7, "{firsts:?}");
}
