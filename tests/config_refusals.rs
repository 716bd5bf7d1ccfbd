//! A configuration that cannot work is refused, or stopped with a typed reason, never
//! looped on: an Identify over 4096 bytes, an Identify the server cannot decode, zero stall
//! timeouts; and whatever the configuration, one `handle_timeout` never loops on the timers
//! it arms.
#![cfg(feature = "sim")]

mod common;

use std::time::Duration;

use common::*;
use discord_gateway_proto::config::{ConfigError, Timeouts};
use discord_gateway_proto::protocol::commands::{Activity, Status, UpdatePresence};
use discord_gateway_proto::sim::{ScriptAction, SimDriver, Trigger};
use discord_gateway_proto::{
    Backoff, BackoffSchedule, CloseCode, DisconnectReason, Event, FatalReason, GatewayMachine,
    OpCode, Output, Phase, ShardId, StartOptions, Timestamp, MAX_FRAME_BYTES,
};

fn presence(name_len: usize) -> UpdatePresence {
    UpdatePresence {
        since: None,
        activities: vec![Activity {
            name: "x".repeat(name_len),
            kind: 0,
            url: None,
            state: None,
        }],
        status: Status::Online,
        afk: false,
    }
}

/// The Identify a machine sends for `config`, as the fake gateway received it (token
/// redacted to `<redacted>`, so the length is the machine's less the token's difference).
fn identify_len(config: discord_gateway_proto::GatewayConfig, shard: ShardId) -> usize {
    let options = StartOptions {
        shard: Some(shard),
        ..StartOptions::default()
    };
    let mut m = GatewayMachine::with_options(config, options, 1, Timestamp::ZERO).unwrap();
    while !matches!(m.poll_output(), Output::Wait(_)) {}
    m.handle_connected(Timestamp::ZERO);
    while !matches!(m.poll_output(), Output::Wait(_)) {}
    m.handle_message(
        Timestamp::ZERO,
        discord_gateway_proto::Message::Text(r#"{"op":10,"d":{"heartbeat_interval":41250}}"#),
    );
    loop {
        match m.poll_output() {
            Output::Send(frame) if frame.opcode == OpCode::Identify => return frame.text.len(),
            Output::Wait(_) => panic!("no Identify"),
            _ => {}
        }
    }
}

#[test]
fn an_identify_over_4096_bytes_is_refused_by_validate() {
    // The issue's case: a 5,000-character activity name.
    let config = config().with_presence(presence(5_000));
    let err = config.validate().unwrap_err();
    let ConfigError::IdentifyTooLarge { size, limit } = err else {
        panic!("{err:?}");
    };
    assert_eq!(limit, MAX_FRAME_BYTES);
    assert!(size > 5_000, "{size}");
    assert!(err.to_string().contains(&size.to_string()), "{err}");
    assert!(!err.to_string().contains(TOKEN));
    assert!(matches!(
        GatewayMachine::with_options(config, StartOptions::default(), 1, Timestamp::ZERO),
        Err(ConfigError::IdentifyTooLarge { .. })
    ));
}

#[test]
fn the_identify_size_is_checked_with_the_longest_shard_numbers() {
    // A presence that makes shard [0, 1]'s Identify exactly 4096 bytes: it would fit for
    // that shard, but not for shard [4294967294, 4294967295], which the configuration may
    // also be used for; validate refuses it, naming the larger size.
    let base = identify_len(config().with_presence(presence(0)), ShardId::ONE);
    let fits = MAX_FRAME_BYTES - base;
    let config = config().with_presence(presence(fits));
    assert_eq!(
        identify_len(
            config.clone().with_presence(presence(fits - 20)),
            ShardId::ONE
        ),
        MAX_FRAME_BYTES - 20
    );
    let longest = "[4294967294,4294967295]".len() - "[0,1]".len();
    assert_eq!(
        config.validate(),
        Err(ConfigError::IdentifyTooLarge {
            size: MAX_FRAME_BYTES + longest,
            limit: MAX_FRAME_BYTES,
        })
    );
    // With room for the longest shard numbers, it validates, and every shard's Identify
    // fits.
    let config = config.with_presence(presence(fits - longest));
    assert_eq!(config.validate(), Ok(()));
    assert_eq!(
        identify_len(config.clone(), ShardId::new(u32::MAX - 1, u32::MAX)),
        MAX_FRAME_BYTES
    );
}

#[test]
fn an_identify_the_server_cannot_decode_stops_with_a_typed_reason() {
    // Every Identify is answered with 4002: once may be a glitch and is retried; twice in a
    // row is the configuration's doing and stops the machine.
    let mut gateway = gateway();
    for n in 1..=10 {
        gateway.after(Trigger::Identified(n), ms(10), ScriptAction::close(4002));
    }
    let mut sim = SimDriver::new(config(), 41, gateway).unwrap();
    sim.run_until(at_ms(600_000));
    assert_eq!(
        sim.machine().phase(),
        Phase::Fatal(FatalReason::IdentifyUndecodable)
    );
    assert_eq!(sim.trace().send_times(OpCode::Identify).len(), 2);
    let d = disconnects(&sim);
    assert_eq!(d.len(), 1);
    assert_eq!(
        d[0].1.reason,
        DisconnectReason::ServerClose(CloseCode(4002))
    );
    let fatal: Vec<_> = sim
        .trace()
        .other_events()
        .filter(|(_, e)| matches!(e, Event::Fatal(_)))
        .collect();
    assert_eq!(fatal.len(), 1);
    assert_eq!(*fatal[0].1, Event::Fatal(FatalReason::IdentifyUndecodable));
    assert_eq!(sim.machine().poll_timeout(), None);
}

#[test]
fn a_4002_on_a_live_session_or_once_after_identify_is_retried() {
    // 4002 after READY: a resume, as the close-code table says. And a single 4002 after an
    // Identify, followed by a successful one, does not count toward the next.
    let mut gateway = gateway();
    gateway
        .after(Trigger::Identified(1), ms(10), ScriptAction::close(4002))
        .after(Trigger::ReadySent(1), secs(5), ScriptAction::close(4002))
        .after(
            Trigger::ResumedSent(1),
            secs(5),
            ScriptAction::ForgetSessions,
        )
        .after(Trigger::ResumedSent(1), secs(6), ScriptAction::Drop)
        .after(Trigger::Identified(3), ms(10), ScriptAction::close(4002));
    let mut sim = SimDriver::new(config(), 42, gateway).unwrap();
    sim.run_until(at_ms(120_000));
    assert_eq!(sim.machine().phase(), Phase::Connected, "{}", sim.trace());
    assert_eq!(sim.trace().send_times(OpCode::Identify).len(), 4);
    assert_eq!(sim.gateway().received_op(6).count(), 2);
    assert_clean(&sim);
}

#[test]
fn zero_stall_timeouts_are_refused() {
    // The issue's case: a zero connect timeout with a zero backoff.
    let zero_backoff = Backoff {
        schedule: BackoffSchedule::Linear {
            initial: Duration::ZERO,
            step: Duration::ZERO,
            max: Duration::ZERO,
        },
        first_delay: Duration::ZERO,
        max_attempts: Some(100_000),
    };
    let config = config()
        .with_reconnect(zero_backoff)
        .with_timeouts(Timeouts {
            connect: Duration::ZERO,
            ..Timeouts::default()
        });
    assert_eq!(config.validate(), Err(ConfigError::ZeroTimeout("connect")));
    assert!(matches!(
        GatewayMachine::with_options(config, StartOptions::default(), 1, Timestamp::ZERO),
        Err(ConfigError::ZeroTimeout("connect"))
    ));
}

#[test]
fn one_handle_timeout_never_fires_a_timer_it_armed() {
    // At the end of time every deadline the machine arms is due at once (`now + timeout`
    // saturates at `now`): the connect timeout re-arms itself through each reconnect. One
    // call must still fire each expired timer once, not loop on what it re-arms.
    for start in [Timestamp::MAX, Timestamp::MAX.saturating_sub(secs(10))] {
        let config = config().with_reconnect(Backoff {
            first_delay: Duration::ZERO,
            max_attempts: Some(100_000),
            ..Backoff::default()
        });
        let mut m =
            GatewayMachine::with_options(config, StartOptions::default(), 1, start).unwrap();
        let mut connects = Vec::new();
        let count = |m: &mut GatewayMachine| {
            let mut n = 0;
            loop {
                match m.poll_output() {
                    Output::Connect { .. } => n += 1,
                    Output::Wait(_) => return n,
                    _ => {}
                }
            }
        };
        assert_eq!(count(&mut m), 1);
        for _ in 0..5 {
            // The socket never opens; the driver wakes at each deadline.
            let deadline = m.poll_timeout().expect("a deadline");
            m.handle_timeout(deadline);
            connects.push(count(&mut m));
        }
        assert!(connects.iter().all(|&n| n <= 1), "{start}: {connects:?}");
        assert!(connects.contains(&1), "{start}: {connects:?}");
        assert!(!m.phase().is_terminal(), "{:?}", m.phase());
    }
}
