//! Helpers for the Redis fleet tests: the server's URL, a namespace per test, child
//! processes (the test binary re-running one test in a child role), and a private
//! redis-server for the outage tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use discord_gateway::redis::{Namespace, RedisLink};
use discord_gateway_proto::SessionStartLimit;

/// The variable naming the shared test server (`.ci/run` starts one on port 6399).
pub const URL_VARIABLE: &str = "DISCORD_TEST_REDIS_URL";

/// The variable that makes a re-run test binary act as a child process.
pub const CHILD_VARIABLE: &str = "DISCORD_GATEWAY_TEST_CHILD";

/// The shared test server's URL. The tests that call this are `#[ignore]`d without one;
/// when run anyway, they fail here with how to start it.
pub fn redis_url() -> String {
    match std::env::var(URL_VARIABLE) {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "{URL_VARIABLE} is not set: start a server \
             (redis-server --port 6399 --save '' --appendonly no --daemonize yes) \
             and set {URL_VARIABLE}=redis://127.0.0.1:6399/"
        ),
    }
}

/// A link to the shared test server.
pub fn link() -> RedisLink {
    RedisLink::open(&redis_url()).expect("a valid Redis URL")
}

/// A namespace no other test or run shares.
pub fn namespace(test: &str) -> Namespace {
    Namespace::new(unique_prefix(test))
}

/// A key prefix no other test or run shares.
pub fn unique_prefix(test: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    format!(
        "test:{test}:{}:{:08x}",
        std::process::id(),
        hasher.finish() as u32
    )
}

/// A `session_start_limit`.
pub fn limit(remaining: u32, max_concurrency: u32) -> SessionStartLimit {
    SessionStartLimit {
        total: 1000,
        remaining,
        reset_after: 86_400_000,
        max_concurrency,
    }
}

/// The child role this process was started in, if it is a child.
pub fn child_role() -> Option<String> {
    std::env::var(CHILD_VARIABLE).ok()
}

/// A child process: this test binary running test `test` alone in role `role`, with
/// `env`. Its stdout lines are collected with the instant each arrived.
pub struct ChildProcess {
    pub child: Child,
    pub lines: Arc<Mutex<Vec<(Instant, String)>>>,
    stdin: Option<std::process::ChildStdin>,
}

impl ChildProcess {
    pub fn spawn(test: &str, role: &str, env: &[(&str, String)]) -> Self {
        let exe = std::env::current_exe().expect("the test binary's path");
        let mut command = Command::new(exe);
        command
            .args([
                test,
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_VARIABLE, role)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("spawn a child test process");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push((Instant::now(), line));
            }
        });
        ChildProcess {
            child,
            lines,
            stdin,
        }
    }

    /// Writes one line to the child's stdin (see [`instructions`]).
    pub fn tell(&mut self, line: &str) {
        use std::io::Write;
        let stdin = self.stdin.as_mut().expect("the child's stdin");
        writeln!(stdin, "{line}").expect("write to the child");
        stdin.flush().expect("flush to the child");
    }

    /// The lines starting with `FLEET `, without the prefix, with when they arrived.
    pub fn reports(&self) -> Vec<(Instant, String)> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(at, line)| line.strip_prefix("FLEET ").map(|r| (*at, r.to_string())))
            .collect()
    }

    /// Waits until a report satisfies `pred` (panics after `limit`).
    pub fn wait_for(
        &self,
        limit: Duration,
        what: &str,
        pred: impl Fn(&[(Instant, String)]) -> bool,
    ) {
        let start = Instant::now();
        while !pred(&self.reports()) {
            assert!(
                start.elapsed() < limit,
                "child did not report {what} within {limit:?}: {:?}",
                self.lines.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the child to exit (panics after `limit`, killing it).
    pub fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("child status") {
                // Let the reader thread drain the pipe.
                std::thread::sleep(Duration::from_millis(50));
                return status;
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                panic!("child still running after {limit:?}: {:?}", self.reports());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: the process dies at once, wherever it is.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL the child");
        let _ = self.child.wait();
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// In a child: the lines the parent [`tell`](ChildProcess::tell)s, as they come (read by a
/// thread of their own; the channel closes when the parent closes the pipe).
pub fn instructions() -> tokio::sync::mpsc::UnboundedReceiver<String> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(std::io::stdin()).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Prints one report line for the parent (on a line of its own: libtest's "test name ..."
/// has no newline yet when the test starts printing).
pub fn report(line: impl AsRef<str>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = write!(out, "\nFLEET {}\n", line.as_ref());
    let _ = out.flush();
}

/// A redis-server of the test's own, on a port of its own, without persistence (a restart
/// starts empty), so a test can stop, freeze and restart it.
pub struct PrivateRedis {
    pub port: u16,
    process: Option<Child>,
}

impl PrivateRedis {
    /// Starts one on a free port.
    pub fn start() -> Self {
        let port = {
            let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
            listener.local_addr().unwrap().port()
        };
        let mut server = PrivateRedis {
            port,
            process: None,
        };
        server.restart();
        server
    }

    /// The URL to reach it.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The server's process id (while it runs).
    pub fn pid(&self) -> u32 {
        self.process.as_ref().expect("server running").id()
    }

    /// Kills the server (SIGKILL): its data is gone.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }

    /// Starts the server again (empty), and waits until it answers.
    pub fn restart(&mut self) {
        self.kill();
        let process = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server on PATH (.ci/run installs it)");
        self.process = Some(process);
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis-server did not start on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` (`STOP`, `CONT`) to the server.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .expect("kill(1)");
        assert!(status.success(), "kill -{signal} failed");
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        if self.process.is_some() {
            // A frozen server must be woken to die cleanly.
            let _ = Command::new("kill")
                .args(["-CONT", &self.pid().to_string()])
                .status();
        }
        self.kill();
    }
}
