//! [`ShardOptions`]: everything about a shard beyond its [`GatewayConfig`], shared by every
//! runtime's shard.

use std::fmt;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use discord_gateway_proto::{GatewayConfig, Session, ShardId};

use crate::identify::SharedIdentifyQueue;
use crate::websocket::BufferSizes;

/// How a shard runs, beyond the protocol settings of its [`GatewayConfig`]. Every field has
/// a default that suits a bot; set what you need with the `with_*`-style methods.
///
/// ```
/// use std::time::Duration;
/// use discord_gateway::ShardOptions;
///
/// let options = ShardOptions::new()
///     .send_timeout(Duration::from_secs(5))
///     .trace(true);
/// # let _ = options;
/// ```
pub struct ShardOptions {
    pub(crate) shard: Option<ShardId>,
    pub(crate) session: Option<Session>,
    pub(crate) identify_queue: Option<SharedIdentifyQueue>,
    pub(crate) seed: Option<u64>,
    pub(crate) trace: bool,
    pub(crate) record: Option<Box<dyn Write + Send>>,
    pub(crate) send_timeout: Duration,
    pub(crate) close_grace: Duration,
    pub(crate) buffers: BufferSizes,
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
    pub(crate) user_agent: Option<String>,
}

impl fmt::Debug for ShardOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShardOptions")
            .field("shard", &self.shard)
            .field("session", &self.session)
            .field("identify_queue", &self.identify_queue)
            .field("seed", &self.seed)
            .field("trace", &self.trace)
            .field("record", &self.record.as_ref().map(|_| "<writer>"))
            .field("send_timeout", &self.send_timeout)
            .field("close_grace", &self.close_grace)
            .field("buffers", &self.buffers)
            .field("tls", &self.tls.as_ref().map(|_| "<custom>"))
            .field("user_agent", &self.user_agent)
            .finish()
    }
}

impl Default for ShardOptions {
    fn default() -> Self {
        ShardOptions {
            shard: None,
            session: None,
            identify_queue: None,
            seed: None,
            trace: false,
            record: None,
            send_timeout: DEFAULT_SEND_TIMEOUT,
            close_grace: DEFAULT_CLOSE_GRACE,
            buffers: BufferSizes::default(),
            tls: None,
            user_agent: None,
        }
    }
}

/// The longest one send may take before the connection counts as lost.
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a close frame gets to leave before the socket is dropped anyway.
pub const DEFAULT_CLOSE_GRACE: Duration = Duration::from_secs(1);

impl ShardOptions {
    /// Every default.
    pub fn new() -> Self {
        ShardOptions::default()
    }

    /// The shard to run, overriding the configuration's (so many shards can share one
    /// [`GatewayConfig`]).
    pub fn shard(mut self, shard: ShardId) -> Self {
        self.shard = Some(shard);
        self
    }

    /// A saved session to resume on start (from [`close`](crate::tokio::Shard::close) in an
    /// earlier run). A session too old to resume is dropped and the shard identifies.
    pub fn session(mut self, session: Session) -> Self {
        self.session = Some(session);
        self
    }

    /// Take turns identifying with the other shards holding the same queue. Without one, the
    /// shard identifies as soon as the gateway lets it (right for a single shard).
    pub fn identify_queue(mut self, queue: SharedIdentifyQueue) -> Self {
        self.identify_queue = Some(queue);
        self
    }

    /// The seed of the machine's random choices (heartbeat and backoff jitter). Default: a
    /// different one per shard and run.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Report each decision of the machine as a [`ShardEvent::Decision`](crate::ShardEvent::Decision)
    /// (why it reconnects, resumes, identifies...). Off by default.
    pub fn trace(mut self, on: bool) -> Self {
        self.trace = on;
        self
    }

    /// Record every input and output of the machine to `writer`, one JSON line each (the
    /// token redacted); the protocol crate's `record::replay` reproduces the run.
    pub fn record(mut self, writer: impl Write + Send + 'static) -> Self {
        self.record = Some(Box::new(writer));
        self
    }

    /// The longest one send may take before the connection counts as lost (default 10 s).
    pub fn send_timeout(mut self, timeout: Duration) -> Self {
        self.send_timeout = timeout;
        self
    }

    /// How long a close frame gets before the socket is dropped anyway (default 1 s). The
    /// shard never waits for the peer's answer.
    pub fn close_grace(mut self, grace: Duration) -> Self {
        self.close_grace = grace;
        self
    }

    /// The WebSocket buffer sizes (defaults fitted to Discord's traffic).
    pub fn buffers(mut self, buffers: BufferSizes) -> Self {
        self.buffers = buffers;
        self
    }

    /// A rustls configuration of your own for `wss://` (custom roots, a proxy's CA...).
    /// Default: [`default_tls_config`](crate::default_tls_config).
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// The `User-Agent` of the WebSocket upgrade (default [`user_agent`](crate::user_agent)).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }
}

/// A seed that differs per shard and per run (not secret: jitter only).
#[allow(clippy::disallowed_methods)] // the adapter owns the clock
pub(crate) fn fresh_seed(config: &GatewayConfig, shard: ShardId) -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    std::time::SystemTime::now().hash(&mut hasher);
    shard.id.hash(&mut hasher);
    config.gateway_url.hash(&mut hasher);
    hasher.finish()
}
