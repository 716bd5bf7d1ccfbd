//! The whole lifecycle over each transport compression: identify, READY, dispatches, a
//! zombie, a resume on the resume URL (a new compression context) with replay; and hostile
//! compressed input (corrupt data, a bomb) reconnecting without losing the session.
#![cfg(all(feature = "sim", any(feature = "zlib-stream", feature = "zstd-stream")))]

mod common;

use common::*;
use discord_gateway_proto::config::Limits;
use discord_gateway_proto::sim::{ScriptAction, SimDriver, SimEvent, TraceKind, Trigger};
use discord_gateway_proto::{
    Compression, DisconnectReason, Event, OpCode, Phase, ProtocolError, StartOptions, Timestamp,
};

fn modes() -> Vec<(Compression, &'static str)> {
    [
        #[cfg(feature = "zlib-stream")]
        (Compression::ZlibStream, "compress=zlib-stream"),
        #[cfg(feature = "zstd-stream")]
        (Compression::ZstdStream, "compress=zstd-stream"),
    ]
    .into_iter()
    .collect()
}

fn binary_messages(sim: &SimDriver) -> usize {
    sim.trace()
        .entries()
        .iter()
        .filter(|e| matches!(e.kind, TraceKind::ServerBinary { .. }))
        .count()
}

#[test]
fn identify_ready_zombie_and_resume_with_replay_over_each_compression() {
    for (compression, query) in modes() {
        let mut gateway = gateway();
        gateway
            .dispatch_stream(
                Trigger::ReadySent(1),
                ms(100),
                ms(2_000),
                (0..60).map(|i| {
                    (
                        "MESSAGE_CREATE",
                        format!(r#"{{"n":{i},"text":"{}"}}"#, "é".repeat(i)),
                    )
                }),
            )
            .stop_acking_after(2, None);
        let config = config().with_compression(compression);
        let mut sim =
            SimDriver::recorded(config, StartOptions::default(), 3, Timestamp::ZERO, gateway)
                .unwrap();
        run_to_ready(&mut sim);
        run_to_resumed(&mut sim);
        sim.run_for(secs(60));
        let connects: Vec<_> = sim
            .trace()
            .connects()
            .map(|(_, url)| url.to_string())
            .collect();
        assert!(connects.len() >= 2, "{compression:?}: {connects:?}");
        assert!(
            connects.iter().all(|u| u.contains(query)),
            "{compression:?}: {connects:?}"
        );
        assert!(
            connects[1].starts_with(RESUME),
            "{compression:?} resumes on the resume URL: {connects:?}"
        );
        assert!(
            binary_messages(&sim) > 60,
            "{compression:?}: the fake sent binary messages"
        );
        // Every dispatch the server logged arrived once, in order, intact.
        let received: Vec<(u64, String)> = sim
            .trace()
            .dispatches()
            .filter(|(_, d)| d.name == "MESSAGE_CREATE")
            .map(|(_, d)| (d.sequence, d.data.clone()))
            .collect();
        assert_eq!(received.len(), 60, "{compression:?}");
        assert!(received.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(
            received[59].1,
            format!(r#"{{"n":59,"text":"{}"}}"#, "é".repeat(59))
        );
        let errors: Vec<_> = sim
            .trace()
            .other_events()
            .filter(|(_, e)| matches!(e, Event::ProtocolError(_)))
            .collect();
        assert!(errors.is_empty(), "{compression:?}: {errors:?}");
        assert_eq!(sim.machine().phase(), Phase::Connected);
        assert_clean(&sim);
        // And the compressed run records and replays.
        let recording: Vec<String> = std::iter::from_fn(|| sim.pop_recording_line()).collect();
        assert!(recording.iter().any(|l| l.contains(r#""kind":"binary""#)));
        discord_gateway_proto::record::replay(recording.iter().map(String::as_str), |_| {})
            .unwrap_or_else(|e| panic!("{compression:?}: {e}"));
    }
}

#[test]
fn corrupt_compressed_data_reconnects_and_resumes() {
    for (compression, _) in modes() {
        let mut gateway = gateway();
        gateway.after(
            Trigger::ReadySent(1),
            secs(5),
            ScriptAction::Binary(vec![0xde, 0xad, 0xbe, 0xef, 0, 0, 0xff, 0xff]),
        );
        let mut sim = SimDriver::new(config().with_compression(compression), 4, gateway).unwrap();
        run_to_ready(&mut sim);
        run_to_resumed(&mut sim);
        let events: Vec<_> = sim.trace().other_events().map(|(_, e)| e.clone()).collect();
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::ProtocolError(ProtocolError::Decompress(_)))),
            "{compression:?}: {events:?}"
        );
        let d = disconnects(&sim);
        assert_eq!(d[0].1.reason, DisconnectReason::Protocol, "{compression:?}");
        assert!(d[0].1.resume, "the session is kept");
        assert_eq!(sim.machine().phase(), Phase::Connected);
    }
}

#[test]
fn a_decompression_bomb_is_cut_at_the_limit_and_the_session_survives() {
    for (compression, _) in modes() {
        let mut gateway = gateway();
        // 8 MiB of spaces inside a dispatch: tiny compressed, huge inflated.
        let bomb = format!(r#"{{"pad":"{}"}}"#, " ".repeat(8 << 20));
        gateway.after(
            Trigger::ReadySent(1),
            secs(5),
            ScriptAction::dispatch("MESSAGE_CREATE", bomb),
        );
        let limits = Limits {
            max_message_size: 1 << 20,
            ..Limits::default()
        };
        let mut sim = SimDriver::new(
            config().with_compression(compression).with_limits(limits),
            5,
            gateway,
        )
        .unwrap();
        run_to_ready(&mut sim);
        // The server replays the bomb on every resume: after `max_failed_resumes` (3) the
        // circuit breaker gives the session up and a fresh identify gets a clean READY.
        let second_ready = sim.run_until_event(at(secs(600)), |e| {
            matches!(e, SimEvent::Other(Event::Ready(_)))
        });
        assert!(
            second_ready.is_some(),
            "{compression:?}: no new session after the bomb\n{}",
            sim.trace()
        );
        assert_eq!(
            sim.trace().send_times(OpCode::Resume).len(),
            3,
            "{compression:?}"
        );
        assert_eq!(
            sim.trace().send_times(OpCode::Identify).len(),
            2,
            "{compression:?}"
        );
        // Buffers stay near the message limit; zstd's context also keeps the stream's
        // window (the compressor picked one for an 8 MiB message; `Limits::max_window`, 8 MiB
        // by default, caps it).
        let window = if compression.query_value() == Some("zlib-stream") {
            0
        } else {
            8 << 20
        };
        let heap = sim.machine().heap_bytes();
        assert!(
            heap < (1 << 20) + (512 << 10) + window,
            "{compression:?}: {heap} heap bytes"
        );
        let events: Vec<_> = sim.trace().other_events().map(|(_, e)| e.clone()).collect();
        assert!(
            events.iter().any(|e| matches!(
                e,
                Event::ProtocolError(ProtocolError::Decompress(
                    discord_gateway_proto::inflate::InflateError::MessageTooLarge { .. }
                ))
            )),
            "{compression:?}"
        );
        // The bomb never reached the application.
        assert!(sim
            .trace()
            .dispatches()
            .all(|(_, d)| d.data.len() < 1 << 20));
        assert_eq!(sim.machine().phase(), Phase::Connected);
    }
}
