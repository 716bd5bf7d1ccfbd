//! The demo: a whole gateway story in a few seconds, against a fake Discord on loopback.
//!
//! ```text
//! cargo run --example demo
//! ```
//!
//! A real WebSocket server on 127.0.0.1 (two ports: the gateway and the resume gateway),
//! scripted by the crate's `sim::FakeGateway` with a 1 s heartbeat, and the tokio driver
//! against it, with the decision trace on. The timeline shows what the server did, what the
//! machine did and why:
//!
//! 1. identify, READY, a few dispatches;
//! 2. the server stops acknowledging heartbeats: zombie verdict, close, resume on the
//!    resume URL, with the dispatch sent meanwhile replayed;
//! 3. op 7 Reconnect: resume again;
//! 4. op 9 Invalid Session (not resumable): wait, identify anew;
//! 5. close 4004 (authentication failed): fatal, the machine stops.
//!
//! With `DISCORD_TOKEN` set, the demo is the tokio driver against the real gateway instead
//! (same settings as `examples/tokio_driver.rs`).

mod common;
#[path = "common/fake_server.rs"]
mod fake_server;
#[path = "common/tokio_loop.rs"]
mod tokio_loop;

use std::process::ExitCode;
use std::time::Duration;

use common::{Clock, Control, CoreOptions, DriverCore, Settings, Sink};
use discord_gateway_proto::sim::{
    ConnectionId, FakeGateway, FakeGatewayConfig, ScriptAction, SimGuild, SimMessage, SimUser,
    Trigger,
};
use discord_gateway_proto::{Backoff, FatalReason, GatewayConfig, Intents, Token};

fn main() -> ExitCode {
    if std::env::var("DISCORD_TOKEN").is_ok_and(|t| !t.trim().is_empty()) {
        return match Settings::from_env() {
            Ok(settings) => tokio_loop::main_with(settings, "demo"),
            Err(e) => {
                eprintln!("demo: {e}");
                ExitCode::from(2)
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("demo: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(story()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The fake Discord's script (see the module docs).
fn script() -> FakeGateway {
    let config = FakeGatewayConfig {
        // The machine's shortest accepted heartbeat interval.
        hello_interval: Duration::from_secs(1),
        ack_delay: Duration::from_millis(20),
        ready_delay: Duration::from_millis(80),
        resume_delay: Duration::from_millis(80),
        invalid_session_delay: Duration::from_millis(80),
        // 1. After READY: each guild's GUILD_CREATE, 100 ms apart.
        guilds: vec![
            SimGuild::new(81384788765712384, "Discord API"),
            SimGuild::new(613425648685547541, "Rust"),
        ],
        guild_create_delay: Some(Duration::from_millis(100)),
        ..FakeGatewayConfig::default()
    };
    let rust = config.guilds[1].clone();
    let ferris = SimUser::person(41771983423143937, "ferris");
    let mut gateway = FakeGateway::new(config);
    // Then a message.
    gateway.after(
        Trigger::ReadySent(1),
        Duration::from_millis(250),
        ScriptAction::Message(SimMessage::in_guild(
            &rust,
            ferris.clone(),
            "hello, gateway",
        )),
    );
    // 2. The first connection goes quiet after two ACKs. The client's zombie verdict comes
    // when its 4th beat is due (1 s after the 3rd); 150 ms later a message is sent into the
    // session while the client is away: it comes back as a replay on resume.
    gateway.stop_acking_after(2, Some(ConnectionId(1)));
    gateway.after(
        Trigger::HeartbeatOn {
            connection: ConnectionId(1),
            beat: 3,
        },
        Duration::from_millis(1150),
        ScriptAction::Message(SimMessage::in_guild(
            &rust,
            ferris,
            "sent while you were away",
        )),
    );
    // 3. op 7 after the first resume.
    gateway.after(
        Trigger::ResumedSent(1),
        Duration::from_millis(900),
        ScriptAction::Reconnect,
    );
    // 4. op 9 (not resumable) after the second resume.
    gateway.after(
        Trigger::ResumedSent(2),
        Duration::from_millis(900),
        ScriptAction::InvalidSession(false),
    );
    // 5. The token is reset: 4004 on the new session.
    gateway.after(
        Trigger::ReadySent(2),
        Duration::from_millis(700),
        ScriptAction::Close {
            code: 4004,
            reason: "Authentication failed.".into(),
        },
    );
    gateway
}

fn timeline(who: &'static str) -> Sink {
    Box::new(move |t, text| match text.strip_prefix("  why: ") {
        Some(why) => println!("{t:>9}  {:<7}    ↳ why: {why}", ""),
        None => println!("{t:>9}  {who:<7} {text}"),
    })
}

async fn story() -> Result<(), String> {
    println!("A fake Discord gateway on loopback, driven by the tokio driver (heartbeat 1 s).");
    println!("Columns: time, who (server = the fake Discord, machine = GatewayMachine + driver),");
    println!("what happened; `↳ why` lines are the machine's decision trace.\n");
    let clock = Clock::new();
    let ports = fake_server::bind()
        .await
        .map_err(|e| format!("cannot listen on loopback: {e}"))?;
    let main_url = ports.main_url.clone();
    println!(
        "gateway {}   resume gateway {}\n",
        ports.main_url, ports.resume_url
    );
    let server = ports.serve(script(), clock, Some(timeline("server")));

    let mut config = GatewayConfig::new(
        Token::new("demo-token"),
        // MESSAGE_CONTENT: without it the fake, like Discord, blanks guild messages' text.
        Intents::GUILDS | Intents::GUILD_MESSAGES | Intents::MESSAGE_CONTENT,
    )
    .with_gateway_url(main_url)
    // Reconnect 300 ms after a healthy connection ends (immediate by default), so the
    // story's "while you were away" message is really missed and replayed.
    .with_reconnect(Backoff {
        first_delay: Duration::from_millis(300),
        ..Backoff::default()
    });
    config.identify.invalid_session_delay =
        (Duration::from_millis(200), Duration::from_millis(400));
    let mut options = CoreOptions::new(config);
    options.seed = 7;
    options.trace = true;
    options.clock = Some(clock);
    // Discord's 5 s between identifies, shortened so the story fits in a few seconds.
    options.identify_spacing = Duration::from_secs(1);
    let core = DriverCore::new(options, timeline("machine"))?;

    let (control, commands) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = control.send(Control::Stop);
        }
    });
    let summary = tokio::time::timeout(Duration::from_secs(30), tokio_loop::run(core, commands))
        .await
        .map_err(|_| "the story did not end within 30 s".to_string())?;
    let gateway = server.stop().await.ok_or("the fake server task failed")?;

    println!("\nThe story in numbers:");
    for c in gateway.connections() {
        let what = match (c.identified, c.resumed) {
            (true, _) => "identified",
            (_, true) => "resumed",
            _ => "neither",
        };
        println!("  connection #{} {} — {what}", c.id.0, c.url);
    }
    let violations = gateway.violations();
    println!(
        "  protocol violations seen by the fake Discord: {}",
        violations.len()
    );
    for v in violations {
        println!("    {v:?}");
    }
    match summary.fatal {
        Some(FatalReason::CloseCode(code)) if code.0 == 4004 => {
            println!("  the machine stopped for good on 4004, as it must: never retry a bad token");
            Ok(())
        }
        Some(other) => Err(format!("unexpected stop: {other}")),
        None => {
            println!("  stopped by Ctrl-C before the end of the story");
            Ok(())
        }
    }
}
