//! A catalogue of hostile servers, each run in virtual time against the fake gateway. Every
//! one checks: no panic, bounded memory (`heap_bytes` after every step), a clear event, a
//! recovery or a clean terminal state, and no identify storm over an hour.
#![cfg(feature = "sim")]

mod common;

use std::time::Duration;

use common::*;
use discord_gateway_proto::sim::{
    ConnectionId, FakeGateway, FakeGatewayConfig, ScriptAction, SimDriver, SimEvent, Trigger,
};
use discord_gateway_proto::{DisconnectReason, Event, OpCode, Phase, ProtocolError, Timestamp};

const HOUR: Duration = Duration::from_secs(3_600);
/// Heap a machine may hold when every message is small.
const SMALL_HEAP: usize = 64 * 1024;
/// The most Identify frames an hour may see when every session fails: the reconnect backoff
/// tops out at a delay drawn from [30 s, 60 s), so at most one per 30 s, plus the first few
/// quick tries.
const MAX_IDENTIFIES_PER_HOUR: usize = 3_600 / 30 + 15;

fn sim_with(gateway: FakeGateway, seed: u64) -> SimDriver {
    SimDriver::new(config(), seed, gateway).unwrap()
}

/// Steps until `until`, calling `server` after every step (a hostile server reacting to what
/// it saw) and checking the machine's heap after every step. Returns the largest heap seen.
fn run_hostile(
    sim: &mut SimDriver,
    until: Timestamp,
    heap_bound: usize,
    mut server: impl FnMut(&mut SimDriver),
) -> usize {
    let mut max = 0;
    while sim.next_deadline().is_some_and(|d| d <= until) {
        sim.step();
        server(sim);
        let heap = sim.machine().heap_bytes();
        max = max.max(heap);
        assert!(
            heap <= heap_bound,
            "heap {heap} > {heap_bound} at {}",
            sim.now()
        );
    }
    max
}

fn identifies(sim: &SimDriver) -> usize {
    sim.trace().send_times(OpCode::Identify).len()
}

fn count_events(sim: &SimDriver, pred: impl Fn(&Event<'_>) -> bool) -> usize {
    sim.trace().other_events().filter(|(_, e)| pred(e)).count()
}

/// A well-behaved server from now on; the machine must reach a live session.
fn heals_to_live(sim: &mut SimDriver) {
    let limit = sim.now().saturating_add(secs(600));
    sim.run_until_event(limit, |e| {
        matches!(e, SimEvent::Other(Event::Ready(_) | Event::Resumed { .. }))
    })
    .unwrap_or_else(|| panic!("no recovery\n{}", sim.trace()));
    assert_eq!(sim.machine().phase(), Phase::Connected);
}

#[test]
fn never_sends_hello() {
    let mut sim = sim_with(
        FakeGateway::new(FakeGatewayConfig {
            hello_delay: None,
            ..gateway_config()
        }),
        1,
    );
    run_hostile(&mut sim, at(HOUR), SMALL_HEAP, |_| {});
    // Nothing is ever sent without Hello; every connection ends in a Hello timeout.
    assert_eq!(sim.gateway().received().len(), 0, "{}", sim.trace());
    let reasons = disconnect_reasons(&sim);
    assert!(reasons.iter().all(|r| *r == DisconnectReason::HelloTimeout));
    // Backoff: each try costs the 20 s Hello timeout plus up to 60 s of waiting.
    let connects = sim.trace().connects().count();
    assert!(
        (40..=3_600 / 50 + 10).contains(&connects),
        "{connects} connects"
    );
    assert!(!sim.machine().phase().is_terminal());
    sim.gateway_mut().config_mut().hello_delay = Some(Duration::ZERO);
    heals_to_live(&mut sim);
    assert_eq!(identifies(&sim), 1);
}

#[test]
fn floods_op1() {
    let mut gateway = gateway();
    // op 1 every 20 ms for ten minutes: 30 000 requests.
    for i in 0..30_000u64 {
        gateway.at(at_ms(1_000 + i * 20), ScriptAction::RequestHeartbeat);
    }
    let mut sim = sim_with(gateway, 2);
    run_hostile(&mut sim, at(secs(700)), SMALL_HEAP, |_| {});
    // The fake enforces the 120-per-60-s limit (closing with 4008): it never had to.
    assert_clean(&sim);
    assert_eq!(sim.trace().connects().count(), 1, "{:?}", disconnects(&sim));
    assert_eq!(sim.machine().phase(), Phase::Connected);
    // Answers are coalesced to at most one a second, plus the scheduled beats.
    let beats = beats(&sim).len();
    assert!((550..=700).contains(&beats), "{beats} beats in 700 s");
    assert_eq!(identifies(&sim), 1);
}

#[test]
fn sends_a_ready_without_resume_url() {
    let mut gateway = FakeGateway::new(FakeGatewayConfig {
        resume_url: String::new(),
        ..gateway_config()
    });
    gateway.at(at_ms(20_000), ScriptAction::Drop);
    let mut sim = sim_with(gateway, 3);
    run_to_ready(&mut sim);
    assert_eq!(sim.machine().session().unwrap().resume_url, None);
    run_hostile(&mut sim, at(secs(60)), SMALL_HEAP, |_| {});
    // No resume URL: the resume goes to the main URL, with the full query.
    let urls: Vec<_> = sim.trace().connects().map(|(_, u)| u.to_string()).collect();
    assert_eq!(urls, [MAIN_URL, MAIN_URL]);
    assert_eq!(sim.gateway().received_op(6).count(), 1);
    assert_eq!(
        count_events(&sim, |e| matches!(e, Event::Resumed { .. })),
        1
    );
    assert_eq!(identifies(&sim), 1);
    assert_clean(&sim);
}

#[test]
fn replays_with_gaps_and_duplicates() {
    let mut gateway = FakeGateway::new(FakeGatewayConfig {
        resume_delay: secs(1),
        ..gateway_config()
    });
    gateway
        .dispatch_stream(
            Trigger::ReadySent(1),
            ms(100),
            ms(100),
            (0..5).map(|i| ("MESSAGE_CREATE", format!(r#"{{"n":{i}}}"#))),
        )
        .at(at_ms(20_000), ScriptAction::Drop);
    // Before its own (empty) replay and RESUMED, the server sends sequences with a gap, a
    // duplicate, an old one and a big jump.
    for (i, s) in [20u64, 20, 8, 100, 99].into_iter().enumerate() {
        gateway.after(
            Trigger::ResumeReceived(1),
            ms(10 * i as u64 + 10),
            ScriptAction::Text(format!(
                r#"{{"t":"MESSAGE_CREATE","s":{s},"op":0,"d":{{"replayed":{i}}}}}"#
            )),
        );
    }
    let mut sim = sim_with(gateway, 4);
    let mut last_seq = 0;
    run_hostile(&mut sim, at(secs(90)), SMALL_HEAP, |sim| {
        let seq = sim.machine().session().map_or(0, |s| s.sequence);
        assert!(
            seq >= last_seq,
            "sequence went back from {last_seq} to {seq}"
        );
        last_seq = seq;
    });
    // Every dispatch reaches the application, duplicates and old ones included, in order.
    let seqs: Vec<u64> = sim.trace().dispatches().map(|(_, d)| d.sequence).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6, 20, 20, 8, 100, 99, 7]);
    // The session keeps the highest sequence; heartbeats carry it.
    assert_eq!(sim.machine().session().unwrap().sequence, 100);
    let last_beat = sim.gateway().received_op(1).last().unwrap().data().cloned();
    assert_eq!(last_beat, Some(serde_json::json!(100)));
    assert_eq!(
        count_events(&sim, |e| matches!(e, Event::Resumed { replayed: 5 })),
        1
    );
    assert_eq!(sim.trace().connects().count(), 2);
    assert_eq!(identifies(&sim), 1);
}

#[test]
fn sends_16_mib_frames() {
    const MIB: usize = 1 << 20;
    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(16 * MIB));
    let mut gateway = gateway();
    gateway
        .after(
            Trigger::ReadySent(1),
            secs(1),
            ScriptAction::dispatch("GUILD_CREATE", big.clone()),
        )
        // An unterminated 16 MiB message: not JSON.
        .after(
            Trigger::ReadySent(1),
            secs(2),
            ScriptAction::Text(format!(r#"{{"op":0,"d":"{}"#, "y".repeat(16 * MIB))),
        )
        .dispatch_stream(
            Trigger::ReadySent(1),
            secs(3),
            secs(1),
            (0..5).map(|i| ("MESSAGE_CREATE", format!(r#"{{"n":{i}}}"#))),
        );
    let mut sim = sim_with(gateway, 5);
    let max = run_hostile(&mut sim, at(secs(10)), 2 * 16 * MIB + MIB, |_| {});
    assert!(max >= 16 * MIB, "the big dispatch was held: {max}");
    let sizes: Vec<usize> = sim
        .trace()
        .dispatches()
        .map(|(_, d)| d.data.len())
        .collect();
    assert_eq!(sizes.len(), 7, "READY, the big one and five small ones");
    assert_eq!(sizes[1], big.len());
    assert!(protocol_errors(&sim)
        .iter()
        .any(|e| matches!(e, ProtocolError::Envelope(_))));
    // Once small messages flow again, the machine gives the memory back (it may keep a
    // receive buffer of up to 1 MiB).
    let heap = sim.machine().heap_bytes();
    assert!(
        heap <= MIB + SMALL_HEAP,
        "{heap} bytes held after the big frames"
    );
    assert_eq!(sim.trace().connects().count(), 1);
    assert_eq!(sim.machine().phase(), Phase::Connected);
}

#[test]
fn closes_mid_message_during_the_resume_replay() {
    // Ten dispatches are missed; the first resume's replay is cut after a truncated frame by
    // a dropped transport, before RESUMED.
    let mut gateway = FakeGateway::new(FakeGatewayConfig {
        send_resumed: false,
        ..gateway_config()
    });
    gateway.at(at_ms(20_000), ScriptAction::Drop);
    for i in 0..10 {
        gateway.at(
            at_ms(20_001 + i),
            ScriptAction::dispatch("MESSAGE_CREATE", format!(r#"{{"n":{i}}}"#)),
        );
    }
    gateway
        .after(
            Trigger::ResumeReceived(1),
            ms(150),
            ScriptAction::Text(r#"{"t":"MESSAGE_CREATE","s":12,"op":0,"d":{"con"#.into()),
        )
        .after(Trigger::ResumeReceived(1), ms(150), ScriptAction::Drop);
    let mut sim = sim_with(gateway, 6);
    run_to_ready(&mut sim);
    sim.run_until(at_ms(20_200));
    assert_eq!(
        sim.machine().phase(),
        Phase::Disconnected,
        "the resume failed"
    );
    // The next resume gets RESUMED.
    sim.gateway_mut().config_mut().send_resumed = true;
    run_hostile(&mut sim, at(secs(120)), SMALL_HEAP, |_| {});
    let resumes: Vec<u64> = sim
        .gateway()
        .received_op(6)
        .map(|f| f.data().unwrap()["seq"].as_u64().unwrap())
        .collect();
    // The second resume starts after everything the cut replay delivered.
    assert_eq!(resumes, [1, 11], "{}", sim.trace());
    // The truncated frame names its sequence: reported as a dispatch not delivered.
    assert!(protocol_errors(&sim)
        .iter()
        .any(|e| matches!(e, ProtocolError::LostDispatch { sequence: 12, .. })));
    let seqs: Vec<u64> = sim.trace().dispatches().map(|(_, d)| d.sequence).collect();
    assert_eq!(
        seqs,
        (1..=12).collect::<Vec<_>>(),
        "each dispatch exactly once"
    );
    assert_eq!(sim.machine().phase(), Phase::Connected);
    assert_eq!(identifies(&sim), 1);
}

/// A server that answers every Identify and Resume with op 9 `d` for an hour.
fn invalid_session_loop(d: bool, seed: u64) -> SimDriver {
    let mut sim = sim_with(
        FakeGateway::new(FakeGatewayConfig {
            send_ready: false,
            ..gateway_config()
        }),
        seed,
    );
    let mut answered = 0;
    run_hostile(&mut sim, at(HOUR), SMALL_HEAP, |sim| {
        let asked = sim
            .gateway()
            .received()
            .iter()
            .filter(|f| matches!(f.opcode, Some(2 | 6)))
            .count();
        if asked > answered {
            answered = asked;
            sim.server(ScriptAction::InvalidSession(d));
        }
    });
    assert!(answered > 10, "the loop ran: {answered}");
    assert!(!sim.machine().phase().is_terminal());
    sim
}

#[test]
fn invalid_session_loop_op9_false_forever() {
    let mut sim = invalid_session_loop(false, 7);
    let n = identifies(&sim);
    assert!(
        n <= MAX_IDENTIFIES_PER_HOUR,
        "{n} identifies in an hour of op 9 false"
    );
    assert!(
        count_events(&sim, |e| matches!(
            e,
            Event::InvalidSession { resumable: false }
        )) >= n - 1
    );
    sim.gateway_mut().config_mut().send_ready = true;
    heals_to_live(&mut sim);
}

#[test]
fn invalid_session_loop_op9_true_forever() {
    let mut sim = invalid_session_loop(true, 8);
    let n = identifies(&sim);
    assert!(
        n <= MAX_IDENTIFIES_PER_HOUR,
        "{n} identifies in an hour of op 9 true"
    );
    assert!(
        count_events(&sim, |e| matches!(
            e,
            Event::InvalidSession { resumable: true }
        )) >= n
    );
    sim.gateway_mut().config_mut().send_ready = true;
    heals_to_live(&mut sim);
}

#[cfg(any(feature = "zlib-stream", feature = "zstd-stream"))]
#[test]
fn sends_a_decompression_bomb_after_every_ready_and_resumed() {
    use discord_gateway_proto::config::Limits;
    use discord_gateway_proto::Compression;

    const MIB: usize = 1 << 20;
    let modes = [
        #[cfg(feature = "zlib-stream")]
        Compression::ZlibStream,
        #[cfg(feature = "zstd-stream")]
        Compression::ZstdStream,
    ];
    for compression in modes {
        let limits = Limits {
            max_message_size: 32 * 1024,
            ..Limits::default()
        };
        let config = config().with_compression(compression).with_limits(limits);
        let mut sim = SimDriver::new(config, 9, gateway()).unwrap();
        // 512 KiB of spaces: under a KiB compressed, sixteen times the limit inflated.
        let bomb = format!(r#"{{"pad":"{}"}}"#, " ".repeat(MIB / 2));
        let mut live = 0;
        let mut bombed: Option<ConnectionId> = None;
        // The zstd context alone is about 2.5 MiB; the bomb may add the message limit.
        run_hostile(&mut sim, at(HOUR), 4 * MIB, |sim| {
            let now_live = count_events(sim, |e| {
                matches!(e, Event::Ready(_) | Event::Resumed { .. })
            });
            if now_live > live && sim.connection() != bombed && live < 6 {
                live = now_live;
                bombed = sim.connection();
                sim.server(ScriptAction::dispatch("MESSAGE_CREATE", bomb.clone()));
            }
        });
        assert_eq!(live, 6, "{compression:?}: the bomb went off {live} times");
        let too_large = protocol_errors(&sim)
            .iter()
            .filter(|e| matches!(e, ProtocolError::Decompress(_)))
            .count();
        assert!(too_large >= 3, "{compression:?}");
        let n = identifies(&sim);
        assert!(
            n <= MAX_IDENTIFIES_PER_HOUR,
            "{compression:?}: {n} identifies"
        );
        assert_eq!(sim.machine().phase(), Phase::Connected, "{compression:?}");
    }
}
