//! A fleet: many shards of one bot in one process (up to thousands), with one identify
//! queue, one merged event stream, a command handle and a status per shard; shards added
//! and removed while it runs; several processes coordinated through Redis; shards handed
//! from one process to another; resharding without downtime.
//!
//! ```no_run
//! use discord_gateway::fleet::{Fleet, FleetEvent};
//! use discord_gateway::{GatewayConfig, Intents, ShardEvent, Token};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let token = Token::new(std::env::var("DISCORD_TOKEN")?);
//! let config = GatewayConfig::new(token, Intents::GUILDS | Intents::GUILD_MESSAGES);
//! // GET /gateway/bot, then every recommended shard, one identify queue for them all.
//! let mut fleet = Fleet::start_recommended(config).await?;
//! while let Some(event) = fleet.next_event().await {
//!     match event {
//!         FleetEvent::Shard { shard, event: ShardEvent::Dispatch(d) } => {
//!             println!("shard {}: {} #{}", shard.id, d.name, d.sequence);
//!         }
//!         FleetEvent::Shard { shard, event: ShardEvent::Disconnected { reason, .. } } => {
//!             eprintln!("shard {} disconnected: {reason:?}", shard.id);
//!         }
//!         _ => {}
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # One process
//!
//! [`FleetBuilder::start`] takes any set of shards (a range of `GET /gateway/bot`'s
//! recommendation, [`GatewayBot::shard_ids`](crate::proto::shard::GatewayBot::shard_ids) or
//! [`shard_ids_for_process`](crate::proto::shard::GatewayBot::shard_ids_for_process)), or
//! [`Fleet::start_recommended`] asks Discord. Every shard takes turns in one
//! [`SharedIdentifyQueue`]: `max_concurrency` buckets, 5 s apart, the daily budget.
//! [`Fleet::next_event`] merges every shard's events, each tagged with its shard
//! ([`FleetEvent::Shard`]); [`FleetHandle::sender`] reaches one shard;
//! [`FleetHandle::status`] tells its phase, latency, readiness and reconnect count;
//! [`FleetHandle::add`] and [`FleetHandle::remove`] change the set while it runs.
//!
//! # How it scales
//!
//! Each shard runs in a task of its own on the tokio runtime (multi-threaded, so shards
//! spread over the cores), driving its connection and forwarding its events into one
//! bounded channel. A task costs a few hundred bytes beside the shard; an idle shard does
//! nothing between its heartbeats (no polling, one timer).
//!
//! **Backpressure.** The channel holds [`FleetBuilder::event_capacity`] events (default
//! 4096). When it is full, a shard with an event to deliver stops *reading its socket*:
//! the bytes wait in the kernel and TCP slows Discord down. The shard keeps being driven
//! meanwhile: heartbeats leave on time, commands are sent, a lost connection is resumed;
//! whatever is already in the socket is read just before each timer fires, so a heartbeat's
//! ACK is seen before the zombie verdict. The events read then (and the shard's own
//! lifecycle events) wait in order in the shard's task until the channel has room; so a
//! shard holds at most what arrived before its next timer, and nothing is dropped. A slow
//! application slows the sockets, never the heartbeats. Channel slots are served in the
//! order shards asked for them.
//!
//! # Several processes, one Redis
//!
//! With the `redis` feature, [`FleetBuilder::redis_identify`] makes every identify ask a
//! [`RedisIdentifyQueue`](crate::redis::RedisIdentifyQueue) shared by all processes (bucket
//! spacing and the daily budget, fleet-wide and atomic), and
//! [`FleetBuilder::session_store`] a [`RedisSessionStore`](crate::redis::RedisSessionStore):
//!
//! - a shard's task **claims** the shard's lease before starting it, waiting while another
//!   process holds it ([`FleetEvent::ClaimWaiting`]); a session found in the store is
//!   **resumed** ([`FleetEvent::Claimed`] says which), so no session start is spent;
//! - while the shard runs, its session is **saved** every `lease_ttl / 3` (or the lease
//!   renewed when nothing moved), beside the shard, never in its way;
//! - a graceful stop (`remove`, `shutdown` with sessions kept) **hands the session over**:
//!   stored, lease given up, so the next process takes the shard and resumes at once;
//! - a lease Redis says is **lost** (another process took it) stops the shard here
//!   ([`FleetEvent::LeaseLost`]): two processes never run one shard. While Redis does not
//!   answer, a connected shard keeps running; if its lease runs out here and its
//!   connection then drops, it stops rather than resume unguarded, and claims again.
//! - Redis down or slow never stops a connected shard. Identifies wait and say why
//!   ([`ShardEvent::IdentifyBlocked`](crate::ShardEvent::IdentifyBlocked)); a spent budget
//!   says so ([`ShardEvent::IdentifyExhausted`](crate::ShardEvent::IdentifyExhausted)); no
//!   shard ever identifies without Redis' grant.
//!
//! **Moving shards between processes** follows: stop process A with
//! `shutdown(true)` (its shards' sessions are handed over), start process B with the same
//! shards; B claims them, resumes each session, and Discord replays what was sent while no
//! process ran them.
//!
//! # Resharding without downtime
//!
//! [`FleetHandle::reshard`] starts a new set of shards (a new count) beside the running
//! one. Until every new shard is READY the old set keeps delivering as before; then the
//! fleet switches ([`FleetEvent::Resharded`]: [`FleetHandle::shard_count`] and
//! [`FleetHandle::shard_for_guild`] now answer for the new set) and closes the old set.
//!
//! What the application sees in between: **both sets' events**, each tagged with its
//! [`ShardId`] (the count tells the sets apart). From the moment a new shard is READY
//! until the old set is closed (the new set's identifies take about
//! `new_count / max_concurrency × 5 s`), a guild's events arrive twice: from its old shard
//! (`shard_for_guild(guild, old_count)`) and from its new one
//! (`shard_for_guild(guild, new_count)`), in no fixed order between the two; the new
//! shard's READY and GUILD_CREATEs are a fresh snapshot of its guilds. The fleet drops
//! nothing. To deduplicate, keep events whose shard is the guild's shard under
//! [`FleetHandle::shard_count`] (the set that owns the stream: the old one until the
//! switch), and for the window around the switch compare events by their own ids (message
//! ids, ...): the two connections are independent, so an event can reach the old set just
//! after the switch and the new set just before it, and a filter by set alone could miss
//! it. With several processes, each reshards its own range (`shard_range(p, n, new_count)`)
//! and switches on its own.
//!
//! [`ShardId`]: crate::ShardId

mod event;
mod handle;
mod ownership;
mod reshard;
mod runner;
mod status;

use std::pin::Pin;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use discord_gateway_proto::shard::GatewayBot;
use discord_gateway_proto::{GatewayConfig, Session, SessionStartLimit, ShardId};
use futures_util::Stream;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, Notify};

use crate::http::GatewayBotClient;
use crate::identify::SharedIdentifyQueue;
use crate::options::ShardOptions;
use handle::{OptionsFn, Shared};
use ownership::Store;

pub use event::{FleetEvent, StopReason};
pub use handle::{FleetError, FleetHandle};
pub use status::{ShardState, ShardStatus};

/// How many events the merged stream holds before shards stop reading (see the module
/// docs on backpressure).
pub const DEFAULT_EVENT_CAPACITY: usize = 4096;

/// The session-start limit assumed when none is given: Discord's default for a bot (1,000
/// a day, one bucket). Prefer `GET /gateway/bot`'s ([`FleetBuilder::gateway_bot`]).
const DEFAULT_LIMIT: SessionStartLimit = SessionStartLimit {
    total: 1000,
    remaining: 1000,
    reset_after: 24 * 60 * 60 * 1000,
    max_concurrency: 1,
};

/// A fleet of shards: the merged event stream, plus the controls of its [`FleetHandle`].
///
/// Dropping it stops every shard (sessions kept, and handed over with a store).
pub struct Fleet {
    handle: FleetHandle,
    events: mpsc::Receiver<FleetEvent>,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("handle", &self.handle)
            .field("queued_events", &self.events.len())
            .finish()
    }
}

impl Fleet {
    /// A builder for a fleet running `config`'s bot (token, intents, gateway URL,
    /// compression...; each shard's id is set by the fleet).
    pub fn builder(config: GatewayConfig) -> FleetBuilder {
        FleetBuilder::new(config)
    }

    /// Reads `GET /gateway/bot` with `config`'s token and starts every recommended shard,
    /// with an identify queue made from its `session_start_limit` and its gateway URL.
    pub async fn start_recommended(config: GatewayConfig) -> Result<Fleet, FleetError> {
        let bot = GatewayBotClient::new().get(&config.token).await?;
        FleetBuilder::new(config)
            .gateway_bot(&bot)
            .start(bot.shard_ids())
    }

    /// The next event of any shard, or of the fleet; `None` once the fleet was shut down
    /// and every shard's last event was given out. Cancel-safe.
    pub async fn next_event(&mut self) -> Option<FleetEvent> {
        self.events.recv().await
    }

    /// The poll behind [`next_event`](Self::next_event) and the `Stream` impl.
    pub fn poll_next_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<FleetEvent>> {
        self.events.poll_recv(cx)
    }

    /// How many events wait in the merged stream.
    pub fn queued_events(&self) -> usize {
        self.events.len()
    }

    /// The control handle, to clone into other tasks.
    pub fn handle(&self) -> &FleetHandle {
        &self.handle
    }

    /// [`FleetHandle::sender`].
    pub fn sender(&self, shard: ShardId) -> Option<crate::ShardSender> {
        self.handle.sender(shard)
    }

    /// [`FleetHandle::status`].
    pub fn status(&self, shard: ShardId) -> Option<ShardStatus> {
        self.handle.status(shard)
    }

    /// [`FleetHandle::statuses`].
    pub fn statuses(&self) -> Vec<ShardStatus> {
        self.handle.statuses()
    }

    /// [`FleetHandle::shards`].
    pub fn shards(&self) -> Vec<ShardId> {
        self.handle.shards()
    }

    /// [`FleetHandle::add`].
    pub fn add(&self, shard: ShardId) -> Result<(), FleetError> {
        self.handle.add(shard)
    }

    /// [`FleetHandle::resume`].
    pub fn resume(&self, shard: ShardId, session: Session) -> Result<(), FleetError> {
        self.handle.resume(shard, session)
    }

    /// [`FleetHandle::remove`].
    pub async fn remove(
        &self,
        shard: ShardId,
        keep_session: bool,
    ) -> Result<Option<Session>, FleetError> {
        self.handle.remove(shard, keep_session).await
    }

    /// [`FleetHandle::shutdown`]. The stream then ends once the last shard's events are
    /// read.
    pub async fn shutdown(&self, keep_session: bool) -> Vec<(ShardId, Option<Session>)> {
        self.handle.shutdown(keep_session).await
    }

    /// [`FleetHandle::reshard`].
    pub fn reshard(&self, shards: impl IntoIterator<Item = ShardId>) -> Result<(), FleetError> {
        self.handle.reshard(shards)
    }

    /// [`FleetHandle::shard_count`].
    pub fn shard_count(&self) -> u32 {
        self.handle.shard_count()
    }

    /// [`FleetHandle::shard_for_guild`].
    pub fn shard_for_guild(&self, guild_id: u64) -> ShardId {
        self.handle.shard_for_guild(guild_id)
    }
}

impl Stream for Fleet {
    type Item = FleetEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<FleetEvent>> {
        self.get_mut().poll_next_event(cx)
    }
}

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
