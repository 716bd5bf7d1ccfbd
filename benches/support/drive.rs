//! Driving a machine by hand, without the `sim` fake gateway: Connect -> handle_connected ->
//! Hello -> grant_identify -> READY, then dispatches. Shared by benches and tests through
//! `#[path = "..."] mod drive;` (include `frames.rs` as `mod frames` beside it).
#![allow(dead_code)]

use std::sync::Arc;

use discord_gateway_proto::{
    GatewayConfig, GatewayMachine, Intents, Message, Output, Phase, ShardId, StartOptions,
    Timestamp, Token,
};

use crate::frames::{FrameGen, KeyOrder};

/// One configuration for every machine of a process (shared through the `Arc`).
pub fn shared_config(shards: u32) -> Arc<GatewayConfig> {
    let intents = Intents::GUILDS
        | Intents::GUILD_MESSAGES
        | Intents::GUILD_PRESENCES
        | Intents::GUILD_MEMBERS
        | Intents::MESSAGE_CONTENT;
    Arc::new(
        GatewayConfig::new(Token::new("Bot bench.token.not-a-secret"), intents)
            .with_shard(ShardId::new(0, shards)),
    )
}

/// What one drain saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drained {
    /// Outputs before `Wait`.
    pub outputs: usize,
    /// Dispatches among them.
    pub dispatches: usize,
    /// Bytes of their `d`.
    pub data_bytes: usize,
    /// `Send` frames among them.
    pub sends: usize,
}

/// Calls `poll_output` until `Wait`, touching every dispatch the way an application would
/// (its name, sequence and `d` length) so that none of it is optimised away.
#[inline]
pub fn drain(machine: &mut GatewayMachine) -> Drained {
    let mut seen = Drained::default();
    loop {
        match machine.poll_output() {
            Output::Wait(_) => return seen,
            Output::Event(discord_gateway_proto::Event::Dispatch(d)) => {
                seen.dispatches += 1;
                seen.data_bytes += d.data.len() + d.name.len() + (d.sequence as usize & 1);
            }
            Output::Send(_) => seen.sends += 1,
            _ => {}
        }
        seen.outputs += 1;
    }
}

/// A machine for `shard` of `config`, connected and past READY (a 1-guild READY from the
/// generator seeded with `seed`), fully drained, at `now`.
pub fn connected_machine(
    config: &Arc<GatewayConfig>,
    shard: ShardId,
    seed: u64,
    now: Timestamp,
) -> GatewayMachine {
    let handshake = Handshake::new(seed);
    connect_with(config, shard, seed, now, &handshake)
}

/// HELLO and READY texts, made once and reused for many machines.
pub struct Handshake {
    /// HELLO with a 41.25 s interval.
    pub hello: String,
    /// READY of a 1-guild bot, numbered 0: the frame sets, numbered from 1 by generators
    /// of their own, then follow it in order (the machine reports sequence gaps and
    /// repeats, which a real stream does not have).
    pub ready: String,
}

impl Handshake {
    /// Generated from `seed`.
    pub fn new(seed: u64) -> Self {
        let mut gen = FrameGen::new(seed);
        let hello = gen.hello(41_250).text(KeyOrder::Discord);
        let ready = gen.ready(1).text(KeyOrder::Discord);
        let ready = ready.replacen(r#","s":1,"#, r#","s":0,"#, 1);
        assert!(ready.contains(r#""s":0"#), "READY is numbered 0");
        Handshake { hello, ready }
    }
}

/// [`connected_machine`] with a handshake made beforehand.
pub fn connect_with(
    config: &Arc<GatewayConfig>,
    shard: ShardId,
    seed: u64,
    now: Timestamp,
    handshake: &Handshake,
) -> GatewayMachine {
    let Handshake { hello, ready } = handshake;
    let options = StartOptions {
        shard: Some(shard),
        session: None,
    };
    let mut m =
        GatewayMachine::with_options(Arc::clone(config), options, seed, now).expect("valid config");
    drain(&mut m);
    m.handle_connected(now);
    drain(&mut m);
    m.handle_message(now, Message::Text(hello));
    drain(&mut m);
    m.grant_identify(now).expect("identify requested");
    drain(&mut m);
    m.handle_message(now, Message::Text(ready));
    drain(&mut m);
    assert_eq!(m.phase(), Phase::Connected);
    m
}

/// The whole footprint of a machine: the struct plus the heap it owns (the shared config
/// excluded).
pub fn footprint(machine: &GatewayMachine) -> usize {
    std::mem::size_of::<GatewayMachine>() + machine.heap_bytes()
}

/// Waits for the next heartbeat deadline, sends the beat and answers it with an ACK 40 ms
/// later, draining after each step. Returns the time of the ACK.
pub fn heartbeat_round(machine: &mut GatewayMachine) -> Timestamp {
    let due = machine.poll_timeout().expect("a heartbeat is scheduled");
    machine.handle_timeout(due);
    let sent = drain(machine);
    assert_eq!(sent.sends, 1, "one heartbeat per round");
    let ack_at = due.saturating_add(std::time::Duration::from_millis(40));
    machine.handle_message(
        ack_at,
        Message::Text(r#"{"t":null,"s":null,"op":11,"d":null}"#),
    );
    drain(machine);
    ack_at
}

/// A connected machine after READY and two quiet heartbeat rounds: what a shard of a
/// process with many shards looks like between events.
pub fn idle_machine(config: &Arc<GatewayConfig>, shard: ShardId, seed: u64) -> GatewayMachine {
    idle_machine_with(config, shard, seed, &Handshake::new(seed))
}

/// [`idle_machine`] with a handshake made beforehand.
pub fn idle_machine_with(
    config: &Arc<GatewayConfig>,
    shard: ShardId,
    seed: u64,
    handshake: &Handshake,
) -> GatewayMachine {
    let mut m = connect_with(config, shard, seed, Timestamp::from_secs(1), handshake);
    heartbeat_round(&mut m);
    heartbeat_round(&mut m);
    m
}
