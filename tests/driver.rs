//! The sim driver's own checks: they must fire when the contract is broken, or their
//! silence in the scenario tests would prove nothing.
#![cfg(feature = "sim")]

mod common;

use common::*;
use discord_gateway_proto::sim::{ContractViolation, SimDriver, TraceKind};

/// Reporting a socket closed behind the driver's back makes the machine reconnect while the
/// driver still holds a connection: a `Connect` it cannot honour.
fn broken(strict: bool) -> SimDriver {
    let mut sim = SimDriver::new(config(), 1, gateway())
        .unwrap()
        .with_strict(strict);
    run_to_ready(&mut sim);
    sim.input("closed behind the driver's back", |m, now| {
        m.handle_closed(now, None)
    });
    sim
}

#[test]
fn violations_are_recorded_when_not_strict() {
    let sim = broken(false);
    assert_eq!(
        sim.contract_violations(),
        [ContractViolation::ConnectWhileConnected]
    );
}

#[test]
#[should_panic(expected = "ConnectWhileConnected")]
fn violations_panic_when_strict() {
    broken(true);
}

#[test]
fn a_drain_bound_too_small_is_caught() {
    // READY gives three outputs in one drain (Ready, the dispatch, Wait).
    let mut sim = SimDriver::new(config(), 1, gateway())
        .unwrap()
        .with_strict(false)
        .with_max_polls(2);
    run_to_ready(&mut sim);
    assert!(sim
        .contract_violations()
        .contains(&ContractViolation::DrainUnbounded(2)));
}

#[test]
fn the_trace_prints_as_a_timeline() {
    let mut sim = sim(1);
    run_to_ready(&mut sim);
    sim.run_for(secs(60));
    let printed = sim.trace().to_string();
    let lines: Vec<_> = printed.lines().collect();
    assert_eq!(lines.len(), sim.trace().len());
    assert!(lines[0].starts_with("    0.000s  client -> #1 CONNECT wss://gateway.sim/"));
    assert!(printed.contains("server #1 -> ACCEPT"));
    assert!(printed.contains("event    Ready("));
    assert!(printed.contains(r#"client -> #1 {"op":1,"d":1}"#));
    assert!(matches!(
        sim.trace().entries()[0].kind,
        TraceKind::Connect { .. }
    ));
}
