//! [`FleetBuilder`]: how a fleet runs (its identify queue, its session store, each shard's
//! options, the size of its event stream), and its start.

use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};

use discord_gateway_proto::shard::GatewayBot;
use discord_gateway_proto::{GatewayConfig, SessionStartLimit, ShardId};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, Notify};

use super::handle::{FleetError, FleetHandle, OptionsFn, Shared};
use super::ownership::Store;
use super::{Fleet, DEFAULT_EVENT_CAPACITY};
use crate::identify::SharedIdentifyQueue;
use crate::options::ShardOptions;

/// The session-start limit assumed when none is given: Discord's default for a bot (1,000
/// a day, one bucket). Prefer `GET /gateway/bot`'s ([`FleetBuilder::gateway_bot`]).
const DEFAULT_LIMIT: SessionStartLimit = SessionStartLimit {
    total: 1000,
    remaining: 1000,
    reset_after: 24 * 60 * 60 * 1000,
    max_concurrency: 1,
};

/// How a [`Fleet`] runs: its identify queue, its session store, each shard's options, the
/// size of its event stream.
pub struct FleetBuilder {
    config: GatewayConfig,
    identify: Option<SharedIdentifyQueue>,
    limit: Option<SessionStartLimit>,
    store: Store,
    options: OptionsFn,
    event_capacity: usize,
}

impl std::fmt::Debug for FleetBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetBuilder")
            .field("config", &self.config)
            .field("identify", &self.identify)
            .field("limit", &self.limit)
            .field("store", &self.store.is_some())
            .field("event_capacity", &self.event_capacity)
            .finish_non_exhaustive()
    }
}

impl FleetBuilder {
    /// A fleet of `config`'s bot, every other setting at its default: an in-process
    /// identify queue with Discord's default limit (1,000 session starts, one bucket; give
    /// the real one with [`gateway_bot`](Self::gateway_bot)), no session store, default
    /// shard options.
    pub fn new(config: GatewayConfig) -> Self {
        FleetBuilder {
            config,
            identify: None,
            limit: None,
            store: Store::none(),
            options: Arc::new(|_| ShardOptions::new()),
            event_capacity: DEFAULT_EVENT_CAPACITY,
        }
    }

    /// Takes `GET /gateway/bot`'s answer: its gateway URL, and its `session_start_limit`
    /// for the in-process identify queue.
    pub fn gateway_bot(mut self, bot: &GatewayBot) -> Self {
        self.config = self.config.with_gateway_url(bot.url.clone());
        self.limit = Some(bot.session_start_limit);
        self
    }

    /// The limit of the in-process identify queue (`max_concurrency` buckets, the daily
    /// budget).
    pub fn session_start_limit(mut self, limit: SessionStartLimit) -> Self {
        self.limit = Some(limit);
        self
    }

    /// An identify queue of your own (shared with shards outside the fleet, a custom
    /// spacing, a coordinator of your own).
    pub fn identify_queue(mut self, queue: SharedIdentifyQueue) -> Self {
        self.identify = Some(queue);
        self
    }

    /// Identify through Redis, shared with every process of the bot (see the module docs).
    #[cfg(feature = "redis")]
    pub fn redis_identify(mut self, queue: crate::redis::RedisIdentifyQueue) -> Self {
        self.identify = Some(SharedIdentifyQueue::redis(queue));
        self
    }

    /// Keep each shard's session and ownership in Redis: claim before running, save while
    /// running, hand over on a graceful stop (see the module docs).
    #[cfg(feature = "redis")]
    pub fn session_store(mut self, store: crate::redis::RedisSessionStore) -> Self {
        self.store = Store::redis(store);
        self
    }

    /// The options of each shard (trace, send timeout, buffers, TLS...). The fleet sets
    /// the shard id, the identify queue and the session to resume over what this returns.
    pub fn shard_options(
        mut self,
        options: impl Fn(ShardId) -> ShardOptions + Send + Sync + 'static,
    ) -> Self {
        self.options = Arc::new(options);
        self
    }

    /// How many events the merged stream holds before shards stop reading (default
    /// [`DEFAULT_EVENT_CAPACITY`]; at least 1).
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.event_capacity = capacity.max(1);
        self
    }

    /// Starts `shards` on the current tokio runtime (call it inside one). Every shard's
    /// configuration is checked first: nothing starts if one is refused.
    pub fn start(self, shards: impl IntoIterator<Item = ShardId>) -> Result<Fleet, FleetError> {
        let runtime = Handle::try_current().map_err(|_| FleetError::NoRuntime)?;
        let shards: Vec<ShardId> = shards.into_iter().collect();
        // Identify is the queue's to grant, never the machine's own.
        let config = self.config.with_auto_grant(false);
        for shard in &shards {
            config.clone().with_shard(*shard).validate()?;
        }
        let identify = self
            .identify
            .unwrap_or_else(|| SharedIdentifyQueue::new(self.limit.unwrap_or(DEFAULT_LIMIT)));
        let (sender, events) = mpsc::channel(self.event_capacity);
        let handle = FleetHandle {
            shared: Arc::new(Shared {
                config: Arc::new(config),
                options: self.options,
                identify,
                store: self.store,
                events: Mutex::new(Some(sender)),
                slots: Mutex::new(Default::default()),
                shard_count: AtomicU32::new(0),
                resharding: Mutex::new(None),
                changed: Notify::new(),
                runtime,
            }),
        };
        for shard in shards {
            handle.add(shard)?;
        }
        Ok(Fleet { handle, events })
    }
}
