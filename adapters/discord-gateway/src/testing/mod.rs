//! Test tools (feature `testing`): [`FakeGatewayServer`], a fake Discord gateway on
//! loopback, so that a bot's own loop (its reactions, its commands, its session file) is
//! tested against real WebSockets, not just the protocol machine.
//!
//! The server is the protocol crate's scripted, sans-IO [`FakeGateway`] served over real
//! sockets. It runs on a thread of its own with its own tokio runtime, so the same server
//! tests a shard on any runtime (tokio, smol, a blocking thread); every handle method has a
//! blocking form and an `async` one that works under any executor.
//!
//! ```no_run
//! use std::time::Duration;
//! use discord_gateway::proto::sim::{FakeGateway, FakeGatewayConfig, ScriptAction, Trigger};
//! use discord_gateway::testing::FakeGatewayServer;
//! use discord_gateway::tokio::Shard;
//! use discord_gateway::{GatewayConfig, Intents, ShardEvent, ShardOptions, Token};
//!
//! # async fn test() {
//! let mut gateway = FakeGateway::new(FakeGatewayConfig::default());
//! gateway.after(
//!     Trigger::ReadySent(1),
//!     Duration::from_millis(10),
//!     ScriptAction::dispatch("MESSAGE_CREATE", r#"{"content":"ping"}"#),
//! );
//! let server = FakeGatewayServer::start(gateway);
//!
//! let config = GatewayConfig::new(Token::new("test-token"), Intents::GUILD_MESSAGES)
//!     .with_gateway_url(server.url());
//! let mut shard = Shard::from_config(config, ShardOptions::new()).unwrap();
//! while let Some(event) = shard.next_event().await {
//!     if let ShardEvent::Dispatch(d) = event {
//!         if d.name == "MESSAGE_CREATE" {
//!             break;
//!         }
//!     }
//! }
//! let gateway = server.stop_async().await;
//! assert_eq!(gateway.received_op(2).count(), 1, "one Identify");
//! # }
//! ```

mod describe;
mod server;

use std::time::Duration;

use discord_gateway_proto::sim::{ConnectionId, FakeGateway, ScriptAction};
use futures_channel::oneshot;

pub use describe::{describe_client_frame, describe_server_frame};

use crate::sender::block_on;
use server::Control;

/// A running fake gateway on 127.0.0.1: the main gateway on one port and the resume
/// gateway (READY's `resume_gateway_url`) on another, so a resume to the wrong URL shows.
///
/// Time zero of the fake's script ([`Trigger::At`](discord_gateway_proto::sim::Trigger::At))
/// is when the server started. Dropping the server stops it.
#[derive(Debug)]
pub struct FakeGatewayServer {
    url: String,
    resume_url: String,
    control: ::tokio::sync::mpsc::UnboundedSender<Control>,
    thread: Option<std::thread::JoinHandle<FakeGateway>>,
}

impl FakeGatewayServer {
    /// Starts serving `gateway` on two free loopback ports (its `resume_url` is set to the
    /// second). Returns at once, ready for connections.
    ///
    /// # Panics
    /// If no loopback port can be bound or no thread started (a test cannot go on then);
    /// [`try_start`](Self::try_start) returns the error instead.
    pub fn start(gateway: FakeGateway) -> Self {
        match Self::try_start(gateway) {
            Ok(server) => server,
            Err(error) => panic!("cannot start the fake gateway on loopback: {error}"),
        }
    }

    /// [`start`](Self::start), with a log line for everything the server does or receives
    /// (`#2 → dispatch #3 MESSAGE_CREATE`, `#2 ← op 1 Heartbeat`...), with the time since
    /// the start. Frames from the client are described by opcode only (Identify carries
    /// the token).
    pub fn start_with_log(
        gateway: FakeGateway,
        log: impl FnMut(Duration, &str) + Send + 'static,
    ) -> Self {
        match server::spawn(gateway, Some(Box::new(log))) {
            Ok(server) => server,
            Err(error) => panic!("cannot start the fake gateway on loopback: {error}"),
        }
    }

    /// [`start`](Self::start) that returns the error instead of panicking.
    pub fn try_start(gateway: FakeGateway) -> std::io::Result<Self> {
        server::spawn(gateway, None)
    }

    fn from_parts(
        url: String,
        resume_url: String,
        control: ::tokio::sync::mpsc::UnboundedSender<Control>,
        thread: std::thread::JoinHandle<FakeGateway>,
    ) -> Self {
        FakeGatewayServer {
            url,
            resume_url,
            control,
            thread: Some(thread),
        }
    }

    /// `ws://127.0.0.1:PORT` of the main gateway: the shard's gateway URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `ws://127.0.0.1:PORT` of the resume gateway.
    pub fn resume_url(&self) -> &str {
        &self.resume_url
    }

    /// Does `action` now, on the open connection (a dispatch, op 7, a close...).
    pub fn perform(&self, action: ScriptAction) {
        let _ = self.control.send(Control::Perform(action));
    }

    /// Runs `f` on the fake as it is now (to read what it received, or to script more),
    /// blocking the thread until it ran. From async code use
    /// [`inspect_async`](Self::inspect_async).
    pub fn inspect<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut FakeGateway) -> R + Send + 'static,
    ) -> Option<R> {
        block_on(self.inspect_async(f))
    }

    /// [`inspect`](Self::inspect), awaited (any executor). `None` if the server stopped.
    pub async fn inspect_async<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut FakeGateway) -> R + Send + 'static,
    ) -> Option<R> {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(move |gateway: &mut FakeGateway| {
            let _ = reply.send(f(gateway));
        });
        self.control.send(Control::Inspect(job)).ok()?;
        answer.await.ok()
    }

    /// Blocks until `predicate` holds for the fake (checked after everything the server
    /// does), or `timeout` passes. Returns whether it held.
    pub fn wait_until(
        &self,
        timeout: Duration,
        predicate: impl FnMut(&FakeGateway) -> bool + Send + 'static,
    ) -> bool {
        block_on(self.wait_until_async(timeout, predicate))
    }

    /// [`wait_until`](Self::wait_until), awaited (any executor).
    pub async fn wait_until_async(
        &self,
        timeout: Duration,
        predicate: impl FnMut(&FakeGateway) -> bool + Send + 'static,
    ) -> bool {
        let (reply, answer) = oneshot::channel();
        let sent = self.control.send(Control::Wait {
            predicate: Box::new(predicate),
            timeout,
            reply,
        });
        sent.is_ok() && answer.await.unwrap_or(false)
    }

    /// The WebSocket upgrade requests received so far, in order (blocking).
    pub fn upgrade_requests(&self) -> Vec<UpgradeRequest> {
        block_on(self.upgrade_requests_async())
    }

    /// [`upgrade_requests`](Self::upgrade_requests), awaited (any executor).
    pub async fn upgrade_requests_async(&self) -> Vec<UpgradeRequest> {
        let (reply, answer) = oneshot::channel();
        if self.control.send(Control::Requests(reply)).is_err() {
            return Vec::new();
        }
        answer.await.unwrap_or_default()
    }

    /// Stops serving (every connection dropped) and returns the fake, for what it received
    /// and recorded: frames, connections, sessions, protocol violations. Blocks the thread
    /// briefly; from async code prefer [`stop_async`](Self::stop_async).
    pub fn stop(mut self) -> FakeGateway {
        let _ = self.control.send(Control::Stop);
        self.join()
    }

    /// [`stop`](Self::stop), awaited (any executor).
    pub async fn stop_async(self) -> FakeGateway {
        let (reply, answer) = oneshot::channel();
        let _ = self.control.send(Control::StopNotify(reply));
        let _ = answer.await;
        // The thread has handed its last answer; joining takes no time now.
        self.stop()
    }

    fn join(&mut self) -> FakeGateway {
        match self.thread.take().map(std::thread::JoinHandle::join) {
            Some(Ok(gateway)) => gateway,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => FakeGateway::default(),
        }
    }
}

/// One WebSocket upgrade request the server received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpgradeRequest {
    /// The fake's number for the connection it asked for.
    pub connection: ConnectionId,
    /// The full URL, query included.
    pub url: String,
    /// The `User-Agent` header, if any.
    pub user_agent: Option<String>,
}

impl Drop for FakeGatewayServer {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.control.send(Control::Stop);
            // Not joined: a drop must not block; the thread ends by itself.
        }
    }
}
