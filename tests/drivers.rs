//! The example drivers (tokio, smol, blocking) against a fake Discord gateway on loopback:
//! a real WebSocket server (two ports: gateway and resume gateway) whose behaviour is the
//! crate's `sim::FakeGateway`. Each scenario runs once per driver, bounded in time; nothing
//! leaves 127.0.0.1.
#![allow(clippy::disallowed_methods)] // the test bounds real time with Instant::now

#[path = "../examples/common/blocking_loop.rs"]
mod blocking_loop;
#[path = "../examples/common/mod.rs"]
mod common;
#[path = "../examples/common/fake_server.rs"]
mod fake_server;
#[path = "../examples/common/smol_loop.rs"]
mod smol_loop;
#[path = "../examples/common/tokio_loop.rs"]
mod tokio_loop;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{Clock, Control, CoreOptions, DriverCore, Settings, Summary};
use discord_gateway_proto::close_code::CloseCode;
use discord_gateway_proto::sim::{
    Closer, ConnectionId, FakeGateway, FakeGatewayConfig, ScriptAction, SimGuild, Trigger,
};
use discord_gateway_proto::{FatalReason, GatewayConfig, Intents, Token};

#[derive(Clone, Copy, Debug)]
enum Driver {
    Tokio,
    Smol,
    Blocking,
}

struct Run {
    summary: Summary,
    lines: Vec<String>,
    gateway: FakeGateway,
    main_url: String,
    resume_url: String,
}

impl Run {
    fn has(&self, text: &str) -> bool {
        self.lines.iter().any(|l| l.contains(text))
    }

    fn dump(&self) -> String {
        self.lines.join("\n")
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

/// What a scenario sends the driver while it runs: `(after this line appears, send this)`.
type Feed = Vec<(&'static str, Control)>;

/// Runs `driver` against a fake gateway scripted by `script` until `until` holds for the
/// printed lines (then stops it gracefully), or until the driver ends by itself; fails if
/// that takes more than `limit`.
fn run(
    driver: Driver,
    script: impl FnOnce(&mut FakeGateway),
    tweak: impl FnOnce(&mut CoreOptions),
    mut feed: Feed,
    until: impl Fn(&[String]) -> bool,
    limit: Duration,
) -> Run {
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let clock = Clock::new();
    let ports = server_rt
        .block_on(fake_server::bind())
        .expect("loopback ports");
    let (main_url, resume_url) = (ports.main_url.clone(), ports.resume_url.clone());
    let mut gateway = fast_gateway();
    script(&mut gateway);
    let server = {
        let _guard = server_rt.enter();
        ports.serve(gateway, clock, None)
    };

    let mut config = GatewayConfig::new(Token::new("test-token"), Intents::GUILDS)
        .with_gateway_url(main_url.clone());
    config.identify.invalid_session_delay = (Duration::from_millis(50), Duration::from_millis(100));
    let mut options = CoreOptions::new(config);
    options.seed = 42;
    options.trace = true;
    options.clock = Some(clock);
    options.identify_spacing = Duration::from_millis(50);
    tweak(&mut options);
    let (sink, lines) = common::collecting_sink();
    let core = DriverCore::new(options, sink).expect("driver core");

    let (send, handle): (Box<dyn Fn(Control)>, std::thread::JoinHandle<Summary>) = match driver {
        Driver::Tokio => {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            let handle = std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("tokio runtime")
                    .block_on(tokio_loop::run(core, rx))
            });
            (
                Box::new(move |c| {
                    let _ = tx.send(c);
                }),
                handle,
            )
        }
        Driver::Smol => {
            let (tx, rx) = smol::channel::unbounded();
            let handle = std::thread::spawn(move || smol::block_on(smol_loop::run(core, rx)));
            (
                Box::new(move |c| {
                    let _ = tx.try_send(c);
                }),
                handle,
            )
        }
        Driver::Blocking => {
            let (tx, rx) = std::sync::mpsc::channel();
            let handle = std::thread::spawn(move || blocking_loop::run(core, rx));
            (
                Box::new(move |c| {
                    let _ = tx.send(c);
                }),
                handle,
            )
        }
    };

    let start = Instant::now();
    let snapshot = || lines.lock().expect("lines").clone();
    loop {
        if handle.is_finished() {
            break;
        }
        let now = snapshot();
        if until(&now) {
            break;
        }
        feed.retain(|(after, control)| {
            if now.iter().any(|l| l.contains(after)) {
                send(control.clone());
                false
            } else {
                true
            }
        });
        assert!(
            start.elapsed() < limit,
            "{driver:?}: scenario not done within {limit:?}:\n{}",
            now.join("\n")
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    send(Control::Stop);
    while !handle.is_finished() {
        assert!(
            start.elapsed() < limit + Duration::from_secs(5),
            "{driver:?}: the driver did not stop:\n{}",
            snapshot().join("\n")
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let summary = handle.join().expect("driver thread");
    // Let the last close frame reach the server.
    std::thread::sleep(Duration::from_millis(100));
    let gateway = server_rt.block_on(server.stop()).expect("fake server task");
    Run {
        summary,
        lines: snapshot(),
        gateway,
        main_url,
        resume_url,
    }
}

fn no_tweak(_: &mut CoreOptions) {}

fn client_close(gateway: &FakeGateway, connection: usize) -> Option<Closer> {
    gateway.connections()[connection]
        .closed
        .map(|(_, closer)| closer)
}

fn happy_path(driver: Driver) {
    let run = run(
        driver,
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
        no_tweak,
        vec![
            ("READY: session sim-", Control::Command("not json".into())),
            (
                "READY: session sim-",
                Control::Command(
                    r#"{"op":3,"d":{"since":null,"activities":[],"status":"idle","afk":false}}"#
                        .into(),
                ),
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
    assert!(run.has("READY: session sim-session-1"), "{dump}");
    assert!(run.has("dispatch #2 GUILD_CREATE"), "{dump}");
    assert!(run.has("invalid command"), "{dump}");
    assert_eq!(run.summary.fatal, None);
    assert_eq!(run.summary.connects.len(), 1, "{dump}");
    assert!(run.summary.connects[0].starts_with(&run.main_url));
    assert_eq!(run.gateway.received_op(2).count(), 1, "one identify");
    assert_eq!(run.gateway.received_op(3).count(), 1, "the presence update");
    assert!(
        run.gateway.violations().is_empty(),
        "{:?}",
        run.gateway.violations()
    );
    // Ctrl-C without a session file ends the session: close 1000.
    assert_eq!(
        client_close(&run.gateway, 0),
        Some(Closer::Client(1000)),
        "{dump}"
    );
    assert!(run.has("shut down (session kept: false)"), "{dump}");
}

fn zombie_reconnect_resumes_on_the_resume_url(driver: Driver) {
    let run = run(
        driver,
        |g| {
            g.stop_acking_after(1, Some(ConnectionId(1)));
        },
        no_tweak,
        Vec::new(),
        |lines| lines.iter().any(|l| l.contains("RESUMED after")),
        Duration::from_secs(10),
    );
    let dump = run.dump();
    assert!(run.has("disconnected (Zombie)"), "{dump}");
    assert!(run.has("zombie connection"), "decision trace: {dump}");
    assert_eq!(run.summary.connects.len(), 2, "{dump}");
    assert!(
        run.summary.connects[1].starts_with(&run.resume_url),
        "{dump}"
    );
    let connections = run.gateway.connections();
    assert!(connections[1].resumed && !connections[1].identified);
    // The zombie was closed with a code that keeps the session.
    match client_close(&run.gateway, 0) {
        Some(Closer::Client(code)) => assert!(!matches!(code, 1000 | 1001), "{code}"),
        other => panic!("connection 1 ended by {other:?}: {dump}"),
    }
    assert!(
        run.gateway.violations().is_empty(),
        "{:?}",
        run.gateway.violations()
    );
}

fn op7_resumes(driver: Driver) {
    let run = run(
        driver,
        |g| {
            g.after(
                Trigger::ReadySent(1),
                Duration::from_millis(50),
                ScriptAction::Reconnect,
            );
            // Sent after op 7, while the client reconnects: replayed on resume.
            g.after(
                Trigger::ReadySent(1),
                Duration::from_millis(55),
                ScriptAction::dispatch("MESSAGE_CREATE", r#"{"content":"missed"}"#),
            );
        },
        no_tweak,
        Vec::new(),
        |lines| lines.iter().any(|l| l.contains("RESUMED after")),
        Duration::from_secs(10),
    );
    let dump = run.dump();
    assert!(run.has("disconnected (ReconnectRequested)"), "{dump}");
    assert!(
        run.summary.connects[1].starts_with(&run.resume_url),
        "{dump}"
    );
    assert!(run.gateway.connections()[1].resumed);
    assert!(run.has("MESSAGE_CREATE {\"content\":\"missed\"}"), "{dump}");
    assert!(
        run.gateway.violations().is_empty(),
        "{:?}",
        run.gateway.violations()
    );
}

fn op9_identifies_anew(driver: Driver) {
    let run = run(
        driver,
        |g| {
            g.after(
                Trigger::ReadySent(1),
                Duration::from_millis(50),
                ScriptAction::InvalidSession(false),
            );
        },
        no_tweak,
        Vec::new(),
        |lines| {
            lines
                .iter()
                .filter(|l| l.contains("READY: session sim-"))
                .count()
                >= 2
        },
        Duration::from_secs(10),
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
        run.summary
            .connects
            .iter()
            .all(|u| u.starts_with(&run.main_url)),
        "{dump}"
    );
    assert!(
        run.gateway.violations().is_empty(),
        "{:?}",
        run.gateway.violations()
    );
}

fn fatal_close_stops(driver: Driver) {
    let run = run(
        driver,
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
        no_tweak,
        Vec::new(),
        |_| false, // the driver must end by itself
        Duration::from_secs(10),
    );
    let dump = run.dump();
    assert_eq!(
        run.summary.fatal,
        Some(FatalReason::CloseCode(CloseCode(4004))),
        "{dump}"
    );
    assert!(run.has("FATAL"), "{dump}");
    assert_eq!(run.summary.connects.len(), 1, "never reconnects: {dump}");
    assert!(!run.has("shutting down"), "ended by itself: {dump}");
}

/// A run with transport compression: the fake server compresses every message in one
/// stream per connection; the driver feeds the binary frames to the machine.
#[cfg(any(feature = "zlib-stream", feature = "zstd-stream"))]
fn compressed(driver: Driver, compression: discord_gateway_proto::Compression, query: &str) {
    let run = run(
        driver,
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
        |o| o.config.compression = compression,
        Vec::new(),
        |lines| lines.iter().any(|l| l.contains("RESUMED after")),
        Duration::from_secs(10),
    );
    let dump = run.dump();
    assert!(
        run.summary.connects.iter().all(|u| u.contains(query)),
        "{dump}"
    );
    assert!(
        run.has("dispatch #6 MESSAGE_CREATE {\"content\":\"message 4\"}"),
        "{dump}"
    );
    assert!(!run.has("protocol error"), "{dump}");
    assert!(
        run.gateway.violations().is_empty(),
        "{:?}",
        run.gateway.violations()
    );
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
            fn zlib_stream() {
                super::compressed(
                    Driver::$driver,
                    discord_gateway_proto::Compression::ZlibStream,
                    "compress=zlib-stream",
                )
            }
            #[cfg(feature = "zstd-stream")]
            #[test]
            fn zstd_stream() {
                super::compressed(
                    Driver::$driver,
                    discord_gateway_proto::Compression::ZstdStream,
                    "compress=zstd-stream",
                )
            }
        }
    )*};
}

per_driver!(Tokio: tokio_driver, Smol: smol_driver, Blocking: blocking_driver);

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "dgp-{}-{}-{name}",
        std::process::id(),
        common::random_seed()
    ))
}

#[test]
fn session_file_keeps_the_session_and_the_next_start_resumes_from_it() {
    let path = temp_path("session.json");
    let first = run(
        Driver::Tokio,
        |_| {},
        |o| {
            o.session_file = Some(path.clone());
            o.keep_session = true;
        },
        Vec::new(),
        |lines| lines.iter().any(|l| l.contains("READY: session sim-")),
        Duration::from_secs(10),
    );
    let dump = first.dump();
    assert!(first.has("session saved to"), "{dump}");
    // Closed with a code that keeps the session resumable.
    assert!(
        matches!(client_close(&first.gateway, 0), Some(Closer::Client(c)) if c != 1000 && c != 1001)
    );
    let saved: common::SavedSession =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("session file")).unwrap();
    assert_eq!(saved.session.id, "sim-session-1");

    // The next start restores it: it resumes, to the first server's resume URL (gone now,
    // so it falls back to the main URL and identifies).
    let second = run(
        Driver::Tokio,
        |_| {},
        |o| {
            o.session_file = Some(path.clone());
            o.keep_session = false;
        },
        Vec::new(),
        |lines| lines.iter().any(|l| l.contains("READY: session sim-")),
        Duration::from_secs(15),
    );
    let dump = second.dump();
    assert!(second.has("restored session sim-session-1"), "{dump}");
    assert!(
        second.summary.connects[0].starts_with(&first.resume_url),
        "{dump}"
    );
    // Ending the session removes the file.
    assert!(!path.exists());
}

#[test]
fn a_recording_of_a_driver_run_replays_identically() {
    let path = temp_path("recording.jsonl");
    let run = run(
        Driver::Blocking,
        |g| {
            g.after(
                Trigger::ReadySent(1),
                Duration::from_millis(30),
                ScriptAction::Reconnect,
            );
        },
        |o| o.record = Some(path.clone()),
        Vec::new(),
        |lines| lines.iter().any(|l| l.contains("RESUMED after")),
        Duration::from_secs(10),
    );
    let text = std::fs::read_to_string(&path).expect("recording");
    let _ = std::fs::remove_file(&path);
    assert!(!text.contains("test-token"), "the token is never recorded");
    let summary = discord_gateway_proto::record::replay(text.lines(), |_| {})
        .unwrap_or_else(|e| panic!("replay differs: {e}\n{}", run.dump()));
    assert!(summary.inputs > 5);
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
    assert_eq!(s.shard, discord_gateway_proto::ShardId::new(2, 4));
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
