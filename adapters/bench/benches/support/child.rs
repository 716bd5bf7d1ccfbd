//! The bench binary runs its other parts (the fake gateway, the clients of the idle bench)
//! as child processes of itself, so that each one's heap and CPU time are its own: the
//! server's never count against a client, nor one client's against the other.

use std::io::{BufRead, BufReader, Write};
use std::process::{ChildStdin, ChildStdout, Command, Stdio};

use super::ROLE;

/// A running part, talked to in lines: it prints `KEY rest` lines on its standard output
/// and reads commands on its standard input.
pub struct Child {
    name: String,
    process: std::process::Child,
    lines: BufReader<ChildStdout>,
    stdin: Option<ChildStdin>,
}

impl Child {
    /// Starts this binary again as `role`, with `env` added to the environment.
    pub fn spawn(role: &str, name: &str, env: &[(&str, String)]) -> Child {
        let exe = std::env::current_exe().expect("the bench binary's path");
        let mut command = Command::new(exe);
        command
            .env(ROLE, role)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut process = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let lines = BufReader::new(process.stdout.take().expect("piped stdout"));
        let stdin = process.stdin.take();
        Child {
            name: name.to_string(),
            process,
            lines,
            stdin,
        }
    }

    /// Reads lines until one starts with `key` and a space; returns the rest of it. Other
    /// lines are passed on to this process's standard error.
    ///
    /// # Panics
    /// If the child ends first.
    pub fn expect(&mut self, key: &str) -> String {
        let prefix = format!("{key} ");
        let mut line = String::new();
        loop {
            line.clear();
            let n = self
                .lines
                .read_line(&mut line)
                .unwrap_or_else(|e| panic!("{}: {e}", self.name));
            assert!(n > 0, "{} ended before saying {key}", self.name);
            if let Some(rest) = line.trim_end().strip_prefix(&prefix) {
                return rest.to_string();
            }
            eprint!("[{}] {line}", self.name);
        }
    }

    /// Sends one command line.
    pub fn send(&mut self, line: &str) {
        if let Some(stdin) = self.stdin.as_mut() {
            let _ = writeln!(stdin, "{line}");
            let _ = stdin.flush();
        }
    }

    /// Closes its standard input (the parts end when it closes) and waits for it to exit.
    pub fn finish(mut self) {
        drop(self.stdin.take());
        let _ = self.process.wait();
    }
}

/// For a child part: prints one `KEY rest` line for the parent (standard output is
/// line-buffered, so it leaves at once).
pub fn say(key: &str, rest: &str) {
    println!("{key} {rest}");
}

/// For a child part: blocks until the parent closes standard input, or sends `line`.
/// Returns whether `line` came (false: the parent is gone).
pub fn wait_for_line(line: &str) -> bool {
    let stdin = std::io::stdin();
    for input in stdin.lock().lines() {
        match input {
            Ok(input) if input.trim() == line => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}
