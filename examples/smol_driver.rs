//! A Discord gateway client on smol: async-tungstenite over smol's TCP (futures-rustls for
//! `wss://`), the machine's deadlines as smol timers, Ctrl-C for a graceful shutdown.
//!
//! ```text
//! DISCORD_TOKEN=... cargo run --example smol_driver
//! ```
//!
//! Settings: as the tokio driver (see `examples/common/settings.rs`).

mod common;
#[path = "common/smol_loop.rs"]
mod smol_loop;

use std::process::ExitCode;

use common::{Control, DriverCore, Settings};

fn main() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("smol_driver: {e}");
            return ExitCode::from(2);
        }
    };
    let core = match DriverCore::new(settings.core_options(), common::stdout_sink()) {
        Ok(core) => core,
        Err(e) => {
            eprintln!("smol_driver: {e}");
            return ExitCode::from(2);
        }
    };
    let (control, commands) = smol::channel::unbounded();
    if let Err(e) = ctrlc::set_handler(move || {
        let _ = control.try_send(Control::Stop);
    }) {
        eprintln!("smol_driver: cannot install the Ctrl-C handler: {e}");
        return ExitCode::FAILURE;
    }
    let summary = smol::block_on(smol_loop::run(core, commands));
    match summary.fatal {
        Some(reason) => {
            eprintln!("smol_driver: stopped: {reason}");
            ExitCode::FAILURE
        }
        None => ExitCode::SUCCESS,
    }
}
