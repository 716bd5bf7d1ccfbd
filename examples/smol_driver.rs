//! A Discord gateway client on smol: `discord_gateway::smol::Shard` prints one line per
//! event, each line typed on stdin is sent as a raw gateway command (from a thread of its
//! own, through a `ShardSender`), and Ctrl-C closes gracefully (saving the session to
//! resume next time, if asked to).
//!
//! ```text
//! DISCORD_TOKEN=... cargo run --example smol_driver
//! ```
//!
//! Settings: as the tokio driver (see `examples/common/settings.rs`).

mod common;

use std::process::ExitCode;

use common::Driver;
use discord_gateway::smol::Shard;

fn main() -> ExitCode {
    let mut driver = match Driver::from_env("smol_driver") {
        Ok(driver) => driver,
        Err(code) => return code,
    };
    let mut shard = match driver.start(Shard::from_config) {
        Ok(shard) => shard,
        Err(code) => return code,
    };
    // Commands from another thread: the shard answers each with its verdict.
    let (printer, sender) = (driver.printer(), shard.sender());
    std::thread::spawn(move || {
        for line in std::io::stdin().lines().map_while(Result::ok) {
            printer.command(&line, |command| sender.send_blocking(command));
        }
    });
    // Ctrl-C: close from the handler's thread; the shard reports `Closed` and ends.
    let (printer, sender, keep) = (driver.printer(), shard.sender(), driver.keep_session());
    if let Err(e) = ctrlc::set_handler(move || {
        printer.shutting_down(keep);
        sender.close_blocking(keep);
    }) {
        return driver.no_ctrl_c(&e);
    }
    // smol's executor: `smol::block_on` is this function.
    async_io::block_on(async {
        while let Some(event) = shard.next_event().await {
            driver.event(&event);
        }
    });
    driver.finish(shard.session())
}
