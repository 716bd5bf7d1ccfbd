//! Replaying a recording into a fresh machine and checking it behaves the same.

use alloc::string::{String, ToString};
use alloc::sync::Arc;

use thiserror::Error;

use super::format::{Header, Line, FORMAT_NAME, FORMAT_VERSION, REDACTED};
use super::{base64, output_line};
use crate::config::Token;
use crate::machine::{GatewayMachine, Message, StartOptions};
use crate::output::{CloseFrame, Event, Output};
use crate::protocol::opcode::OpCode;
use crate::time::Timestamp;
use crate::trace::Decision;

/// Why a replay stopped. Line numbers count from 1, the header being line 1.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The recording has no header line.
    #[error("the recording is empty")]
    Empty,
    /// The first line is not a header of this format.
    #[error("line 1: not a discord-gateway-proto recording header: {0}")]
    BadHeader(String),
    /// The header has a version this crate cannot read.
    #[error("line 1: recording format version {found}, this crate reads version {supported}")]
    UnsupportedVersion {
        /// The version in the header.
        found: u32,
        /// The version this crate reads.
        supported: u32,
    },
    /// The recorded configuration is invalid.
    #[error("line 1: the recorded configuration is invalid: {0}")]
    BadConfig(String),
    /// A line is not valid (truncated, garbage, unknown kind).
    #[error("line {line}: {reason}")]
    BadLine {
        /// The line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The machine produced something other than what was recorded.
    #[error("line {line}: behaviour changed: recorded {expected}, replay produced {actual}")]
    Mismatch {
        /// The line number of the recorded output.
        line: usize,
        /// The recorded line.
        expected: String,
        /// What the replay produced, in the same form.
        actual: String,
    },
}

/// One step of a replay, for printing a timeline.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum ReplayItem<'a> {
    /// An input or command, about to be applied.
    Input {
        /// Its line number.
        line: usize,
        /// The input.
        input: &'a Line,
    },
    /// An output the replay produced and that matched the recording.
    Output {
        /// Its line number.
        line: usize,
        /// The output.
        output: &'a Line,
    },
    /// Why the machine did what follows (the trace is always on during a replay).
    Decision(Decision),
}

/// What a successful replay went through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplaySummary {
    /// Lines read, header included.
    pub lines: usize,
    /// Inputs and commands applied.
    pub inputs: usize,
    /// Outputs compared.
    pub outputs: usize,
}

/// Replays `recording` (the lines of a recording, header first) into a fresh machine with
/// the decision trace on, calling `on_item` for each input, matched output and decision.
/// Stops at the first line that is invalid or whose output differs.
pub fn replay<'r, I>(
    recording: I,
    mut on_item: impl FnMut(ReplayItem<'_>),
) -> Result<ReplaySummary, ReplayError>
where
    I: IntoIterator<Item = &'r str>,
{
    let mut lines = recording.into_iter().enumerate().map(|(i, l)| (i + 1, l));
    let (_, header) = lines.next().ok_or(ReplayError::Empty)?;
    let mut machine = start(header)?;
    machine.set_trace(true);
    let mut summary = ReplaySummary {
        lines: 1,
        ..ReplaySummary::default()
    };
    for (number, text) in lines {
        summary.lines = number;
        if text.trim().is_empty() {
            continue;
        }
        let line: Line = serde_json::from_str(text).map_err(|e| ReplayError::BadLine {
            line: number,
            reason: e.to_string(),
        })?;
        if line.is_input() {
            on_item(ReplayItem::Input {
                line: number,
                input: &line,
            });
            summary.inputs += 1;
            // A command's result is compared with the result line that follows it.
            machine.last_result = apply(&mut machine, &line, number)?;
            continue;
        }
        match line {
            Line::Ok | Line::Err { .. } => {
                let actual = machine
                    .last_result
                    .take()
                    .ok_or_else(|| ReplayError::Mismatch {
                        line: number,
                        expected: text.into(),
                        actual: "no command result".into(),
                    })?;
                if actual != line {
                    return Err(mismatch(number, &line, &actual));
                }
            }
            _ => {
                let actual = next_output(&mut machine.machine, &mut on_item);
                if actual != line {
                    return Err(mismatch(number, &line, &actual));
                }
                summary.outputs += 1;
                on_item(ReplayItem::Output {
                    line: number,
                    output: &line,
                });
            }
        }
    }
    Ok(summary)
}

/// The machine under replay and the result of its last command.
struct Replayed {
    machine: GatewayMachine,
    last_result: Option<Line>,
}

impl Replayed {
    fn set_trace(&mut self, on: bool) {
        self.machine.set_trace(on);
    }
}

fn start(header: &str) -> Result<Replayed, ReplayError> {
    let header: Header =
        serde_json::from_str(header).map_err(|e| ReplayError::BadHeader(e.to_string()))?;
    if header.format != FORMAT_NAME {
        return Err(ReplayError::BadHeader(alloc::format!(
            "format {:?}",
            header.format
        )));
    }
    if header.version != FORMAT_VERSION {
        return Err(ReplayError::UnsupportedVersion {
            found: header.version,
            supported: FORMAT_VERSION,
        });
    }
    let mut config = header.config;
    config.token = Token::new(REDACTED);
    let options = StartOptions {
        shard: Some(header.shard),
        session: header.session,
    };
    let machine = GatewayMachine::with_options(
        Arc::new(config),
        options,
        header.seed,
        Timestamp::from_micros(header.start),
    )
    .map_err(|e| ReplayError::BadConfig(e.to_string()))?;
    Ok(Replayed {
        machine,
        last_result: None,
    })
}

/// Applies one input; returns the command result for commands.
fn apply(replayed: &mut Replayed, line: &Line, number: usize) -> Result<Option<Line>, ReplayError> {
    let machine = &mut replayed.machine;
    let bad = |reason: &str| ReplayError::BadLine {
        line: number,
        reason: reason.into(),
    };
    let result = match line {
        Line::Connected { t } => {
            machine.handle_connected(Timestamp::from_micros(*t));
            None
        }
        Line::Text { t, data } => {
            machine.handle_message(Timestamp::from_micros(*t), Message::Text(data));
            None
        }
        Line::TextBytes { t, base64: b64 } => {
            let bytes = base64::decode(b64).ok_or_else(|| bad("invalid base64"))?;
            machine.handle_message(Timestamp::from_micros(*t), Message::TextBytes(&bytes));
            None
        }
        Line::Binary { t, base64: b64 } => {
            let bytes = base64::decode(b64).ok_or_else(|| bad("invalid base64"))?;
            machine.handle_message(Timestamp::from_micros(*t), Message::Binary(&bytes));
            None
        }
        Line::Closed { t, code, reason } => {
            let frame = code.map(|code| CloseFrame { code, reason });
            machine.handle_closed(Timestamp::from_micros(*t), frame);
            None
        }
        Line::Timeout { t } => {
            machine.handle_timeout(Timestamp::from_micros(*t));
            None
        }
        Line::Command { t, op, frame } => {
            let opcode = OpCode::from_u64(u64::from(*op)).ok_or_else(|| bad("unknown opcode"))?;
            Some(machine.send_at(Timestamp::from_micros(*t), opcode, frame.clone()))
        }
        Line::Grant { t } => Some(machine.grant_identify(Timestamp::from_micros(*t))),
        Line::Shutdown { t, keep_session } => {
            // Not recorded (format version 1): `Err(Stopped)` exactly when the replayed
            // machine is terminal, which the replay's own outputs already show.
            let _ = machine.shutdown(Timestamp::from_micros(*t), *keep_session);
            None
        }
        _ => None,
    };
    Ok(result.map(|r| match r {
        Ok(()) => Line::Ok,
        Err(error) => Line::Err {
            error: error.to_string(),
        },
    }))
}

/// The machine's next output that is not a decision; decisions go to `on_item`.
fn next_output(machine: &mut GatewayMachine, on_item: &mut impl FnMut(ReplayItem<'_>)) -> Line {
    loop {
        let output = machine.poll_output();
        if let Output::Event(Event::Decision(decision)) = output {
            on_item(ReplayItem::Decision(decision));
            continue;
        }
        // Recording redacts the token; the replay machine's token is the placeholder.
        return output_line(&output).unwrap_or(Line::Wait { deadline: None });
    }
}

fn mismatch(line: usize, expected: &Line, actual: &Line) -> ReplayError {
    ReplayError::Mismatch {
        line,
        expected: serde_json::to_string(expected).unwrap_or_default(),
        actual: serde_json::to_string(actual).unwrap_or_default(),
    }
}
