//! [`SharedIdentifyQueue`]: one identify queue for several shards of a process, whatever
//! runtime drives them.
//!
//! A single shard needs none: it identifies as soon as the gateway lets it. Shards that run
//! side by side must take turns (one identify per bucket every 5 s, and a daily budget of
//! session starts): give each the same handle with
//! [`ShardOptions::identify_queue`](crate::ShardOptions::identify_queue).
//!
//! The queue itself is the protocol crate's sans-IO [`IdentifyQueue`]; this handle puts it
//! behind a mutex and wakes the shard a grant is for through the standard [`Waker`], so the
//! tokio, smol and blocking shards share one mechanism. Whichever waiting shard's timer
//! fires first moves the queue on for all of them.
//!
//! With the `redis` feature, [`SharedIdentifyQueue::redis`] puts the same question to a
//! [`RedisIdentifyQueue`](crate::redis::RedisIdentifyQueue) instead, shared by every process
//! of the bot: each waiting shard's request is one `acquire` on the tokio runtime, and the
//! shard identifies only with its grant (see [`ShardEvent::IdentifyBlocked`] for what it
//! says while Redis cannot answer).
//!
//! [`ShardEvent::IdentifyBlocked`]: crate::ShardEvent::IdentifyBlocked

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::{Duration, Instant};

use discord_gateway_proto::identify::{
    IdentifyCoordinator, IdentifyOutput, IdentifyQueue, Lease, LocalCoordinator,
};
use discord_gateway_proto::{SessionStartLimit, ShardId, Timestamp};

use crate::clock::Clock;

/// A cloneable handle to one identify queue shared by several shards (see the module
/// docs). Cheap to clone; every clone is the same queue.
#[derive(Clone)]
pub struct SharedIdentifyQueue {
    backend: Backend,
}

/// Who decides.
#[derive(Clone)]
enum Backend {
    /// The sans-IO queue, in this process.
    Local(Arc<Mutex<State>>),
    /// A Redis queue shared with the bot's other processes.
    #[cfg(feature = "redis")]
    Redis(crate::redis::RedisGate),
}

impl std::fmt::Debug for SharedIdentifyQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.backend {
            Backend::Local(inner) => {
                let state = lock(inner);
                f.debug_struct("SharedIdentifyQueue")
                    .field("remaining", &state.queue.remaining())
                    .field("waiting", &state.queue.waiting())
                    .field("granted", &state.granted)
                    .finish_non_exhaustive()
            }
            #[cfg(feature = "redis")]
            Backend::Redis(gate) => f
                .debug_struct("SharedIdentifyQueue")
                .field("redis", gate)
                .finish(),
        }
    }
}

/// Why a shard waiting to identify cannot be answered yet (see
/// [`ShardEvent::IdentifyBlocked`](crate::ShardEvent::IdentifyBlocked)). It waits, and never
/// identifies without the coordinator's permission.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentifyBlocked {
    /// The shared store (Redis) did not answer; asked again shortly.
    #[error("the identify coordinator is unreachable: {0}")]
    StoreUnavailable(String),
    /// The store holds no session-start budget and reading one (`GET /gateway/bot`) failed;
    /// tried again shortly.
    #[error("the session-start budget cannot be read: {0}")]
    LimitUnavailable(String),
    /// The store holds no session-start budget and nothing was configured to read one
    /// from: publish one (`update_limit`) or give the Redis queue a limit source.
    #[error("no session-start budget is known: publish one or configure a limit source")]
    NoBudget,
}

struct State {
    queue: IdentifyQueue<Coordinator>,
    clock: Clock,
    /// Grants decided and not yet picked up by their shard.
    granted: BTreeSet<ShardId>,
    /// The waker of each waiting shard.
    wakers: BTreeMap<ShardId, Waker>,
    /// Counts exhaustions, so each waiting shard reports each one once.
    exhaustions: u64,
    /// When the budget refills, as of the last exhaustion.
    exhausted_until: Timestamp,
}

/// Any coordinator, boxed, so that one handle type serves them all.
struct Coordinator(Box<dyn IdentifyCoordinator + Send>);

impl IdentifyCoordinator for Coordinator {
    fn try_acquire(&mut self, bucket: u32, hold: Duration, now: Timestamp) -> Lease {
        self.0.try_acquire(bucket, hold, now)
    }
}

/// What [`SharedIdentifyQueue::poll_grant`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum GrantPoll {
    /// The shard may identify now.
    Granted,
    /// Not yet: poll again at `deadline` (or when woken).
    Waiting {
        /// When the queue next moves by itself.
        deadline: Option<Instant>,
        /// The number of exhaustions so far and how long until the last one ends.
        exhausted: (u64, Duration),
        /// Why the coordinator cannot answer, when that is news for this shard.
        blocked: Option<IdentifyBlocked>,
    },
}

impl SharedIdentifyQueue {
    /// A queue for a bot whose `GET /gateway/bot` returned `limit` (its `max_concurrency`
    /// buckets and its remaining daily session starts), coordinated within this process.
    pub fn new(limit: SessionStartLimit) -> Self {
        Self::with_coordinator(limit, LocalCoordinator::default())
    }

    /// A queue whose per-bucket decisions come from `coordinator`: a store shared with the
    /// bot's other processes (Redis, ...), so that a fleet takes turns as one.
    pub fn with_coordinator(
        limit: SessionStartLimit,
        coordinator: impl IdentifyCoordinator + Send + 'static,
    ) -> Self {
        let clock = Clock::start();
        let queue =
            IdentifyQueue::with_coordinator(limit, clock.now(), Coordinator(Box::new(coordinator)));
        SharedIdentifyQueue {
            backend: Backend::Local(Arc::new(Mutex::new(State {
                queue,
                clock,
                granted: BTreeSet::new(),
                wakers: BTreeMap::new(),
                exhaustions: 0,
                exhausted_until: Timestamp::ZERO,
            }))),
        }
    }

    /// A queue that asks `queue`, shared through Redis by every process of the bot: the
    /// bucket spacing and the daily budget are the fleet's, decided atomically in Redis.
    /// Each waiting shard's request becomes one
    /// [`acquire`](crate::redis::RedisIdentifyQueue::acquire) on the tokio runtime this is
    /// called in (or, outside one, the runtime of the shard that asks); the shard
    /// identifies only with its grant. While Redis cannot answer it waits and says why
    /// ([`ShardEvent::IdentifyBlocked`](crate::ShardEvent::IdentifyBlocked)); a spent budget
    /// is [`ShardEvent::IdentifyExhausted`](crate::ShardEvent::IdentifyExhausted), and the
    /// shard asks again when Redis says the budget resets.
    #[cfg(feature = "redis")]
    pub fn redis(queue: crate::redis::RedisIdentifyQueue) -> Self {
        SharedIdentifyQueue {
            backend: Backend::Redis(crate::redis::RedisGate::new(queue)),
        }
    }

    /// Changes the spacing between two identifies of one bucket (default 5 s, Discord's
    /// rule; tests use less, a little more leaves headroom for clock drift). Call it before
    /// the first request. (A Redis-backed queue keeps its
    /// [`IdentifyQueueConfig::spacing`](crate::redis::IdentifyQueueConfig::spacing).)
    pub fn with_spacing(self, spacing: Duration) -> Self {
        #[allow(irrefutable_let_patterns)]
        if let Backend::Local(inner) = &self.backend {
            let mut state = lock(inner);
            // `IdentifyQueue::with_spacing` takes the queue by value: swap a blank one in
            // for the moment it takes.
            let blank = IdentifyQueue::with_coordinator(
                SessionStartLimit {
                    total: 0,
                    remaining: 0,
                    reset_after: 0,
                    max_concurrency: 1,
                },
                Timestamp::ZERO,
                Coordinator(Box::new(LocalCoordinator::default())),
            );
            let queue = std::mem::replace(&mut state.queue, blank);
            state.queue = queue.with_spacing(spacing);
        }
        self
    }

    /// Replaces the budget and concurrency with a fresh `session_start_limit` (from
    /// `GET /gateway/bot`). A Redis-backed queue publishes it to Redis in the background
    /// ([`update_budget`](crate::redis::RedisIdentifyQueue::update_budget): it only ever
    /// lowers the fleet's count).
    pub fn update_limit(&self, limit: SessionStartLimit) {
        match &self.backend {
            Backend::Local(inner) => {
                let mut state = lock(inner);
                let now = state.clock.now();
                state.queue.update_limit(limit, now);
                state.settle(None);
            }
            #[cfg(feature = "redis")]
            Backend::Redis(gate) => gate.update_limit(limit),
        }
    }

    /// Session starts left before the budget refills (a Redis-backed queue: as of the
    /// last grant this process received, `u32::MAX` before any).
    pub fn remaining(&self) -> u32 {
        match &self.backend {
            Backend::Local(inner) => lock(inner).queue.remaining(),
            #[cfg(feature = "redis")]
            Backend::Redis(gate) => gate.remaining(),
        }
    }

    /// How many shards are waiting for their turn (in this process).
    pub fn waiting(&self) -> usize {
        match &self.backend {
            Backend::Local(inner) => lock(inner).queue.waiting(),
            #[cfg(feature = "redis")]
            Backend::Redis(gate) => gate.waiting(),
        }
    }

    /// `shard` wants to identify (a shard already waiting keeps its place; a grant it did
    /// not pick up is dropped: it asks anew).
    pub(crate) fn request(&self, shard: ShardId) {
        match &self.backend {
            Backend::Local(inner) => {
                let mut state = lock(inner);
                let now = state.clock.now();
                state.granted.remove(&shard);
                state.queue.request(shard, now);
            }
            #[cfg(feature = "redis")]
            Backend::Redis(gate) => gate.request(shard),
        }
    }

    /// `shard` no longer wants to identify (it stopped, or resumes instead).
    pub(crate) fn cancel(&self, shard: ShardId) {
        match &self.backend {
            Backend::Local(inner) => {
                let mut state = lock(inner);
                state.queue.cancel(shard);
                state.granted.remove(&shard);
                state.wakers.remove(&shard);
            }
            #[cfg(feature = "redis")]
            Backend::Redis(gate) => gate.cancel(shard),
        }
    }

    /// Moves the queue to now and tells whether `shard` may identify; if not, `waker` is
    /// woken when a grant for it is decided by another shard's call.
    pub(crate) fn poll_grant(&self, shard: ShardId, waker: &Waker) -> GrantPoll {
        match &self.backend {
            Backend::Local(inner) => poll_local(&mut lock(inner), shard, waker),
            #[cfg(feature = "redis")]
            Backend::Redis(gate) => gate.poll_grant(shard, waker),
        }
    }
}

/// [`SharedIdentifyQueue::poll_grant`] on the local queue.
fn poll_local(state: &mut State, shard: ShardId, waker: &Waker) -> GrantPoll {
    let now = state.clock.now();
    state.queue.handle_timeout(now);
    state.settle(Some(shard));
    if state.granted.remove(&shard) {
        state.wakers.remove(&shard);
        return GrantPoll::Granted;
    }
    match state.wakers.get(&shard) {
        Some(known) if known.will_wake(waker) => {}
        _ => {
            state.wakers.insert(shard, waker.clone());
        }
    }
    let deadline = state.queue.poll_timeout().map(|t| state.clock.instant(t));
    let retry_in = state.clock.until(state.exhausted_until);
    GrantPoll::Waiting {
        deadline,
        exhausted: (state.exhaustions, retry_in),
        blocked: None,
    }
}

fn lock(inner: &Mutex<State>) -> MutexGuard<'_, State> {
    // A shard that panicked while holding the lock left the queue consistent (every change
    // is a single call into the sans-IO queue): go on with it.
    inner
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl State {
    /// Drains the queue's outputs: grants are set aside for their shard (waking it unless
    /// it is `polling`), exhaustions counted.
    fn settle(&mut self, polling: Option<ShardId>) {
        while let Some(output) = self.queue.poll_output() {
            match output {
                IdentifyOutput::Grant(shard) => {
                    self.granted.insert(shard);
                    if Some(shard) != polling {
                        if let Some(waker) = self.wakers.remove(&shard) {
                            waker.wake();
                        }
                    }
                }
                IdentifyOutput::Exhausted { until, .. } => {
                    self.exhaustions += 1;
                    self.exhausted_until = until;
                    // Every waiting shard reports it: wake them all.
                    for (shard, waker) in &self.wakers {
                        if Some(*shard) != polling {
                            waker.wake_by_ref();
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn limit(remaining: u32, max_concurrency: u32) -> SessionStartLimit {
        SessionStartLimit {
            total: 1000,
            remaining,
            reset_after: 60_000,
            max_concurrency,
        }
    }

    #[test]
    fn one_bucket_grants_in_turn_and_wakes_the_next_shard() {
        let queue = SharedIdentifyQueue::new(limit(10, 1)).with_spacing(Duration::from_millis(30));
        let (a, b) = (ShardId::new(0, 2), ShardId::new(1, 2));
        let woken_b = Arc::new(Count(AtomicUsize::new(0)));
        let waker_a = Waker::from(Arc::new(Count(AtomicUsize::new(0))));
        let waker_b = Waker::from(Arc::clone(&woken_b));
        queue.request(a);
        queue.request(b);
        assert_eq!(queue.poll_grant(a, &waker_a), GrantPoll::Granted);
        let GrantPoll::Waiting { deadline, .. } = queue.poll_grant(b, &waker_b) else {
            panic!("one bucket: b waits for the spacing");
        };
        let deadline = deadline.expect("the queue moves by itself");
        std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
        // a's loop (or anyone's) polls after the deadline: b's grant is decided and b woken.
        queue.request(a);
        let _ = queue.poll_grant(a, &waker_a);
        assert_eq!(woken_b.0.load(Ordering::SeqCst), 1);
        assert_eq!(queue.poll_grant(b, &waker_b), GrantPoll::Granted);
        assert_eq!(queue.remaining(), 8);
        queue.cancel(a);
        assert_eq!(queue.waiting(), 0);
    }

    #[test]
    fn exhaustion_is_counted_and_reported() {
        let queue = SharedIdentifyQueue::new(limit(0, 1));
        let shard = ShardId::ONE;
        let waker = Waker::from(Arc::new(Count(AtomicUsize::new(0))));
        queue.request(shard);
        match queue.poll_grant(shard, &waker) {
            GrantPoll::Waiting {
                exhausted: (1, retry_in),
                ..
            } => assert!(retry_in <= Duration::from_secs(60) && retry_in > Duration::from_secs(50)),
            other => panic!("{other:?}"),
        }
    }
}
