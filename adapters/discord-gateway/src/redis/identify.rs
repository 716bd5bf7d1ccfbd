//! The fleet-wide identify queue: one atomic script decides spacing and budget together.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use discord_gateway_proto::identify::IDENTIFY_INTERVAL;
use discord_gateway_proto::ShardId;
use tokio::sync::Mutex;

use super::budget::{millis, LimitSource};
use super::error::RedisError;
use super::keys::Namespace;
use super::link::RedisLink;
use super::names::process_label;
use super::reply::Reply;
use super::scripts::{identify as code, Scripts};

/// How a [`RedisIdentifyQueue`] behaves. Every process of a fleet should use the same
/// spacing and reserve.
#[derive(Clone)]
pub struct IdentifyQueueConfig {
    /// How long a bucket stays taken after an identify (default [`IDENTIFY_INTERVAL`],
    /// Discord's 5 s; tests use less).
    pub spacing: Duration,
    /// How long to wait before asking again after Redis failed or the limit source failed
    /// (default 1 s).
    pub retry_after_error: Duration,
    /// Session starts held back from `GET /gateway/bot`'s `remaining` whenever it is
    /// published to Redis, for identifies that may be in flight when the counter is
    /// (re)created; `None` (default) holds back one per bucket (`max_concurrency`).
    pub reserve: Option<u32>,
    /// This process's name in Redis (written into the bucket keys, for debugging).
    pub holder: String,
    /// Where the budget is read from when Redis has none (see [`LimitSource`]). Without
    /// one, [`RedisIdentifyQueue::acquire`] refuses with [`IdentifyRefused::NoBudget`].
    pub limit_source: Option<Arc<dyn LimitSource>>,
    /// How long one read of the limit source may take (default 10 s); past it, it counts
    /// as failed and is retried.
    pub limit_source_timeout: Duration,
}

impl Default for IdentifyQueueConfig {
    fn default() -> Self {
        IdentifyQueueConfig {
            spacing: IDENTIFY_INTERVAL,
            retry_after_error: Duration::from_secs(1),
            reserve: None,
            holder: process_label(),
            limit_source: None,
            limit_source_timeout: Duration::from_secs(10),
        }
    }
}

impl fmt::Debug for IdentifyQueueConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentifyQueueConfig")
            .field("spacing", &self.spacing)
            .field("retry_after_error", &self.retry_after_error)
            .field("reserve", &self.reserve)
            .field("holder", &self.holder)
            .field("limit_source", &self.limit_source.as_ref().map(|_| "set"))
            .field("limit_source_timeout", &self.limit_source_timeout)
            .finish()
    }
}

impl IdentifyQueueConfig {
    /// Sets [`IdentifyQueueConfig::spacing`].
    pub fn with_spacing(mut self, spacing: Duration) -> Self {
        self.spacing = spacing;
        self
    }

    /// Sets [`IdentifyQueueConfig::retry_after_error`].
    pub fn with_retry_after_error(mut self, wait: Duration) -> Self {
        self.retry_after_error = wait;
        self
    }

    /// Sets [`IdentifyQueueConfig::reserve`].
    pub fn with_reserve(mut self, reserve: u32) -> Self {
        self.reserve = Some(reserve);
        self
    }

    /// Sets [`IdentifyQueueConfig::holder`].
    pub fn with_holder(mut self, holder: impl Into<String>) -> Self {
        self.holder = holder.into();
        self
    }

    /// Sets [`IdentifyQueueConfig::limit_source`].
    pub fn with_limit_source(mut self, source: impl LimitSource) -> Self {
        self.limit_source = Some(Arc::new(source));
        self
    }

    /// Sets [`IdentifyQueueConfig::limit_source_timeout`].
    pub fn with_limit_source_timeout(mut self, timeout: Duration) -> Self {
        self.limit_source_timeout = timeout;
        self
    }
}

/// Permission to identify one shard, spent from the fleet's budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdentifyGrant {
    /// The shard that may identify now.
    pub shard: ShardId,
    /// Its bucket, `shard.id % max_concurrency`.
    pub bucket: u32,
    /// Session starts left in the fleet's budget after this one.
    pub remaining: u32,
    /// When the budget expires, from now (`None`: a key without expiry).
    pub budget_resets_in: Option<Duration>,
    /// When Redis granted it: microseconds since the Unix epoch on the Redis server's
    /// clock, the one clock all processes share (for logs and for measuring spacing
    /// across processes).
    pub server_time_us: u64,
}

/// One answer of [`RedisIdentifyQueue::try_identify`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdentifyDecision {
    /// Identify now: one session start was spent and the bucket is taken for one spacing.
    Granted(IdentifyGrant),
    /// The shard's bucket (or the whole fleet, after the budget was created) is taken;
    /// ask again after `retry_in`. Nothing was spent.
    Busy {
        /// The shard's bucket.
        bucket: u32,
        /// How long the slot stays taken.
        retry_in: Duration,
    },
    /// The daily budget is spent: nobody in the fleet identifies until it resets. Nothing
    /// was taken.
    Exhausted {
        /// How long until the budget key expires (then it is read again from Discord).
        resets_in: Option<Duration>,
    },
    /// Redis holds no budget: publish one with
    /// [`RedisIdentifyQueue::update_budget`] from `GET /gateway/bot`. Nothing was taken.
    BudgetUnknown,
}

/// Why [`RedisIdentifyQueue::acquire`] is still waiting (reported as it happens, so a
/// fleet can say why a shard has not identified yet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdentifyWait {
    /// The bucket or the fence is taken: normal spacing.
    Busy {
        /// The shard's bucket.
        bucket: u32,
        /// How long until it is asked again.
        retry_in: Duration,
    },
    /// Redis did not answer; nothing is granted without its answer. Asked again after
    /// [`IdentifyQueueConfig::retry_after_error`].
    RedisUnavailable(RedisError),
    /// Redis has no budget; it is being read from the limit source.
    FetchingLimit,
    /// The limit source failed; asked again after
    /// [`IdentifyQueueConfig::retry_after_error`].
    LimitSourceFailed(String),
}

/// Why [`RedisIdentifyQueue::acquire`] gave up: the shard must not identify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdentifyRefused {
    /// The fleet's daily session-start budget is spent. Ask again after `resets_in`.
    #[error("the daily session-start budget is spent (resets in {resets_in:?})")]
    Exhausted {
        /// How long until the budget key expires.
        resets_in: Option<Duration>,
    },
    /// Redis holds no budget and the queue has no limit source to read it from.
    #[error("no session-start budget in Redis and no limit source to read it from")]
    NoBudget,
}

/// The identify queue of a fleet, shared through Redis by every process and host of one bot
/// (cheap to clone; clones share the connection and the local order).
///
/// - [`RedisIdentifyQueue::try_identify`] asks once: one script, one round trip.
/// - [`RedisIdentifyQueue::acquire`] waits until the shard may identify: through bucket
///   spacing and Redis outages, reading the budget from the limit source when Redis has
///   none; it returns only a grant or a refusal (budget spent).
///
/// Within one process, shards of the same bucket ask in the order they called
/// [`RedisIdentifyQueue::acquire`] (one at a time per bucket), so a process starting its
/// shards in order identifies them in order and Redis sees one question per bucket per
/// process, not one per waiting shard.
#[derive(Clone)]
pub struct RedisIdentifyQueue {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub link: RedisLink,
    pub namespace: Namespace,
    pub scripts: Scripts,
    pub config: IdentifyQueueConfig,
    /// The `max_concurrency` last seen in Redis (1 until seen).
    max_concurrency: AtomicU32,
    /// One local turn per bucket, first come first served.
    turns: StdMutex<BTreeMap<u32, Arc<Mutex<()>>>>,
    /// One limit fetch at a time in this process.
    fetching: Mutex<()>,
}

impl fmt::Debug for RedisIdentifyQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisIdentifyQueue")
            .field("link", &self.inner.link)
            .field("namespace", &self.inner.namespace)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl RedisIdentifyQueue {
    /// A queue on `link`, under `namespace` (the same for every process of the bot).
    pub fn new(link: RedisLink, namespace: Namespace, config: IdentifyQueueConfig) -> Self {
        RedisIdentifyQueue {
            inner: Arc::new(Inner {
                link,
                namespace,
                scripts: Scripts::new(),
                config,
                max_concurrency: AtomicU32::new(1),
                turns: StdMutex::new(BTreeMap::new()),
                fetching: Mutex::new(()),
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &IdentifyQueueConfig {
        &self.inner.config
    }

    /// The `max_concurrency` last seen in Redis (1 before any answer).
    pub fn max_concurrency(&self) -> u32 {
        self.inner.max_concurrency.load(Ordering::Relaxed)
    }

    /// The bucket of `shard` under the last seen `max_concurrency`.
    pub fn bucket(&self, shard: ShardId) -> u32 {
        shard.id % self.max_concurrency()
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    pub(crate) fn learn_max_concurrency(&self, max_concurrency: u32) {
        self.inner
            .max_concurrency
            .store(max_concurrency.max(1), Ordering::Relaxed);
    }

    /// Asks Redis once whether `shard` may identify now: in one script, the budget is
    /// checked, the bucket's slot checked and taken for one spacing, and one session start
    /// spent; or nothing happens. A grant is spent even if the Identify is never sent (a
    /// crash after the answer loses one unit; it never spends one twice).
    ///
    /// The bucket is `shard.id % max_concurrency` with the `max_concurrency` stored beside
    /// the budget, so every process buckets alike; if it changed since this process last
    /// looked, the question is asked again with the new one.
    pub async fn try_identify(&self, shard: ShardId) -> Result<IdentifyDecision, RedisError> {
        const WHAT: &str = "asking to identify";
        let inner = &self.inner;
        // Twice at most: the second time with the max_concurrency Redis just told us.
        for _ in 0..2 {
            let max_concurrency = self.max_concurrency();
            let bucket = shard.id % max_concurrency;
            let args = [
                format!("{} shard {}", inner.config.holder, shard.id),
                millis(inner.config.spacing).to_string(),
                max_concurrency.to_string(),
            ];
            let keys = [
                inner.namespace.limit(),
                inner.namespace.bucket(bucket),
                inner.namespace.fence(),
            ];
            let value = inner
                .link
                .eval(
                    WHAT,
                    &inner.scripts.identify,
                    &[&keys[0], &keys[1], &keys[2]],
                    &args,
                )
                .await?;
            let reply = Reply::new(WHAT, value)?;
            match reply.int(0)? {
                code::UNKNOWN => return Ok(IdentifyDecision::BudgetUnknown),
                code::CONCURRENCY => {
                    let stored = reply.int(1)?;
                    let stored =
                        u32::try_from(stored)
                            .ok()
                            .filter(|mc| *mc > 0)
                            .ok_or_else(|| {
                                RedisError::bad_reply(WHAT, format!("max_concurrency {stored}"))
                            })?;
                    self.learn_max_concurrency(stored);
                }
                code::EXHAUSTED => {
                    return Ok(IdentifyDecision::Exhausted {
                        resets_in: reply.pttl(1)?,
                    })
                }
                code::BUSY => {
                    // A slot without expiry (not written by this module): wait a spacing.
                    let retry_in = reply.pttl(1)?.unwrap_or(inner.config.spacing);
                    return Ok(IdentifyDecision::Busy {
                        bucket,
                        retry_in: retry_in.max(Duration::from_millis(1)),
                    });
                }
                code::GRANTED => {
                    return Ok(IdentifyDecision::Granted(IdentifyGrant {
                        shard,
                        bucket,
                        remaining: reply.count(1)?,
                        budget_resets_in: reply.pttl(2)?,
                        server_time_us: reply.server_time(3)?,
                    }))
                }
                other => return Err(RedisError::bad_reply(WHAT, format!("code {other}"))),
            }
        }
        Err(RedisError::bad_reply(
            WHAT,
            "max_concurrency changed twice during one question",
        ))
    }

    /// Waits until `shard` may identify, and returns the grant; or returns why it must
    /// not (the budget is spent, or unknown with no limit source). Never grants without
    /// Redis' answer: while Redis is unreachable or slow it waits, calling `on_wait` with
    /// [`IdentifyWait::RedisUnavailable`], and goes on when Redis answers again. When Redis
    /// holds no budget (a new day, a Redis that lost its data) it reads one from the limit
    /// source and publishes it with [`RedisIdentifyQueue::update_budget`] (never assuming
    /// a full budget).
    ///
    /// `on_wait` is called each time the shard waits, with the reason; it must not block.
    ///
    /// Cancel-safe in the sense that matters: dropping the future (e.g. the shard stopped)
    /// never leaves a slot or a unit half-taken; if the drop happens after Redis granted
    /// but before the grant was returned, one unit is lost, never overspent.
    pub async fn acquire(
        &self,
        shard: ShardId,
        mut on_wait: impl FnMut(IdentifyWait),
    ) -> Result<IdentifyGrant, IdentifyRefused> {
        let retry_after_error = self.inner.config.retry_after_error;
        let mut bucket = self.bucket(shard);
        let mut turn = self.turn(bucket).lock_owned().await;
        loop {
            // The first answer may teach this process the fleet's max_concurrency: then the
            // shard waits its turn in its real bucket.
            if self.bucket(shard) != bucket {
                drop(turn);
                bucket = self.bucket(shard);
                turn = self.turn(bucket).lock_owned().await;
            }
            match self.try_identify(shard).await {
                Ok(IdentifyDecision::Granted(grant)) => return Ok(grant),
                Ok(IdentifyDecision::Busy { bucket, retry_in }) => {
                    on_wait(IdentifyWait::Busy { bucket, retry_in });
                    tokio::time::sleep(retry_in).await;
                }
                Ok(IdentifyDecision::Exhausted { resets_in }) => {
                    return Err(IdentifyRefused::Exhausted { resets_in })
                }
                Ok(IdentifyDecision::BudgetUnknown) => {
                    let Some(source) = self.inner.config.limit_source.clone() else {
                        return Err(IdentifyRefused::NoBudget);
                    };
                    on_wait(IdentifyWait::FetchingLimit);
                    if let Err(wait) = self.fetch_budget(source.as_ref()).await {
                        on_wait(wait);
                        tokio::time::sleep(retry_after_error).await;
                    }
                }
                Err(error) => {
                    on_wait(IdentifyWait::RedisUnavailable(error));
                    tokio::time::sleep(retry_after_error).await;
                }
            }
        }
    }

    /// Reads the limit from `source` and publishes it, unless another task of this process
    /// did so meanwhile.
    async fn fetch_budget(&self, source: &dyn LimitSource) -> Result<(), IdentifyWait> {
        let _one_at_a_time = self.inner.fetching.lock().await;
        match self.budget().await {
            Ok(Some(_)) => return Ok(()),
            Ok(None) => {}
            Err(error) => return Err(IdentifyWait::RedisUnavailable(error)),
        }
        let timeout = self.inner.config.limit_source_timeout;
        let limit = tokio::time::timeout(timeout, source.fetch())
            .await
            .map_err(|_| IdentifyWait::LimitSourceFailed(format!("no answer within {timeout:?}")))?
            .map_err(|e| IdentifyWait::LimitSourceFailed(e.to_string()))?;
        self.update_budget(limit)
            .await
            .map(|_| ())
            .map_err(IdentifyWait::RedisUnavailable)
    }

    /// This process's turn lock for `bucket`.
    fn turn(&self, bucket: u32) -> Arc<Mutex<()>> {
        let mut turns = self
            .inner
            .turns
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        turns.entry(bucket).or_default().clone()
    }
}
