//! A Discord gateway client with no async runtime: `discord_gateway::blocking::Shard`, an
//! iterator of events on the main thread, prints one line per event; each line typed on
//! stdin is sent as a raw gateway command (from a thread of its own, through a
//! `ShardSender`), and Ctrl-C closes gracefully (saving the session to resume next time, if
//! asked to).
//!
//! ```text
//! DISCORD_TOKEN=... cargo run --example blocking_driver
//! ```
//!
//! Settings: as the tokio driver (see `examples/common/settings.rs`).

mod common;

use std::process::ExitCode;

use common::Driver;
use discord_gateway::blocking::Shard;

fn main() -> ExitCode {
    let mut driver = match Driver::from_env("blocking_driver") {
        Ok(driver) => driver,
        Err(code) => return code,
    };
    let mut shard = match driver.start(Shard::from_config) {
        Ok(shard) => shard,
        Err(code) => return code,
    };
    // Commands from another thread: the shard wakes for each and answers with its verdict.
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
    for event in shard.iter() {
        driver.event(&event);
    }
    driver.finish(shard.session())
}
