//! The daily session-start budget in Redis: how it is created from `GET /gateway/bot`'s
//! numbers, refreshed, read, and (by an operator) replaced.

use std::error::Error;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use discord_gateway_proto::SessionStartLimit;

use super::error::RedisError;
use super::identify::RedisIdentifyQueue;
use super::reply::Reply;

/// The budget as Redis holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BudgetState {
    /// Identifies left before the budget expires (already less the reserve and every grant
    /// made, whether or not its Identify was sent).
    pub remaining: u32,
    /// `session_start_limit.total` as last published.
    pub total: u32,
    /// The `max_concurrency` every process buckets with.
    pub max_concurrency: u32,
    /// How long until the budget key expires (and must be read again from Discord);
    /// `None` for a key without expiry, which this module never writes.
    pub resets_in: Option<Duration>,
}

/// What [`RedisIdentifyQueue::update_budget`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BudgetUpdate {
    /// Whether this call created the budget (it was absent: first start of the fleet, a
    /// new day, or a Redis that lost its data). Creating it also sets the fence: nobody
    /// identifies for one spacing.
    pub created: bool,
    /// The budget now in force.
    pub state: BudgetState,
}

/// The error a [`LimitSource`] returns.
pub type LimitSourceError = Box<dyn Error + Send + Sync>;

/// The future a [`LimitSource`] returns.
pub type LimitFuture =
    Pin<Box<dyn Future<Output = Result<SessionStartLimit, LimitSourceError>> + Send>>;

/// Where the budget comes from when Redis has none: in production, `GET /gateway/bot`'s
/// `session_start_limit` (the crate makes no HTTP requests itself; give it your client).
///
/// Any `Fn() -> impl Future<Output = Result<SessionStartLimit, LimitSourceError>>` is one.
pub trait LimitSource: Send + Sync + 'static {
    /// Fetches the current limit.
    fn fetch(&self) -> LimitFuture;
}

impl<F, Fut> LimitSource for F
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<SessionStartLimit, LimitSourceError>> + Send + 'static,
{
    fn fetch(&self) -> LimitFuture {
        Box::pin(self())
    }
}

impl RedisIdentifyQueue {
    /// Publishes `limit` (fresh from `GET /gateway/bot`) to the fleet: creates the budget
    /// when Redis has none, otherwise only lowers it.
    ///
    /// - **Absent** (first process of the fleet, a new day, or a Redis that lost its data):
    ///   `remaining` becomes `limit.remaining` less the reserve, expiring after
    ///   `limit.reset_after` (counted from now, so it expires no earlier than Discord's own
    ///   reset); the fence is set for one spacing.
    /// - **Present**: `remaining` becomes the lower of Redis' count and `limit.remaining`
    ///   less the reserve; the expiry is kept; `total` and `max_concurrency` are taken from
    ///   `limit`. A refresh never raises the count within a period: grants already made
    ///   may not have reached Discord yet, so a higher number from Discord is not proof
    ///   that more is left. The count rises only when the key expires (Discord's reset) or
    ///   through [`RedisIdentifyQueue::replace_budget`].
    pub async fn update_budget(
        &self,
        limit: SessionStartLimit,
    ) -> Result<BudgetUpdate, RedisError> {
        self.write_budget(limit, false).await
    }

    /// Overwrites the budget with `limit` (less the reserve) whatever Redis holds, and sets
    /// the fence. For an operator who knows better than the counter (e.g. after Discord
    /// restored the budget); a fleet never needs it.
    pub async fn replace_budget(
        &self,
        limit: SessionStartLimit,
    ) -> Result<BudgetUpdate, RedisError> {
        self.write_budget(limit, true).await
    }

    /// The budget Redis holds now (`None`: absent, to be read from Discord).
    pub async fn budget(&self) -> Result<Option<BudgetState>, RedisError> {
        let inner = self.inner();
        let value = inner
            .link
            .eval(
                "reading the session-start budget",
                &inner.scripts.read_limit,
                &[&inner.namespace.limit()],
                &[],
            )
            .await?;
        let reply = Reply::new("reading the session-start budget", value)?;
        if reply.int(0)? == 0 {
            return Ok(None);
        }
        let state = budget_state(&reply, 1)?;
        self.learn_max_concurrency(state.max_concurrency);
        Ok(Some(state))
    }

    async fn write_budget(
        &self,
        limit: SessionStartLimit,
        replace: bool,
    ) -> Result<BudgetUpdate, RedisError> {
        const WHAT: &str = "publishing the session-start budget";
        let inner = self.inner();
        let max_concurrency = limit.max_concurrency.max(1);
        let reserve = inner.config.reserve.unwrap_or(max_concurrency);
        let remaining = limit.remaining.saturating_sub(reserve);
        let args = [
            remaining.to_string(),
            limit.total.to_string(),
            max_concurrency.to_string(),
            limit.reset_after.max(1).to_string(),
            millis(inner.config.spacing).to_string(),
            inner.config.holder.clone(),
            if replace { "1" } else { "0" }.to_string(),
        ];
        let value = inner
            .link
            .eval(
                WHAT,
                &inner.scripts.update_limit,
                &[&inner.namespace.limit(), &inner.namespace.fence()],
                &args,
            )
            .await?;
        let reply = Reply::new(WHAT, value)?;
        let update = BudgetUpdate {
            created: reply.int(0)? == 1,
            state: budget_state(&reply, 1)?,
        };
        self.learn_max_concurrency(update.state.max_concurrency);
        Ok(update)
    }
}

/// `remaining, total, max_concurrency, pttl` from item `at` on.
fn budget_state(reply: &Reply, at: usize) -> Result<BudgetState, RedisError> {
    Ok(BudgetState {
        remaining: reply.count(at)?,
        total: reply.count(at + 1)?,
        max_concurrency: reply.count(at + 2)?.max(1),
        resets_in: reply.pttl(at + 3)?,
    })
}

/// Whole milliseconds, at least 1 (Redis refuses `PX 0`).
pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}
