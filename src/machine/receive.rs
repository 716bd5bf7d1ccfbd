//! Receiving: turning one WebSocket message into decisions.

use core::ops::Range;

use super::lifecycle::SessionFate;
use super::queue::Pending;
use super::ready::{parse_hello, parse_ready};
use super::{GatewayMachine, Message};
use crate::output::RateLimited;
use crate::output::{DisconnectReason, Event, ProtocolError};
use crate::phase::Phase;
use crate::protocol::envelope::{read_envelope, Envelope, EnvelopeError};
use crate::protocol::opcode::OpCode;
use crate::protocol::rate_limited::RATE_LIMITED_EVENT;
use crate::session::Session;

/// The most receive-buffer capacity kept between messages: a larger buffer, grown for one
/// huge message, is given back when the next message arrives.
pub(crate) const RX_RETAIN: usize = 1 << 20;

/// Byte range of `part` inside `whole` (`part` must be a subslice of `whole`).
fn range_in(whole: &str, part: &str) -> Range<usize> {
    let start = part.as_ptr() as usize - whole.as_ptr() as usize;
    start..start + part.len()
}

/// An envelope with its text fields as byte ranges of the message, so that it outlives
/// the borrow of the text it was read from.
struct Located {
    op: u64,
    sequence: Option<u64>,
    name: Option<Range<usize>>,
    data: Option<Range<usize>>,
}

impl Located {
    fn new(text: &str, envelope: &Envelope<'_>) -> Self {
        Self {
            op: envelope.op,
            sequence: envelope.sequence,
            name: envelope.event_name.map(|name| range_in(text, name)),
            data: envelope.data.map(|data| range_in(text, data)),
        }
    }
}

impl GatewayMachine {
    /// Acts on one message. The common case (text on an open socket, the previous outputs
    /// drained, the buffer of its usual size) is read inline; everything else is prepared
    /// by [`Self::read_any`], out of line.
    #[inline(always)]
    pub(crate) fn receive(&mut self, message: Message<'_>) {
        let envelope = match message {
            Message::Text(text)
                if self.phase.has_open_socket()
                    && self.queue.is_empty()
                    && self.rx.capacity() <= RX_RETAIN =>
            {
                self.keep_text(text)
            }
            _ => match self.read_any(message) {
                Some(envelope) => envelope,
                None => return,
            },
        };
        self.on_envelope(envelope);
    }

    /// Acts on a text message handed over in `buffer`: in the common case (open socket,
    /// outputs drained) the buffers are exchanged instead of the text copied. Everything
    /// else takes the lent path. `buffer` is left empty.
    #[inline(always)]
    pub(crate) fn receive_buffer(&mut self, buffer: &mut alloc::string::String) {
        if !(self.phase.has_open_socket() && self.queue.is_empty()) {
            self.receive(Message::Text(buffer));
            buffer.clear();
            return;
        }
        let envelope = read_envelope(buffer).map(|envelope| Located::new(buffer, &envelope));
        core::mem::swap(&mut self.rx, buffer);
        buffer.clear();
        if buffer.capacity() > RX_RETAIN {
            buffer.shrink_to(RX_RETAIN);
        }
        self.on_envelope(envelope);
    }

    /// Any message in any state: reports a message on a closed socket, spills undrained
    /// dispatches, trims an oversized buffer, validates bytes and inflates binary. `None`
    /// when there is no envelope to act on.
    #[inline(never)]
    fn read_any(&mut self, message: Message<'_>) -> Option<Result<Located, EnvelopeError>> {
        if !self.phase.has_open_socket() {
            if !self.phase.is_terminal() {
                self.push_event(Event::ProtocolError(ProtocolError::NotConnected));
            }
            return None;
        }
        if !self.queue.is_empty() {
            self.spill_pending_dispatches();
        }
        if self.rx.capacity() > RX_RETAIN {
            // One huge message must not pin its buffer for the rest of the connection's life.
            self.rx.clear();
            self.rx.shrink_to(RX_RETAIN);
        }
        match message {
            Message::Text(text) => Some(self.keep_text(text)),
            Message::TextBytes(bytes) => match core::str::from_utf8(bytes) {
                Ok(text) => Some(self.keep_text(text)),
                Err(_) => {
                    self.push_event(Event::ProtocolError(ProtocolError::InvalidUtf8));
                    None
                }
            },
            Message::Binary(bytes) => self
                .inflate(bytes)
                .then(|| read_envelope(&self.rx).map(|envelope| Located::new(&self.rx, &envelope))),
        }
    }

    /// Reads the envelope of `text`, then copies `text` into `rx`, where the envelope's
    /// ranges point. Reading first brings the driver's bytes into cache (the reader
    /// prefetches), so the copy then runs from cache.
    fn keep_text(&mut self, text: &str) -> Result<Located, EnvelopeError> {
        let envelope = read_envelope(text).map(|envelope| Located::new(text, &envelope));
        self.rx.clear();
        self.rx.push_str(text);
        envelope
    }

    /// Decompresses a binary message into `rx`. Returns whether `rx` now holds a complete
    /// message.
    fn inflate(&mut self, bytes: &[u8]) -> bool {
        let mut buf = core::mem::take(&mut self.rx).into_bytes();
        let result = match &mut self.inflater {
            Some(inflater) => inflater.feed(bytes, &mut buf),
            None => Err(crate::inflate::InflateError::NotCompressed),
        };
        let complete = match result {
            Ok(complete) => complete,
            Err(crate::inflate::InflateError::NotCompressed) => {
                buf.clear();
                self.rx = alloc::string::String::from_utf8(buf).unwrap_or_default();
                self.push_event(Event::ProtocolError(ProtocolError::UnexpectedBinary));
                return false;
            }
            Err(error) => {
                buf.clear();
                self.rx = alloc::string::String::from_utf8(buf).unwrap_or_default();
                // The stream's state is lost: this connection cannot go on.
                self.push_event(Event::ProtocolError(ProtocolError::Decompress(error)));
                self.end_connection(DisconnectReason::Protocol, SessionFate::Keep, None);
                return false;
            }
        };
        match alloc::string::String::from_utf8(buf) {
            Ok(text) => {
                self.rx = text;
                complete
            }
            Err(error) => {
                let mut buf = error.into_bytes();
                buf.clear();
                self.rx = alloc::string::String::from_utf8(buf).unwrap_or_default();
                self.push_event(Event::ProtocolError(ProtocolError::InvalidUtf8));
                false
            }
        }
    }

    /// Acts on one message's envelope (or the error reading it): the connection is heard
    /// from, then a dispatch on a live connection, nearly every message, takes a short path;
    /// everything else goes through [`Self::on_other_envelope`], kept out of line so that
    /// the short path stays small.
    #[inline(always)]
    fn on_envelope(&mut self, envelope: Result<Located, EnvelopeError>) {
        self.heartbeat.on_message();
        match envelope {
            Ok(Located {
                op: 0,
                sequence: Some(sequence),
                name: Some(name),
                data: Some(data),
            }) if self.phase == Phase::Connected => self.on_live_dispatch(name, sequence, data),
            other => self.on_other_envelope(other),
        }
    }

    #[inline(never)]
    fn on_other_envelope(&mut self, envelope: Result<Located, EnvelopeError>) {
        let Located {
            op,
            sequence,
            name,
            data,
        } = match envelope {
            Ok(envelope) => envelope,
            Err(error) => {
                self.push_event(Event::ProtocolError(ProtocolError::Envelope(error)));
                return;
            }
        };
        match OpCode::from_u64(op) {
            None => self.push_event(Event::ProtocolError(ProtocolError::UnknownOpcode(op))),
            Some(OpCode::Dispatch) => match (name, sequence, data) {
                (Some(name), Some(sequence), Some(data)) => self.on_dispatch(name, sequence, data),
                _ => self.malformed(OpCode::Dispatch),
            },
            Some(OpCode::Hello) => self.on_hello(data),
            // Before Hello there is no heartbeat yet: a beat then would be answered by an
            // ACK that is itself out of phase, leaving the beat unanswered.
            Some(OpCode::Heartbeat) if !self.phase.after_hello() => {
                self.out_of_phase(OpCode::Heartbeat)
            }
            Some(OpCode::Heartbeat) => self.on_beat_requested(),
            Some(OpCode::HeartbeatAck) => self.on_ack(),
            Some(OpCode::Reconnect) => self.end_connection(
                DisconnectReason::ReconnectRequested,
                SessionFate::Keep,
                None,
            ),
            Some(OpCode::InvalidSession) => self.on_invalid_session(data),
            Some(other) => {
                self.push_event(Event::ProtocolError(ProtocolError::UnexpectedOpcode(other)))
            }
        }
    }

    fn malformed(&mut self, opcode: OpCode) {
        self.push_event(Event::ProtocolError(ProtocolError::MalformedPayload(
            opcode,
        )));
    }

    fn out_of_phase(&mut self, opcode: OpCode) {
        let phase = self.phase.name();
        self.push_event(Event::ProtocolError(ProtocolError::OutOfPhase(
            opcode, phase,
        )));
    }

    fn on_hello(&mut self, data: Option<Range<usize>>) {
        if self.phase != Phase::AwaitingHello {
            self.out_of_phase(OpCode::Hello);
            return;
        }
        let interval = data.and_then(|d| parse_hello(&self.rx[d]));
        match interval {
            Some(ms) if ms > 0 => self.on_hello_interval(ms),
            _ => {
                // Without an interval the connection cannot be kept alive: start over.
                self.malformed(OpCode::Hello);
                self.end_connection(DisconnectReason::Protocol, SessionFate::Keep, None);
            }
        }
    }

    fn on_ack(&mut self) {
        if !self.phase.after_hello() {
            self.out_of_phase(OpCode::HeartbeatAck);
            return;
        }
        let now = self.now;
        if let Some(session) = &mut self.session {
            session.last_ack = now;
        }
        if let Some(latency) = self.heartbeat.on_ack(now) {
            self.push_event(Event::HeartbeatAck { latency });
        }
    }

    fn on_invalid_session(&mut self, data: Option<Range<usize>>) {
        if !self.phase.after_hello() {
            self.out_of_phase(OpCode::InvalidSession);
            return;
        }
        // Anything but a literal `true` is treated as not resumable: identifying anew is
        // always safe, resuming a dead session is not.
        let flag = data.map(|d| self.rx[d].trim());
        let resumable = flag == Some("true");
        if flag != Some("false") && !resumable {
            self.malformed(OpCode::InvalidSession);
        }
        self.push_event(Event::InvalidSession { resumable });
        let reason = DisconnectReason::InvalidSession { resumable };
        if resumable {
            self.end_connection(reason, SessionFate::Keep, None);
        } else {
            let delay = self.invalid_session_delay();
            self.end_connection(reason, SessionFate::Drop, Some(delay));
        }
    }

    fn on_dispatch(&mut self, name: Range<usize>, sequence: u64, data: Range<usize>) {
        let event_name = &self.rx[name.clone()];
        match self.phase {
            Phase::Identifying if event_name == "READY" => {
                let Some(info) = parse_ready(&self.rx[data.clone()]) else {
                    self.malformed(OpCode::Dispatch);
                    self.end_connection(DisconnectReason::Protocol, SessionFate::Drop, None);
                    return;
                };
                self.session = Some(Session {
                    id: info.session_id.clone(),
                    sequence,
                    resume_url: info.resume_gateway_url.clone(),
                    last_ack: self.now,
                });
                self.ready = Some(alloc::boxed::Box::new(info));
                self.explain_session_live();
                self.queue.push_back(Pending::Ready);
                self.queue.push_back(Pending::Dispatch {
                    name,
                    sequence,
                    data,
                });
                self.on_session_live();
            }
            Phase::Connected => self.on_live_dispatch(name, sequence, data),
            Phase::Resuming if event_name == "RESUMED" => {
                if let Some(session) = &mut self.session {
                    session.observe_sequence(sequence);
                }
                self.explain_session_live();
                self.push_event(Event::Resumed {
                    replayed: self.replayed,
                });
                self.queue.push_back(Pending::Dispatch {
                    name,
                    sequence,
                    data,
                });
                self.on_session_live();
            }
            Phase::Resuming => {
                // Replayed while resuming: passed on like any dispatch; progress.
                self.on_replayed();
                self.on_live_dispatch(name, sequence, data);
            }
            _ => self.out_of_phase(OpCode::Dispatch),
        }
    }

    /// A dispatch on a connection whose session is live (or being replayed): the sequence
    /// is recorded and the dispatch queued, after a RATE_LIMITED event if it is one.
    #[inline(always)]
    fn on_live_dispatch(&mut self, name: Range<usize>, sequence: u64, data: Range<usize>) {
        if let Some(session) = &mut self.session {
            session.observe_sequence(sequence);
        }
        // The length first: it rules out nearly every name without looking at it.
        if name.len() == RATE_LIMITED_EVENT.len()
            && self.rx.get(name.clone()) == Some(RATE_LIMITED_EVENT)
        {
            self.on_rate_limited(data.clone());
        }
        self.queue.push_back(Pending::Dispatch {
            name,
            sequence,
            data,
        });
    }

    #[inline(never)]
    fn on_rate_limited(&mut self, data: Range<usize>) {
        match RateLimited::parse(&self.rx[data]) {
            Some(limited) => self.push_event(Event::RateLimited(limited)),
            None => self.malformed(OpCode::Dispatch),
        }
    }
}
