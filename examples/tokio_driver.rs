//! A Discord gateway client on tokio: `discord_gateway::tokio::Shard` prints one line per
//! event, each line typed on stdin is sent as a raw gateway command, and Ctrl-C closes
//! gracefully (saving the session to resume next time, if asked to).
//!
//! ```text
//! DISCORD_TOKEN=... cargo run --example tokio_driver
//! ```
//!
//! Settings (see `examples/common/settings.rs`): `DISCORD_TOKEN` (required),
//! `DISCORD_GATEWAY_URL`, `DISCORD_INTENTS`, `DISCORD_COMPRESS`, `DISCORD_SHARD`,
//! `DISCORD_SESSION_FILE`, `DISCORD_KEEP_SESSION`, `DISCORD_RECORD`, `DISCORD_TRACE`.
//!
//! Type commands on stdin, one raw gateway JSON object per line, e.g.
//! `{"op":3,"d":{"since":null,"activities":[],"status":"idle","afk":false}}`.

// Public so that the demo, which includes this file, uses it too.
pub mod common;

use std::process::ExitCode;

use common::Driver;
use discord_gateway::tokio::Shard;
use tokio::io::AsyncBufReadExt;

pub fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("tokio_driver: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(run());
    // Reading stdin blocks a thread until the next line: don't wait for it.
    runtime.shutdown_background();
    code
}

async fn run() -> ExitCode {
    let mut driver = match Driver::from_env("tokio_driver") {
        Ok(driver) => driver,
        Err(code) => return code,
    };
    let mut shard = match driver.start(Shard::from_config) {
        Ok(shard) => shard,
        Err(code) => return code,
    };
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let (mut stdin_open, mut closing) = (true, false);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            // Cancel-safe: the shard keeps its state when another branch wins.
            event = shard.next_event() => match event {
                Some(event) => driver.event(&event),
                None => break,
            },
            line = stdin.next_line(), if stdin_open => match line {
                Ok(Some(line)) => driver.printer().command(&line, |c| shard.command(c)),
                _ => stdin_open = false,
            },
            _ = &mut ctrl_c, if !closing => {
                closing = true;
                let keep = driver.shutting_down();
                // The shard then reports `Closed` and ends.
                shard.close(keep).await;
            }
        }
    }
    driver.finish(shard.session())
}
