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

/// The close code the machine uses when it closes a connection it wants to resume: any code
/// but 1000/1001 keeps the session.
pub(crate) const RESUMABLE_CLOSE: u16 = 4000;

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
        if self
            .session
            .as_ref()
            .is_some_and(|s| s.is_stale(now, stale_after))
        {
            self.session = None;
        }
        let compression = self.config.compression;
        let resume_url = self
            .session
            .as_ref()
            .and_then(|s| s.resume_url.as_deref())
            .and_then(|base| gateway_url(base, compression).ok());
        self.to_resume_url = resume_url.is_some();
        self.url = match resume_url {
            Some(url) => url,
            // Validated when the machine was built.
            None => gateway_url(&self.config.gateway_url, compression)
                .unwrap_or_else(|_| self.config.gateway_url.clone()),
        };
        self.inflater.reset();
        self.heartbeat.reset();
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
        self.push_event(Event::Hello {
            heartbeat_interval: interval,
        });
        if self.session.is_some() {
            self.send_resume();
        } else if self.config.identify.auto_grant {
            self.send_identify();
        } else {
            self.phase = Phase::AwaitingIdentifyGrant;
            self.push_event(Event::IdentifyRequested);
        }
    }

    pub(crate) fn send_identify(&mut self) {
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

    pub(crate) fn send_heartbeat(&mut self) {
        self.heartbeat.on_sent(self.now);
        self.queue.push_back(Pending::Heartbeat);
    }

    /// READY or RESUMED: the session is live.
    pub(crate) fn on_session_live(&mut self) {
        self.phase = Phase::Connected;
        self.attempts = 0;
        self.failed_resumes = 0;
        self.timers.stop(Timer::Ready);
        if let Some(session) = &mut self.session {
            session.last_ack = self.now;
        }
        while let Some((opcode, text)) = self.held.pop_front() {
            self.queue.push_back(Pending::Send { opcode, text });
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
            // A timer left over from a phase that has passed.
            _ => {}
        }
    }

    fn on_beat_due(&mut self, deadline: Timestamp) {
        match self.heartbeat.on_due(&self.config.heartbeat) {
            BeatVerdict::Zombie => {
                self.end_connection(DisconnectReason::Zombie, SessionFate::Keep, None);
            }
            BeatVerdict::Beat => {
                self.trim_buffers();
                self.send_heartbeat();
                let interval = self.heartbeat.interval().unwrap_or(Duration::from_secs(41));
                let mut next = deadline.saturating_add(interval);
                if next <= self.now {
                    // Woke up late (suspend): one beat now, the schedule restarts from here.
                    next = self.now.saturating_add(interval);
                }
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
        let Some(code) = code.map(CloseCode) else {
            self.lose_connection(DisconnectReason::TransportLost, SessionFate::Keep, None);
            return;
        };
        match code.action() {
            CloseAction::Resume => {
                self.lose_connection(DisconnectReason::ServerClose(code), SessionFate::Keep, None)
            }
            CloseAction::Identify => {
                self.lose_connection(DisconnectReason::ServerClose(code), SessionFate::Drop, None)
            }
            CloseAction::Fatal => self.stop_fatal(FatalReason::CloseCode(code)),
        }
    }

    /// The machine closes the connection (with a resumable code) and plans the next one.
    pub(crate) fn end_connection(
        &mut self,
        reason: DisconnectReason,
        fate: SessionFate,
        delay: Option<Duration>,
    ) {
        if self.phase == Phase::Connecting || self.phase.has_open_socket() {
            self.queue.push_back(Pending::Close(CloseFrame {
                code: RESUMABLE_CLOSE,
                reason: close_reason(reason),
            }));
        }
        self.lose_connection(reason, fate, delay);
    }

    /// The connection is gone (closed by either side): account for it, then reconnect after
    /// the backoff delay, or stop if the attempt cap is reached.
    fn lose_connection(
        &mut self,
        reason: DisconnectReason,
        fate: SessionFate,
        delay: Option<Duration>,
    ) {
        let was = self.phase;
        let mut drop_session = fate == SessionFate::Drop;
        if was == Phase::Resuming {
            self.failed_resumes += 1;
            if self.failed_resumes >= self.config.session.max_failed_resumes {
                // Circuit breaker: stop trying to resume a session that keeps failing.
                drop_session = true;
            }
        }
        if was == Phase::Connecting && self.to_resume_url {
            // The resume URL did not answer: fall back to the main URL and identify.
            drop_session = true;
        }
        if drop_session {
            self.session = None;
            self.failed_resumes = 0;
        }
        self.timers.stop_all();
        self.heartbeat.reset();
        self.phase = Phase::Disconnected;

        let attempt = self.attempts;
        if !self.config.reconnect.allows(attempt) {
            self.stop_fatal(FatalReason::ReconnectAttemptsExhausted { attempts: attempt });
            return;
        }
        self.attempts = attempt.saturating_add(1);
        let delay = delay.unwrap_or_else(|| self.config.reconnect.delay(attempt, &mut self.rng));
        let reconnect_at = self.now.saturating_add(delay);
        let resume = self
            .session
            .as_ref()
            .is_some_and(|s| !s.is_stale(reconnect_at, self.config.session.stale_after));
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

    /// Stops for good with `reason`.
    pub(crate) fn stop_fatal(&mut self, reason: FatalReason) {
        if self.phase.has_open_socket() || self.phase == Phase::Connecting {
            self.queue.push_back(Pending::Close(CloseFrame {
                code: 1000,
                reason: "fatal",
            }));
        }
        self.phase = Phase::Fatal(reason);
        self.timers.stop_all();
        self.held.clear();
        self.push_event(Event::Fatal(reason));
    }

    pub(crate) fn shut_down(&mut self, keep_session: bool) {
        if self.phase.is_terminal() {
            return;
        }
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

    /// The wait before identifying again after an Invalid Session with `d: false`.
    pub(crate) fn invalid_session_delay(&mut self) -> Duration {
        let (min, max) = self.config.identify.invalid_session_delay;
        self.rng.duration_between(min, max)
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
