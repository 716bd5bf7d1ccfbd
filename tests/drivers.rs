//! The example driver programs (tokio, smol, blocking) and the demo, run for real: each is
//! built by cargo and started as a child process, pointed by `DISCORD_GATEWAY_URL` at a
//! `discord_gateway::testing::FakeGatewayServer` (a fake Discord on loopback, two ports:
//! gateway and resume gateway). The test reads the program's lines, types commands on its
//! stdin, presses Ctrl-C (SIGINT), and checks what the fake received. Each scenario runs
//! once per driver, bounded in time; nothing leaves 127.0.0.1.
//!
//! The examples are built once per run of this binary, with the features this test was
//! built with (`cargo test --workspace --all-features` has built them already, so that
//! build only checks they are fresh).
#![cfg(unix)] // Ctrl-C is a SIGINT sent with kill(1)
#![allow(clippy::disallowed_methods)] // the test bounds real time with Instant::now

#[allow(dead_code)] // the test reads the settings, not all of them
#[path = "../examples/common/settings.rs"]
mod settings;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use discord_gateway::proto::sim::{
    Closer, ConnectionId, FakeGateway, FakeGatewayConfig, ScriptAction, SimGuild, Trigger,
    ViolationKind,
};
use discord_gateway::testing::FakeGatewayServer;
use discord_gateway::Session;
use settings::Settings;

#[derive(Clone, Copy, Debug)]
enum Driver {
    Tokio,
    Smol,
    Blocking,
}

impl Driver {
    fn example(self) -> &'static str {
        match self {
            Driver::Tokio => "tokio_driver",
            Driver::Smol => "smol_driver",
            Driver::Blocking => "blocking_driver",
        }
    }
}

/// The examples' directory, after building them (once per run of this test binary).
fn examples_dir() -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match BUILT.get_or_init(build_examples) {
        Ok(dir) => dir.clone(),
        Err(e) => panic!("{e}"),
    }
}

/// `cargo build` of the examples, with this test's features: with both compressions, the
/// flags of the README's test command (`--workspace --all-features`), so that the build
/// finds what that command built and reuses it.
fn build_examples() -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command.args(["build", "--quiet", "--manifest-path"]);
    command.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"));
    if cfg!(all(feature = "zlib-stream", feature = "zstd-stream")) {
        command.args(["--workspace", "--all-features"]);
    } else {
        command.args(["-p", "discord-gateway-proto"]);
        if cfg!(feature = "zlib-stream") {
            command.args(["--features", "zlib-stream"]);
        }
        if cfg!(feature = "zstd-stream") {
            command.args(["--features", "zstd-stream"]);
        }
    }
    if !cfg!(debug_assertions) {
        command.arg("--release");
    }
    for example in ["tokio_driver", "smol_driver", "blocking_driver", "demo"] {
        command.args(["--example", example]);
    }
    let status = command
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("building the examples failed: {status}"));
    }
    // This binary is <target>/<profile>/deps/drivers-<hash>; the examples are beside deps.
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let profile = exe
        .parent()
        .and_then(|deps| deps.parent())
        .ok_or("no target directory")?;
    Ok(profile.join("examples"))
}

/// A running example program.
struct Program {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
}

/// Every variable the drivers read: the test sets its own, none leaks in.
const VARIABLES: [&str; 9] = [
    "DISCORD_TOKEN",
    "DISCORD_GATEWAY_URL",
    "DISCORD_INTENTS",
    "DISCORD_COMPRESS",
    "DISCORD_SHARD",
    "DISCORD_SESSION_FILE",
    "DISCORD_KEEP_SESSION",
    "DISCORD_RECORD",
    "DISCORD_TRACE",
];

impl Program {
    fn start(example: &str, env: &[(&str, String)]) -> Program {
        let path = examples_dir().join(example);
        let mut command = Command::new(&path);
        for name in VARIABLES {
            command.env_remove(name);
        }
        command.envs(env.iter().map(|(k, v)| (k, v)));
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", path.display()));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("stdout");
        let writer = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                writer.lock().expect("lines").push(line);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("stderr");
        let writer = stderr.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut pipe, &mut text);
            *writer.lock().expect("stderr") = text;
        });
        Program {
            stdin: child.stdin.take(),
            child,
            lines,
            stderr,
        }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("lines").clone()
    }

    fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr").clone()
    }

    fn type_line(&mut self, line: &str) {
        if let Some(stdin) = self.stdin.as_mut() {
            let _ = writeln!(stdin, "{line}");
        }
    }

    /// Ctrl-C.
    fn interrupt(&self) {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("kill(1)");
        assert!(status.success(), "kill -INT failed: {status}");
    }

    /// Waits for the program to end; kills it (and fails) after `limit`.
    fn wait(&mut self, limit: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // Let the reader threads take the last lines.
                std::thread::sleep(Duration::from_millis(50));
                return status;
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                panic!(
                    "the program did not end within {limit:?}:\n{}",
                    self.lines().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a scenario left behind.
struct Run {
    status: ExitStatus,
    lines: Vec<String>,
    stderr: String,
    gateway: FakeGateway,
    main_url: String,
    resume_url: String,
}

impl Run {
    fn has(&self, text: &str) -> bool {
        self.lines.iter().any(|l| l.contains(text))
    }

    fn dump(&self) -> String {
        format!("{}\nstderr: {}", self.lines.join("\n"), self.stderr)
    }

    /// Every URL the program connected to, in order.
    fn connects(&self) -> Vec<&str> {
        self.lines
            .iter()
            .filter_map(|l| l.split_once("  connect ").map(|(_, url)| url))
            .collect()
    }

    fn assert_no_violations(&self) {
        // A heartbeat carrying an older sequence than the server last sent crossed a
        // dispatch in flight: no client can avoid it, and Discord accepts it.
        let serious: Vec<_> = self
            .gateway
            .violations()
            .iter()
            .filter(|v| {
                !matches!(
                    v.kind,
                    ViolationKind::HeartbeatSequence {
                        expected: Some(expected),
                        got: Some(got),
                    } if got < expected
                )
            })
            .collect();
        assert!(serious.is_empty(), "{serious:?}\n{}", self.dump());
    }
}

fn fast_gateway() -> FakeGateway {
    FakeGateway::new(FakeGatewayConfig {
        hello_interval: Duration::from_secs(1),
        ack_delay: Duration::from_millis(10),
        ready_delay: Duration::from_millis(20),
        resume_delay: Duration::from_millis(20),
        invalid_session_delay: Duration::from_millis(20),
        // READY lists guild 1; the scenarios script its GUILD_CREATE themselves.
        guilds: vec![SimGuild::new(1, "sim guild")],
        guild_create_delay: None,
        ..FakeGatewayConfig::default()
    })
}

/// What a scenario types on the program's stdin while it runs: `(after this line appears,
/// type this)`.
type Feed = Vec<(&'static str, &'static str)>;

/// Runs `example` against a fake gateway scripted by `script`, with the settings `env`
/// (besides the token, the fake's URL, the GUILDS intent and the decision trace), until
/// `until` holds for the printed lines (then presses Ctrl-C), or until the program ends by
/// itself; fails if that takes more than `limit`.
fn run(
    example: &str,
    script: impl FnOnce(&mut FakeGateway),
    env: &[(&str, String)],
    mut feed: Feed,
    until: impl Fn(&[String]) -> bool,
    limit: Duration,
) -> Run {
    let mut gateway = fast_gateway();
    script(&mut gateway);
    let server = FakeGatewayServer::start(gateway);
    let (main_url, resume_url) = (server.url().to_string(), server.resume_url().to_string());
    let mut variables = vec![
        ("DISCORD_TOKEN", "test-token".to_string()),
        ("DISCORD_GATEWAY_URL", main_url.clone()),
        ("DISCORD_INTENTS", "1".to_string()),
        ("DISCORD_TRACE", "true".to_string()),
    ];
    variables.extend(env.iter().cloned());
    let mut program = Program::start(example, &variables);

    let start = Instant::now();
    let mut interrupted = false;
    loop {
        if program.child.try_wait().expect("try_wait").is_some() {
            break;
        }
        let lines = program.lines();
        if until(&lines) {
            program.interrupt();
            interrupted = true;
            break;
        }
        feed.retain(|(after, line)| {
            if lines.iter().any(|l| l.contains(after)) {
                program.type_line(line);
                false
            } else {
                true
            }
        });
        assert!(
            start.elapsed() < limit,
            "{example}: scenario not done within {limit:?}:\n{}",
            lines.join("\n")
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let status = program.wait(if interrupted {
        Duration::from_secs(5)
    } else {
        limit
    });
    // Let the last close frame reach the server.
    std::thread::sleep(Duration::from_millis(100));
    let gateway = server.stop();
    Run {
        status,
        lines: program.lines(),
        stderr: program.stderr(),
        gateway,
        main_url,
        resume_url,
    }
}

fn client_close(gateway: &FakeGateway, connection: usize) -> Option<Closer> {
    gateway.connections()[connection]
        .closed
        .map(|(_, closer)| closer)
}

fn happy_path(driver: Driver) {
    let run = run(
        driver.example(),
        |g| {
            g.dispatch_stream(
                Trigger::ReadySent(1),
                Duration::from_millis(20),
                Duration::from_millis(20),
                [
                    ("GUILD_CREATE", r#"{"id":"1"}"#),
                    ("MESSAGE_CREATE", r#"{"content":"hi"}"#),
                ],
            );
        },
        &[],
        vec![
            ("READY: session sim-", "not json"),
            (
                "READY: session sim-",
                r#"{"op":3,"d":{"since":null,"activities":[],"status":"idle","afk":false}}"#,
            ),
        ],
        |lines| {
            lines
                .iter()
                .any(|l| l.contains("dispatch #3 MESSAGE_CREATE"))
                && lines.iter().any(|l| l.contains("command accepted"))
        },
        Duration::from_secs(10),
    );
    let dump = run.dump();
    assert!(run.status.success(), "{dump}");
    assert!(run.has("READY: session sim-session-1"), "{dump}");
    assert!(run.has("dispatch #2 GUILD_CREATE"), "{dump}");
    assert!(run.has("invalid command"), "{dump}");
    assert!(run.has("command accepted: PresenceUpdate (3)"), "{dump}");
    assert_eq!(run.connects().len(), 1, "{dump}");
    assert!(run.connects()[0].starts_with(&run.main_url), "{dump}");
    assert_eq!(run.gateway.received_op(2).count(), 1, "one identify");
    assert_eq!(run.gateway.received_op(3).count(), 1, "the presence update");
    run.assert_no_violations();
    // Ctrl-C without a session file ends the session: close 1000.
    assert_eq!(
        client_close(&run.gateway, 0),
        Some(Closer::Client(1000)),
        "{dump}"
    );
    assert!(run.has("shutting down (ending the session)"), "{dump}");
    assert!(run.has("shut down (session kept: false)"), "{dump}");
}

fn zombie_reconnect_resumes_on_the_resume_url(driver: Driver) {
    let run = run(
        driver.example(),
        |g| {
            g.stop_acking_after(1, Some(ConnectionId(1)));
            // Sent while the client reconnects (connection 2 open, not yet resumed):
            // missed, and replayed on Resume.
            g.after(
                Trigger::Connected(2),
                Duration::ZERO,
                ScriptAction::dispatch("MESSAGE_CREATE", r#"{"content":"while away"}"#),
            );
        },
        &[],
        Vec::new(),
        |lines| lines.iter().any(|l| l.contains("RESUMED after")),
        Duration::from_secs(10),
    );
    let dump = run.dump();
    assert!(run.has("disconnected (Zombie)"), "{dump}");
    assert!(run.has("zombie connection"), "decision trace: {dump}");
    let connects = run.connects();
    assert_eq!(connects.len(), 2, "{dump}");
    assert!(connects[1].starts_with(&run.resume_url), "{dump}");
    assert!(
        run.has("dispatch #2 MESSAGE_CREATE {\"content\":\"while away\"}"),
        "{dump}"
    );
    assert!(run.has("RESUMED after 1 replayed dispatches"), "{dump}");
    let connections = run.gateway.connections();
    assert!(connections[1].resumed && !connections[1].identified);
    // The zombie was closed with a code that keeps the session.
    match client_close(&run.gateway, 0) {
        Some(Closer::Client(code)) => assert!(!matches!(code, 1000 | 1001), "{code}"),
        other => panic!("connection 1 ended by {other:?}: {dump}"),
    }
    run.assert_no_violations();
}

fn op7_resumes(driver: Driver) {
    let run = run(
        driver.example(),
        |g| {
            g.after(
                Trigger::ReadySent(1),
                Duration::from_millis(50),
                ScriptAction::Reconnect,
            );
            // Sent after op 7, while the client reconnects: replayed on resume.
            g.after(
                Trigger::Connected(2),
                Duration::ZERO,
                ScriptAction::dispatch("MESSAGE_CREATE", r#"{"content":"missed"}"#),
            );
        },
        &[],
        Vec::new(),
        |lines| lines.iter().any(|l| l.contains("RESUMED after")),
        Duration::from_secs(10),
    );
    let dump = run.dump();
    assert!(run.has("disconnected (ReconnectRequested)"), "{dump}");
    assert!(run.connects()[1].starts_with(&run.resume_url), "{dump}");
    assert!(run.gateway.connections()[1].resumed);
    assert!(run.has("MESSAGE_CREATE {\"content\":\"missed\"}"), "{dump}");
    assert!(run.has("RESUMED after 1 replayed dispatches"), "{dump}");
    run.assert_no_violations();
}

fn op9_identifies_anew(driver: Driver) {
    let run = run(
        driver.example(),
        |g| {
            g.after(
                Trigger::ReadySent(1),
                Duration::from_millis(50),
                ScriptAction::InvalidSession(false),
            );
        },
        &[],
        Vec::new(),
        |lines| {
            lines
                .iter()
                .filter(|l| l.contains("READY: session sim-"))
                .count()
                >= 2
        },
        // Discord's wait after op 9 is 1-5 s at random.
        Duration::from_secs(15),
    );
    let dump = run.dump();
    assert!(run.has("invalid session (resumable: false)"), "{dump}");
    assert!(run.has("READY: session sim-session-2"), "{dump}");
    assert_eq!(
        run.gateway.received_op(2).count(),
        2,
        "two identifies: {dump}"
    );
    assert_eq!(run.gateway.received_op(6).count(), 0, "no resume: {dump}");
    assert!(
        run.connects().iter().all(|u| u.starts_with(&run.main_url)),
        "{dump}"
    );
    run.assert_no_violations();
}

fn fatal_close_stops(driver: Driver) {
    let run = run(
        driver.example(),
        |g| {
            g.after(
                Trigger::ReadySent(1),
                Duration::from_millis(50),
                ScriptAction::Close {
                    code: 4004,
                    reason: "Authentication failed.".into(),
                },
            );
        },
        &[],
        Vec::new(),
        |_| false, // the program must end by itself
        Duration::from_secs(10),
    );
    let dump = run.dump();
    assert_eq!(run.status.code(), Some(1), "{dump}");
    assert!(run.has("FATAL: the gateway closed with 4004"), "{dump}");
    assert!(
        run.stderr.contains("stopped: the gateway closed with 4004"),
        "{dump}"
    );
    assert_eq!(run.connects().len(), 1, "never reconnects: {dump}");
    assert!(!run.has("shutting down"), "ended by itself: {dump}");
}

/// A run with transport compression: the fake server compresses every message in one
/// stream per connection; the program's shard inflates them.
#[cfg(any(feature = "zlib-stream", feature = "zstd-stream"))]
fn compressed(driver: Driver, compression: &str) {
    let run = run(
        driver.example(),
        |g| {
            g.dispatch_stream(
                Trigger::ReadySent(1),
                Duration::from_millis(10),
                Duration::from_millis(10),
                (0..5).map(|i| ("MESSAGE_CREATE", format!(r#"{{"content":"message {i}"}}"#))),
            );
            // And a resume on a new connection: a new compression context.
            g.after(
                Trigger::ReadySent(1),
                Duration::from_millis(100),
                ScriptAction::Reconnect,
            );
        },
        &[("DISCORD_COMPRESS", compression.to_string())],
        Vec::new(),
        |lines| lines.iter().any(|l| l.contains("RESUMED after")),
        Duration::from_secs(10),
    );
    let dump = run.dump();
    let query = format!("compress={compression}");
    assert!(run.connects().iter().all(|u| u.contains(&query)), "{dump}");
    assert!(
        run.has("dispatch #6 MESSAGE_CREATE {\"content\":\"message 4\"}"),
        "{dump}"
    );
    assert!(!run.has("protocol error"), "{dump}");
    run.assert_no_violations();
}

macro_rules! per_driver {
    ($($driver:ident: $module:ident),*) => {$(
        mod $module {
            use super::*;
            #[test]
            fn happy_path() { super::happy_path(Driver::$driver) }
            #[test]
            fn zombie_reconnect_resumes_on_the_resume_url() {
                super::zombie_reconnect_resumes_on_the_resume_url(Driver::$driver)
            }
            #[test]
            fn op7_resumes() { super::op7_resumes(Driver::$driver) }
            #[test]
            fn op9_identifies_anew() { super::op9_identifies_anew(Driver::$driver) }
            #[test]
            fn fatal_close_stops() { super::fatal_close_stops(Driver::$driver) }
            #[cfg(feature = "zlib-stream")]
            #[test]
            fn zlib_stream() { super::compressed(Driver::$driver, "zlib-stream") }
            #[cfg(feature = "zstd-stream")]
            #[test]
            fn zstd_stream() { super::compressed(Driver::$driver, "zstd-stream") }
        }
    )*};
}

per_driver!(Tokio: tokio_driver, Smol: smol_driver, Blocking: blocking_driver);

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "dgp-{}-{:?}-{name}",
        std::process::id(),
        std::thread::current().id()
    ))
}

#[test]
fn session_file_keeps_the_session_and_the_next_start_resumes_from_it() {
    let path = temp_path("session.json");
    let file = path.display().to_string();
    let first = run(
        Driver::Tokio.example(),
        |_| {},
        &[("DISCORD_SESSION_FILE", file.clone())],
        Vec::new(),
        |lines| lines.iter().any(|l| l.contains("READY: session sim-")),
        Duration::from_secs(10),
    );
    let dump = first.dump();
    assert!(first.status.success(), "{dump}");
    assert!(
        first.has("shutting down (keeping the session resumable)"),
        "{dump}"
    );
    assert!(first.has("session saved to"), "{dump}");
    // Closed with a code that keeps the session resumable.
    assert!(
        matches!(client_close(&first.gateway, 0), Some(Closer::Client(c)) if c != 1000 && c != 1001),
        "{dump}"
    );
    let saved: Session =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("session file")).unwrap();
    assert_eq!(saved.id, "sim-session-1");

    // The next start restores it: it resumes, to the first server's resume URL (gone now,
    // so it falls back to the main URL, where the new fake does not know the session, and
    // identifies).
    let second = run(
        Driver::Tokio.example(),
        |_| {},
        &[
            ("DISCORD_SESSION_FILE", file),
            ("DISCORD_KEEP_SESSION", "false".into()),
        ],
        Vec::new(),
        |lines| lines.iter().any(|l| l.contains("READY: session sim-")),
        Duration::from_secs(15),
    );
    let dump = second.dump();
    assert!(second.has("restored session sim-session-1"), "{dump}");
    assert!(
        second.connects()[0].starts_with(&first.resume_url),
        "{dump}"
    );
    // Ending the session removes the file.
    assert!(!path.exists(), "{dump}");
}

#[test]
fn a_recording_of_a_driver_run_replays_identically() {
    let path = temp_path("recording.jsonl");
    let run = run(
        Driver::Blocking.example(),
        |g| {
            g.after(
                Trigger::ReadySent(1),
                Duration::from_millis(30),
                ScriptAction::Reconnect,
            );
        },
        &[("DISCORD_RECORD", path.display().to_string())],
        Vec::new(),
        |lines| lines.iter().any(|l| l.contains("RESUMED after")),
        Duration::from_secs(10),
    );
    let text = std::fs::read_to_string(&path).expect("recording");
    let _ = std::fs::remove_file(&path);
    assert!(!text.contains("test-token"), "the token is never recorded");
    let summary = discord_gateway::proto::record::replay(text.lines(), |_| {})
        .unwrap_or_else(|e| panic!("replay differs: {e}\n{}", run.dump()));
    assert!(summary.inputs > 5);
}

#[test]
fn bad_settings_are_refused_with_exit_code_2() {
    let mut program = Program::start(
        "tokio_driver",
        &[
            ("DISCORD_TOKEN", "secret-token".into()),
            ("DISCORD_SHARD", "4/4".into()),
        ],
    );
    let status = program.wait(Duration::from_secs(10));
    let stderr = program.stderr();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("DISCORD_SHARD must be id/count"),
        "{stderr}"
    );
    assert!(!stderr.contains("secret-token"), "{stderr}");
}

#[test]
fn the_demo_tells_the_whole_story() {
    let mut demo = Program::start("demo", &[]);
    let status = demo.wait(Duration::from_secs(40));
    let lines = demo.lines();
    let dump = format!("{}\nstderr: {}", lines.join("\n"), demo.stderr());
    assert!(status.success(), "{dump}");
    let has = |text: &str| lines.iter().any(|l| l.contains(text));
    for step in [
        "READY: session sim-session-1",
        "MESSAGE_CREATE",
        "disconnected (Zombie)",
        "RESUMED after 1 replayed dispatches",
        "disconnected (ReconnectRequested)",
        "invalid session (resumable: false)",
        "READY: session sim-session-2",
        "FATAL: the gateway closed with 4004",
        "↳ why:",
        "protocol violations seen by the fake Discord: 0",
        "the shard stopped for good on 4004",
    ] {
        assert!(has(step), "{step:?} missing:\n{dump}");
    }
}

#[test]
fn settings_from_the_environment() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    };
    let e = Settings::from_lookup(env(&[])).unwrap_err();
    assert!(e.contains("DISCORD_TOKEN is not set"), "{e}");
    let s = Settings::from_lookup(env(&[("DISCORD_TOKEN", "Bot secret-token")])).unwrap();
    assert_eq!(s.gateway_url, "wss://gateway.discord.gg");
    assert!(!s.keep_session);
    assert!(
        !format!("{s:?}").contains("secret-token"),
        "the token is never printed"
    );
    let s = Settings::from_lookup(env(&[
        ("DISCORD_TOKEN", "t"),
        ("DISCORD_GATEWAY_URL", "ws://127.0.0.1:9"),
        ("DISCORD_INTENTS", "513"),
        ("DISCORD_SHARD", "2/4"),
        ("DISCORD_SESSION_FILE", "/tmp/s.json"),
    ]))
    .unwrap();
    assert_eq!(s.intents.bits(), 513);
    assert_eq!(s.shard, discord_gateway::ShardId::new(2, 4));
    assert!(
        s.keep_session,
        "a session file keeps the session by default"
    );
    for (name, value, expect) in [
        (
            "DISCORD_INTENTS",
            "lots",
            "DISCORD_INTENTS must be a number",
        ),
        ("DISCORD_SHARD", "4/4", "DISCORD_SHARD must be id/count"),
        ("DISCORD_SHARD", "x", "DISCORD_SHARD must be id/count"),
        (
            "DISCORD_GATEWAY_URL",
            "http://x",
            "must start with ws:// or wss://",
        ),
        ("DISCORD_COMPRESS", "gzip", "DISCORD_COMPRESS must be none"),
        ("DISCORD_KEEP_SESSION", "maybe", "must be true or false"),
    ] {
        let e = Settings::from_lookup(|n: &str| match n {
            "DISCORD_TOKEN" => Some("t".into()),
            n if n == name => Some(value.into()),
            _ => None,
        })
        .unwrap_err();
        assert!(e.contains(expect), "{name}={value}: {e}");
    }
    let zlib = Settings::from_lookup(env(&[
        ("DISCORD_TOKEN", "t"),
        ("DISCORD_COMPRESS", "zlib-stream"),
    ]));
    if cfg!(feature = "zlib-stream") {
        assert!(zlib.is_ok(), "{zlib:?}");
    } else {
        assert!(zlib
            .unwrap_err()
            .contains("needs the crate feature `zlib-stream`"));
    }
}
