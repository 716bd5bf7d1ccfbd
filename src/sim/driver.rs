//! [`SimDriver`]: one [`GatewayMachine`] and one [`FakeGateway`] in virtual time.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::time::Duration;

use super::gateway::{ConnectionId, FakeGateway, ScriptAction, ServerAction, ServerOutput};
use super::trace::{SimEvent, Trace, TraceKind};
use crate::config::{ConfigError, GatewayConfig, Token};
use crate::error::CommandError;
use crate::machine::{GatewayMachine, Message, StartOptions};
use crate::output::{CloseFrame, Event, Output};
use crate::protocol::commands::Command;
use crate::protocol::opcode::OpCode;
use crate::record::{Recorder, RecordingMachine};
use crate::time::Timestamp;

/// How the driver answers [`Event::IdentifyRequested`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GrantPolicy {
    /// Grant at the same virtual time (right after the drain).
    Immediately,
    /// Grant this long after the request.
    After(Duration),
    /// Never grant (the test calls [`SimDriver::grant_identify`] itself).
    Never,
}

/// A breach of the driver contract by the machine, seen by the driver.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContractViolation {
    /// `poll_output` did not return `Wait` within this many polls.
    DrainUnbounded(usize),
    /// After `handle_timeout(at)`, the next deadline was not later than `at`.
    DeadlineNotAfterTimeout {
        /// The time passed to `handle_timeout`.
        at: Timestamp,
        /// The deadline it left.
        deadline: Timestamp,
    },
    /// `Wait(deadline)` disagreed with `poll_timeout()`.
    WaitDisagrees {
        /// What `Wait` said.
        wait: Option<Timestamp>,
        /// What `poll_timeout` said.
        poll_timeout: Option<Timestamp>,
    },
    /// `Send` with no connection open.
    SendWithoutSocket(OpCode),
    /// `Close` with no connection open (or after the server's close was reported).
    CloseWithoutSocket(u16),
    /// `Connect` while a connection was still open.
    ConnectWhileConnected,
    /// Something other than `Wait(None)` after the machine became terminal.
    OutputAfterTerminal(String),
}

/// The outputs of one poll, copied out of the machine.
enum Owned {
    Connect(String),
    Send(OpCode, String),
    Close(u16, String),
    Event(SimEvent),
    Wait(Option<Timestamp>),
}

/// Runs one [`GatewayMachine`] against one [`FakeGateway`] in virtual time, the way a real
/// driver would: it drains the machine after every call (`poll_output` until `Wait`), carries
/// `Connect` / `Send` / `Close` to the fake server, delivers the server's messages and closes
/// to the machine, answers identify requests per its [`GrantPolicy`], and steps both sides to
/// the earliest deadline. Everything is recorded in a [`Trace`].
///
/// It also checks the driver contract ([`ContractViolation`]): the drain ends within a bound,
/// after `handle_timeout(t)` the next deadline is later than `t`, `Wait` agrees with
/// `poll_timeout`, no `Send`/`Close` without a socket, nothing but `Wait(None)` once
/// terminal. In strict mode (the default) a violation panics with the trace so far.
///
/// Time starts at the machine's `now` and only moves forward. At equal times the order is
/// fixed: server actions first, then an identify grant, then the machine's timers. The same
/// config, seed, script and calls give the same trace.
///
/// # Testing a bot's reactions
///
/// [`next_event`](Self::next_event) runs the world until the machine reports an event and
/// hands it over, as a shard's `next_event()` does; [`run_for_with`](Self::run_for_with)
/// calls a handler with each one. Whatever the test does then (a [`send`](Self::send), a
/// [`shutdown`](Self::shutdown), a scripted [`server`](Self::server) action) happens at the
/// event's virtual time, through the machine's rate limiter and queue, under the same
/// contract checks:
///
/// ```
/// use core::time::Duration;
/// use discord_gateway_proto::protocol::commands::RequestGuildMembers;
/// use discord_gateway_proto::sim::{
///     FakeGateway, FakeGatewayConfig, ScriptAction, SimDriver, SimEvent, SimGuild, SimMessage,
///     SimUser, Trigger,
/// };
/// use discord_gateway_proto::{Command, GatewayConfig, Intents, Snowflake, Token};
///
/// // The bot: on "!members", ask for the guild's members.
/// fn on_event(sim: &mut SimDriver, event: SimEvent) {
///     let SimEvent::Dispatch(dispatch) = event else { return };
///     if dispatch.name == "MESSAGE_CREATE" && dispatch.data.contains(r#""content":"!members""#) {
///         let guild = Snowflake(81_384_788_765_712_384);
///         sim.send(Command::RequestGuildMembers(RequestGuildMembers::all(guild)))
///             .expect("the machine takes it");
///     }
/// }
///
/// let guild = SimGuild::new(81_384_788_765_712_384, "Discord API");
/// let mut gateway = FakeGateway::new(FakeGatewayConfig {
///     guilds: vec![guild.clone()],
///     ..FakeGatewayConfig::default()
/// });
/// let user = SimUser::person(41_771_983_423_143_937, "ferris");
/// gateway.after(
///     Trigger::ReadySent(1),
///     Duration::from_secs(2),
///     ScriptAction::Message(SimMessage::in_guild(&guild, user, "!members")),
/// );
/// // MESSAGE_CONTENT: without it the fake, like Discord, blanks the message's text.
/// let intents = Intents::GUILDS | Intents::GUILD_MESSAGES | Intents::MESSAGE_CONTENT;
/// let config = GatewayConfig::new(Token::new("secret"), intents)
///     .with_gateway_url("wss://gateway.sim");
/// let mut sim = SimDriver::new(config, 7, gateway).unwrap();
/// sim.run_for_with(Duration::from_secs(10), on_event);
///
/// // The fake got the request the moment the message arrived, and answered it.
/// let message_at = sim.trace().dispatches().find(|(_, d)| d.name == "MESSAGE_CREATE").unwrap().0;
/// let request = sim.gateway().received_op(8).next().unwrap();
/// assert_eq!(request.time, message_at);
/// assert!(sim.trace().dispatches().any(|(_, d)| d.name == "GUILD_MEMBERS_CHUNK"));
/// ```
#[derive(Debug)]
pub struct SimDriver {
    machine: GatewayMachine,
    gateway: FakeGateway,
    now: Timestamp,
    connection: Option<ConnectionId>,
    grant: GrantPolicy,
    grant_at: Option<Timestamp>,
    trace: Trace,
    violations: Vec<ContractViolation>,
    strict: bool,
    max_polls: usize,
    token: Token,
    recorder: Option<Recorder>,
    /// Trace entries before this index were handed to [`next_event`](Self::next_event) or
    /// passed over.
    handed: usize,
    /// Steps taken in a row at the same virtual time (livelock guard).
    same_time_steps: u32,
}

impl SimDriver {
    /// The most `poll_output` calls one drain may take by default.
    pub const DEFAULT_MAX_POLLS: usize = 10_000;

    /// A machine for `config` seeded with `seed`, at time zero, against `gateway`. Identify
    /// requests are granted immediately.
    pub fn new(
        config: impl Into<Arc<GatewayConfig>>,
        seed: u64,
        gateway: FakeGateway,
    ) -> Result<Self, ConfigError> {
        Self::with_options(
            config,
            StartOptions::default(),
            seed,
            Timestamp::ZERO,
            gateway,
        )
    }

    /// A machine built with [`GatewayMachine::with_options`] (e.g. from a saved session).
    pub fn with_options(
        config: impl Into<Arc<GatewayConfig>>,
        options: StartOptions,
        seed: u64,
        now: Timestamp,
        gateway: FakeGateway,
    ) -> Result<Self, ConfigError> {
        let machine = GatewayMachine::with_options(config, options, seed, now)?;
        Ok(Self::from_machine(machine, gateway))
    }

    /// Like [`with_options`](Self::with_options), and records the run (see
    /// [`crate::record`]): take the lines with [`pop_recording_line`](Self::pop_recording_line).
    /// Inputs made through [`input`](Self::input) are not recorded.
    pub fn recorded(
        config: impl Into<Arc<GatewayConfig>>,
        options: StartOptions,
        seed: u64,
        now: Timestamp,
        gateway: FakeGateway,
    ) -> Result<Self, ConfigError> {
        let (machine, recorder) = RecordingMachine::new(config, options, seed, now)?.into_parts();
        Ok(Self::from_parts(machine, gateway, Some(recorder)))
    }

    /// Drives an existing machine (fresh from its constructor, nothing polled yet) from its
    /// `now`, against `gateway`.
    pub fn from_machine(machine: GatewayMachine, gateway: FakeGateway) -> Self {
        Self::from_parts(machine, gateway, None)
    }

    fn from_parts(
        machine: GatewayMachine,
        gateway: FakeGateway,
        recorder: Option<Recorder>,
    ) -> Self {
        let now = machine.now().max(gateway.now());
        let token = machine.config().token.clone();
        let mut driver = SimDriver {
            machine,
            gateway,
            now,
            connection: None,
            grant: GrantPolicy::Immediately,
            grant_at: None,
            trace: Trace::default(),
            violations: Vec::new(),
            strict: true,
            max_polls: Self::DEFAULT_MAX_POLLS,
            token,
            recorder,
            handed: 0,
            same_time_steps: 0,
        };
        driver.drain(false);
        driver
    }

    /// Sets how identify requests are answered.
    pub fn with_grant_policy(mut self, grant: GrantPolicy) -> Self {
        self.grant = grant;
        self
    }

    /// Strict mode (default on): panic at the first contract violation. Off: record them in
    /// [`contract_violations`](Self::contract_violations).
    pub fn with_strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// Sets the bound on `poll_output` calls per drain.
    pub fn with_max_polls(mut self, max_polls: usize) -> Self {
        self.max_polls = max_polls;
        self
    }

    /// The next line of the recording (see [`recorded`](Self::recorded)).
    pub fn pop_recording_line(&mut self) -> Option<String> {
        self.recorder.as_mut()?.pop_line()
    }

    /// Takes the parts back: the machine, the fake gateway and the trace.
    pub fn into_parts(self) -> (GatewayMachine, FakeGateway, Trace) {
        (self.machine, self.gateway, self.trace)
    }

    // ----- getters -----

    /// The virtual time.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// The machine.
    pub fn machine(&self) -> &GatewayMachine {
        &self.machine
    }

    /// The fake gateway.
    pub fn gateway(&self) -> &FakeGateway {
        &self.gateway
    }

    /// The fake gateway, to script it mid-run.
    pub fn gateway_mut(&mut self) -> &mut FakeGateway {
        &mut self.gateway
    }

    /// The record so far.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// The connection the driver holds open for the machine.
    pub fn connection(&self) -> Option<ConnectionId> {
        self.connection
    }

    /// Contract violations seen (only in non-strict mode; strict mode panics).
    pub fn contract_violations(&self) -> &[ContractViolation] {
        &self.violations
    }

    /// The earliest time something is due: a server action, a grant or a machine timer.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        [
            self.gateway.poll_timeout(),
            self.grant_at,
            self.machine.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ----- running -----

    /// Moves to the earliest deadline and handles everything due then. Returns `false` when
    /// nothing is due ever again.
    pub fn step(&mut self) -> bool {
        let Some(at) = self.next_deadline() else {
            return false;
        };
        self.now = self.now.max(at);
        let now = self.now;
        // 1. The server.
        self.gateway.handle_timeout(now);
        while let Some(out) = self.gateway.poll_output() {
            self.deliver(out);
            self.gateway.handle_timeout(now);
        }
        // 2. An identify grant.
        if self.grant_at.is_some_and(|t| t <= now) {
            self.grant_at = None;
            // The result is in the trace.
            let _ = self.grant_identify();
        }
        // 3. The machine's timers.
        if let Some(deadline) = self.machine.poll_timeout().filter(|&d| d <= now) {
            self.trace.push(now, TraceKind::Timeout { deadline });
            self.fire_timeout(now);
        }
        true
    }

    /// Runs until the machine reports an event, and returns it; `None` when nothing is
    /// reported up to `until` (the clock is then at `until`). The bot's `next_event()`.
    ///
    /// When it returns, [`now`](Self::now) is the virtual time the event was reported at,
    /// so what the test does next (e.g. [`send`](Self::send) an answer) happens then, after
    /// everything else the world did at that instant (every server message due then is
    /// delivered before the first event of the instant is handed over). Each event is
    /// handed over once, in order, whichever call made the machine report it (a `send`
    /// may report a rate-limit event, for one); events reported at an earlier time and
    /// never handed over (e.g. during a [`run_for`](Self::run_for)) are skipped: they stay
    /// in the [`trace`](Self::trace).
    pub fn next_event(&mut self, until: Timestamp) -> Option<SimEvent> {
        loop {
            if let Some(event) = self.take_event() {
                return Some(event);
            }
            if !self.step_until(until) {
                self.now = self.now.max(until);
                return None;
            }
        }
    }

    /// Runs until `until`, calling `handler` with each event the machine reports, at the
    /// event's virtual time (see [`next_event`](Self::next_event)); the handler may act on
    /// the driver (send a command, script the server, shut down...). The clock ends at
    /// `until`.
    pub fn run_until_with(
        &mut self,
        until: Timestamp,
        mut handler: impl FnMut(&mut SimDriver, SimEvent),
    ) {
        while let Some(event) = self.next_event(until) {
            handler(self, event);
        }
    }

    /// [`run_until_with`](Self::run_until_with) `now + duration`.
    pub fn run_for_with(
        &mut self,
        duration: Duration,
        handler: impl FnMut(&mut SimDriver, SimEvent),
    ) {
        self.run_until_with(self.now.saturating_add(duration), handler);
    }

    /// Steps until everything due at or before `until` is handled; the clock ends at `until`.
    pub fn run_until(&mut self, until: Timestamp) {
        self.run_until_event(until, |_| false);
        self.now = self.now.max(until);
    }

    /// [`run_until`](Self::run_until) `now + duration`.
    pub fn run_for(&mut self, duration: Duration) {
        self.run_until(self.now.saturating_add(duration));
    }

    /// Steps until an event matching `pred` is reported (returns its time) or `until` passes
    /// (returns `None`; the clock is then left at the last step, not moved to `until`).
    pub fn run_until_event(
        &mut self,
        until: Timestamp,
        mut pred: impl FnMut(&SimEvent) -> bool,
    ) -> Option<Timestamp> {
        loop {
            let start = self.trace.len();
            if !self.step_until(until) {
                return None;
            }
            if let Some((t, _)) = self.trace.since(start).events().find(|(_, e)| pred(e)) {
                return Some(t);
            }
        }
    }

    /// Takes one [`step`](Self::step) if something is due at or before `until`; returns
    /// whether it did. Panics with the trace's tail after 100,000 steps at one virtual time
    /// (a livelock between the parts).
    fn step_until(&mut self, until: Timestamp) -> bool {
        if self.next_deadline().is_none_or(|at| at > until) {
            return false;
        }
        let before = self.now;
        self.step();
        if self.now == before {
            self.same_time_steps += 1;
            assert!(
                self.same_time_steps < 100_000,
                "livelock: 100000 steps at {}\n{}",
                self.now,
                self.trace.since(self.trace.len().saturating_sub(40))
            );
        } else {
            self.same_time_steps = 0;
        }
        true
    }

    /// The next event not yet handed over, if it was reported at the current time (earlier
    /// ones are passed over).
    fn take_event(&mut self) -> Option<SimEvent> {
        let entries = self.trace.entries();
        while let Some(entry) = entries.get(self.handed) {
            self.handed += 1;
            if let TraceKind::Event(event) = &entry.kind {
                if entry.time >= self.now {
                    return Some(event.clone());
                }
            }
        }
        None
    }

    /// Jumps the clock to `to` (a suspended laptop waking up) and calls `handle_timeout(to)`
    /// once, before anything else due in between is handled.
    pub fn jump_to(&mut self, to: Timestamp) {
        self.now = self.now.max(to);
        let now = self.now;
        self.trace
            .push(now, TraceKind::Input(format!("jump to {now}")));
        if let Some(deadline) = self.machine.poll_timeout().filter(|&d| d <= now) {
            self.trace.push(now, TraceKind::Timeout { deadline });
        }
        self.fire_timeout(now);
    }

    /// Calls `handle_timeout(now)`, drains, and checks the next deadline moved past `now`.
    fn fire_timeout(&mut self, now: Timestamp) {
        self.record(|r| r.record_timeout(now));
        self.machine.handle_timeout(now);
        self.drain(false);
        if let Some(next) = self.machine.poll_timeout().filter(|&d| d <= now) {
            self.violation(ContractViolation::DeadlineNotAfterTimeout {
                at: now,
                deadline: next,
            });
        }
    }

    // ----- inputs and commands -----

    /// Calls `send` on the machine now, then drains.
    pub fn send(&mut self, command: Command) -> Result<(), CommandError> {
        let terminal = self.machine.phase().is_terminal();
        let opcode = command.opcode();
        let now = self.now;
        self.record(|r| r.record_command(now, &command));
        let result = self.machine.send(now, command);
        self.record(|r| r.record_result(&result));
        self.trace
            .push(self.now, TraceKind::Command { opcode, result });
        self.drain(terminal);
        result
    }

    /// Calls `grant_identify` on the machine now, then drains.
    pub fn grant_identify(&mut self) -> Result<(), CommandError> {
        let terminal = self.machine.phase().is_terminal();
        let now = self.now;
        self.record(|r| r.record_grant(now));
        let result = self.machine.grant_identify(now);
        self.record(|r| r.record_result(&result));
        self.trace.push(self.now, TraceKind::Grant(result));
        self.drain(terminal);
        result
    }

    /// Calls `shutdown` on the machine now, then drains.
    pub fn shutdown(&mut self, keep_session: bool) -> Result<(), CommandError> {
        let terminal = self.machine.phase().is_terminal();
        self.trace
            .push(self.now, TraceKind::Shutdown { keep_session });
        let now = self.now;
        self.record(|r| r.record_shutdown(now, keep_session));
        let result = self.machine.shutdown(now, keep_session);
        self.drain(terminal);
        result
    }

    /// The server does `action` now, on the open connection; what it sends is delivered.
    pub fn server(&mut self, action: ScriptAction) {
        self.gateway.perform(self.now, action);
        while let Some(out) = self.gateway.poll_output() {
            self.deliver(out);
        }
    }

    /// A custom input: `f` gets the machine and the current time, then the driver drains.
    /// `label` goes in the trace. For inputs the fake server cannot produce (a `now` in the
    /// past, a message on a closed socket, ...).
    pub fn input<R>(
        &mut self,
        label: &str,
        f: impl FnOnce(&mut GatewayMachine, Timestamp) -> R,
    ) -> R {
        let terminal = self.machine.phase().is_terminal();
        self.trace
            .push(self.now, TraceKind::Input(label.to_string()));
        let result = f(&mut self.machine, self.now);
        self.drain(terminal);
        result
    }

    // ----- internals -----

    fn record(&mut self, f: impl FnOnce(&mut Recorder)) {
        if let Some(recorder) = &mut self.recorder {
            f(recorder);
        }
    }

    fn violation(&mut self, violation: ContractViolation) {
        if self.strict {
            panic!(
                "driver contract violated at {}: {violation:?}\ntrace:\n{}",
                self.now, self.trace
            );
        }
        self.violations.push(violation);
    }

    /// Carries one server action to the machine, then drains.
    fn deliver(&mut self, out: ServerOutput) {
        let ServerOutput { connection, action } = out;
        let now = self.now;
        if self.connection != Some(connection) {
            // The machine already gave this connection up (cannot happen: the fake forgets
            // what it planned for a connection the client closed).
            return;
        }
        let terminal = self.machine.phase().is_terminal();
        match action {
            ServerAction::Accept => {
                self.trace.push(now, TraceKind::ServerAccept(connection));
                self.record(|r| r.record_connected(now));
                self.machine.handle_connected(now);
            }
            ServerAction::Refuse => {
                self.trace.push(now, TraceKind::ServerRefuse(connection));
                self.connection = None;
                self.record(|r| r.record_closed(now, None));
                self.machine.handle_closed(now, None);
            }
            ServerAction::Text(text) => {
                self.record(|r| r.record_message(now, &Message::Text(&text)));
                self.machine.handle_message(now, Message::Text(&text));
                self.trace
                    .push(now, TraceKind::ServerText { connection, text });
            }
            ServerAction::TextBytes(bytes) => {
                self.record(|r| r.record_message(now, &Message::TextBytes(&bytes)));
                self.machine.handle_message(now, Message::TextBytes(&bytes));
                self.trace
                    .push(now, TraceKind::ServerTextBytes { connection, bytes });
            }
            ServerAction::Binary(bytes) => {
                self.record(|r| r.record_message(now, &Message::Binary(&bytes)));
                self.machine.handle_message(now, Message::Binary(&bytes));
                self.trace
                    .push(now, TraceKind::ServerBinary { connection, bytes });
            }
            ServerAction::Close { code, reason } => {
                self.connection = None;
                let frame = Some(CloseFrame {
                    code,
                    reason: &reason,
                });
                self.record(|r| r.record_closed(now, frame));
                self.machine.handle_closed(now, frame);
                self.trace.push(
                    now,
                    TraceKind::ServerClose {
                        connection,
                        code,
                        reason,
                    },
                );
            }
            ServerAction::Drop => {
                self.trace.push(now, TraceKind::ServerDrop(connection));
                self.connection = None;
                self.record(|r| r.record_closed(now, None));
                self.machine.handle_closed(now, None);
            }
        }
        self.drain(terminal);
    }

    /// Polls the machine until `Wait`, carrying out every output. `terminal`: the machine
    /// was terminal before the call that led here, so only `Wait(None)` may come out.
    fn drain(&mut self, terminal: bool) {
        let mut polls = 0;
        loop {
            polls += 1;
            if polls > self.max_polls {
                self.violation(ContractViolation::DrainUnbounded(self.max_polls));
                return;
            }
            let output = self.machine.poll_output();
            if let Some(recorder) = &mut self.recorder {
                recorder.record_output(&output);
            }
            let output = match output {
                Output::Connect { url } => Owned::Connect(url.to_string()),
                Output::Send(frame) => Owned::Send(frame.opcode, frame.text.to_string()),
                Output::Close(frame) => Owned::Close(frame.code, frame.reason.to_string()),
                Output::Event(event) => Owned::Event(SimEvent::from_event(&event)),
                Output::Wait(deadline) => Owned::Wait(deadline),
            };
            if terminal && !matches!(output, Owned::Wait(None)) {
                let what = match &output {
                    Owned::Connect(url) => format!("Connect {url}"),
                    Owned::Send(op, _) => format!("Send {op}"),
                    Owned::Close(code, _) => format!("Close {code}"),
                    Owned::Event(e) => format!("{e:?}"),
                    Owned::Wait(d) => format!("Wait({d:?})"),
                };
                self.violation(ContractViolation::OutputAfterTerminal(what));
            }
            let now = self.now;
            match output {
                Owned::Wait(wait) => {
                    let poll_timeout = self.machine.poll_timeout();
                    if wait != poll_timeout {
                        self.violation(ContractViolation::WaitDisagrees { wait, poll_timeout });
                    }
                    return;
                }
                Owned::Connect(url) => {
                    if self.connection.is_some() {
                        self.violation(ContractViolation::ConnectWhileConnected);
                    }
                    let connection = self.gateway.handle_connect(now, &url);
                    self.connection = Some(connection);
                    self.trace.push(now, TraceKind::Connect { connection, url });
                }
                Owned::Send(opcode, text) => {
                    let connection = self.connection;
                    match connection {
                        Some(c) => self.gateway.handle_text(now, c, &text),
                        None => self.violation(ContractViolation::SendWithoutSocket(opcode)),
                    }
                    let text = self.redact(&text);
                    self.trace.push(
                        now,
                        TraceKind::ClientSend {
                            connection,
                            opcode,
                            text,
                        },
                    );
                }
                Owned::Close(code, reason) => {
                    let connection = self.connection.take();
                    match connection {
                        Some(c) => self.gateway.handle_close(now, c, Some(code)),
                        None => self.violation(ContractViolation::CloseWithoutSocket(code)),
                    }
                    self.trace.push(
                        now,
                        TraceKind::ClientClose {
                            connection,
                            code,
                            reason,
                        },
                    );
                }
                Owned::Event(event) => {
                    if matches!(event, SimEvent::Other(Event::IdentifyRequested)) {
                        self.grant_at = match self.grant {
                            GrantPolicy::Immediately => Some(now),
                            GrantPolicy::After(delay) => Some(now.saturating_add(delay)),
                            GrantPolicy::Never => None,
                        };
                    }
                    self.trace.push(now, TraceKind::Event(event));
                }
            }
        }
    }

    /// The frame text with the token taken out (frames without it are kept as they are).
    fn redact(&self, text: &str) -> String {
        let token = self.token.expose_secret();
        if token.is_empty() || !text.contains(token) {
            return text.to_string();
        }
        let text = match serde_json::from_str::<serde_json::Value>(text) {
            Ok(value) => super::gateway::redact(&value).to_string(),
            Err(_) => text.to_string(),
        };
        text.replace(token, "<redacted>")
    }
}
