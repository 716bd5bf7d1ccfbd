//! A fleet coordinator on Redis: many processes on many hosts running one bot's shards share
//! the identify spacing, the daily session-start budget, and each shard's session.
//!
//! ```text
//! RedisLink::open(url)                              one server, lazily dialled, every call bounded
//! Namespace::for_application(id)                    every key of one bot under one prefix
//! RedisIdentifyQueue::new(link, ns, config)         identify permission, fleet-wide
//!     update_budget(limit)                          publish GET /gateway/bot's session_start_limit
//!     acquire(shard, on_wait) -> grant | refused    wait until the shard may identify
//!     try_identify(shard) -> decision               ask once
//! RedisSessionStore::new(link, ns, config)          sessions and ownership, fleet-wide
//!     claim(shard) -> { lease, session }            take a shard over; resume its session
//!     save / renew / hand_over / release            as the lease holder
//! ```
//!
//! ```no_run
//! # async fn fleet() -> Result<(), Box<dyn std::error::Error>> {
//! use discord_gateway::redis::*;
//! use discord_gateway_proto::{SessionStartLimit, ShardId, Timestamp};
//!
//! # async fn get_gateway_bot() -> Result<SessionStartLimit, LimitSourceError> {
//! #     Ok(SessionStartLimit { total: 1000, remaining: 1000, reset_after: 0, max_concurrency: 1 })
//! # }
//! let link = RedisLink::open("redis://127.0.0.1:6379/")?;
//! let ns = Namespace::for_application(1234);
//! let queue = RedisIdentifyQueue::new(
//!     link.clone(),
//!     ns.clone(),
//!     // Where the budget comes from when Redis has none: your `GET /gateway/bot`.
//!     IdentifyQueueConfig::default().with_limit_source(get_gateway_bot),
//! );
//! let store = RedisSessionStore::new(link, ns, SessionStoreConfig::default());
//!
//! let shard = ShardId::new(3, 16);
//! let claim = store.claim(shard).await?; // Err(Held) while another process runs it
//! let mut lease = claim.lease;
//! match claim.session {
//!     // Resume: no identify, no session start spent.
//!     Some(saved) => { let _session = saved.rebased(Timestamp::from_secs(0)); }
//!     // Identify: wait for the bucket, spend one unit of the fleet's budget.
//!     None => match queue.acquire(shard, |why| eprintln!("shard 3 waits: {why:?}")).await {
//!         Ok(_grant) => { /* machine.grant_identify(now) */ }
//!         Err(refused) => eprintln!("shard 3 must not identify: {refused}"),
//!     },
//! }
//! // Every `store.config().renew_every()`: store.save(&mut lease, &session, now).
//! // Graceful stop: store.hand_over(lease, &session, now).
//! # let _ = &mut lease;
//! # Ok(())
//! # }
//! ```
//!
//! # Identify: spacing and budget in one script
//!
//! Discord allows each bucket (`shard_id % max_concurrency`) one identify per 5 s, and a
//! bot a daily budget of session starts (`session_start_limit.remaining`, back to `total`
//! after `reset_after` ms); spending it all can reset the bot's token. Both are per bot,
//! not per process. Every identify asks Redis one Lua script that, atomically:
//!
//! 1. reads the budget; absent → [`IdentifyDecision::BudgetUnknown`] (nothing written);
//! 2. checks the caller bucketed with the stored `max_concurrency` (else retries with it);
//! 3. `remaining <= 0` → [`IdentifyDecision::Exhausted`] with the budget's PTTL;
//! 4. the fence or the bucket's slot exists → [`IdentifyDecision::Busy`] with its PTTL;
//! 5. `SET bucket holder NX PX spacing`, `HINCRBY remaining -1`, `TIME` →
//!    [`IdentifyDecision::Granted`].
//!
//! Redis runs a script to the end before anything else, so a process that crashes, is
//! killed or times out has either had the whole decision or none of it: no slot is taken
//! without a unit spent, no unit spent without the slot. A unit is spent at the grant,
//! before the Identify is sent; a grant that is never used (the process died just after)
//! loses one unit, and the count is never exceeded.
//!
//! # The budget: created once, lowered by refreshes, re-read after a loss
//!
//! - Redis has no budget until a process publishes one with
//!   [`RedisIdentifyQueue::update_budget`] (or [`RedisIdentifyQueue::acquire`] does, from
//!   its [`LimitSource`], the first time it finds none). The first publisher creates it:
//!   `remaining` less a reserve (default one per bucket, for identifies in flight when it
//!   was created), expiring after `reset_after`, counted from when the answer was read, so
//!   it expires no earlier than Discord's own reset.
//! - Later publications (a periodic refresh from `GET /gateway/bot`) only *lower* the count
//!   to Discord's number less the reserve, and keep the expiry: a higher number from Discord
//!   may predate grants already made, so it is no proof of more budget. When the key
//!   expires, the next identify finds none, the limit source is read again, and the new
//!   day's budget is created.
//! - A Redis that restarts empty (no persistence) has no budget: it is re-read from Discord,
//!   never assumed full. Creating a budget also sets a fence (`identify:fence`) for one
//!   spacing, during which nobody identifies, so an identify granted just before Redis lost
//!   its data (and its bucket keys) is still followed by a full spacing.
//!
//! # Sessions and ownership
//!
//! [`RedisSessionStore`] keeps each shard's [`Session`](discord_gateway_proto::Session)
//! (id, sequence, resume URL) and its age. Processes share no clock, so the age is stored
//! as "the last ACK was N ms before the save", and the save time is Redis' own `TIME`; a
//! reader adds the time since the save, again on Redis' clock. An ownership lease per shard
//! (a key holding the owner's token, with a TTL) decides who may resume it: only the holder
//! saves or hands over, a claim takes the lease and the session in one step, and a crashed
//! owner's lease expires after `lease_ttl`.
//!
//! # Keys (`P` is the namespace prefix, e.g. `{discord-gateway:1234}`)
//!
//! | key | type | TTL | written by |
//! |---|---|---|---|
//! | `P:limit` | hash `remaining`, `total`, `max_concurrency`, `written_by` | `reset_after` | budget publication; `HINCRBY remaining -1` per grant |
//! | `P:identify:fence` | string (writer) | one spacing | budget creation |
//! | `P:identify:{bucket}` | string (holder and shard) | one spacing | each grant |
//! | `P:shard:{count}:{id}:lease` | string (lease token) | `lease_ttl` | claim, renew, save |
//! | `P:shard:{count}:{id}:session` | hash `session` (JSON), `ack_age_ms`, `saved_at_us` (Redis `TIME`), `saved_by` | `session_ttl` | save, hand over |
//!
//! Shards are keyed by id *and* count: a resharded fleet's sessions never collide with the
//! old set's.
//!
//! # When Redis is down or slow
//!
//! Every call has one deadline ([`RedisLink::open_with_timeout`], default 2 s) covering the
//! dial and the answer, and fails with a typed [`RedisError`] (unreachable, timed out,
//! refused by the server). [`RedisIdentifyQueue::acquire`] never grants without Redis'
//! answer: it waits, reports [`IdentifyWait::RedisUnavailable`] each time, and proceeds
//! when Redis is back. Nothing here runs a shard or blocks one: a connected shard keeps
//! running while Redis is away; only its periodic saves fail (and are retried by the
//! caller), and its lease runs out locally after `lease_ttl` (then it must not *resume*
//! before renewing).
//!
//! # Guaranteed
//!
//! - The budget in Redis is never overspent, whatever processes crash, are killed or time
//!   out: every grant and its spending are one atomic script.
//! - Per bucket, two grants are at least one spacing apart on Redis' clock (key expiry),
//!   across processes and hosts, and after Redis restarts empty (the fence).
//! - A shard's session is handed to one claimant at a time; a save or hand-over by a
//!   process that lost the lease is refused.
//!
//! # Not guaranteed
//!
//! - **Redis losing writes it acknowledged**: a failover to a replica that missed recent
//!   writes (replication is asynchronous), or a restart from an old snapshot (RDB), brings
//!   back a budget with more units than are left and bucket keys that are gone. An *empty*
//!   Redis is safe (the budget is re-read); a *stale* one is not. Run it without
//!   persistence, or with AOF `appendfsync always`, and without failover to a lagging
//!   replica.
//! - **Clocks**: spacing is measured by Redis' key expiry and ages by Redis' `TIME`, so the
//!   processes' clocks need not agree; but a Redis clock that jumps (NTP step) shortens or
//!   lengthens a spacing, a lease or a session's age by the jump. Discord's own 5 s is
//!   measured on its clock, not Redis': give [`IdentifyQueueConfig::spacing`] a little
//!   headroom if the network between grant and Identify varies a lot.
//! - **Discord's view of the budget** counts only Identifies that reached it; the counter
//!   here counts grants. The reserve covers grants in flight when the counter is created
//!   from Discord's number; identifies sent outside the fleet (another tool using the same
//!   token) are seen only at the next refresh.
//! - **A partitioned owner**: a process cut off from Redis for longer than `lease_ttl`
//!   keeps its connected shards running (nothing here stops them), while another process
//!   may claim and resume their sessions; Discord then disconnects the older connection.
//!   The first process must check [`ShardLease::is_valid`] (and renew) before it resumes.
//! - **Fairness across processes**: within a process, shards of a bucket ask in the order
//!   they called `acquire`; across processes, whoever asks first after a slot frees wins.
//! - **Redis Cluster** is not supported (one server, or a proxy in front of one); the keys
//!   are hash-tagged so they would share a slot.
//!
//! # Why redis-rs, and why its plain multiplexed connection
//!
//! `redis` (redis-rs) is the maintained Redis client of the Rust ecosystem (1.x, async on
//! tokio, `Script` with `EVALSHA` and an `EVAL` fallback for a restarted server that forgot
//! its scripts). Its `ConnectionManager` is not used: [`RedisLink`] says why a small
//! reconnect of our own (drop the connection after any failure, dial on the next call, one
//! deadline per call) fits a fail-closed coordinator better. The `redis` feature needs
//! Rust 1.88, redis-rs 1.x's own minimum.
//!
//! Requires Redis 5 or later (scripts replicated by effects, multi-field `HSET`); tested
//! against Redis 7.

mod budget;
mod error;
mod gate;
mod identify;
mod keys;
mod lease;
mod link;
mod names;
mod reply;
mod scripts;
mod sessions;

pub use budget::{BudgetState, BudgetUpdate, LimitFuture, LimitSource, LimitSourceError};
pub use error::RedisError;
pub(crate) use gate::RedisGate;
pub use identify::{
    IdentifyDecision, IdentifyGrant, IdentifyQueueConfig, IdentifyRefused, IdentifyWait,
    RedisIdentifyQueue,
};
pub use keys::Namespace;
pub use lease::{LeaseHolder, ShardLease};
pub use link::{RedisLink, DEFAULT_CALL_TIMEOUT};
pub use names::process_label;
pub use sessions::{
    Claim, RedisSessionStore, SessionStoreConfig, SessionStoreError, ShardRecord, StoredSession,
};
