//! A Discord gateway client on tokio: tokio-tungstenite (rustls for `wss://`), the machine's
//! deadlines as tokio timers, commands from stdin, Ctrl-C for a graceful shutdown.
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

mod common;
#[path = "common/tokio_loop.rs"]
mod tokio_loop;

use std::process::ExitCode;

use common::Settings;

fn main() -> ExitCode {
    match Settings::from_env() {
        Ok(settings) => tokio_loop::main_with(settings, "tokio_driver"),
        Err(e) => {
            eprintln!("tokio_driver: {e}");
            ExitCode::from(2)
        }
    }
}
