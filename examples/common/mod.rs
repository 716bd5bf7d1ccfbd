//! What the example drivers (tokio, smol, blocking) share, none of it about sockets or the
//! protocol (the `discord-gateway` crate does that): their settings (the `DISCORD_*`
//! variables), the line they print per event, the session file at start and at the end, and
//! the exit code.
#![allow(dead_code)] // each binary uses its own part of this module

mod settings;

use std::fs::File;
use std::io::BufWriter;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use discord_gateway::{
    session_age, Command, FatalReason, GatewayConfig, SendError, SessionFile, ShardEvent,
    ShardOptions,
};

pub use settings::Settings;

/// One run of a driver program: its settings, the lines it prints (each after the time since
/// the start), and how the shard ended.
pub struct Driver {
    name: &'static str,
    settings: Settings,
    printer: Printer,
    fatal: Option<FatalReason>,
    /// `Some(kept)` once the shard reported its close.
    closed: Option<bool>,
}

impl Driver {
    /// Reads the settings from the environment. On a bad setting, prints why and returns
    /// the exit code (2).
    pub fn from_env(name: &'static str) -> Result<Self, ExitCode> {
        match Settings::from_env() {
            Ok(settings) => Ok(Driver {
                name,
                settings,
                printer: Printer::new(),
                fatal: None,
                closed: None,
            }),
            Err(e) => Err(fail(name, &e, 2)),
        }
    }

    /// Starts the shard with `new` (the runtime's `Shard::from_config`): the saved session
    /// restored (said so), the recording file created, the decision trace on if asked for.
    /// On failure, prints why and returns the exit code (2).
    pub fn start<S, E: std::fmt::Display>(
        &self,
        new: impl FnOnce(GatewayConfig, ShardOptions) -> Result<S, E>,
    ) -> Result<S, ExitCode> {
        let mut options = ShardOptions::new().trace(self.settings.trace);
        if let Some(file) = self.session_file() {
            match file.load() {
                Ok(Some(session)) => {
                    self.print(&format!(
                        "restored session {} (last ACK {:.1}s ago): resuming it if still fresh",
                        session.id,
                        session_age(&session).as_secs_f64()
                    ));
                    options = options.session(session);
                }
                Ok(None) => {}
                Err(e) => return Err(fail(self.name, &e, 2)),
            }
        }
        if let Some(path) = &self.settings.record {
            match File::create(path) {
                Ok(file) => options = options.record(BufWriter::new(file)),
                Err(e) => {
                    let why = format!("cannot create the recording {}: {e}", path.display());
                    return Err(fail(self.name, &why, 2));
                }
            }
        }
        new(self.settings.config(), options)
            .map_err(|e| fail(self.name, &format!("invalid configuration: {e}"), 2))
    }

    /// Prints one line (see [`Printer`]).
    pub fn print(&self, text: &str) {
        self.printer.print(text);
    }

    /// A handle that prints lines in this run's format, for other threads and tasks.
    pub fn printer(&self) -> Printer {
        self.printer
    }

    /// Prints an event, and remembers how the shard ended.
    pub fn event(&mut self, event: &ShardEvent) {
        match event {
            ShardEvent::Fatal(reason) => self.fatal = Some(*reason),
            ShardEvent::Closed { session_kept } => self.closed = Some(*session_kept),
            _ => {}
        }
        self.print(&describe(event));
    }

    /// Whether Ctrl-C keeps the session resumable (`DISCORD_KEEP_SESSION`).
    pub fn keep_session(&self) -> bool {
        self.settings.keep_session
    }

    /// Ctrl-C: says so, and tells whether to keep the session resumable.
    pub fn shutting_down(&self) -> bool {
        self.printer.shutting_down(self.keep_session());
        self.keep_session()
    }

    /// The Ctrl-C handler could not be installed: says why, and the exit code (1).
    pub fn no_ctrl_c(&self, error: &dyn std::fmt::Display) -> ExitCode {
        fail(
            self.name,
            &format!("cannot install the Ctrl-C handler: {error}"),
            1,
        )
    }

    /// The end: saves the session file (`session` is the shard's, kept only after a close
    /// that kept it; a fatal stop or an ended session removes the file), and the exit code:
    /// 0 after a close, 1 after a fatal stop.
    pub fn finish(self, session: Option<discord_gateway::Session>) -> ExitCode {
        if let Some(file) = self.session_file() {
            let keep = session.filter(|_| self.fatal.is_none() && self.closed == Some(true));
            match file.store(keep.as_ref()) {
                Ok(()) if keep.is_some() => {
                    self.print(&format!("session saved to {}", file.path().display()))
                }
                Ok(()) => {}
                Err(e) => self.print(&e.to_string()),
            }
        }
        match self.fatal {
            Some(reason) => fail(self.name, &format!("stopped: {reason}"), 1),
            None => ExitCode::SUCCESS,
        }
    }

    fn session_file(&self) -> Option<SessionFile> {
        self.settings.session_file.as_ref().map(SessionFile::new)
    }
}

/// Prints lines after the time since the run started: `     1.234s  text`.
#[derive(Clone, Copy, Debug)]
pub struct Printer {
    start: Instant,
    start_unix: Duration,
}

impl Printer {
    /// A printer whose time starts now.
    pub fn new() -> Self {
        Printer {
            #[allow(clippy::disallowed_methods)] // the example owns the clock
            start: Instant::now(),
            start_unix: unix_time(),
        }
    }

    /// The time since the start.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Prints one line, after the time since the start (times in the text, which the
    /// shard counts from the Unix epoch, are told since the start too).
    pub fn print(&self, text: &str) {
        let text = self.relative_times(text);
        println!("{:>10}  {text}", seconds(self.elapsed()));
    }

    /// `text` with every time in it (`1796602176.742s`, as the decision trace tells the
    /// shard's clock, counted from the Unix epoch) told as the time since the start.
    pub fn relative_times(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find(|c: char| c.is_ascii_digit()) {
            out.push_str(&rest[..at]);
            rest = &rest[at..];
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            let time = rest[digits..]
                .strip_prefix('.')
                .filter(|tail| {
                    tail.len() > 3 && tail.as_bytes()[..3].iter().all(u8::is_ascii_digit)
                })
                .filter(|tail| tail[3..].starts_with('s') && digits >= 10);
            match time.and_then(|_| rest[..digits + 4].parse::<f64>().ok()) {
                Some(unix) => {
                    let since = Duration::from_secs_f64(unix).saturating_sub(self.start_unix);
                    out.push_str(&seconds(since));
                    rest = &rest[digits + 5..];
                }
                None => {
                    out.push_str(&rest[..digits]);
                    rest = &rest[digits..];
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// Says that the shard closes, keeping the session resumable or not.
    pub fn shutting_down(&self, keep_session: bool) {
        self.print(if keep_session {
            "shutting down (keeping the session resumable)"
        } else {
            "shutting down (ending the session)"
        });
    }

    /// One line typed on stdin: parsed as a raw gateway command, given to `send` (the
    /// shard's `command`, or a `ShardSender`), and the verdict printed. A line that is not
    /// a command is said so; a blank line is skipped.
    pub fn command(&self, line: &str, send: impl FnOnce(Command) -> Result<(), SendError>) {
        let line = line.trim();
        if line.is_empty() {
            return;
        }
        match Command::from_json(line) {
            Ok(command) => {
                let opcode = command.opcode();
                match send(command) {
                    Ok(()) => self.print(&format!("command accepted: {opcode}")),
                    Err(e) => self.print(&format!("command refused: {e}")),
                }
            }
            Err(e) => self.print(&format!(
                "invalid command ({e}); expected one JSON object per line, e.g. \
                 {{\"op\":3,\"d\":{{\"since\":null,\"activities\":[],\"status\":\"idle\",\"afk\":false}}}}"
            )),
        }
    }
}

impl Default for Printer {
    fn default() -> Self {
        Printer::new()
    }
}

/// `1.234s`.
pub fn seconds(t: Duration) -> String {
    format!("{}.{:03}s", t.as_secs(), t.subsec_millis())
}

#[allow(clippy::disallowed_methods)] // the example owns the clock
fn unix_time() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
}

fn fail(name: &str, why: &dyn std::fmt::Display, code: u8) -> ExitCode {
    eprintln!("{name}: {why}");
    ExitCode::from(code)
}

/// One readable line for an event.
pub fn describe(event: &ShardEvent) -> String {
    match event {
        ShardEvent::Connecting { url } => format!("connect {url}"),
        ShardEvent::Hello { heartbeat_interval } => format!(
            "hello: heartbeat every {} ms",
            heartbeat_interval.as_millis()
        ),
        ShardEvent::Ready(info) => format!(
            "READY: session {}, {} guilds, resume URL {}",
            info.session_id,
            info.guild_count,
            info.resume_gateway_url.as_deref().unwrap_or("(none)")
        ),
        ShardEvent::Resumed { replayed } => {
            format!("RESUMED after {replayed} replayed dispatches")
        }
        ShardEvent::Dispatch(d) => {
            let mut preview: String = d.data.chars().take(96).collect();
            if preview.len() < d.data.len() {
                preview.push('…');
            }
            format!("dispatch #{} {} {preview}", d.sequence, d.name)
        }
        ShardEvent::SequenceGap { expected, received } => {
            format!("sequence gap: expected #{expected}, got #{received}")
        }
        ShardEvent::SequenceDuplicate { expected, received } => {
            format!("sequence repeated: expected #{expected}, got #{received} again")
        }
        ShardEvent::HeartbeatAck { latency } => {
            format!("heartbeat ACK ({} ms)", latency.as_millis())
        }
        ShardEvent::InvalidSession { resumable } => {
            format!("invalid session (resumable: {resumable})")
        }
        ShardEvent::Disconnected {
            reason,
            resume,
            reconnect_in,
        } => format!(
            "disconnected ({reason:?}); reconnect in {} ms to {}",
            reconnect_in.as_millis(),
            if *resume { "resume" } else { "identify" }
        ),
        ShardEvent::TransportError(why) => why.clone(),
        ShardEvent::RateLimited(r) => format!(
            "rate limited: op {} refused, retry after {:.1}s (meta {})",
            r.opcode, r.retry_after, r.meta
        ),
        ShardEvent::ProtocolError(e) => format!("protocol error: {e}"),
        ShardEvent::IdentifyExhausted { retry_in } => format!(
            "daily session starts exhausted; waiting {} s",
            retry_in.as_secs()
        ),
        ShardEvent::Decision(d) => {
            format!("  why: {}: {} → {}", d.cause, d.rule.describe(), d.outcome)
        }
        ShardEvent::Fatal(reason) => format!("FATAL: {reason}"),
        ShardEvent::Closed { session_kept } => format!("shut down (session kept: {session_kept})"),
        other => format!("{other:?}"),
    }
}
