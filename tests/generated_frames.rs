//! The benches' frame generator makes valid, realistic, deterministic frames, and the
//! envelope reader agrees with serde_json on every one of them, in both key orders.

#[path = "../benches/support/frames.rs"]
mod frames;

use discord_gateway_proto::protocol::envelope::read_envelope;
use frames::{render, FrameGen, FrameSets, KeyOrder, SEED};

fn mean(set: &[String]) -> usize {
    set.iter().map(String::len).sum::<usize>() / set.len()
}

fn check(text: &str) {
    let value: serde_json::Value = serde_json::from_str(text).expect("valid JSON");
    let e = read_envelope(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(Some(e.op), value["op"].as_u64());
    assert_eq!(e.sequence, value["s"].as_u64());
    assert_eq!(e.event_name, value["t"].as_str());
    let d: serde_json::Value = serde_json::from_str(e.data.expect("d")).unwrap();
    assert_eq!(d, value["d"]);
}

#[test]
fn sizes_are_realistic() {
    let sets = FrameSets::new(SEED);
    assert_eq!(
        sets.heartbeat_ack[0],
        r#"{"t":null,"s":null,"op":11,"d":null}"#
    );
    let typing = mean(&sets.typing_start);
    let presence = mean(&sets.presence_update);
    let message = mean(&sets.message_create_embed);
    let guild = sets.guild_create[0].len();
    let mixed = render(&sets.mixed, KeyOrder::Discord);
    let mixed_mean = mean(&mixed);
    eprintln!(
        "typing {typing} presence {presence} message {message} guild {guild} mixed {mixed_mean}"
    );
    assert!((450..900).contains(&typing), "{typing}");
    assert!((250..800).contains(&presence), "{presence}");
    assert!((1800..3500).contains(&message), "{message}");
    assert!((170_000..260_000).contains(&guild), "{guild}");
    assert!((500..1200).contains(&mixed_mean), "{mixed_mean}");
}

#[test]
fn large_guild_create_size_classes_are_valid_and_in_range() {
    for (members, range) in [(344, 280_000..350_000), (4_020, 3_000_000..3_600_000)] {
        let frames = frames::guild_creates(SEED ^ 2, members, 2);
        for frame in &frames {
            eprintln!("{members} members: {} bytes", frame.len());
            assert!(range.contains(&frame.len()), "{members}: {}", frame.len());
            check(frame);
        }
        assert_ne!(frames[0], frames[1], "back to back, not one frame twice");
    }
}

#[test]
fn frames_are_valid_and_read_alike_in_both_orders() {
    let sets = FrameSets::new(SEED);
    for set in [
        &sets.heartbeat_ack,
        &sets.typing_start,
        &sets.presence_update,
        &sets.message_create_embed,
        &sets.guild_create,
    ] {
        set.iter().for_each(|f| check(f));
    }
    for order in [KeyOrder::Discord, KeyOrder::DataFirst] {
        render(&sets.mixed, order).iter().for_each(|f| check(f));
    }
}

#[test]
fn frames_carry_escapes_and_unicode() {
    let mixed = render(&FrameSets::new(SEED).mixed, KeyOrder::Discord).concat();
    for needle in [r#"\""#, r"\\", r"\n", "é", "🔥", "日本語"] {
        assert!(mixed.contains(needle), "no {needle:?} in the stream");
    }
}

#[test]
fn same_seed_same_frames() {
    let a = render(&FrameGen::new(7).mixed_stream(300), KeyOrder::Discord);
    let b = render(&FrameGen::new(7).mixed_stream(300), KeyOrder::Discord);
    let c = render(&FrameGen::new(8).mixed_stream(300), KeyOrder::Discord);
    assert_eq!(a, b);
    assert_ne!(a, c);
}
