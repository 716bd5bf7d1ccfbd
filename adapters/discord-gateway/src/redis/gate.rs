//! [`RedisGate`]: the Redis identify queue behind a shard's identify hook
//! ([`SharedIdentifyQueue::redis`](crate::SharedIdentifyQueue::redis)).
//!
//! A shard's loop asks synchronously (request, poll with a `Waker`, cancel); Redis answers
//! asynchronously. Each waiting shard gets one task on the tokio runtime that runs
//! [`RedisIdentifyQueue::acquire`] until it returns a grant, and then wakes the shard. The
//! task says why it waits (Redis unreachable, the budget unreadable) through the same
//! waker; a spent budget is reported and asked about again when Redis says it resets.
//! Cancelling (the shard stopped, its connection dropped, it resumes instead) aborts the
//! task: if Redis had granted just before, one session start is lost, never overspent.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::{Duration, Instant};

use discord_gateway_proto::{SessionStartLimit, ShardId};
use tokio::runtime::Handle;
use tokio::task::AbortHandle;

use super::identify::{IdentifyRefused, IdentifyWait, RedisIdentifyQueue};
use crate::identify::{GrantPoll, IdentifyBlocked};

/// How long to wait before asking again when the budget is spent and Redis gave no reset
/// time, or when Redis holds no budget and nothing can read one.
const RETRY_WITHOUT_HINT: Duration = Duration::from_secs(60);

/// The shortest wait between two refusals (a budget whose key is about to expire).
const MIN_RETRY: Duration = Duration::from_secs(1);

/// The Redis identify queue as a shard's identify hook (see the module docs).
#[derive(Clone)]
pub(crate) struct RedisGate {
    inner: Arc<Inner>,
}

struct Inner {
    queue: RedisIdentifyQueue,
    /// The runtime the gate was made in, for requests made outside one.
    runtime: Option<Handle>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    waiting: BTreeMap<ShardId, Waiter>,
    /// Per shard, its refusals for a spent budget, counted (it reports each one; kept
    /// across its requests, as the shard counts what it reported), and when the last one
    /// ends.
    exhaustions: BTreeMap<ShardId, (u64, Instant)>,
    /// Session starts left as of the last grant.
    remaining: Option<u32>,
}

/// One shard that asked.
struct Waiter {
    task: Option<AbortHandle>,
    granted: bool,
    waker: Option<Waker>,
    /// What to report next.
    news: Option<IdentifyBlocked>,
    /// What was reported last (reported again only when it changes).
    reported: Option<IdentifyBlocked>,
}

impl fmt::Debug for RedisGate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("RedisGate")
            .field("queue", &self.inner.queue)
            .field("waiting", &state.waiting.len())
            .field("remaining", &state.remaining)
            .finish_non_exhaustive()
    }
}

impl RedisGate {
    pub(crate) fn new(queue: RedisIdentifyQueue) -> Self {
        RedisGate {
            inner: Arc::new(Inner {
                queue,
                runtime: Handle::try_current().ok(),
                state: Mutex::new(State::default()),
            }),
        }
    }

    pub(crate) fn remaining(&self) -> u32 {
        self.lock().remaining.unwrap_or(u32::MAX)
    }

    pub(crate) fn waiting(&self) -> usize {
        self.lock().waiting.values().filter(|w| !w.granted).count()
    }

    /// Publishes `limit` to Redis in the background (lowering the fleet's count only).
    pub(crate) fn update_limit(&self, limit: SessionStartLimit) {
        if let Some(runtime) = self.runtime() {
            let queue = self.inner.queue.clone();
            runtime.spawn(async move {
                let _ = queue.update_budget(limit).await;
            });
        }
    }

    /// `shard` wants to identify: a task asks Redis until it may.
    pub(crate) fn request(&self, shard: ShardId) {
        let mut state = self.lock();
        if let Some(waiter) = state.waiting.get(&shard) {
            if !waiter.granted && waiter.task.is_some() {
                return;
            }
        }
        // A grant not picked up is stale (its slot's spacing counted from its time): drop it.
        let previous = state.waiting.remove(&shard);
        let waker = previous.and_then(|w| w.waker);
        let mut waiter = Waiter {
            task: None,
            granted: false,
            waker,
            news: None,
            reported: None,
        };
        match self.runtime() {
            Some(runtime) => {
                let gate = self.clone();
                let task = runtime.spawn(async move { gate.ask(shard).await });
                waiter.task = Some(task.abort_handle());
            }
            None => {
                waiter.news = Some(IdentifyBlocked::StoreUnavailable(
                    "no tokio runtime to ask Redis from".into(),
                ));
            }
        }
        state.waiting.insert(shard, waiter);
    }

    /// `shard` no longer wants to identify.
    pub(crate) fn cancel(&self, shard: ShardId) {
        let removed = self.lock().waiting.remove(&shard);
        if let Some(task) = removed.and_then(|w| w.task) {
            task.abort();
        }
    }

    pub(crate) fn poll_grant(&self, shard: ShardId, waker: &Waker) -> GrantPoll {
        let mut state = self.lock();
        let exhausted = state
            .exhaustions
            .get(&shard)
            .map_or((0, Duration::ZERO), |(count, until)| {
                (*count, until.saturating_duration_since(now()))
            });
        let Some(waiter) = state.waiting.get_mut(&shard) else {
            return GrantPoll::Waiting {
                deadline: None,
                exhausted,
                blocked: None,
            };
        };
        if waiter.granted {
            state.waiting.remove(&shard);
            return GrantPoll::Granted;
        }
        match &waiter.waker {
            Some(known) if known.will_wake(waker) => {}
            _ => waiter.waker = Some(waker.clone()),
        }
        GrantPoll::Waiting {
            deadline: None,
            exhausted,
            blocked: waiter.news.take(),
        }
    }

    /// The task of one waiting shard: asks until granted (or aborted).
    async fn ask(self, shard: ShardId) {
        let queue = self.inner.queue.clone();
        loop {
            let gate = self.clone();
            let outcome = queue
                .acquire(shard, move |wait| gate.waited(shard, wait))
                .await;
            let retry_in = match outcome {
                Ok(grant) => {
                    let mut state = self.lock();
                    state.remaining = Some(grant.remaining);
                    if let Some(waiter) = state.waiting.get_mut(&shard) {
                        waiter.granted = true;
                        waiter.task = None;
                        wake(waiter);
                    }
                    return;
                }
                Err(IdentifyRefused::Exhausted { resets_in }) => {
                    let retry_in = resets_in.unwrap_or(RETRY_WITHOUT_HINT).max(MIN_RETRY);
                    let mut state = self.lock();
                    let count = state.exhaustions.get(&shard).map_or(0, |(count, _)| *count);
                    state
                        .exhaustions
                        .insert(shard, (count + 1, now() + retry_in));
                    if let Some(waiter) = state.waiting.get_mut(&shard) {
                        wake(waiter);
                    }
                    retry_in
                }
                Err(IdentifyRefused::NoBudget) => {
                    self.tell(shard, IdentifyBlocked::NoBudget);
                    RETRY_WITHOUT_HINT
                }
            };
            tokio::time::sleep(retry_in).await;
        }
    }

    /// `acquire` says why it waits. What blocks one shard blocks them all (shards of a
    /// bucket wait for their turn behind the one asking Redis), so every waiting shard is
    /// told.
    fn waited(&self, _shard: ShardId, wait: IdentifyWait) {
        match wait {
            IdentifyWait::RedisUnavailable(error) => {
                self.tell_all(IdentifyBlocked::StoreUnavailable(error.to_string()));
            }
            IdentifyWait::LimitSourceFailed(why) => {
                self.tell_all(IdentifyBlocked::LimitUnavailable(why));
            }
            // Redis answered: whatever blocked them is over (a new block is news again).
            IdentifyWait::Busy { .. } => {
                for waiter in self.lock().waiting.values_mut() {
                    waiter.reported = None;
                }
            }
            IdentifyWait::FetchingLimit => {}
        }
    }

    /// Reports `blocked` to `shard`, unless it is what it reported last.
    fn tell(&self, shard: ShardId, blocked: IdentifyBlocked) {
        if let Some(waiter) = self.lock().waiting.get_mut(&shard) {
            news(waiter, &blocked);
        }
    }

    /// Reports `blocked` to every waiting shard that did not report it last.
    fn tell_all(&self, blocked: IdentifyBlocked) {
        for waiter in self.lock().waiting.values_mut() {
            if !waiter.granted {
                news(waiter, &blocked);
            }
        }
    }

    fn runtime(&self) -> Option<Handle> {
        Handle::try_current()
            .ok()
            .or_else(|| self.inner.runtime.clone())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Gives `waiter` `blocked` to report, unless it reported just that last.
fn news(waiter: &mut Waiter, blocked: &IdentifyBlocked) {
    if waiter.reported.as_ref() == Some(blocked) {
        return;
    }
    waiter.reported = Some(blocked.clone());
    waiter.news = Some(blocked.clone());
    wake(waiter);
}

fn wake(waiter: &mut Waiter) {
    if let Some(waker) = &waiter.waker {
        waker.wake_by_ref();
    }
}

#[allow(clippy::disallowed_methods)] // the adapter owns the clock
fn now() -> Instant {
    Instant::now()
}
