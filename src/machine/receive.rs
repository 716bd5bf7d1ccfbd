//! Receiving: turning one WebSocket message into decisions.

use core::ops::Range;

use super::lifecycle::SessionFate;
use super::queue::Pending;
use super::ready::{parse_hello, parse_ready};
use super::{GatewayMachine, Message};
use crate::output::RateLimited;
use crate::output::{DisconnectReason, Event, ProtocolError};
use crate::phase::Phase;
use crate::protocol::envelope::{read_envelope, salvage_envelope, Envelope, EnvelopeError};
use crate::protocol::opcode::OpCode;
use crate::protocol::rate_limited::RATE_LIMITED_EVENT;
use crate::session::Session;

/// The receive-buffer capacity kept whatever the traffic. A buffer grown past it for a
/// large message (a GUILD_CREATE of a big guild) is kept while large messages keep coming,
/// so back-to-back ones do not regrow it each time, and given back once traffic has been
/// small for [`RX_TRIM_AFTER`] messages in a row or for a heartbeat interval. It never
/// exceeds the largest message accepted ([`Limits`](crate::config::Limits)).
pub(crate) const RX_RETAIN: usize = 1 << 20;

/// How many messages of at most [`RX_RETAIN`] bytes in a row make a grown receive buffer
/// shrink back: a few small events between two large GUILD_CREATEs keep it, a stream of
/// small ones does not.
pub(crate) const RX_TRIM_AFTER: u8 = 4;

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
        self.rx_lent = true;
        buffer.clear();
        // The buffer given back stays grown only while large messages keep coming (the
        // driver reads the next one into it).
        if buffer.capacity() > RX_RETAIN && self.rx.len() <= RX_RETAIN {
            buffer.shrink_to(RX_RETAIN);
        }
        self.on_envelope(envelope);
    }

    /// Any message in any state: reports a message on a closed socket, spills undrained
    /// dispatches, keeps or trims a grown buffer, validates bytes and inflates binary.
    /// `None` when there is no envelope to act on.
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
            self.keep_or_trim_rx();
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

    /// A grown receive buffer, before the next message: kept while large messages keep
    /// coming; given back to [`RX_RETAIN`] once [`RX_TRIM_AFTER`] smaller ones came in a
    /// row (one huge message must not pin its buffer for the rest of the connection's
    /// life). `rx` still holds the previous message, which is what is counted.
    fn keep_or_trim_rx(&mut self) {
        if self.rx.len() > RX_RETAIN {
            self.rx_quiet = 0;
            return;
        }
        self.rx_quiet = self.rx_quiet.saturating_add(1);
        if self.rx_quiet >= RX_TRIM_AFTER {
            self.rx_quiet = 0;
            self.rx.clear();
            self.rx.shrink_to(RX_RETAIN);
        }
    }

    /// Reads the envelope of `text`, then copies `text` into `rx`, where the envelope's
    /// ranges point. Reading first brings the driver's bytes into cache (the reader
    /// prefetches), so the copy then runs from cache.
    fn keep_text(&mut self, text: &str) -> Result<Located, EnvelopeError> {
        let envelope = read_envelope(text).map(|envelope| Located::new(text, &envelope));
        self.rx.clear();
        self.rx.push_str(text);
        self.rx_lent = true;
        envelope
    }

    /// Decompresses a binary message into `rx`. Returns whether `rx` now holds a complete
    /// message.
    fn inflate(&mut self, bytes: &[u8]) -> bool {
        let mut buf = core::mem::take(&mut self.rx).into_bytes();
        self.rx_lent = false;
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
        self.heartbeat.on_message(self.now);
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
                self.on_unreadable(error);
                return;
            }
        };
        match OpCode::from_u64(op) {
            None => self.push_event(Event::ProtocolError(ProtocolError::UnknownOpcode(op))),
            Some(OpCode::Dispatch) => match (name, sequence, data) {
                (Some(name), Some(sequence), Some(data)) => self.on_dispatch(name, sequence, data),
                // RESUMED with `"s": null` (as some gateway proxies send it): the session
                // goes on, its sequence kept.
                (Some(name), None, Some(data))
                    if self.phase == Phase::Resuming && &self.rx[name.clone()] == "RESUMED" =>
                {
                    self.on_resumed(name, None, data)
                }
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

    /// A message the envelope reader rejected (held in `rx`). A dispatch must not be lost
    /// for good, so what can still be read of it decides:
    ///
    /// - its `t`, `s` and `d` can be told apart (e.g. a bad escape inside `d`) and it
    ///   would be delivered if it were readable (a live or resuming connection, or READY
    ///   while identifying): it is delivered as it came, with
    ///   [`ProtocolError::DamagedDispatch`] just before it;
    /// - its `s` can be read but not its `t` or `d` (e.g. it was cut short): it is reported
    ///   as [`ProtocolError::LostDispatch`] and, if it is newer than the session's
    ///   sequence on a live or resuming connection, the connection is closed (session
    ///   kept) so that the resume replays it, rather than letting the next dispatch move
    ///   the sequence past it;
    /// - otherwise nothing says it was a dispatch: reported and dropped, as before (a
    ///   dispatch among such messages shows as an [`Event::SequenceGap`] at the next one).
    #[cold]
    #[inline(never)]
    fn on_unreadable(&mut self, error: EnvelopeError) {
        let salvage = salvage_envelope(&self.rx);
        let dispatch = matches!(salvage.op, Some(0) | None);
        let live = matches!(self.phase, Phase::Connected | Phase::Resuming);
        let Some(sequence) = salvage.sequence.filter(|_| dispatch) else {
            self.push_event(Event::ProtocolError(ProtocolError::Envelope(error)));
            return;
        };
        if let (Some(name), Some(data)) = (salvage.event_name, salvage.data) {
            let deliverable = live || (self.phase == Phase::Identifying && name == "READY");
            if !deliverable {
                // Out of phase anyway: nothing would be delivered.
                self.push_event(Event::ProtocolError(ProtocolError::Envelope(error)));
                return;
            }
            let name = range_in(&self.rx, name);
            let data = range_in(&self.rx, data);
            self.push_event(Event::ProtocolError(ProtocolError::DamagedDispatch {
                sequence,
                error,
            }));
            self.on_dispatch(name, sequence, data);
            return;
        }
        self.push_event(Event::ProtocolError(ProtocolError::LostDispatch {
            sequence,
            error,
        }));
        let newer = self.session.as_ref().is_some_and(|s| sequence > s.sequence);
        if newer && live {
            self.end_connection(DisconnectReason::Protocol, SessionFate::Keep, None);
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
            session.alive_at(now);
        }
        if let Some(latency) = self.heartbeat.on_ack(now) {
            self.push_event(Event::HeartbeatAck { latency });
        }
    }

    /// Brings the session's [`last_alive`](Session::last_alive) up to date with what this
    /// connection heard, by the configured liveness rule (under `Liveness::AnyMessage`, the
    /// last message of any kind). Called at each heartbeat, when a connection ends and on
    /// shutdown, rather than on every message.
    pub(crate) fn note_liveness(&mut self) {
        let heard = self.heartbeat.last_heard(&self.config.heartbeat);
        if let (Some(session), Some(at)) = (&mut self.session, heard) {
            session.alive_at(at);
        }
    }

    fn on_invalid_session(&mut self, data: Option<Range<usize>>) {
        if !self.phase.after_hello() {
            self.out_of_phase(OpCode::InvalidSession);
            return;
        }
        // Anything but a literal `true` is treated as not resumable: identifying anew is
        // always safe, resuming a dead session is not. A missing or null `d` (sent by real
        // servers on a session logout) means `false`; anything else is reported.
        let flag = data.map(|d| self.rx[d].trim());
        let resumable = flag == Some("true");
        if !matches!(flag, None | Some("true" | "false" | "null")) {
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
                    last_alive: self.now,
                });
                // READY starts the sequence count.
                self.repeat_run = (0, 0);
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
                self.on_resumed(name, Some(sequence), data)
            }
            Phase::Resuming => {
                // Replayed while resuming: passed on like any dispatch; progress.
                self.on_replayed();
                self.on_live_dispatch(name, sequence, data);
            }
            _ => self.out_of_phase(OpCode::Dispatch),
        }
    }

    /// RESUMED while resuming: the session is live again. Its `s` is counted like any
    /// dispatch's; without one (`null`), the session's sequence stays and the dispatch is
    /// delivered with it.
    fn on_resumed(&mut self, name: Range<usize>, sequence: Option<u64>, data: Range<usize>) {
        let sequence = match sequence {
            Some(sequence) => {
                self.track_sequence(sequence);
                sequence
            }
            None => self.session.as_ref().map_or(0, |s| s.sequence),
        };
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

    /// A dispatch on a connection whose session is live (or being replayed): the sequence
    /// is recorded and the dispatch queued, after a RATE_LIMITED event if it is one.
    #[inline(always)]
    fn on_live_dispatch(&mut self, name: Range<usize>, sequence: u64, data: Range<usize>) {
        self.track_sequence(sequence);
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

    /// Records a dispatch's sequence number: the next one in order moves the session on
    /// (nearly every dispatch, one comparison), and so does the next of a run of repeats
    /// already reported; anything else is looked at out of line.
    #[inline(always)]
    fn track_sequence(&mut self, sequence: u64) {
        match &mut self.session {
            Some(session) if session.sequence.checked_add(1) == Some(sequence) => {
                session.sequence = sequence;
            }
            Some(session) if self.repeat_run == (sequence, session.sequence) => {
                self.repeat_run.0 = sequence.saturating_add(1);
            }
            _ => self.on_sequence_out_of_order(sequence),
        }
    }

    /// A sequence number that is not the next one: a gap moves the session on and is
    /// reported; a number already passed leaves the session as it is and is reported once
    /// per run of repeats (a run goes on while each repeat is the one after the last and
    /// nothing newer came between). What is delivered does not change.
    #[cold]
    #[inline(never)]
    fn on_sequence_out_of_order(&mut self, received: u64) {
        let Some(session) = &mut self.session else {
            return;
        };
        let last = session.sequence;
        let expected = last.saturating_add(1);
        if received > last {
            // (`received == expected` only when `last` is `u64::MAX`: nothing to report.)
            session.sequence = received;
            if received > expected {
                self.push_event(Event::SequenceGap { expected, received });
            }
            return;
        }
        let run_goes_on = self.repeat_run == (received, last);
        self.repeat_run = (received.saturating_add(1), last);
        if !run_goes_on {
            self.push_event(Event::SequenceDuplicate { expected, received });
        }
    }

    #[inline(never)]
    fn on_rate_limited(&mut self, data: Range<usize>) {
        match RateLimited::parse(&self.rx[data]) {
            Some(limited) => self.push_event(Event::RateLimited(limited)),
            None => self.malformed(OpCode::Dispatch),
        }
    }
}
