//! Connection lifecycle: connecting, Hello → Identify/Resume, timers, closing and
//! reconnecting, shutdown and fatal stops.

use core::time::Duration;

use super::queue::Pending;
use super::GatewayMachine;
use crate::close_code::{CloseAction, CloseCode};
use crate::heartbeat::BeatVerdict;
use crate::output::{CloseFrame, Disconnect, DisconnectReason, Event, FatalReason};
use crate::phase::Phase;
use crate::protocol::opcode::OpCode;
use crate::protocol::payloads;
use crate::protocol::url::gateway_url;
use crate::time::{Timer, Timestamp};
use crate::trace::{Cause, Outcome, Rule};

/// The close code the machine uses when it closes a connection it wants to resume: any code
/// but 1000/1001 keeps the session.
pub(crate) const RESUMABLE_CLOSE: u16 = 4000;

/// Identifies in a row the server may close with 4002 (decode error) before the machine
/// stops with [`FatalReason::IdentifyUndecodable`]: one may be a glitch, a second means the
/// Identify itself cannot be read.
pub(crate) const UNDECODABLE_IDENTIFY_LIMIT: u32 = 2;

/// Window slots an op-1 answer must leave free for scheduled beats.
const SCHEDULED_BEAT_MARGIN: u32 = 3;

/// What happens to the session when a connection ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SessionFate {
    Keep,
    Drop,
}

impl GatewayMachine {
    /// Opens a new connection: to the session's resume URL when resuming, else the main URL.
    pub(crate) fn start_connect(&mut self) {
        let now = self.now;
        let stale_after = self.config.session.stale_after;
        let stale = self
            .session
            .as_ref()
            .is_some_and(|s| s.is_stale(now, stale_after));
        if stale {
            self.session = None;
        }
        let compression = self.config.compression;
        let resume_url = self
            .session
            .as_ref()
            .filter(|_| !self.resume_via_main)
            .and_then(|s| s.resume_url.as_deref())
            .and_then(|base| gateway_url(base, compression).ok());
        self.to_resume_url = resume_url.is_some();
        self.url = match resume_url {
            Some(url) => url,
            // Validated when the machine was built.
            None => gateway_url(&self.config.gateway_url, compression)
                .unwrap_or_else(|_| self.config.gateway_url.clone()),
        };
        let rule = if stale {
            Rule::StaleSessionCutoff
        } else if self.session.is_some() {
            Rule::ResumeExistingSession
        } else {
            self.identify_rule()
        };
        let outcome = Outcome::Connect {
            resume: self.session.is_some(),
            resume_url: self.to_resume_url,
        };
        self.decide(Cause::ConnectDue, rule, outcome);
        if let Some(inflater) = &mut self.inflater {
            inflater.reset();
        }
        self.heartbeat.reset();
        self.limiter.reset(now);
        self.replayed = 0;
        self.phase = Phase::Connecting;
        self.timers.stop_all();
        self.timers.set(
            Timer::Connect,
            now.saturating_add(self.config.timeouts.connect),
        );
        self.queue.push_back(Pending::Connect);
    }

    /// Hello arrived on the open socket.
    pub(crate) fn on_hello_interval(&mut self, interval_ms: u64) {
        let now = self.now;
        let jitter = self.rng.fraction();
        let (interval, first_beat) =
            self.heartbeat
                .start(Duration::from_millis(interval_ms), jitter, now);
        self.timers.stop(Timer::Hello);
        self.timers.set(Timer::Heartbeat, first_beat);
        self.limiter.set_heartbeat_interval(interval);
        self.push_event(Event::Hello {
            heartbeat_interval: interval,
        });
        let cause = Cause::Hello {
            interval_ms: interval.as_millis() as u64,
        };
        self.decide(
            cause,
            Rule::HeartbeatSchedule,
            Outcome::FirstBeat { at: first_beat },
        );
        if let Some(session) = &self.session {
            let sequence = session.sequence;
            self.decide(
                cause,
                Rule::ResumeExistingSession,
                Outcome::SendResume { sequence },
            );
            self.send_resume();
        } else if self.config.identify.auto_grant {
            self.decide(cause, Rule::IdentifyAutoGranted, Outcome::SendIdentify);
            self.send_identify();
        } else {
            self.decide(cause, Rule::IdentifyNeedsGrant, Outcome::RequestIdentify);
            self.phase = Phase::AwaitingIdentifyGrant;
            self.push_event(Event::IdentifyRequested);
        }
    }

    fn identify_rule(&self) -> Rule {
        if self.config.identify.auto_grant {
            Rule::IdentifyAutoGranted
        } else {
            Rule::IdentifyNeedsGrant
        }
    }

    /// op 1: beat now, leaving the schedule as it is. Answers come from a budget that a
    /// server asking now and then never exhausts (a burst of
    /// [`OP1_ANSWER_BURST`](crate::heartbeat::OP1_ANSWER_BURST), refilled one per
    /// [`OP1_ANSWER_REFILL`](crate::heartbeat::OP1_ANSWER_REFILL)) and never from the slots
    /// scheduled beats need; in a storm the requests beyond it are coalesced into the next
    /// scheduled beat, so a hostile or buggy server cannot exhaust the rate limit.
    pub(crate) fn on_beat_requested(&mut self) {
        let now = self.now;
        let next = self.timers.get(Timer::Heartbeat);
        let window_left =
            self.limiter.sent_in_window(now) + SCHEDULED_BEAT_MARGIN < crate::ratelimit::MAX_SENDS;
        // The window first: a request refused for lack of room takes nothing from the budget.
        if !(window_left && self.heartbeat.may_answer(now)) {
            self.decide(
                Cause::BeatRequested,
                Rule::CoalesceHeartbeatRequests,
                Outcome::Ignore,
            );
            return;
        }
        self.decide(
            Cause::BeatRequested,
            Rule::AnswerHeartbeatRequest,
            Outcome::Beat { next },
        );
        self.limiter.try_acquire_heartbeat(now);
        self.heartbeat.on_answer_sent(now);
        self.queue.push_back(Pending::Heartbeat);
    }

    pub(crate) fn send_identify(&mut self) {
        // The first frame of a fresh window: the reserve always has room for it.
        self.limiter.try_acquire_heartbeat(self.now);
        let text = payloads::identify(&self.config, self.shard);
        self.queue.push_back(Pending::Send {
            opcode: OpCode::Identify,
            text,
        });
        self.phase = Phase::Identifying;
        self.timers.set(
            Timer::Ready,
            self.now.saturating_add(self.config.timeouts.ready),
        );
    }

    fn send_resume(&mut self) {
        let Some(session) = &self.session else { return };
        let text = payloads::resume(&self.config, &session.id, Some(session.sequence));
        self.limiter.try_acquire_heartbeat(self.now);
        self.queue.push_back(Pending::Send {
            opcode: OpCode::Resume,
            text,
        });
        self.phase = Phase::Resuming;
        self.timers.set(
            Timer::Ready,
            self.now.saturating_add(self.config.timeouts.ready),
        );
    }

    /// Sends a scheduled beat.
    pub(crate) fn send_heartbeat(&mut self) {
        // Scheduled beats always go: the reserve and the op-1 budget keep room for them.
        self.limiter.try_acquire_heartbeat(self.now);
        self.heartbeat.on_sent(self.now);
        self.queue.push_back(Pending::Heartbeat);
    }

    /// READY or RESUMED: the session is live.
    /// Explains READY / RESUMED; called before their events are queued.
    pub(crate) fn explain_session_live(&mut self) {
        let cause = if self.phase == Phase::Resuming {
            Cause::Resumed {
                replayed: self.replayed,
            }
        } else {
            Cause::Ready
        };
        self.decide(cause, Rule::SessionLive, Outcome::Live);
    }

    /// A dispatch was replayed while resuming: the server is making progress, so the
    /// READY/RESUMED timeout counts again from now (it is a silence timeout).
    pub(crate) fn on_replayed(&mut self) {
        self.replayed += 1;
        self.timers.set(
            Timer::Ready,
            self.now.saturating_add(self.config.timeouts.ready),
        );
    }

    /// READY or RESUMED was reported: the session is live; held commands go out.
    pub(crate) fn on_session_live(&mut self) {
        self.phase = Phase::Connected;
        self.attempts = 0;
        self.failed_resumes = 0;
        self.undecodable_identifies = 0;
        self.resume_via_main = false;
        self.timers.stop(Timer::Ready);
        let now = self.now;
        if let Some(session) = &mut self.session {
            session.alive_at(now);
        }
        self.flush_held();
    }

    /// Sends held commands while the rate limiter has slots; arms the command timer for
    /// the rest.
    pub(crate) fn flush_held(&mut self) {
        while !self.held.is_empty() && self.limiter.try_acquire_command(self.now) {
            if let Some((opcode, text)) = self.held.pop_front() {
                self.queue.push_back(Pending::Send { opcode, text });
            }
        }
        self.schedule_held();
    }

    /// Arms the command timer for when the next slot frees, if commands are waiting.
    pub(crate) fn schedule_held(&mut self) {
        if self.held.is_empty() {
            self.timers.stop(Timer::CommandQueue);
            return;
        }
        if let Some(at) = self.limiter.next_command_slot(self.now) {
            // Strictly later than now, so a driver never spins on the same instant.
            let at = at.max(self.now.saturating_add(Duration::from_millis(1)));
            self.timers.set(Timer::CommandQueue, at);
        }
    }

    pub(crate) fn on_timer(&mut self, timer: Timer, deadline: Timestamp) {
        match timer {
            Timer::Connect if self.phase == Phase::Connecting => {
                self.end_connection(DisconnectReason::ConnectTimeout, SessionFate::Keep, None);
            }
            Timer::Hello if self.phase == Phase::AwaitingHello => {
                self.end_connection(DisconnectReason::HelloTimeout, SessionFate::Keep, None);
            }
            Timer::Ready if matches!(self.phase, Phase::Identifying | Phase::Resuming) => {
                self.end_connection(DisconnectReason::ReadyTimeout, SessionFate::Keep, None);
            }
            Timer::Heartbeat if self.phase.after_hello() => self.on_beat_due(deadline),
            Timer::Reconnect if self.phase == Phase::Disconnected => self.start_connect(),
            Timer::CommandQueue if self.phase == Phase::Connected => self.flush_held(),
            // A timer left over from a phase that has passed.
            _ => {}
        }
    }

    fn on_beat_due(&mut self, deadline: Timestamp) {
        self.note_liveness();
        match self.heartbeat.on_due(&self.config.heartbeat) {
            BeatVerdict::Zombie => {
                self.end_connection(DisconnectReason::Zombie, SessionFate::Keep, None);
            }
            BeatVerdict::Beat => {
                // Once per interval, give back what a burst of large messages grew.
                self.trim_buffers();
                let interval = self.heartbeat.interval().unwrap_or(Duration::from_secs(41));
                let mut next = deadline.saturating_add(interval);
                if next <= self.now {
                    // Woke up late (suspend): one beat now, the schedule restarts from here.
                    next = self.now.saturating_add(interval);
                }
                self.decide(
                    Cause::BeatDue,
                    Rule::HeartbeatSchedule,
                    Outcome::Beat { next: Some(next) },
                );
                self.send_heartbeat();
                self.timers.set(Timer::Heartbeat, next);
            }
        }
    }

    /// The driver reported the socket closed.
    pub(crate) fn on_closed(&mut self, code: Option<u16>) {
        if !(self.phase == Phase::Connecting || self.phase.has_open_socket()) {
            // No socket the machine knows of (already closed by the machine): ignore.
            return;
        }
        if let (Phase::Connecting, Some(code)) = (self.phase, code) {
            // A socket being opened has no close frame to give: this one is the late close
            // handshake of the socket the machine closed before this `Connect`.
            self.decide(
                Cause::ServerClose(CloseCode(code)),
                Rule::LateCloseIgnored,
                Outcome::Ignore,
            );
            return;
        }
        let (reason, fate) = match code.map(CloseCode) {
            None => (DisconnectReason::TransportLost, SessionFate::Keep),
            Some(code) => match code.action() {
                CloseAction::Resume
                    if code == CloseCode::DECODE_ERROR && self.phase == Phase::Identifying =>
                {
                    // The server could not read the Identify (or a heartbeat, which is
                    // always well formed): the configuration produced it, and it will
                    // produce the same bytes again.
                    self.undecodable_identifies += 1;
                    if self.undecodable_identifies >= UNDECODABLE_IDENTIFY_LIMIT {
                        self.decide(
                            Cause::ServerClose(code),
                            Rule::IdentifyUndecodable,
                            Outcome::Stop,
                        );
                        self.stop_fatal(FatalReason::IdentifyUndecodable);
                        return;
                    }
                    (DisconnectReason::ServerClose(code), SessionFate::Keep)
                }
                CloseAction::Resume => (DisconnectReason::ServerClose(code), SessionFate::Keep),
                CloseAction::Identify => (DisconnectReason::ServerClose(code), SessionFate::Drop),
                CloseAction::Fatal => {
                    self.decide(
                        Cause::ServerClose(code),
                        Rule::CloseCodeFatal,
                        Outcome::Stop,
                    );
                    self.stop_fatal(FatalReason::CloseCode(code));
                    return;
                }
            },
        };
        self.connection_lost(reason, fate, None, false);
    }

    /// The machine closes the connection (with a resumable code) and plans the next one.
    pub(crate) fn end_connection(
        &mut self,
        reason: DisconnectReason,
        fate: SessionFate,
        delay: Option<Duration>,
    ) {
        let close = self.phase == Phase::Connecting || self.phase.has_open_socket();
        self.connection_lost(reason, fate, delay, close);
    }

    /// The connection is gone (closed by the server, or by the machine when `close`):
    /// account for it, explain it, then reconnect after the backoff delay, or stop if the
    /// attempt cap is reached.
    fn connection_lost(
        &mut self,
        reason: DisconnectReason,
        fate: SessionFate,
        delay: Option<Duration>,
        close: bool,
    ) {
        // What the connection heard counts before the session's age is judged.
        self.note_liveness();
        let was = self.phase;
        let (cause, mut rule) = self.explain(reason);
        let mut drop_session = fate == SessionFate::Drop;
        let server_asked = reason == DisconnectReason::ReconnectRequested;
        // The resume circuit breaker counts resumes the server received and did not
        // complete. Attempts that end before Hello (refused, timed out, dropped: a network
        // outage) never reached a server with the Resume and say nothing about the session;
        // nor does op 7, the server asking for a reconnect.
        if was == Phase::Resuming && !server_asked {
            self.failed_resumes += 1;
            if self.failed_resumes >= self.config.session.max_failed_resumes
                && self.session.is_some()
            {
                // Circuit breaker: stop trying to resume a session that keeps failing.
                drop_session = true;
                rule = Rule::ResumeCircuitBreaker;
            }
        }
        // Before Hello, an attempt that fails (other than by op 7) keeps the session and
        // sends the next attempt to the other URL: from the resume URL to the main one,
        // still to resume, and back. Any other attempt goes to the resume URL.
        let unreachable = matches!(was, Phase::Connecting | Phase::AwaitingHello) && !server_asked;
        self.resume_via_main = unreachable && self.to_resume_url;
        if self.resume_via_main && !drop_session {
            rule = Rule::ResumeUrlFallback;
        }
        if was == Phase::Identifying
            && reason != DisconnectReason::ServerClose(CloseCode::DECODE_ERROR)
        {
            self.undecodable_identifies = 0;
        }
        if drop_session {
            self.session = None;
            self.failed_resumes = 0;
        }

        let attempt = self.attempts;
        let give_up = !self.config.reconnect.allows(attempt);
        let close_code = close.then_some(RESUMABLE_CLOSE);
        let mut next = None;
        if give_up {
            self.decide(cause, Rule::AttemptCap, Outcome::Stop);
        } else {
            let delay =
                delay.unwrap_or_else(|| self.config.reconnect.delay(attempt, &mut self.rng));
            let at = self.now.saturating_add(delay);
            let stale_after = self.config.session.stale_after;
            let resume = self
                .session
                .as_ref()
                .is_some_and(|s| !s.is_stale(at, stale_after));
            if !resume && rule.promises_resume() {
                // Name the rule that decided the identify, never one that promises a resume.
                rule = if self.session.is_some() {
                    Rule::StaleSessionCutoff
                } else {
                    Rule::NoSessionToResume
                };
            }
            self.decide(
                cause,
                rule,
                Outcome::Reconnect {
                    close: close_code,
                    resume,
                    at,
                    attempt,
                },
            );
            next = Some((delay, at, resume));
        }
        if close {
            self.queue.push_back(Pending::Close(CloseFrame {
                code: RESUMABLE_CLOSE,
                reason: close_reason(reason),
            }));
        }
        self.timers.stop_all();
        self.heartbeat.reset();
        self.phase = Phase::Disconnected;

        let Some((delay, reconnect_at, resume)) = next else {
            self.stop_fatal(FatalReason::ReconnectAttemptsExhausted { attempts: attempt });
            return;
        };
        self.attempts = attempt.saturating_add(1);
        self.push_event(Event::Disconnected(Disconnect {
            reason,
            resume,
            reconnect_at,
        }));
        if delay.is_zero() {
            self.start_connect();
        } else {
            self.timers.set(Timer::Reconnect, reconnect_at);
        }
    }

    /// Stops for good with `reason`. The socket is already gone: fatal stops follow a
    /// server close or a failed attempt.
    pub(crate) fn stop_fatal(&mut self, reason: FatalReason) {
        self.phase = Phase::Fatal(reason);
        self.timers.stop_all();
        self.held.clear();
        self.push_event(Event::Fatal(reason));
    }

    /// `shutdown` once the machine is known not to be terminal.
    pub(crate) fn shut_down(&mut self, keep_session: bool) {
        debug_assert!(!self.phase.is_terminal());
        self.note_liveness();
        self.decide(
            Cause::Shutdown { keep_session },
            Rule::ShutdownClose,
            Outcome::Stop,
        );
        if self.phase.has_open_socket() || self.phase == Phase::Connecting {
            let code = if keep_session { RESUMABLE_CLOSE } else { 1000 };
            self.queue.push_back(Pending::Close(CloseFrame {
                code,
                reason: "shutdown",
            }));
        }
        if !keep_session {
            self.session = None;
        }
        self.phase = Phase::Closed;
        self.timers.stop_all();
        self.held.clear();
        self.push_event(Event::Shutdown {
            session_kept: self.session.is_some(),
        });
    }

    /// The cause and default rule of a lost connection, for the decision trace.
    fn explain(&self, reason: DisconnectReason) -> (Cause, Rule) {
        match reason {
            DisconnectReason::ServerClose(code) => {
                let rule = match code.action() {
                    CloseAction::Identify => Rule::CloseCodeIdentify,
                    CloseAction::Fatal => Rule::CloseCodeFatal,
                    CloseAction::Resume => Rule::CloseCodeResume,
                };
                (Cause::ServerClose(code), rule)
            }
            DisconnectReason::TransportLost => (Cause::TransportLost, Rule::TransportLossResumes),
            DisconnectReason::ConnectTimeout => (Cause::ConnectTimeout, Rule::StallTimeout),
            DisconnectReason::HelloTimeout => (Cause::HelloTimeout, Rule::StallTimeout),
            DisconnectReason::ReadyTimeout => (Cause::ReadyTimeout, Rule::StallTimeout),
            DisconnectReason::Zombie => {
                let since_beat = self.heartbeat.last_scheduled().unwrap_or(self.now);
                (Cause::MissedAck { since_beat }, Rule::ZombieVerdict)
            }
            DisconnectReason::ReconnectRequested => {
                (Cause::ReconnectRequested, Rule::ReconnectAndResume)
            }
            DisconnectReason::InvalidSession { resumable: true } => (
                Cause::InvalidSession { resumable: true },
                Rule::InvalidSessionResumable,
            ),
            DisconnectReason::InvalidSession { resumable: false } => (
                Cause::InvalidSession { resumable: false },
                Rule::InvalidSessionNotResumable,
            ),
            DisconnectReason::Protocol => (Cause::BrokenStream, Rule::BrokenStreamReconnects),
        }
    }

    /// The wait before identifying again after an Invalid Session with `d: false`: the
    /// configured random wait, but never shorter than the reconnect backoff of this attempt,
    /// so that a server rejecting every identify does not get one every few seconds.
    pub(crate) fn invalid_session_delay(&mut self) -> Duration {
        let (min, max) = self.config.identify.invalid_session_delay;
        let wait = self.rng.duration_between(min, max);
        // Attempt 0 (after a live session) draws nothing: the usual 1-5 s wait.
        wait.max(self.config.reconnect.delay(self.attempts, &mut self.rng))
    }
}

/// The reason text of a close the machine initiates.
fn close_reason(reason: DisconnectReason) -> &'static str {
    match reason {
        DisconnectReason::Zombie => "zombie connection: heartbeat not acknowledged",
        DisconnectReason::ConnectTimeout => "connect timeout",
        DisconnectReason::HelloTimeout => "hello timeout",
        DisconnectReason::ReadyTimeout => "ready timeout",
        DisconnectReason::ReconnectRequested => "reconnect requested",
        DisconnectReason::InvalidSession { .. } => "invalid session",
        DisconnectReason::Protocol => "protocol error",
        DisconnectReason::ServerClose(_) | DisconnectReason::TransportLost => "reconnecting",
    }
}
