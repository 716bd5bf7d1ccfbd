//! [`GatewayMachine`]: the public face. Its methods fall into four groups (getters, inputs,
//! commands, outputs); the work is done by the submodules and the parts they call.

mod lifecycle;
mod queue;
mod ready;
mod receive;

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::Arc;
use core::time::Duration;

use rand_core::Rng;

use crate::config::{ConfigError, GatewayConfig, ShardId};
use crate::error::CommandError;
use crate::heartbeat::{Heartbeat, Latency};
use crate::inflate::Inflater;
use crate::output::{CloseFrame, Output, ReadyInfo};
use crate::phase::Phase;
use crate::protocol::commands::{Command, MAX_FRAME_BYTES};
use crate::protocol::opcode::OpCode;
use crate::ratelimit::RateLimiter;
use crate::rng::Prng;
use crate::session::Session;
use crate::time::{Timer, Timers, Timestamp};
use crate::trace::{Cause, Decision, Outcome, Rule};

use queue::{OutputQueue, Pending};

/// One WebSocket data message from the gateway, as the driver received it, lent to the
/// machine (which copies what it keeps; see
/// [`GatewayMachine::handle_text_buffer`] to hand over a `String` instead).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message<'a> {
    /// A text message.
    Text(&'a str),
    /// A text message whose bytes the WebSocket library did not check for UTF-8.
    TextBytes(&'a [u8]),
    /// A binary message (compressed data).
    Binary(&'a [u8]),
}

/// How to start a machine beyond its configuration.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// The shard to run (overrides [`GatewayConfig::shard`], so many machines can share one
    /// configuration).
    pub shard: Option<ShardId>,
    /// A saved session to resume (a process restart).
    pub session: Option<Session>,
}

/// A Discord gateway connection as a pure state machine: bytes and time in, actions out.
///
/// The machine owns every protocol decision and no I/O: no socket, no clock, no thread, no
/// global randomness. A driver moves data between it and a WebSocket.
///
/// # Methods
/// - **Getters** (`&self`, no side effects): [`phase`](Self::phase),
///   [`session`](Self::session), [`latency`](Self::latency), [`shard`](Self::shard), ...
/// - **Inputs**: [`handle_connected`](Self::handle_connected),
///   [`handle_message`](Self::handle_message) (or
///   [`handle_text_buffer`](Self::handle_text_buffer), to hand a text over without a copy),
///   [`handle_closed`](Self::handle_closed),
///   [`handle_timeout`](Self::handle_timeout). Inputs never fail: bad data from the network
///   becomes an [`Event`](crate::Event).
/// - **Commands**: [`send`](Self::send), [`grant_identify`](Self::grant_identify),
///   [`shutdown`](Self::shutdown). Commands that cannot be honoured return a
///   [`CommandError`].
/// - **Outputs**: [`poll_output`](Self::poll_output) after **every** input or command until
///   it returns [`Output::Wait`]; [`poll_timeout`](Self::poll_timeout) for the deadline alone.
///
/// # Time
/// Every input takes `now`. A `now` earlier than one already seen is treated as the latest
/// seen, and one before the origin as the origin. A jump far forward fires each expired
/// timer once (one beat or one zombie verdict), never a burst. A restored session's last
/// ACK may be before the origin (see [`Session::with_ack_age`]).
pub struct GatewayMachine {
    pub(crate) config: Arc<GatewayConfig>,
    pub(crate) shard: ShardId,
    pub(crate) rng: Prng,
    pub(crate) now: Timestamp,
    pub(crate) phase: Phase,
    pub(crate) timers: Timers,
    pub(crate) heartbeat: Heartbeat,
    pub(crate) session: Option<Session>,
    pub(crate) ready: Option<alloc::boxed::Box<ReadyInfo>>,
    /// The URL of the current (or last) connection.
    pub(crate) url: String,
    /// Whether the current connection goes to the session's resume URL.
    pub(crate) to_resume_url: bool,
    /// Failed connection attempts in a row (reset by READY / RESUMED).
    pub(crate) attempts: u32,
    /// Failed resumes in a row (reset by RESUMED): resumes the server received and did not
    /// complete, for the circuit breaker.
    pub(crate) failed_resumes: u32,
    /// The next resume goes to the main URL: the last attempt, to the resume URL, ended
    /// before Hello.
    pub(crate) resume_via_main: bool,
    /// Identifies in a row answered with close 4002 (reset by READY).
    pub(crate) undecodable_identifies: u32,
    /// Dispatches received while resuming.
    pub(crate) replayed: u64,
    /// The run of repeated sequence numbers being received: the number that continues it
    /// and the session's sequence when it started (`(0, _)`: none). Only read when a
    /// dispatch's number is not the next one.
    pub(crate) repeat_run: (u64, u64),
    /// Outputs decided and not yet taken by `poll_output`.
    pub(crate) queue: OutputQueue,
    /// Commands waiting for READY / RESUMED.
    pub(crate) held: VecDeque<(OpCode, String)>,
    /// The last message received (decompressed), which dispatch events borrow from.
    pub(crate) rx: String,
    /// Whether `rx` holds the last text message exactly as the driver gave it (not
    /// decompressed), so that dispatches can say where they lie in it.
    pub(crate) rx_lent: bool,
    /// Messages of at most 1 MiB received in a row while `rx` is grown past that (see
    /// `receive::RX_RETAIN`).
    pub(crate) rx_quiet: u8,
    /// The last frame handed out by `poll_output`.
    pub(crate) tx: String,
    /// A dispatch copied out of `rx` because the driver did not drain before the next message.
    pub(crate) spilled: Option<crate::output::OwnedDispatch>,
    /// The decompressor, boxed and only present when compression is on, so uncompressed
    /// machines do not carry its state.
    pub(crate) inflater: Option<alloc::boxed::Box<Inflater>>,
    /// The 120-per-60-s send budget of the current connection.
    pub(crate) limiter: RateLimiter,
    /// Whether decisions are reported as events.
    pub(crate) trace: bool,
}

impl core::fmt::Debug for GatewayMachine {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("GatewayMachine")
            .field("shard", &self.shard)
            .field("phase", &self.phase)
            .field("now", &self.now)
            .field("session", &self.session)
            .field("url", &self.url)
            .field("attempts", &self.attempts)
            .field("next_deadline", &self.timers.next())
            .finish_non_exhaustive()
    }
}

impl GatewayMachine {
    /// A machine for `config`, seeded from `rng` (its only randomness), starting at `now`.
    /// The first output is `Connect`.
    ///
    /// `rng` is any [`rand_core::Rng`] of `rand_core` 0.10, the version `rand` 0.10 uses:
    /// `&mut rand::rng()` will do. The machine draws one `u64` from it and never touches it
    /// again. With no RNG at hand, or to reproduce a run, pass a seed to
    /// [`with_options`](Self::with_options) instead.
    ///
    /// ```
    /// use discord_gateway_proto::{GatewayConfig, GatewayMachine, Intents, Output, Timestamp, Token};
    ///
    /// let config = GatewayConfig::new(Token::new("..."), Intents::GUILDS);
    /// let mut machine = GatewayMachine::new(config, &mut rand::rng(), Timestamp::ZERO)?;
    /// assert!(matches!(machine.poll_output(), Output::Connect { .. }));
    /// # Ok::<(), discord_gateway_proto::config::ConfigError>(())
    /// ```
    ///
    /// # Errors
    /// The configuration's [`ConfigError`], from [`GatewayConfig::validate`].
    pub fn new<R: Rng + ?Sized>(
        config: impl Into<Arc<GatewayConfig>>,
        rng: &mut R,
        now: Timestamp,
    ) -> Result<Self, ConfigError> {
        Self::with_options(config, StartOptions::default(), rng.next_u64(), now)
    }

    /// A machine with a shard and/or a saved session, and an explicit seed for its random
    /// choices (heartbeat jitter, backoff jitter, the invalid-session wait). The same config,
    /// options, seed and inputs always give the same outputs.
    ///
    /// This is also the constructor for a driver with no RNG at hand (a `no_std` target, a
    /// test): any `u64` that differs between processes (a hardware counter, the wall-clock
    /// time, a shard number mixed with a start time) is seed enough. The seed only spreads
    /// jitter; nothing secret depends on it.
    ///
    /// ```
    /// use discord_gateway_proto::{GatewayConfig, GatewayMachine, Intents, StartOptions, Timestamp, Token};
    ///
    /// let config = GatewayConfig::new(Token::new("..."), Intents::GUILDS);
    /// let seed = 0x5eed;
    /// let options = StartOptions::default();
    /// let machine = GatewayMachine::with_options(config, options, seed, Timestamp::ZERO)?;
    /// # let _ = machine;
    /// # Ok::<(), discord_gateway_proto::config::ConfigError>(())
    /// ```
    ///
    /// # Errors
    /// The configuration's [`ConfigError`], or [`ConfigError::Shard`] for `options.shard`.
    pub fn with_options(
        config: impl Into<Arc<GatewayConfig>>,
        options: StartOptions,
        seed: u64,
        now: Timestamp,
    ) -> Result<Self, ConfigError> {
        let config = config.into();
        config.validate()?;
        // Inputs are at or after the origin (times before it are for the past, such as a
        // restored session's last ACK): an earlier start counts as the origin.
        let now = now.max(Timestamp::ZERO);
        let shard = options.shard.unwrap_or(config.shard);
        config.validate_shard(shard)?;
        let inflater = match config.compression {
            crate::config::Compression::None => None,
            compression => Some(alloc::boxed::Box::new(Inflater::new(
                compression,
                &config.limits,
            )?)),
        };
        let mut machine = GatewayMachine {
            config,
            shard,
            rng: Prng::new(seed),
            now,
            phase: Phase::Disconnected,
            timers: Timers::default(),
            heartbeat: Heartbeat::default(),
            session: options.session,
            ready: None,
            url: String::new(),
            to_resume_url: false,
            attempts: 0,
            failed_resumes: 0,
            resume_via_main: false,
            undecodable_identifies: 0,
            replayed: 0,
            repeat_run: (0, 0),
            queue: OutputQueue::default(),
            held: VecDeque::new(),
            rx: String::new(),
            rx_lent: false,
            rx_quiet: 0,
            tx: String::new(),
            spilled: None,
            inflater,
            limiter: RateLimiter::new(),
            trace: false,
        };
        machine.start_connect();
        Ok(machine)
    }

    // ----- A. getters -----

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The session, if one exists (to save it, or to inspect the sequence).
    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// Heartbeat round-trip times.
    pub fn latency(&self) -> Latency {
        self.heartbeat.latency()
    }

    /// The heartbeat interval of the current connection, once Hello arrived.
    pub fn heartbeat_interval(&self) -> Option<Duration> {
        self.heartbeat.interval()
    }

    /// The shard this machine runs.
    pub fn shard(&self) -> ShardId {
        self.shard
    }

    /// The configuration.
    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    /// READY's basics for the current session, once it arrived.
    pub fn ready_info(&self) -> Option<&ReadyInfo> {
        self.ready.as_deref()
    }

    /// The latest time the machine has seen.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// The URL of the current or most recent connection.
    pub fn current_url(&self) -> &str {
        &self.url
    }

    /// Failed connection attempts in a row since the last READY / RESUMED.
    pub fn reconnect_attempts(&self) -> u32 {
        self.attempts
    }

    /// Commands waiting to be sent (for READY / RESUMED or for a rate-limit slot).
    pub fn queued_commands(&self) -> usize {
        self.held.len()
    }

    /// How many commands could be sent right now without waiting, as of the latest time
    /// seen (0 before READY / RESUMED).
    pub fn available_commands(&self) -> u32 {
        if self.phase != Phase::Connected {
            return 0;
        }
        self.limiter
            .available_commands(self.now)
            .saturating_sub(self.held.len() as u32)
    }

    /// When the rate limiter frees the next command slot on this connection (the latest time
    /// seen if one is free now; `None` before Hello).
    pub fn next_command_slot(&self) -> Option<Timestamp> {
        self.limiter.next_command_slot(self.now)
    }

    /// Frames sent on this connection in the current 60 s window, every kind counted.
    pub fn sent_in_window(&self) -> u32 {
        self.limiter.sent_in_window(self.now)
    }

    /// Heap bytes this machine holds (buffers, queues, session, decompressor), excluding the
    /// shared configuration. `size_of::<GatewayMachine>()` plus this is its whole footprint.
    pub fn heap_bytes(&self) -> usize {
        let session = self.session.as_ref().map_or(0, |s| {
            s.id.capacity() + s.resume_url.as_ref().map_or(0, String::capacity)
        });
        let ready = self.ready.as_ref().map_or(0, |r| {
            core::mem::size_of::<ReadyInfo>()
                + r.session_id.capacity()
                + r.resume_gateway_url.as_ref().map_or(0, String::capacity)
                + r.user_id.as_ref().map_or(0, String::capacity)
                + r.application_id.as_ref().map_or(0, String::capacity)
        });
        let held: usize = self.held.iter().map(|(_, text)| text.capacity()).sum();
        self.rx.capacity()
            + self.tx.capacity()
            + self.url.capacity()
            + self.queue.heap_bytes()
            + self.held.capacity() * core::mem::size_of::<(OpCode, String)>()
            + held
            + session
            + ready
            + self
                .inflater
                .as_ref()
                .map_or(0, |i| core::mem::size_of::<Inflater>() + i.heap_bytes())
    }

    // ----- B. inputs -----

    /// The socket asked for by the last `Connect` is open.
    pub fn handle_connected(&mut self, now: Timestamp) {
        let now = self.advance(now);
        if self.phase != Phase::Connecting {
            return;
        }
        self.timers.stop(Timer::Connect);
        self.phase = Phase::AwaitingHello;
        self.timers
            .set(Timer::Hello, now.saturating_add(self.config.timeouts.hello));
    }

    /// One WebSocket data message arrived.
    pub fn handle_message(&mut self, now: Timestamp, message: Message<'_>) {
        self.advance(now);
        self.receive(message);
    }

    /// One text message, handed over in the driver's own buffer instead of lent: the machine
    /// keeps `buffer`'s allocation rather than copying the text, and leaves its previous
    /// receive buffer in its place.
    ///
    /// On return `buffer` is empty, with capacity to read the next message into (at most
    /// 1 MiB of it is kept after a huge message, unless the message handed over is itself
    /// over 1 MiB: large messages back to back reuse their buffers). Outputs are the same as
    /// [`handle_message`](Self::handle_message) with [`Message::Text`].
    ///
    /// For drivers that hold each message in a `String` of their own (a browser WebSocket
    /// under WASM, a hand-written frame reader): it saves the copy of every message that
    /// `handle_message` makes, and in steady state neither allocates nor frees.
    pub fn handle_text_buffer(&mut self, now: Timestamp, buffer: &mut String) {
        self.advance(now);
        self.receive_buffer(buffer);
    }

    /// The socket closed: `Some(frame)` with the server's close frame, `None` when the
    /// transport failed (or the connection attempt failed) without one.
    pub fn handle_closed(&mut self, now: Timestamp, frame: Option<CloseFrame<'_>>) {
        self.advance(now);
        self.on_closed(frame.map(|f| f.code));
    }

    /// A deadline from [`poll_timeout`](Self::poll_timeout) (or `Wait`) passed. Calls before
    /// any deadline are no-ops.
    ///
    /// Each timer that expired fires once. A timer armed by what they did (a reconnect
    /// after a connect timeout, say) never fires in the same call, whatever the
    /// configuration: afterwards the next deadline is later than `now` (at
    /// [`Timestamp::MAX`], where time cannot move on, it stays there).
    pub fn handle_timeout(&mut self, now: Timestamp) {
        let now = self.advance(now);
        self.timers.begin_round();
        while let Some((timer, deadline)) = self.timers.pop_expired(now) {
            self.on_timer(timer, deadline);
        }
        self.timers.end_round(now);
    }

    // ----- C. commands -----

    /// Sends a command (presence, voice state, guild members, ...). Before READY / RESUMED,
    /// and while reconnecting, commands wait in a bounded queue.
    pub fn send(&mut self, now: Timestamp, command: Command) -> Result<(), CommandError> {
        self.advance(now);
        if self.phase.is_terminal() {
            return Err(CommandError::Stopped);
        }
        self.send_serialized(command.opcode(), command.to_json())
    }

    /// `send` with the frame already serialized (the recorder's and the replayer's path).
    pub(crate) fn send_at(
        &mut self,
        now: Timestamp,
        opcode: OpCode,
        text: String,
    ) -> Result<(), CommandError> {
        self.advance(now);
        self.send_serialized(opcode, text)
    }

    /// `send` after serialization.
    fn send_serialized(&mut self, opcode: OpCode, text: String) -> Result<(), CommandError> {
        if self.phase.is_terminal() {
            return Err(CommandError::Stopped);
        }
        if text.len() > MAX_FRAME_BYTES {
            return Err(CommandError::PayloadTooLarge {
                opcode,
                size: text.len(),
                limit: MAX_FRAME_BYTES,
            });
        }
        if self.phase == Phase::Connected
            && self.held.is_empty()
            && self.limiter.try_acquire_command(self.now)
        {
            self.queue.push_back(Pending::Send { opcode, text });
            return Ok(());
        }
        let capacity = self.config.limits.command_queue;
        if self.held.len() >= capacity {
            return Err(CommandError::QueueFull { capacity });
        }
        self.held.push_back((opcode, text));
        if self.phase == Phase::Connected {
            self.schedule_held();
        }
        Ok(())
    }

    /// Permission to identify, answering [`Event::IdentifyRequested`](crate::Event::IdentifyRequested).
    /// Sends Identify at once. Fails (and the grant is unused) if no identify is pending.
    pub fn grant_identify(&mut self, now: Timestamp) -> Result<(), CommandError> {
        self.advance(now);
        if self.phase.is_terminal() {
            return Err(CommandError::Stopped);
        }
        if self.phase != Phase::AwaitingIdentifyGrant {
            return Err(CommandError::IdentifyNotRequested);
        }
        self.send_identify();
        Ok(())
    }

    /// Turns the decision trace on or off: when on, every state change is explained by an
    /// [`Event::Decision`](crate::Event::Decision) before the outputs it causes. Off by
    /// default; when off it costs a branch.
    pub fn set_trace(&mut self, on: bool) {
        self.trace = on;
    }

    /// Closes the connection for good. With `keep_session`, closes with a code that keeps the
    /// session resumable (save [`session`](Self::session) to resume in a new machine);
    /// otherwise closes with 1000, which ends the session (the bot goes offline at once).
    ///
    /// # Errors
    /// [`CommandError::Stopped`] if the machine had already stopped (shut down, or a fatal
    /// close): nothing is output, and the session is left as it was.
    pub fn shutdown(&mut self, now: Timestamp, keep_session: bool) -> Result<(), CommandError> {
        self.advance(now);
        if self.phase.is_terminal() {
            return Err(CommandError::Stopped);
        }
        self.shut_down(keep_session);
        Ok(())
    }

    // ----- D. outputs -----

    /// The next action. Call after every input and command until it returns
    /// [`Output::Wait`]. Borrowed data in the output is valid until the next call on the
    /// machine.
    #[inline]
    pub fn poll_output(&mut self) -> Output<'_> {
        // The two outputs of nearly every drain, a dispatch and then `Wait`, are answered
        // here, inlined into the driver's loop; the rest by `next_output`.
        if self.queue.is_empty() {
            return Output::Wait(self.poll_timeout());
        }
        match self.queue.pop_dispatch() {
            Some((name, sequence, data)) => self.dispatch_in_rx(name, sequence, data),
            None => self.next_output(),
        }
    }

    /// The next deadline at which [`handle_timeout`](Self::handle_timeout) must be called,
    /// or `None` if no timer is armed (always `None` once terminal).
    #[inline]
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        if self.phase.is_terminal() {
            return None;
        }
        self.timers.next()
    }

    /// Reports a decision when tracing is on.
    pub(crate) fn decide(&mut self, cause: Cause, rule: Rule, outcome: Outcome) {
        if self.trace {
            let at = self.now;
            self.push_event(crate::output::Event::Decision(Decision {
                at,
                cause,
                rule,
                outcome,
            }));
        }
    }

    /// Clamps `now` to the latest time seen.
    fn advance(&mut self, now: Timestamp) -> Timestamp {
        self.now = self.now.max(now);
        self.now
    }
}
