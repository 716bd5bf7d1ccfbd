//! Record and replay: reproduce any connection's history exactly.
//!
//! The machine is pure and deterministic, so its seed, configuration and inputs fix its
//! outputs. [`RecordingMachine`] wraps a [`GatewayMachine`] and turns every input, command
//! result and output into a line of JSON (the [`format`]); the driver appends the lines to a
//! file as they come ([`RecordingMachine::pop_line`]), for days if need be. [`replay()`] feeds
//! a recording to a fresh machine and checks that it produces the same outputs, reporting the
//! first difference; with the decision trace on, it also says why each thing happened.
//!
//! The token never appears in a recording: it is left out of the configuration and replaced
//! by [`format::REDACTED`] in every recorded text.

mod base64;
pub mod format;
mod replay;

use alloc::collections::VecDeque;
use alloc::string::{String, ToString};
use alloc::sync::Arc;

use crate::config::{ConfigError, GatewayConfig};
use crate::error::CommandError;
use crate::machine::{GatewayMachine, Message, StartOptions};
use crate::output::{CloseFrame, Event, Output};
use crate::protocol::commands::Command;
use crate::time::Timestamp;

pub use format::{Header, Line, FORMAT_NAME, FORMAT_VERSION, REDACTED};
pub use replay::{replay, ReplayError, ReplayItem, ReplaySummary};

/// Turns a machine's inputs, command results and outputs into recording lines.
///
/// Sans-IO: it only produces lines ([`pop_line`](Self::pop_line)); the driver writes them.
/// A driver that wants to record calls the `record_*` method of each input just before
/// giving that input to the machine, [`record_result`](Self::record_result) after each
/// command, and [`record_output`](Self::record_output) for each output it polls.
/// [`RecordingMachine`] does all of this for you.
pub struct Recorder {
    lines: VecDeque<String>,
    token: String,
}

impl core::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Recorder")
            .field("pending_lines", &self.lines.len())
            .finish()
    }
}

impl Recorder {
    /// A recorder for a machine built with [`GatewayMachine::with_options`]`(config,
    /// options, seed, now)`; its first line is the header.
    pub fn new(config: &GatewayConfig, options: &StartOptions, seed: u64, now: Timestamp) -> Self {
        let header = Header {
            format: FORMAT_NAME.into(),
            version: FORMAT_VERSION,
            seed,
            start: now.as_micros(),
            shard: options.shard.unwrap_or(config.shard),
            session: options.session.clone(),
            config: config.clone(),
        };
        let mut recorder = Recorder {
            lines: VecDeque::new(),
            token: config.token.expose_secret().to_string(),
        };
        let header = serde_json::to_string(&header).unwrap_or_default();
        recorder.push_text(header);
        recorder
    }

    /// The next recorded line (without a newline), oldest first.
    pub fn pop_line(&mut self) -> Option<String> {
        self.lines.pop_front()
    }

    /// Records `handle_connected(now)`.
    pub fn record_connected(&mut self, now: Timestamp) {
        self.push(&Line::Connected { t: now.as_micros() });
    }

    /// Records `handle_message(now, message)`.
    pub fn record_message(&mut self, now: Timestamp, message: &Message<'_>) {
        let t = now.as_micros();
        let line = match message {
            Message::Text(text) => Line::Text {
                t,
                data: (*text).into(),
            },
            Message::TextBytes(bytes) => Line::TextBytes {
                t,
                base64: base64::encode(bytes),
            },
            Message::Binary(bytes) => Line::Binary {
                t,
                base64: base64::encode(bytes),
            },
        };
        self.push(&line);
    }

    /// Records `handle_closed(now, frame)`.
    pub fn record_closed(&mut self, now: Timestamp, frame: Option<CloseFrame<'_>>) {
        self.push(&Line::Closed {
            t: now.as_micros(),
            code: frame.map(|f| f.code),
            reason: frame.map(|f| f.reason.into()).unwrap_or_default(),
        });
    }

    /// Records `handle_timeout(now)`.
    pub fn record_timeout(&mut self, now: Timestamp) {
        self.push(&Line::Timeout { t: now.as_micros() });
    }

    /// Records `send(now, command)`.
    pub fn record_command(&mut self, now: Timestamp, command: &Command) {
        let (op, frame) = (command.opcode().code(), command.to_json());
        self.push(&Line::Command {
            t: now.as_micros(),
            op,
            frame,
        });
    }

    /// Records `grant_identify(now)`.
    pub fn record_grant(&mut self, now: Timestamp) {
        self.push(&Line::Grant { t: now.as_micros() });
    }

    /// Records `shutdown(now, keep_session)`.
    pub fn record_shutdown(&mut self, now: Timestamp, keep_session: bool) {
        self.push(&Line::Shutdown {
            t: now.as_micros(),
            keep_session,
        });
    }

    /// Records the result of the command recorded just before.
    pub fn record_result(&mut self, result: &Result<(), CommandError>) {
        let line = match result {
            Ok(()) => Line::Ok,
            Err(error) => Line::Err {
                error: error.to_string(),
            },
        };
        self.push(&line);
    }

    /// Records an output (decision-trace events are skipped).
    pub fn record_output(&mut self, output: &Output<'_>) {
        if let Some(line) = output_line(output) {
            self.push(&line);
        }
    }

    fn push(&mut self, line: &Line) {
        let text = serde_json::to_string(line).unwrap_or_default();
        self.push_text(text);
    }

    fn push_text(&mut self, text: String) {
        let text = redact(text, &self.token);
        self.lines.push_back(text);
    }
}

/// A [`GatewayMachine`] that records everything needed to reproduce its run.
///
/// Use it exactly like the machine; after each call, take the new lines with
/// [`pop_line`](Self::pop_line) and append them (each followed by a newline) to the
/// recording. The recorder does no I/O itself.
pub struct RecordingMachine {
    machine: GatewayMachine,
    recorder: Recorder,
}

impl core::fmt::Debug for RecordingMachine {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RecordingMachine")
            .field("machine", &self.machine)
            .field("recorder", &self.recorder)
            .finish()
    }
}

impl RecordingMachine {
    /// Starts a machine (as [`GatewayMachine::with_options`]) and records its header.
    pub fn new(
        config: impl Into<Arc<GatewayConfig>>,
        options: StartOptions,
        seed: u64,
        now: Timestamp,
    ) -> Result<Self, ConfigError> {
        let config = config.into();
        let recorder = Recorder::new(&config, &options, seed, now);
        let machine = GatewayMachine::with_options(config, options, seed, now)?;
        Ok(RecordingMachine { machine, recorder })
    }

    /// The machine, for its getters.
    pub fn machine(&self) -> &GatewayMachine {
        &self.machine
    }

    /// Splits into the machine and its recorder, for a driver that feeds both itself.
    pub fn into_parts(self) -> (GatewayMachine, Recorder) {
        (self.machine, self.recorder)
    }

    /// The next recorded line (without a newline), oldest first.
    pub fn pop_line(&mut self) -> Option<String> {
        self.recorder.pop_line()
    }

    /// See [`GatewayMachine::handle_connected`].
    pub fn handle_connected(&mut self, now: Timestamp) {
        self.recorder.record_connected(now);
        self.machine.handle_connected(now);
    }

    /// See [`GatewayMachine::handle_message`].
    pub fn handle_message(&mut self, now: Timestamp, message: Message<'_>) {
        self.recorder.record_message(now, &message);
        self.machine.handle_message(now, message);
    }

    /// See [`GatewayMachine::handle_text_buffer`] (recorded as a text message).
    pub fn handle_text_buffer(&mut self, now: Timestamp, buffer: &mut String) {
        self.recorder.record_message(now, &Message::Text(buffer));
        self.machine.handle_text_buffer(now, buffer);
    }

    /// See [`GatewayMachine::handle_closed`].
    pub fn handle_closed(&mut self, now: Timestamp, frame: Option<CloseFrame<'_>>) {
        self.recorder.record_closed(now, frame);
        self.machine.handle_closed(now, frame);
    }

    /// See [`GatewayMachine::handle_timeout`].
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.recorder.record_timeout(now);
        self.machine.handle_timeout(now);
    }

    /// See [`GatewayMachine::send`].
    pub fn send(&mut self, now: Timestamp, command: Command) -> Result<(), CommandError> {
        self.recorder.record_command(now, &command);
        let result = self.machine.send(now, command);
        self.recorder.record_result(&result);
        result
    }

    /// See [`GatewayMachine::grant_identify`].
    pub fn grant_identify(&mut self, now: Timestamp) -> Result<(), CommandError> {
        self.recorder.record_grant(now);
        let result = self.machine.grant_identify(now);
        self.recorder.record_result(&result);
        result
    }

    /// See [`GatewayMachine::shutdown`]. Its result is not recorded: it follows from the
    /// phase, which the replay reaches again.
    pub fn shutdown(&mut self, now: Timestamp, keep_session: bool) -> Result<(), CommandError> {
        self.recorder.record_shutdown(now, keep_session);
        self.machine.shutdown(now, keep_session)
    }

    /// See [`GatewayMachine::set_trace`]. Decisions are not recorded; a replay regenerates
    /// them.
    pub fn set_trace(&mut self, on: bool) {
        self.machine.set_trace(on);
    }

    /// See [`GatewayMachine::poll_timeout`].
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.machine.poll_timeout()
    }

    /// See [`GatewayMachine::poll_output`]; the output is recorded before it is returned.
    pub fn poll_output(&mut self) -> Output<'_> {
        let output = self.machine.poll_output();
        self.recorder.record_output(&output);
        output
    }
}

/// Replaces every occurrence of the token (raw and JSON-escaped forms are the same for
/// Discord tokens, which are base64url and dots) with [`REDACTED`].
fn redact(text: String, token: &str) -> String {
    if token.is_empty() || !text.contains(token) {
        return text;
    }
    text.replace(token, REDACTED)
}

/// The recorded form of an output; `None` for decision-trace events.
pub(crate) fn output_line(output: &Output<'_>) -> Option<Line> {
    Some(match output {
        Output::Connect { url } => Line::Connect { url: (*url).into() },
        Output::Send(frame) => Line::Send {
            op: frame.opcode.code(),
            text: frame.text.into(),
        },
        Output::Close(close) => Line::Close {
            code: close.code,
            reason: close.reason.into(),
        },
        Output::Event(Event::Decision(_)) => return None,
        Output::Event(Event::Dispatch(d)) => Line::Dispatch {
            name: d.name.into(),
            seq: d.sequence,
            len: d.data.len(),
        },
        Output::Event(event) => Line::Event {
            event: alloc::format!("{event:?}"),
        },
        Output::Wait(deadline) => Line::Wait {
            deadline: deadline.map(Timestamp::as_micros),
        },
    })
}
