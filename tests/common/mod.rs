//! Shared helpers for the scenario tests: a standard config, a standard fake gateway, and
//! assertions over traces.
#![allow(dead_code)]

use std::time::Duration;

use discord_gateway_proto::config::Timeouts;
use discord_gateway_proto::sim::{FakeGateway, FakeGatewayConfig, SimDriver, SimEvent};
use discord_gateway_proto::{
    Disconnect, DisconnectReason, Event, GatewayConfig, Intents, OpCode, Timestamp, Token,
};

pub const TOKEN: &str = "SIM.TOKEN.s3cr3t-never-printed";
pub const MAIN: &str = "wss://gateway.sim";
pub const MAIN_URL: &str = "wss://gateway.sim/?v=10&encoding=json";
pub const RESUME: &str = "wss://resume.sim";
pub const RESUME_URL: &str = "wss://resume.sim/?v=10&encoding=json";
/// The fake's default Hello interval.
pub const INTERVAL: Duration = Duration::from_millis(41_250);

/// A config pointing at the fake gateway, auto-granting identify.
pub fn config() -> GatewayConfig {
    GatewayConfig::new(Token::new(TOKEN), Intents::GUILDS | Intents::GUILD_MESSAGES)
        .with_gateway_url(MAIN)
        .with_auto_grant(true)
}

/// A fake gateway that checks the token.
pub fn gateway() -> FakeGateway {
    FakeGateway::new(gateway_config())
}

pub fn gateway_config() -> FakeGatewayConfig {
    FakeGatewayConfig {
        token: Some(Token::new(TOKEN)),
        ..FakeGatewayConfig::default()
    }
}

pub fn sim(seed: u64) -> SimDriver {
    SimDriver::new(config(), seed, gateway()).unwrap()
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub fn at_ms(n: u64) -> Timestamp {
    Timestamp::from_millis(n)
}

pub fn at(d: Duration) -> Timestamp {
    Timestamp::ZERO.saturating_add(d)
}

/// Runs until READY has been reported; returns its time.
pub fn run_to_ready(sim: &mut SimDriver) -> Timestamp {
    let limit = sim.now().saturating_add(secs(3_600));
    sim.run_until_event(limit, |e| matches!(e, SimEvent::Other(Event::Ready(_))))
        .unwrap_or_else(|| panic!("no READY\n{}", sim.trace()))
}

/// Runs until RESUMED has been reported; returns its time.
pub fn run_to_resumed(sim: &mut SimDriver) -> Timestamp {
    let limit = sim.now().saturating_add(secs(3_600));
    sim.run_until_event(limit, |e| {
        matches!(e, SimEvent::Other(Event::Resumed { .. }))
    })
    .unwrap_or_else(|| panic!("no RESUMED\n{}", sim.trace()))
}

/// The `Disconnected` events, in order.
pub fn disconnects(sim: &SimDriver) -> Vec<(Timestamp, Disconnect)> {
    sim.trace()
        .other_events()
        .filter_map(|(t, e)| match e {
            Event::Disconnected(d) => Some((t, *d)),
            _ => None,
        })
        .collect()
}

/// The reasons of the `Disconnected` events, in order.
pub fn disconnect_reasons(sim: &SimDriver) -> Vec<DisconnectReason> {
    disconnects(sim)
        .into_iter()
        .map(|(_, d)| d.reason)
        .collect()
}

/// The protocol errors reported, in order.
pub fn protocol_errors(sim: &SimDriver) -> Vec<discord_gateway_proto::ProtocolError> {
    sim.trace()
        .other_events()
        .filter_map(|(_, e)| match e {
            Event::ProtocolError(p) => Some(*p),
            _ => None,
        })
        .collect()
}

/// Asserts the fake gateway saw nothing wrong.
pub fn assert_clean(sim: &SimDriver) {
    assert!(
        sim.gateway().violations().is_empty(),
        "violations: {:?}\n{}",
        sim.gateway().violations(),
        sim.trace()
    );
}

/// The heartbeat times, from the trace.
pub fn beats(sim: &SimDriver) -> Vec<Timestamp> {
    sim.trace().send_times(OpCode::Heartbeat)
}

/// `(op, connection number)` of every frame the fake received.
pub fn received_ops(sim: &SimDriver) -> Vec<(u64, u32)> {
    sim.gateway()
        .received()
        .iter()
        .map(|f| (f.opcode.unwrap_or(u64::MAX), f.connection.0))
        .collect()
}

pub fn timeouts(connect: u64, hello: u64, ready: u64) -> Timeouts {
    Timeouts {
        connect: secs(connect),
        hello: secs(hello),
        ready: secs(ready),
    }
}

/// Steps until the machine has sent `n` heartbeats in all; returns the last one's time.
pub fn run_to_beat(sim: &mut SimDriver, n: usize) -> Timestamp {
    while beats(sim).len() < n {
        assert!(
            sim.step(),
            "nothing left to do before beat {n}\n{}",
            sim.trace()
        );
    }
    beats(sim)[n - 1]
}
