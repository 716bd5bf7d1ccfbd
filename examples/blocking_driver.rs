//! A Discord gateway client with no async runtime: std threads and tungstenite (rustls for
//! `wss://`). The loop blocks in the socket's read until the machine's next deadline; Ctrl-C
//! shuts down gracefully.
//!
//! ```text
//! DISCORD_TOKEN=... cargo run --example blocking_driver
//! ```
//!
//! Settings: as the tokio driver (see `examples/common/settings.rs`).

#[path = "common/blocking_loop.rs"]
mod blocking_loop;
mod common;

use std::process::ExitCode;
use std::sync::mpsc;

use common::{Control, DriverCore, Settings};

fn main() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("blocking_driver: {e}");
            return ExitCode::from(2);
        }
    };
    let core = match DriverCore::new(settings.core_options(), common::stdout_sink()) {
        Ok(core) => core,
        Err(e) => {
            eprintln!("blocking_driver: {e}");
            return ExitCode::from(2);
        }
    };
    let (control, commands) = mpsc::channel();
    if let Err(e) = ctrlc::set_handler(move || {
        let _ = control.send(Control::Stop);
    }) {
        eprintln!("blocking_driver: cannot install the Ctrl-C handler: {e}");
        return ExitCode::FAILURE;
    }
    let summary = blocking_loop::run(core, commands);
    match summary.fatal {
        Some(reason) => {
            eprintln!("blocking_driver: stopped: {reason}");
            ExitCode::FAILURE
        }
        None => ExitCode::SUCCESS,
    }
}
