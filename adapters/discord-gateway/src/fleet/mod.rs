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
//! [`SharedIdentifyQueue`](crate::SharedIdentifyQueue): `max_concurrency` buckets, 5 s
//! apart, the daily budget. [`Fleet::next_event`] merges every shard's events, each tagged with its shard
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

mod builder;
mod event;
mod handle;
mod ownership;
mod reshard;
mod runner;
mod status;

use std::pin::Pin;
use std::task::{Context, Poll};

use discord_gateway_proto::{GatewayConfig, Session, ShardId};
use futures_util::Stream;
use tokio::sync::mpsc;

use crate::http::GatewayBotClient;

pub use builder::FleetBuilder;
pub use event::{FleetEvent, StopReason};
pub use handle::{FleetError, FleetHandle};
pub use status::{ShardState, ShardStatus};

/// How many events the merged stream holds before shards stop reading (see the module
/// docs on backpressure).
pub const DEFAULT_EVENT_CAPACITY: usize = 4096;

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
