//! `handle_text_buffer`: a message handed over in the driver's own `String` gives the same
//! outputs as the same text lent through `handle_message`, takes the buffer instead of
//! copying it, and leaves the driver an empty buffer to read the next message into.

#[path = "../benches/support/drive.rs"]
mod drive;
#[path = "../benches/support/frames.rs"]
mod frames;

use discord_gateway_proto::{GatewayMachine, Message, Output, ShardId, Timestamp};
use frames::{render, FrameSets, KeyOrder, SEED};

/// Every output until `Wait` (included), in a comparable form.
fn drain_all(machine: &mut GatewayMachine) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let output = machine.poll_output();
        let done = matches!(output, Output::Wait(_));
        seen.push(format!("{output:?}"));
        if done {
            return seen;
        }
    }
}

/// One step of a script: a frame, and whether the driver drains after it.
struct Step {
    text: String,
    drain: bool,
}

/// Runs `steps` on a fresh connected machine, feeding each text with `feed`; returns every
/// output in order.
fn run(steps: &[Step], feed: impl Fn(&mut GatewayMachine, Timestamp, &str)) -> Vec<String> {
    let config = drive::shared_config(1);
    let start = Timestamp::from_secs(1);
    let mut machine = drive::connected_machine(&config, ShardId::ONE, SEED, start);
    let mut seen = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let now = start.saturating_add(std::time::Duration::from_millis(i as u64));
        feed(&mut machine, now, &step.text);
        if step.drain {
            seen.extend(drain_all(&mut machine));
        }
    }
    seen.extend(drain_all(&mut machine));
    seen
}

fn lent(machine: &mut GatewayMachine, now: Timestamp, text: &str) {
    machine.handle_message(now, Message::Text(text));
}

fn handed_over(machine: &mut GatewayMachine, now: Timestamp, text: &str) {
    let mut buffer = text.to_owned();
    machine.handle_text_buffer(now, &mut buffer);
    assert!(buffer.is_empty(), "the driver gets an empty buffer back");
}

#[test]
fn same_outputs_as_lent_text_in_every_state() {
    let sets = FrameSets::new(SEED);
    let stream = render(&sets.mixed[2..200], KeyOrder::Discord);
    let mut steps: Vec<Step> = stream
        .iter()
        .enumerate()
        // Every seventh frame is left undrained: the next one must spill it first.
        .map(|(i, text)| Step {
            text: text.clone(),
            drain: i % 7 != 3,
        })
        .collect();
    let odd = [
        // Not JSON, then an envelope with no `op`: protocol errors, the session goes on.
        r#"{"t":"MESSAGE_CREATE","s":9"#,
        r#"{"t":null,"s":null,"d":{}}"#,
        // RATE_LIMITED, as Discord sends it for REQUEST_GUILD_MEMBERS.
        r#"{"t":"RATE_LIMITED","s":4000,"op":0,"d":{"opcode":8,"retry_after":1.5,"meta":{"guild_id":"1","nonce":"n"}}}"#,
        // RECONNECT: the machine closes the socket ...
        r#"{"t":null,"s":null,"op":7,"d":null}"#,
        // ... so these arrive on a closed socket.
        r#"{"t":"TYPING_START","s":500,"op":0,"d":{}}"#,
        r#"{"t":"TYPING_START","s":501,"op":0,"d":{}}"#,
    ];
    steps.extend(odd.iter().map(|text| Step {
        text: (*text).to_owned(),
        drain: true,
    }));

    let by_lending = run(&steps, lent);
    let by_handing_over = run(&steps, handed_over);
    assert!(by_lending.iter().any(|o| o.contains("RateLimited")));
    assert!(by_lending.iter().any(|o| o.contains("NotConnected")));
    assert!(by_lending.iter().any(|o| o.contains("Dispatch")));
    assert_eq!(by_lending, by_handing_over);
}

#[test]
fn the_buffer_is_taken_not_copied_and_the_previous_one_given_back() {
    let config = drive::shared_config(1);
    let now = Timestamp::from_secs(1);
    let mut machine = drive::connected_machine(&config, ShardId::ONE, SEED, now);
    let sets = FrameSets::new(SEED);

    let mut first = sets.typing_start[0].clone();
    let first_bytes = first.as_ptr();
    machine.handle_text_buffer(now, &mut first);
    match machine.poll_output() {
        Output::Event(discord_gateway_proto::Event::Dispatch(dispatch)) => {
            // The dispatch borrows the very bytes the driver handed over.
            let data = dispatch.data.as_ptr() as usize;
            let start = first_bytes as usize;
            assert!(data > start && data < start + sets.typing_start[0].len());
        }
        other => panic!("expected the dispatch, got {other:?}"),
    }
    assert!(matches!(machine.poll_output(), Output::Wait(_)));

    // The next message gives the first buffer back, empty and with its capacity.
    let mut second = sets.presence_update[0].clone();
    machine.handle_text_buffer(now, &mut second);
    assert_eq!(second.as_ptr(), first_bytes);
    assert!(second.is_empty());
    assert!(second.capacity() >= sets.typing_start[0].len());
    drive::drain(&mut machine);
}

#[test]
fn a_huge_buffer_is_given_back_trimmed() {
    let config = drive::shared_config(1);
    let now = Timestamp::from_secs(1);
    let mut machine = drive::connected_machine(&config, ShardId::ONE, SEED, now);
    // A 3 MiB dispatch (a large GUILD_CREATE, say).
    let filler = "x".repeat(3 << 20);
    let mut huge = format!(r#"{{"t":"GUILD_CREATE","s":2,"op":0,"d":{{"f":"{filler}"}}}}"#);
    machine.handle_text_buffer(now, &mut huge);
    assert_eq!(drive::drain(&mut machine).dispatches, 1);

    let mut next = FrameSets::new(SEED).typing_start[0].clone();
    machine.handle_text_buffer(now, &mut next);
    assert_eq!(drive::drain(&mut machine).dispatches, 1);
    assert!(next.is_empty());
    assert!(
        next.capacity() <= 1 << 20,
        "{} bytes kept after a huge message",
        next.capacity()
    );
}
