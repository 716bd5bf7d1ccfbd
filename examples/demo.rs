//! The demo: a whole gateway story in a few seconds, against a fake Discord on loopback.
//!
//! ```text
//! cargo run --example demo
//! ```
//!
//! `discord_gateway::testing::FakeGatewayServer` (real WebSockets on 127.0.0.1, two ports:
//! the gateway and the resume gateway) serves the protocol crate's scripted
//! `sim::FakeGateway` with a 1 s heartbeat, and a `discord_gateway::tokio::Shard` runs
//! against it with the decision trace on. The timeline shows what the server did, what the
//! shard did and why:
//!
//! 1. identify, READY, a few dispatches;
//! 2. the server stops acknowledging heartbeats: zombie verdict, close, resume on the
//!    resume URL, with the dispatch sent meanwhile replayed;
//! 3. op 7 Reconnect: resume again;
//! 4. op 9 Invalid Session (not resumable): wait, identify anew;
//! 5. close 4004 (authentication failed): fatal, the shard stops.
//!
//! With `DISCORD_TOKEN` set, the demo is the tokio driver against the real gateway instead
//! (same settings as `examples/tokio_driver.rs`).

#[path = "tokio_driver.rs"]
mod tokio_driver;

use std::process::ExitCode;
use std::time::Duration;

use discord_gateway::proto::close_code::CloseCode;
use discord_gateway::proto::sim::{
    ConnectionId, FakeGateway, FakeGatewayConfig, ScriptAction, SimGuild, SimMessage, SimUser,
    Trigger,
};
use discord_gateway::proto::Backoff;
use discord_gateway::testing::FakeGatewayServer;
use discord_gateway::tokio::Shard;
use discord_gateway::{FatalReason, GatewayConfig, Intents, ShardEvent, ShardOptions, Token};
use tokio_driver::common;

fn main() -> ExitCode {
    if std::env::var("DISCORD_TOKEN").is_ok_and(|t| !t.trim().is_empty()) {
        return tokio_driver::main();
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

/// One timeline line: the time, who, what (the decision trace indented under its event).
fn say(at: Duration, who: &str, text: &str) {
    let t = common::seconds(at);
    match text.strip_prefix("  why: ") {
        Some(why) => println!("{t:>9}  {:<7}    ↳ why: {why}", ""),
        None => println!("{t:>9}  {who:<7} {text}"),
    }
}

async fn story() -> Result<(), String> {
    println!("A fake Discord gateway on loopback, and a tokio Shard against it (heartbeat 1 s).");
    println!("Columns: time, who (server = the fake Discord, shard = discord_gateway's Shard),");
    println!("what happened; `↳ why` lines are the protocol machine's decision trace.\n");
    let start = common::Printer::new();
    let server = FakeGatewayServer::start_with_log(script(), |t, text| say(t, "server", text));
    println!(
        "gateway {}   resume gateway {}\n",
        server.url(),
        server.resume_url()
    );

    let mut config = GatewayConfig::new(
        Token::new("demo-token"),
        // MESSAGE_CONTENT: without it the fake, like Discord, blanks guild messages' text.
        Intents::GUILDS | Intents::GUILD_MESSAGES | Intents::MESSAGE_CONTENT,
    )
    .with_gateway_url(server.url())
    // Reconnect 300 ms after a healthy connection ends (immediate by default), so the
    // story's "while you were away" message is really missed and replayed.
    .with_reconnect(Backoff {
        first_delay: Duration::from_millis(300),
        ..Backoff::default()
    });
    config.identify.invalid_session_delay =
        (Duration::from_millis(200), Duration::from_millis(400));
    let options = ShardOptions::new().seed(7).trace(true);
    let mut shard = Shard::from_config(config, options).map_err(|e| e.to_string())?;

    let (mut fatal, mut closing) = (None, false);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let run = async {
        loop {
            tokio::select! {
                event = shard.next_event() => match event {
                    Some(event) => {
                        if let ShardEvent::Fatal(reason) = &event {
                            fatal = Some(*reason);
                        }
                        let line = start.relative_times(&common::describe(&event));
                        say(start.elapsed(), "shard", &line);
                    }
                    None => break,
                },
                _ = &mut ctrl_c, if !closing => {
                    closing = true;
                    shard.close(false).await;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .map_err(|_| "the story did not end within 30 s".to_string())?;
    let gateway = server.stop_async().await;

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
    match fatal {
        Some(FatalReason::CloseCode(CloseCode(4004))) => {
            println!("  the shard stopped for good on 4004, as it must: never retry a bad token");
            Ok(())
        }
        Some(other) => Err(format!("unexpected stop: {other}")),
        None => {
            println!("  stopped by Ctrl-C before the end of the story");
            Ok(())
        }
    }
}
