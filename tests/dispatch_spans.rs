//! `Dispatch::spans`: where a dispatch's name and `d` lie in the text message the driver
//! gave, so that a driver holding the message in shared memory can hand out slices of it.
//! Known exactly when the machine's copy is the driver's message byte for byte; `None` when
//! the text exists only in the machine (decompressed) or was copied out of an undrained
//! buffer.

use discord_gateway_proto::{
    Event, GatewayConfig, GatewayMachine, Intents, Message, Output, Phase, StartOptions, Timestamp,
    Token,
};

const HELLO: &str = r#"{"op":10,"d":{"heartbeat_interval":41250}}"#;
const READY: &str = r#"{"t":"READY","s":1,"op":0,"d":{"v":10,"session_id":"abc","resume_gateway_url":"wss://resume.example","user":{"id":"1"},"guilds":[]}}"#;
/// Discord's key order, with a nested object and an escaped quote inside `d`.
const MESSAGE: &str = r#"{"t":"MESSAGE_CREATE","s":2,"op":0,"d":{"content":"a \"quoted\" word","author":{"id":"7"}}}"#;
/// Another key order: `d` before `t`.
const REORDERED: &str = r#"{"op":0,"d":{"id":"9"},"s":3,"t":"GUILD_CREATE"}"#;

fn config() -> GatewayConfig {
    GatewayConfig::new(Token::new("t"), Intents::GUILDS).with_auto_grant(true)
}

/// Every dispatch of one drain, with its spans resolved against `message`: (name, sequence,
/// data, name via spans, data via spans).
type Seen = Vec<Spanned>;
type Spanned = (String, u64, String, Option<String>, Option<String>);

fn drain(machine: &mut GatewayMachine, message: &str) -> Seen {
    let mut seen = Vec::new();
    loop {
        match machine.poll_output() {
            Output::Wait(_) => return seen,
            Output::Event(Event::Dispatch(d)) => seen.push((
                d.name.to_string(),
                d.sequence,
                d.data.to_string(),
                d.name_range().map(|r| message[r].to_string()),
                d.data_range().map(|r| message[r].to_string()),
            )),
            _ => {}
        }
    }
}

fn started(config: GatewayConfig) -> GatewayMachine {
    let now = Timestamp::ZERO;
    let mut machine =
        GatewayMachine::with_options(config, StartOptions::default(), 1, now).expect("config");
    drain(&mut machine, "");
    machine.handle_connected(now);
    drain(&mut machine, "");
    machine
}

/// A machine past READY, fed by lent text.
fn connected() -> GatewayMachine {
    let mut machine = started(config());
    let now = Timestamp::ZERO;
    machine.handle_message(now, Message::Text(HELLO));
    drain(&mut machine, HELLO);
    machine.handle_message(now, Message::Text(READY));
    drain(&mut machine, READY);
    assert_eq!(machine.phase(), Phase::Connected);
    machine
}

/// Checks that every dispatch seen has spans, and that they slice the message into exactly
/// the dispatch's name and data.
fn assert_spans_match(seen: &[Spanned], expected: &[(&str, u64)]) {
    let got: Vec<(&str, u64)> = seen.iter().map(|(n, s, ..)| (n.as_str(), *s)).collect();
    assert_eq!(got, expected);
    for (name, _, data, name_via, data_via) in seen {
        assert_eq!(name_via.as_deref(), Some(name.as_str()), "{seen:?}");
        assert_eq!(data_via.as_deref(), Some(data.as_str()), "{seen:?}");
    }
}

#[test]
fn lent_text_gives_spans_into_the_message() {
    let mut machine = started(config());
    let now = Timestamp::ZERO;
    machine.handle_message(now, Message::Text(HELLO));
    drain(&mut machine, HELLO);
    machine.handle_message(now, Message::Text(READY));
    assert_spans_match(&drain(&mut machine, READY), &[("READY", 1)]);
    machine.handle_message(now, Message::Text(MESSAGE));
    let seen = drain(&mut machine, MESSAGE);
    assert_spans_match(&seen, &[("MESSAGE_CREATE", 2)]);
    assert_eq!(
        seen[0].2,
        r#"{"content":"a \"quoted\" word","author":{"id":"7"}}"#
    );
    machine.handle_message(now, Message::TextBytes(REORDERED.as_bytes()));
    assert_spans_match(&drain(&mut machine, REORDERED), &[("GUILD_CREATE", 3)]);
}

#[test]
fn a_handed_over_buffer_gives_spans_into_that_buffer() {
    let mut machine = connected();
    let mut buffer = MESSAGE.to_string();
    machine.handle_text_buffer(Timestamp::ZERO, &mut buffer);
    assert_spans_match(&drain(&mut machine, MESSAGE), &[("MESSAGE_CREATE", 2)]);
}

#[test]
fn a_dispatch_copied_out_of_an_undrained_buffer_has_no_spans() {
    let mut machine = connected();
    let now = Timestamp::ZERO;
    // The driver breaks the drain rule: the first dispatch is copied out before the
    // second message overwrites the buffer, and no longer lies in the message given last.
    machine.handle_message(now, Message::Text(MESSAGE));
    machine.handle_message(now, Message::Text(REORDERED));
    let seen = drain(&mut machine, REORDERED);
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(
        (seen[0].0.as_str(), seen[0].3.as_deref()),
        ("MESSAGE_CREATE", None)
    );
    assert_eq!(seen[0].4, None);
    assert_spans_match(&seen[1..], &[("GUILD_CREATE", 3)]);
}

#[cfg(feature = "zlib-stream")]
#[test]
fn a_decompressed_message_has_no_spans() {
    use discord_gateway_proto::Compression;
    use std::io::Write;

    let mut machine = started(config().with_compression(Compression::ZlibStream));
    let now = Timestamp::ZERO;
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut compress = |text: &str| {
        encoder.write_all(text.as_bytes()).expect("compress");
        encoder.flush().expect("sync flush");
        std::mem::take(encoder.get_mut())
    };
    for text in [HELLO, READY, MESSAGE] {
        let bytes = compress(text);
        machine.handle_message(now, Message::Binary(&bytes));
        let seen = drain(&mut machine, "");
        assert!(
            seen.iter().all(|(.., n, d)| n.is_none() && d.is_none()),
            "{seen:?}"
        );
        if text == MESSAGE {
            assert_eq!(seen.len(), 1, "the dispatch itself arrived");
        }
    }
    // Lent text after compressed binary: the flag follows the buffer's content.
    machine.handle_message(now, Message::Text(REORDERED));
    let seen = drain(&mut machine, REORDERED);
    assert_spans_match(&seen, &[("GUILD_CREATE", 3)]);
}
