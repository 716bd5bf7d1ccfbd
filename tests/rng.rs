//! The machine's one source of randomness: the RNG given to `GatewayMachine::new` (any
//! `rand_core` 0.10 RNG, as the current `rand` has) or a plain seed.

use discord_gateway_proto::rand_core::Rng as _;
use discord_gateway_proto::{
    GatewayConfig, GatewayMachine, Intents, Message, Output, StartOptions, Timestamp, Token,
};
use rand::SeedableRng;

fn config() -> GatewayConfig {
    GatewayConfig::new(Token::new("t"), Intents::GUILDS).with_auto_grant(true)
}

/// The first beat's deadline after Hello: jittered by the machine's seed.
fn first_beat(mut machine: GatewayMachine) -> Option<Timestamp> {
    while !matches!(machine.poll_output(), Output::Wait(_)) {}
    machine.handle_connected(Timestamp::ZERO);
    machine.handle_message(
        Timestamp::ZERO,
        Message::Text(r#"{"op":10,"d":{"heartbeat_interval":41250}}"#),
    );
    while !matches!(machine.poll_output(), Output::Wait(_)) {}
    machine.poll_timeout()
}

/// `rand::rng()` of rand 0.10 (the E0277 "multiple different versions of crate `rand_core`"
/// of issue #14 when the crate took rand_core 0.6).
#[test]
fn new_accepts_the_thread_rng_of_current_rand() {
    let mut machine = GatewayMachine::new(config(), &mut rand::rng(), Timestamp::ZERO).unwrap();
    assert!(matches!(machine.poll_output(), Output::Connect { .. }));
}

/// A seeded RNG, and an RNG behind `dyn`.
#[test]
fn new_accepts_seeded_and_dyn_rngs() {
    let mut chacha = rand::rngs::ChaCha8Rng::seed_from_u64(7);
    GatewayMachine::new(config(), &mut chacha, Timestamp::ZERO).unwrap();
    let rng: &mut dyn discord_gateway_proto::rand_core::Rng = &mut chacha;
    GatewayMachine::new(config(), rng, Timestamp::ZERO).unwrap();
}

/// `new` takes one `u64` from the RNG as the seed: the same machine as `with_options` with
/// that seed.
#[test]
fn new_is_with_options_seeded_by_one_draw() {
    let seeded = |seed| {
        GatewayMachine::with_options(config(), StartOptions::default(), seed, Timestamp::ZERO)
            .unwrap()
    };
    let rng = || rand::rngs::ChaCha8Rng::seed_from_u64(7);
    let from_rng = GatewayMachine::new(config(), &mut rng(), Timestamp::ZERO).unwrap();
    let seed = rng().next_u64();
    assert_eq!(first_beat(from_rng), first_beat(seeded(seed)));
    // And the seed matters: another one jitters the first beat differently.
    assert_ne!(first_beat(seeded(seed)), first_beat(seeded(seed ^ 1)));
}
