//! The runtime-independent half of every example driver, shared by the tokio, smol and
//! blocking drivers, the demo and the driver tests (`tests/drivers.rs` includes this file
//! with `#[path]`):
//!
//! - [`Settings`]: the `DISCORD_*` environment variables, checked, with one clear error;
//! - [`Clock`]: the driver's time base (an `Instant` origin mapped to `Timestamp`s);
//! - [`DriverCore`]: the machine (plain or recording), its identify queue, event printing
//!   and the session file. Each input returns the [`Action`]s the runtime must carry out;
//!   the runtime-specific loops (`tokio_loop.rs`, `smol_loop.rs`, `blocking_loop.rs`) only
//!   move bytes and time.
#![allow(dead_code)] // each binary uses its own part of this module

mod settings;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use discord_gateway_proto::identify::{IdentifyOutput, IdentifyQueue};
use discord_gateway_proto::record::RecordingMachine;
use discord_gateway_proto::time::InstantOrigin;
use discord_gateway_proto::{
    CloseFrame, Command, Event, FatalReason, GatewayConfig, GatewayMachine, Message, Output,
    SessionStartLimit, StartOptions, Timestamp,
};
use discord_gateway_proto::{Session, ShardId};
use serde::{Deserialize, Serialize};

#[allow(unused_imports)] // not every binary reads settings
pub use settings::Settings;

/// What a driver's control channel carries: commands typed by the user, and the stop signal
/// (Ctrl-C, or a test that is done).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// One JSON command line (`{"op":3,"d":{...}}`), sent through the machine.
    Command(String),
    /// Shut down gracefully (keeping or dropping the session as configured).
    Stop,
}

/// What the runtime must do, in order, after an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Drop any socket or connection attempt and open a WebSocket to this URL; report
    /// [`DriverCore::connected`] or [`DriverCore::closed`]`(None)`.
    Connect(String),
    /// Send this text message on the open socket (if the socket is gone, skip it: the
    /// failure was or will be reported).
    Send(String),
    /// Send this close frame if possible, then drop the socket (or the attempt) without
    /// waiting, and report nothing more from it.
    Close(u16, String),
}

/// The driver's time base: `Timestamp`s are microseconds since `origin`, the instant the
/// clock was made. (A restored session older than the process needs no shift: its last ACK
/// is simply before the origin; see `Session::with_ack_age`.)
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: InstantOrigin,
}

impl Clock {
    /// A clock starting at zero now.
    #[allow(clippy::disallowed_methods)] // the driver owns the clock
    pub fn new() -> Self {
        Clock {
            origin: InstantOrigin::new(Instant::now()),
        }
    }

    /// The current time.
    #[allow(clippy::disallowed_methods)] // the driver owns the clock
    pub fn now(&self) -> Timestamp {
        self.timestamp(Instant::now())
    }

    /// The timestamp of `instant`.
    pub fn timestamp(&self, instant: Instant) -> Timestamp {
        self.origin.timestamp(instant)
    }

    /// The instant at which `timestamp` falls, for sleeping until a deadline.
    pub fn instant(&self, timestamp: Timestamp) -> Instant {
        self.origin.instant(timestamp)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// Wall-clock milliseconds since the Unix epoch (for the session file only).
#[allow(clippy::disallowed_methods)] // the driver owns the clock
pub fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A seed for the machine's random choices: not secret, just different per run.
#[allow(clippy::disallowed_methods)] // the driver owns the clock
pub fn random_seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    // splitmix64 of time and pid
    let mut z = nanos ^ (u64::from(std::process::id()) << 32);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The session file: the session plus how old its last ACK was, in wall-clock terms, so a
/// restart can rebase it (a `Timestamp` means nothing to another process).
#[derive(Debug, Serialize, Deserialize)]
pub struct SavedSession {
    /// The session, with `last_alive` in the saving driver's time base.
    pub session: Session,
    /// How long before `saved_at_unix_ms` the last ACK was.
    pub ack_age_ms: u64,
    /// When the file was written.
    pub saved_at_unix_ms: u64,
}

/// Reads a session file: `Ok(None)` when there is none, otherwise the session and its
/// wall-clock age now.
pub fn load_session(path: &Path) -> Result<Option<(Session, Duration)>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(format!(
                "cannot read the session file {}: {e}",
                path.display()
            ))
        }
    };
    let saved: SavedSession = serde_json::from_str(&text).map_err(|e| {
        format!(
            "the session file {} is not a saved session ({e}); delete it to start afresh",
            path.display()
        )
    })?;
    let since_saved = unix_millis().saturating_sub(saved.saved_at_unix_ms);
    let age = Duration::from_millis(saved.ack_age_ms.saturating_add(since_saved));
    Ok(Some((saved.session, age)))
}

/// Writes the session file (atomically), or removes it when there is no session to keep.
pub fn save_session(path: &Path, session: Option<&Session>, now: Timestamp) -> Result<(), String> {
    let Some(session) = session else {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(format!(
                "cannot remove the session file {}: {e}",
                path.display()
            )),
            _ => Ok(()),
        };
    };
    let saved = SavedSession {
        session: session.clone(),
        ack_age_ms: u64::try_from(session.ack_age(now).as_millis()).unwrap_or(u64::MAX),
        saved_at_unix_ms: unix_millis(),
    };
    let text = serde_json::to_string_pretty(&saved).map_err(|e| e.to_string())?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("cannot write the session file {}: {e}", path.display()))
}

/// Where printed lines go (with the time they happened): stdout for the examples, a shared
/// buffer in tests.
pub type Sink = Box<dyn FnMut(Timestamp, &str) + Send>;

/// A sink that prints `time  text` to stdout.
pub fn stdout_sink() -> Sink {
    Box::new(|t, line| println!("{t:>10}  {line}"))
}

/// A sink that collects lines (for tests), and the handle to read them.
pub fn collecting_sink() -> (Sink, Arc<Mutex<Vec<String>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let writer = lines.clone();
    let sink = Box::new(move |t: Timestamp, line: &str| {
        if let Ok(mut lines) = writer.lock() {
            lines.push(format!("{t:>10}  {line}"));
        }
    });
    (sink, lines)
}

/// How to start a [`DriverCore`].
pub struct CoreOptions {
    /// The machine's configuration (identify is granted by the core's queue).
    pub config: GatewayConfig,
    /// The shard.
    pub shard: ShardId,
    /// The seed of the machine's random choices.
    pub seed: u64,
    /// Load the session from this file at start, save it there at the end.
    pub session_file: Option<PathBuf>,
    /// Shut down keeping the session resumable (close 4000-range) or ending it (1000).
    pub keep_session: bool,
    /// Record the run to this file, line by line.
    pub record: Option<PathBuf>,
    /// Print the decision trace.
    pub trace: bool,
    /// Per-bucket identify spacing of the queue (5 s in production).
    pub identify_spacing: Duration,
    /// The clock (a new one starting now if `None`).
    pub clock: Option<Clock>,
}

impl CoreOptions {
    /// Options for `config` with the production defaults.
    pub fn new(config: GatewayConfig) -> Self {
        CoreOptions {
            shard: config.shard,
            config,
            seed: random_seed(),
            session_file: None,
            keep_session: false,
            record: None,
            trace: false,
            identify_spacing: discord_gateway_proto::identify::IDENTIFY_INTERVAL,
            clock: None,
        }
    }
}

/// The machine, recording or not (one per driver: its size does not matter).
#[allow(clippy::large_enum_variant)]
enum Machine {
    Plain(GatewayMachine),
    Recording(Box<RecordingMachine>),
}

impl Machine {
    fn inner(&self) -> &GatewayMachine {
        match self {
            Machine::Plain(m) => m,
            Machine::Recording(r) => r.machine(),
        }
    }
}

/// Dispatches every machine call to the plain or the recording machine.
macro_rules! on_machine {
    ($machine:expr, $m:ident => $call:expr) => {
        match $machine {
            Machine::Plain($m) => $call,
            Machine::Recording($m) => $call,
        }
    };
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Why the machine stopped for good, if it did.
    pub fatal: Option<FatalReason>,
    /// The session at the end (kept on a graceful shutdown with `keep_session`).
    pub session: Option<Session>,
    /// Every URL the machine asked to connect to, in order.
    pub connects: Vec<String>,
}

/// The sans-IO half of a driver: feed it what happened, carry out the actions it returns.
pub struct DriverCore {
    machine: Machine,
    queue: IdentifyQueue,
    shard: ShardId,
    clock: Clock,
    sink: Sink,
    recording: Option<(PathBuf, BufWriter<File>)>,
    session_file: Option<PathBuf>,
    keep_session: bool,
    actions: Vec<Action>,
    connects: Vec<String>,
    fatal: Option<FatalReason>,
    finished: bool,
}

impl DriverCore {
    /// Starts a machine (restoring the session file's session, if any). The first actions
    /// (`Connect`) come from [`take_actions`](Self::take_actions).
    pub fn new(options: CoreOptions, sink: Sink) -> Result<Self, String> {
        let mut start = StartOptions {
            shard: Some(options.shard),
            session: None,
        };
        let clock = options.clock.unwrap_or_default();
        let mut restored = None;
        if let Some(path) = &options.session_file {
            if let Some((session, age)) = load_session(path)? {
                // The last ACK was `age` ago: before this clock's origin, if the session is
                // older than the process.
                restored = Some((session.id.clone(), age));
                start.session = Some(session.with_ack_age(age, clock.now()));
            }
        }
        let now = clock.now();
        let machine = match &options.record {
            Some(_) => Machine::Recording(Box::new(
                RecordingMachine::new(options.config.clone(), start, options.seed, now)
                    .map_err(|e| format!("invalid configuration: {e}"))?,
            )),
            None => Machine::Plain(
                GatewayMachine::with_options(options.config.clone(), start, options.seed, now)
                    .map_err(|e| format!("invalid configuration: {e}"))?,
            ),
        };
        let recording = match &options.record {
            Some(path) => {
                let file = File::create(path)
                    .map_err(|e| format!("cannot create the recording {}: {e}", path.display()))?;
                Some((path.clone(), BufWriter::new(file)))
            }
            None => None,
        };
        // This process's own identify queue. A single process has the whole budget; a fleet
        // would give the queue a shared coordinator (see examples/redis_identify.rs).
        let limit = SessionStartLimit {
            total: 1000,
            remaining: 1000,
            reset_after: 24 * 60 * 60 * 1000,
            max_concurrency: 1,
        };
        let queue = IdentifyQueue::new(limit, now).with_spacing(options.identify_spacing);
        let mut core = DriverCore {
            machine,
            queue,
            shard: options.shard,
            clock,
            sink,
            recording,
            session_file: options.session_file,
            keep_session: options.keep_session,
            actions: Vec::new(),
            connects: Vec::new(),
            fatal: None,
            finished: false,
        };
        if options.trace {
            on_machine!(&mut core.machine, m => m.set_trace(true));
        }
        if let Some((id, age)) = restored {
            core.print(&format!(
                "restored session {id} (last ACK {:.1}s ago): resuming it if still fresh",
                age.as_secs_f64()
            ));
        }
        core.drain();
        Ok(core)
    }

    /// The clock this core reads.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// The machine, for its getters.
    pub fn machine(&self) -> &GatewayMachine {
        self.machine.inner()
    }

    /// The actions decided so far and not yet taken.
    pub fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    /// Whether the machine stopped for good (fatal close or shutdown): once the actions are
    /// carried out, the loop ends.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// When [`timeout`](Self::timeout) must be called next.
    pub fn deadline(&self) -> Option<Instant> {
        let machine = self.machine.inner().poll_timeout();
        let queue = if self.finished {
            None
        } else {
            self.queue.poll_timeout()
        };
        let next = match (machine, queue) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        next.map(|t| self.clock.instant(t))
    }

    /// The socket asked for by the last `Connect` is open.
    pub fn connected(&mut self) -> Vec<Action> {
        let now = self.clock.now();
        self.print("connected");
        on_machine!(&mut self.machine, m => m.handle_connected(now));
        self.drain();
        self.take_actions()
    }

    /// One data message arrived.
    pub fn message(&mut self, message: Message<'_>) -> Vec<Action> {
        let now = self.clock.now();
        on_machine!(&mut self.machine, m => m.handle_message(now, message));
        self.drain();
        self.take_actions()
    }

    /// The socket (or the connection attempt) closed; `Some` with the server's close frame.
    pub fn closed(&mut self, frame: Option<CloseFrame<'_>>) -> Vec<Action> {
        let now = self.clock.now();
        match frame {
            Some(f) => self.print(&format!("server closed: {} {}", f.code, f.reason)),
            None => self.print("connection lost (no close frame)"),
        }
        on_machine!(&mut self.machine, m => m.handle_closed(now, frame));
        self.drain();
        self.take_actions()
    }

    /// A transport error: printed, then reported as a close without a frame.
    pub fn failed(&mut self, what: &str, error: &dyn std::fmt::Display) -> Vec<Action> {
        self.print(&format!("{what}: {error}"));
        let now = self.clock.now();
        on_machine!(&mut self.machine, m => m.handle_closed(now, None));
        self.drain();
        self.take_actions()
    }

    /// The deadline passed (spurious calls are harmless).
    pub fn timeout(&mut self) -> Vec<Action> {
        let now = self.clock.now();
        on_machine!(&mut self.machine, m => m.handle_timeout(now));
        self.queue.handle_timeout(now);
        self.drain();
        self.take_actions()
    }

    /// One JSON command line from the user. Bad lines and refused commands are printed; the
    /// driver goes on.
    pub fn command(&mut self, line: &str) -> Vec<Action> {
        let line = line.trim();
        if line.is_empty() {
            return Vec::new();
        }
        match Command::from_json(line) {
            Err(e) => self.print(&format!(
                "invalid command ({e}); expected one JSON object per line, e.g. \
                 {{\"op\":3,\"d\":{{\"since\":null,\"activities\":[],\"status\":\"idle\",\"afk\":false}}}}"
            )),
            Ok(command) => {
                let opcode = command.opcode();
                let now = self.clock.now();
                match on_machine!(&mut self.machine, m => m.send(now, command)) {
                    Ok(()) => self.print(&format!("command accepted: {opcode}")),
                    Err(e) => self.print(&format!("command refused: {e}")),
                }
            }
        }
        self.drain();
        self.take_actions()
    }

    /// Graceful shutdown: close (keeping the session or not, as configured).
    pub fn shutdown(&mut self) -> Vec<Action> {
        let now = self.clock.now();
        let keep = self.keep_session;
        self.print(&format!(
            "shutting down ({})",
            if keep {
                "keeping the session resumable"
            } else {
                "ending the session"
            }
        ));
        if let Err(e) = on_machine!(&mut self.machine, m => m.shutdown(now, keep)) {
            self.print(&format!("nothing to shut down: {e}"));
        }
        self.queue.cancel(self.shard);
        self.drain();
        self.take_actions()
    }

    /// Ends the run: saves the session file and flushes the recording.
    pub fn finish(mut self) -> Summary {
        let now = self.clock.now();
        let session = self.machine.inner().session().cloned();
        if let Some(path) = self.session_file.clone() {
            let keep = if self.fatal.is_some() {
                None
            } else {
                session.as_ref()
            };
            match save_session(&path, keep, now) {
                Ok(()) if keep.is_some() => {
                    self.print(&format!("session saved to {}", path.display()))
                }
                Ok(()) => {}
                Err(e) => self.print(&e),
            }
        }
        self.write_recording();
        Summary {
            fatal: self.fatal,
            session,
            connects: self.connects,
        }
    }

    /// Prints one line, prefixed with the time.
    pub fn print(&mut self, text: &str) {
        let t = self.clock.now();
        (self.sink)(t, text);
    }

    /// Drains the machine (and the identify queue, which may grant) until both wait.
    fn drain(&mut self) {
        loop {
            let mut identify = false;
            loop {
                let now = self.clock.now();
                let line = match on_machine!(&mut self.machine, m => m.poll_output()) {
                    Output::Wait(_) => break,
                    Output::Connect { url } => {
                        self.connects.push(url.to_string());
                        self.actions.push(Action::Connect(url.to_string()));
                        format!("connect {url}")
                    }
                    Output::Send(frame) => {
                        self.actions.push(Action::Send(frame.text.to_string()));
                        // Never the text: Identify and Resume carry the token.
                        format!("send {} ({} bytes)", frame.opcode, frame.text.len())
                    }
                    Output::Close(close) => {
                        self.actions
                            .push(Action::Close(close.code, close.reason.to_string()));
                        format!("close {} {}", close.code, close.reason)
                    }
                    Output::Event(event) => {
                        match &event {
                            Event::IdentifyRequested => identify = true,
                            Event::Fatal(reason) => {
                                self.fatal = Some(*reason);
                                self.finished = true;
                            }
                            Event::Shutdown { .. } => self.finished = true,
                            _ => {}
                        }
                        describe_event(&event)
                    }
                    // An output this driver does not know (the enum is non-exhaustive).
                    other => format!("{other:?}"),
                };
                (self.sink)(now, &line);
            }
            self.write_recording();
            let now = self.clock.now();
            if identify {
                self.queue.request(self.shard, now);
            }
            let mut granted = false;
            while let Some(output) = self.queue.poll_output() {
                match output {
                    IdentifyOutput::Grant(shard) if shard == self.shard => {
                        granted = true;
                        let result = on_machine!(&mut self.machine, m => m.grant_identify(now));
                        match result {
                            Ok(()) => self.print("identify granted by the queue"),
                            Err(e) => self.print(&format!("identify grant unused: {e}")),
                        }
                    }
                    IdentifyOutput::Grant(_) => {}
                    IdentifyOutput::Exhausted { until, .. } => self.print(&format!(
                        "daily session starts exhausted; waiting until {until}"
                    )),
                    other => self.print(&format!("identify queue: {other:?}")),
                }
            }
            if !granted {
                return;
            }
        }
    }

    fn write_recording(&mut self) {
        let Machine::Recording(recorder) = &mut self.machine else {
            return;
        };
        let Some((path, file)) = &mut self.recording else {
            return;
        };
        let mut result = Ok(());
        while let Some(line) = recorder.pop_line() {
            if result.is_ok() {
                result = writeln!(file, "{line}");
            }
        }
        if let Err(e) = result.and_then(|()| file.flush()) {
            let message = format!("cannot write the recording {}: {e}", path.display());
            self.recording = None;
            self.print(&message);
        }
    }
}

/// One readable line for an event.
pub fn describe_event(event: &Event<'_>) -> String {
    match event {
        Event::Hello { heartbeat_interval } => format!(
            "hello: heartbeat every {} ms",
            heartbeat_interval.as_millis()
        ),
        Event::IdentifyRequested => "identify requested: asking the identify queue".into(),
        Event::Ready(info) => format!(
            "READY: session {}, {} guilds, resume URL {}",
            info.session_id,
            info.guild_count,
            info.resume_gateway_url.as_deref().unwrap_or("(none)")
        ),
        Event::Resumed { replayed } => {
            format!("RESUMED after {replayed} replayed dispatches")
        }
        Event::Dispatch(d) => {
            let mut preview: String = d.data.chars().take(96).collect();
            if preview.len() < d.data.len() {
                preview.push('…');
            }
            format!("dispatch #{} {} {preview}", d.sequence, d.name)
        }
        Event::SequenceGap { expected, received } => {
            format!("sequence gap: expected #{expected}, got #{received}")
        }
        Event::SequenceDuplicate { expected, received } => {
            format!("sequence repeated: expected #{expected}, got #{received} again")
        }
        Event::HeartbeatAck { latency } => {
            format!("heartbeat ACK ({} ms)", latency.as_millis())
        }
        Event::InvalidSession { resumable } => {
            format!("invalid session (resumable: {resumable})")
        }
        Event::ProtocolError(e) => format!("protocol error: {e}"),
        Event::Disconnected(d) => format!(
            "disconnected ({:?}); reconnect at {} to {}",
            d.reason,
            d.reconnect_at,
            if d.resume { "resume" } else { "identify" }
        ),
        Event::RateLimited(r) => format!(
            "rate limited: op {} refused, retry after {:.1}s (meta {})",
            r.opcode, r.retry_after, r.meta
        ),
        Event::Fatal(reason) => format!("FATAL: {reason}"),
        Event::Decision(d) => format!("  why: {}: {} → {}", d.cause, d.rule.describe(), d.outcome),
        Event::Shutdown { session_kept } => format!("shut down (session kept: {session_kept})"),
        other => format!("{other:?}"),
    }
}

/// The TLS client configuration for `wss://`: rustls with the ring provider and the Mozilla
/// root certificates (webpki-roots), so no system certificate store is needed.
pub fn tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS setup failed: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The time a socket gets to deliver a close frame before it is dropped anyway.
pub const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The longest a single send may block before the connection counts as lost.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
