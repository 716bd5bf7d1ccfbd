//! Prints the timeline of a recording, with the decision trace, and checks that this
//! version of the crate still behaves as recorded.
//!
//! ```text
//! cargo run --example replay -- recording.jsonl
//! ```
//!
//! Drivers write recordings when `DISCORD_RECORD=PATH` is set. Exits 0 when the replay
//! matches, 1 when behaviour changed (the first difference is printed) or the recording is
//! bad, 2 on a usage error.

use std::process::ExitCode;

use discord_gateway_proto::record::{replay, Line, ReplayItem};

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: cargo run --example replay -- RECORDING.jsonl");
        return ExitCode::from(2);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) => {
            eprintln!("replay: cannot read {path}: {error}");
            return ExitCode::from(2);
        }
    };
    let mut clock = 0u64;
    let result = replay(text.lines(), |item| match item {
        ReplayItem::Input { input, .. } => {
            if let Some(t) = input_time(input) {
                clock = t;
            }
            println!("{:>10}  in   {}", seconds(clock), describe(input));
        }
        ReplayItem::Output { output, .. } if !matches!(output, Line::Wait { .. }) => {
            println!("{:>10}  out  {}", seconds(clock), describe(output));
        }
        ReplayItem::Decision(decision) => {
            println!(
                "{:>10}  why  {}: {} → {}",
                seconds(clock),
                decision.cause,
                decision.rule.describe(),
                decision.outcome
            )
        }
        // `Wait` outputs, and kinds of step this example does not know.
        _ => {}
    });
    match result {
        Ok(summary) => {
            println!(
                "replayed {} lines: {} inputs, {} outputs, identical to the recording",
                summary.lines, summary.inputs, summary.outputs
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("replay: {error}");
            ExitCode::from(1)
        }
    }
}

fn seconds(micros: u64) -> String {
    format!("{}.{:03}s", micros / 1_000_000, micros / 1_000 % 1_000)
}

fn input_time(line: &Line) -> Option<u64> {
    match line {
        Line::Connected { t }
        | Line::Text { t, .. }
        | Line::TextBytes { t, .. }
        | Line::Binary { t, .. }
        | Line::Closed { t, .. }
        | Line::Timeout { t }
        | Line::Command { t, .. }
        | Line::Grant { t }
        | Line::Shutdown { t, .. } => Some(*t),
        _ => None,
    }
}

/// One short line per recorded item; long texts are cut.
fn describe(line: &Line) -> String {
    let cut = |s: &str| {
        if s.len() > 100 {
            let end = (0..=100)
                .rev()
                .find(|&i| s.is_char_boundary(i))
                .unwrap_or(0);
            format!("{}… ({} bytes)", &s[..end], s.len())
        } else {
            s.to_string()
        }
    };
    match line {
        Line::Connected { .. } => "socket open".into(),
        Line::Text { data, .. } => format!("message {}", cut(data)),
        Line::TextBytes { base64, .. } => format!("text bytes ({} base64 chars)", base64.len()),
        Line::Binary { base64, .. } => format!("binary ({} base64 chars)", base64.len()),
        Line::Closed {
            code: Some(code),
            reason,
            ..
        } => format!("closed by server: {code} {reason}"),
        Line::Closed { code: None, .. } => "transport lost".into(),
        Line::Timeout { .. } => "timer".into(),
        Line::Command { frame, .. } => format!("command {}", cut(frame)),
        Line::Grant { .. } => "identify granted".into(),
        Line::Shutdown { keep_session, .. } => format!("shutdown (keep session: {keep_session})"),
        Line::Connect { url } => format!("connect {url}"),
        Line::Send { text, .. } => format!("send {}", cut(text)),
        Line::Close { code, reason } => format!("close {code} {reason}"),
        Line::Dispatch { name, seq, len } => format!("dispatch {name} #{seq} ({len} bytes)"),
        Line::Event { event } => format!("event {}", cut(event)),
        Line::Wait { deadline } => format!("wait {deadline:?}"),
        Line::Ok => "ok".into(),
        Line::Err { error } => format!("error: {error}"),
        other => format!("{other:?}"),
    }
}
