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

use common::{Control, DriverCore, Settings};
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

fn main() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("tokio_driver: {e}");
            return ExitCode::from(2);
        }
    };
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
    let code = runtime.block_on(drive(settings));
    // stdin's reader blocks a thread until the next line: don't wait for it.
    runtime.shutdown_background();
    code
}

/// Runs the tokio driver with `settings`, reading commands from stdin and stopping on
/// Ctrl-C. Shared with the demo's real-gateway mode.
async fn drive(settings: common::Settings) -> ExitCode {
    let core = match DriverCore::new(settings.core_options(), common::stdout_sink()) {
        Ok(core) => core,
        Err(e) => {
            eprintln!("tokio_driver: {e}");
            return ExitCode::from(2);
        }
    };
    let (control, commands) = mpsc::unbounded_channel();
    spawn_stdin_reader(control.clone());
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = control.send(Control::Stop);
        }
    });
    let summary = tokio_loop::run(core, commands).await;
    match summary.fatal {
        Some(reason) => {
            eprintln!("tokio_driver: stopped: {reason}");
            ExitCode::FAILURE
        }
        None => ExitCode::SUCCESS,
    }
}

/// Forwards stdin lines as commands until EOF.
fn spawn_stdin_reader(control: mpsc::UnboundedSender<Control>) {
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if control.send(Control::Command(line)).is_err() {
                break;
            }
        }
    });
}
