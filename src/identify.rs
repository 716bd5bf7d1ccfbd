//! The identify queue: who may send Identify, and when.
//!
//! Discord's rules (`developers/events/gateway.mdx`, "Sharding" and "Session Start Limit"):
//!
//! - every shard has an identify bucket, `shard_id % max_concurrency`; each bucket may
//!   identify once per 5 s, and shards start by bucket, in order (with 32 shards and
//!   `max_concurrency` 16: shards 0-15 together, then 16-31);
//! - a bot has a daily budget of session starts (`session_start_limit.remaining`, refilled
//!   after `reset_after` ms); running out terminates sessions and may reset the token.
//!
//! [`IdentifyQueue`] applies them for every shard of one process, sans-IO: machines ask
//! ([`IdentifyQueue::request`], usually on [`Event::IdentifyRequested`]), the queue answers
//! with [`IdentifyOutput::Grant`] and the driver calls
//! [`GatewayMachine::grant_identify`] on that shard's machine.
//!
//! ```text
//! inputs    request(shard, now)   cancel(shard)   handle_timeout(now)   update_limit(limit, now)
//! outputs   poll_output() -> Option<IdentifyOutput>    drain until None after every input
//!           poll_timeout() -> Option<Timestamp>        then call handle_timeout at that time
//! ```
//!
//! Waiting shards are served per bucket first come, first served; requests made at the same
//! instant go in shard order, and at one instant lower buckets are granted first, so a
//! fleet starting all at once starts exactly as the docs ask. A grant spends one session
//! start at once (conservatively, before the Identify is even sent). When the budget is
//! spent, the queue grants nothing more and emits one [`IdentifyOutput::Exhausted`] until
//! the refill; it never burns the token.
//!
//! # Fleets on several machines
//!
//! The 5 s bucket spacing is per bot, not per process. The per-bucket decision is the
//! [`IdentifyCoordinator`] trait; [`LocalCoordinator`] keeps it in process memory. A shared
//! store makes many processes' queues act as one; the intended Redis shape is
//!
//! ```text
//! SET identify:{bucket} {owner} NX PX 5000   OK  -> Lease::Granted
//!                                            nil -> PTTL identify:{bucket} = p
//!                                                   -> Lease::Busy { until: now + p }
//! ```
//!
//! Only durations cross the process boundary (PX, PTTL), so clocks need not agree. The
//! trait is sans-IO (a decision for `now`, no future): an implementation may answer from a
//! blocking client, or from a pipeline its driver runs ahead of time. The daily budget is
//! tracked per queue: in a fleet, give each process its share of `remaining` (or refresh
//! every queue from `GET /gateway/bot` before a mass start).
//!
//! [`Event::IdentifyRequested`]: crate::output::Event::IdentifyRequested
//! [`GatewayMachine::grant_identify`]: crate::GatewayMachine::grant_identify

use alloc::collections::{BTreeMap, BTreeSet};
use core::time::Duration;

use crate::config::ShardId;
use crate::shard::SessionStartLimit;
use crate::time::Timestamp;

/// How often one identify bucket may identify.
pub const IDENTIFY_INTERVAL: Duration = Duration::from_secs(5);

/// The assumed length of a session-start period, used to schedule the next refill after one
/// has happened (Discord only says when the *current* period ends; refresh with
/// [`IdentifyQueue::update_limit`] from `GET /gateway/bot` when you can).
pub const SESSION_START_PERIOD: Duration = Duration::from_secs(24 * 60 * 60);

/// A coordinator's answer for one bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lease {
    /// The bucket's slot is taken for this caller; it may identify now.
    Granted,
    /// Someone holds the bucket until `until`; ask again then.
    Busy {
        /// When the current holder's slot ends.
        until: Timestamp,
    },
}

/// Decides, for one identify bucket at a time, whether an identify may happen now.
///
/// Semantics are those of `SET identify:{bucket} owner NX PX hold`: the first caller takes
/// the bucket for `hold`; anyone asking before it ends gets [`Lease::Busy`] with the end
/// time. Implementations must be deterministic for a given sequence of calls.
pub trait IdentifyCoordinator {
    /// Tries to take bucket `bucket` for `hold` starting at `now`.
    fn try_acquire(&mut self, bucket: u32, hold: Duration, now: Timestamp) -> Lease;
}

impl<C: IdentifyCoordinator + ?Sized> IdentifyCoordinator for &mut C {
    fn try_acquire(&mut self, bucket: u32, hold: Duration, now: Timestamp) -> Lease {
        (**self).try_acquire(bucket, hold, now)
    }
}

/// The in-process coordinator: one deadline per bucket.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LocalCoordinator {
    busy_until: BTreeMap<u32, Timestamp>,
}

impl IdentifyCoordinator for LocalCoordinator {
    fn try_acquire(&mut self, bucket: u32, hold: Duration, now: Timestamp) -> Lease {
        match self.busy_until.get(&bucket) {
            Some(&until) if until > now => Lease::Busy { until },
            _ => {
                self.busy_until.insert(bucket, now.saturating_add(hold));
                Lease::Granted
            }
        }
    }
}

/// What the queue tells its driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdentifyOutput {
    /// This shard may identify now: call `grant_identify` on its machine.
    Grant(ShardId),
    /// The daily session-start budget is spent: nothing is granted before `until`. Emitted
    /// once per exhaustion while shards wait.
    Exhausted {
        /// When the budget refills.
        until: Timestamp,
        /// How many shards are waiting.
        waiting: usize,
    },
}

/// The identify queue of one process (see the module docs).
#[derive(Clone, Debug)]
pub struct IdentifyQueue<C = LocalCoordinator> {
    coordinator: C,
    spacing: Duration,
    max_concurrency: u32,
    total: u32,
    remaining: u32,
    resets_at: Timestamp,
    now: Timestamp,
    /// Waiting shards and when they asked.
    waiting: BTreeMap<ShardId, Timestamp>,
    /// Per bucket, the waiting shards in service order.
    queues: BTreeMap<u32, BTreeSet<(Timestamp, ShardId)>>,
    /// Per bucket, before when it is known to be busy.
    retry_at: BTreeMap<u32, Timestamp>,
    exhausted_reported: bool,
}

impl IdentifyQueue<LocalCoordinator> {
    /// A queue with the budget and concurrency of `limit` (from `GET /gateway/bot`,
    /// received at `now`), coordinated in process.
    pub fn new(limit: SessionStartLimit, now: Timestamp) -> Self {
        Self::with_coordinator(limit, now, LocalCoordinator::default())
    }
}

impl<C: IdentifyCoordinator> IdentifyQueue<C> {
    /// A queue whose bucket decisions come from `coordinator` (e.g. a shared store).
    pub fn with_coordinator(limit: SessionStartLimit, now: Timestamp, coordinator: C) -> Self {
        IdentifyQueue {
            coordinator,
            spacing: IDENTIFY_INTERVAL,
            max_concurrency: limit.max_concurrency.max(1),
            total: limit.total,
            remaining: limit.remaining,
            resets_at: limit.resets_at(now),
            now,
            waiting: BTreeMap::new(),
            queues: BTreeMap::new(),
            retry_at: BTreeMap::new(),
            exhausted_reported: false,
        }
    }

    /// Changes the per-bucket spacing (default [`IDENTIFY_INTERVAL`]; a little more gives
    /// headroom for clock drift between the driver and Discord).
    pub fn with_spacing(mut self, spacing: Duration) -> Self {
        self.spacing = spacing;
        self
    }

    /// The coordinator.
    pub fn coordinator(&self) -> &C {
        &self.coordinator
    }

    /// The coordinator, mutably: e.g. to take the last error a shared-store coordinator
    /// kept, or to reconnect it. Decisions already made are not revisited.
    pub fn coordinator_mut(&mut self) -> &mut C {
        &mut self.coordinator
    }

    /// Session starts left before the refill.
    pub fn remaining(&self) -> u32 {
        self.remaining
    }

    /// When the budget refills.
    pub fn resets_at(&self) -> Timestamp {
        self.resets_at
    }

    /// How many shards are waiting.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Whether `shard` is waiting.
    pub fn is_waiting(&self, shard: ShardId) -> bool {
        self.waiting.contains_key(&shard)
    }

    /// The identify bucket of a shard.
    pub fn bucket(&self, shard: ShardId) -> u32 {
        shard.id % self.max_concurrency
    }

    /// `shard` wants to identify. A shard already waiting keeps its place.
    pub fn request(&mut self, shard: ShardId, now: Timestamp) {
        self.advance(now);
        if self.waiting.contains_key(&shard) {
            return;
        }
        self.waiting.insert(shard, self.now);
        let bucket = self.bucket(shard);
        self.queues
            .entry(bucket)
            .or_default()
            .insert((self.now, shard));
    }

    /// `shard` no longer wants to identify (it stopped, or resumed instead). Returns whether
    /// it was waiting.
    pub fn cancel(&mut self, shard: ShardId) -> bool {
        let Some(asked) = self.waiting.remove(&shard) else {
            return false;
        };
        let bucket = self.bucket(shard);
        if let Some(queue) = self.queues.get_mut(&bucket) {
            queue.remove(&(asked, shard));
            if queue.is_empty() {
                self.queues.remove(&bucket);
            }
        }
        true
    }

    /// Time passes (spurious calls are harmless): refills the budget when due.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.advance(now);
    }

    /// A fresh `session_start_limit` (from `GET /gateway/bot`, received at `now`) replaces
    /// the budget, refill time and concurrency.
    pub fn update_limit(&mut self, limit: SessionStartLimit, now: Timestamp) {
        self.advance(now);
        self.total = limit.total;
        self.remaining = limit.remaining;
        self.resets_at = limit.resets_at(self.now);
        self.exhausted_reported = false;
        let max_concurrency = limit.max_concurrency.max(1);
        if max_concurrency != self.max_concurrency {
            self.max_concurrency = max_concurrency;
            self.retry_at.clear();
            self.queues.clear();
            for (&shard, &asked) in &self.waiting {
                self.queues
                    .entry(shard.id % max_concurrency)
                    .or_default()
                    .insert((asked, shard));
            }
        }
    }

    /// The next thing to do, if any: drain after every input.
    pub fn poll_output(&mut self) -> Option<IdentifyOutput> {
        if self.waiting.is_empty() {
            return None;
        }
        if self.remaining == 0 {
            if self.exhausted_reported {
                return None;
            }
            self.exhausted_reported = true;
            return Some(IdentifyOutput::Exhausted {
                until: self.resets_at,
                waiting: self.waiting.len(),
            });
        }
        let now = self.now;
        let mut from = 0u32;
        while let Some((&bucket, queue)) = self.queues.range(from..).next() {
            let ready = self.retry_at.get(&bucket).is_none_or(|&at| at <= now);
            if let (true, Some(&first)) = (ready, queue.first()) {
                match self.coordinator.try_acquire(bucket, self.spacing, now) {
                    Lease::Granted => return Some(self.grant(bucket, first)),
                    Lease::Busy { until } => {
                        // Never ask again at the same instant, even if the store is odd.
                        let until = until.max(now.saturating_add(Duration::from_millis(1)));
                        self.retry_at.insert(bucket, until);
                    }
                }
            }
            match bucket.checked_add(1) {
                Some(next) => from = next,
                None => break,
            }
        }
        None
    }

    /// When [`IdentifyQueue::handle_timeout`] should next be called (`None`: nothing waits).
    /// After a full drain of [`IdentifyQueue::poll_output`] this is later than the latest
    /// `now`.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        if self.waiting.is_empty() {
            return None;
        }
        if self.remaining == 0 {
            return Some(if self.exhausted_reported {
                self.resets_at.max(self.now)
            } else {
                self.now
            });
        }
        self.queues
            .keys()
            .map(|bucket| {
                self.retry_at
                    .get(bucket)
                    .copied()
                    .unwrap_or(self.now)
                    .max(self.now)
            })
            .min()
    }

    fn grant(&mut self, bucket: u32, entry: (Timestamp, ShardId)) -> IdentifyOutput {
        let shard = entry.1;
        if let Some(queue) = self.queues.get_mut(&bucket) {
            queue.remove(&entry);
            if queue.is_empty() {
                self.queues.remove(&bucket);
            }
        }
        self.waiting.remove(&shard);
        self.remaining -= 1;
        self.retry_at
            .insert(bucket, self.now.saturating_add(self.spacing));
        IdentifyOutput::Grant(shard)
    }

    fn advance(&mut self, now: Timestamp) {
        self.now = self.now.max(now);
        if self.now >= self.resets_at {
            // Refill, and assume the next period ends a day after this one did.
            let period = SESSION_START_PERIOD.as_micros() as u64;
            let late = self.now.as_micros() - self.resets_at.as_micros();
            let periods = late / period + 1;
            self.resets_at = Timestamp::from_micros(
                self.resets_at
                    .as_micros()
                    .saturating_add(periods.saturating_mul(period)),
            );
            self.remaining = self.total;
            self.exhausted_reported = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;
    use alloc::format;
    use alloc::rc::Rc;
    use alloc::string::String;
    use alloc::vec::Vec;
    use core::cell::RefCell;

    fn limit(remaining: u32, max_concurrency: u32) -> SessionStartLimit {
        SessionStartLimit {
            total: 1000,
            remaining,
            reset_after: 3_600_000,
            max_concurrency,
        }
    }

    fn secs(s: u64) -> Timestamp {
        Timestamp::from_secs(s)
    }

    /// Drives a queue in virtual time until nothing waits or `until`; returns the outputs
    /// with their times.
    fn drive<C: IdentifyCoordinator>(
        q: &mut IdentifyQueue<C>,
        until: Timestamp,
    ) -> Vec<(Timestamp, IdentifyOutput)> {
        let mut out = Vec::new();
        let mut now = q.now;
        loop {
            q.handle_timeout(now);
            while let Some(o) = q.poll_output() {
                out.push((now, o));
            }
            match q.poll_timeout() {
                Some(next) if next <= until => {
                    assert!(next > now, "deadline {next} does not move past {now}");
                    now = next;
                }
                _ => return out,
            }
        }
    }

    fn grants(out: &[(Timestamp, IdentifyOutput)]) -> Vec<(Timestamp, u32)> {
        out.iter()
            .filter_map(|(t, o)| match o {
                IdentifyOutput::Grant(s) => Some((*t, s.id)),
                _ => None,
            })
            .collect()
    }

    /// Per bucket, consecutive grants are at least 5 s apart.
    fn assert_spacing(grants: &[(Timestamp, u32)], max_concurrency: u32) {
        let mut last: BTreeMap<u32, Timestamp> = BTreeMap::new();
        for &(t, id) in grants {
            let bucket = id % max_concurrency;
            if let Some(prev) = last.insert(bucket, t) {
                assert!(
                    t.saturating_duration_since(prev) >= IDENTIFY_INTERVAL,
                    "bucket {bucket}: grants at {prev} and {t}"
                );
            }
        }
    }

    #[test]
    fn mass_start_follows_buckets_in_order() {
        for (shards, mc) in [(16u32, 1u32), (16, 4), (16, 16), (32, 16), (20, 4)] {
            let mut q = IdentifyQueue::new(limit(1000, mc), secs(0));
            // Ask in reverse order: the grant order must not depend on it.
            for id in (0..shards).rev() {
                q.request(ShardId::new(id, shards), secs(0));
            }
            let out = drive(&mut q, secs(3600));
            let g = grants(&out);
            assert_eq!(g.len() as u32, shards);
            assert_spacing(&g, mc);
            // Shard order overall: batch k (shards k*mc .. (k+1)*mc) starts at 5k seconds.
            for (i, (t, id)) in g.iter().enumerate() {
                assert_eq!(*id, i as u32, "mc {mc}: order {g:?}");
                assert_eq!(*t, secs(5 * u64::from(id / mc)), "mc {mc}: shard {id}");
            }
            assert_eq!(q.remaining(), 1000 - shards);
            assert_eq!(q.poll_timeout(), None);
        }
    }

    #[test]
    fn requests_over_time_are_first_come_first_served_per_bucket() {
        let mut q = IdentifyQueue::new(limit(1000, 1), secs(0));
        q.request(ShardId::new(0, 8), secs(0));
        assert_eq!(
            q.poll_output(),
            Some(IdentifyOutput::Grant(ShardId::new(0, 8)))
        );
        q.request(ShardId::new(5, 8), secs(1));
        q.request(ShardId::new(1, 8), secs(2));
        q.request(ShardId::new(5, 8), secs(3)); // already waiting: keeps its place
        assert_eq!(q.poll_output(), None);
        assert_eq!(q.poll_timeout(), Some(secs(5)));
        let g = grants(&drive(&mut q, secs(60)));
        assert_eq!(g, [(secs(5), 5), (secs(10), 1)]);
    }

    #[test]
    fn cancelled_shards_are_skipped() {
        let mut q = IdentifyQueue::new(limit(1000, 1), secs(0));
        for id in 0..3 {
            q.request(ShardId::new(id, 3), secs(0));
        }
        assert!(q.cancel(ShardId::new(1, 3)));
        assert!(!q.cancel(ShardId::new(1, 3)));
        let g = grants(&drive(&mut q, secs(60)));
        assert_eq!(g, [(secs(0), 0), (secs(5), 2)]);
        assert_eq!(q.remaining(), 998);
    }

    #[test]
    fn daily_budget_is_never_overspent_and_refills() {
        let mut q = IdentifyQueue::new(
            SessionStartLimit {
                total: 10,
                remaining: 3,
                reset_after: 60_000,
                max_concurrency: 1,
            },
            secs(0),
        );
        for id in 0..5 {
            q.request(ShardId::new(id, 5), secs(0));
        }
        let out = drive(&mut q, secs(59));
        assert_eq!(
            out,
            [
                (secs(0), IdentifyOutput::Grant(ShardId::new(0, 5))),
                (secs(5), IdentifyOutput::Grant(ShardId::new(1, 5))),
                (secs(10), IdentifyOutput::Grant(ShardId::new(2, 5))),
                // Reported as soon as the last start is spent and shards still wait.
                (
                    secs(10),
                    IdentifyOutput::Exhausted {
                        until: secs(60),
                        waiting: 2
                    }
                ),
            ]
        );
        assert_eq!(q.remaining(), 0);
        assert_eq!(q.poll_timeout(), Some(secs(60)));
        // Spurious wakeups grant nothing and report nothing again.
        q.handle_timeout(secs(30));
        assert_eq!(q.poll_output(), None);
        // At the refill the rest go, still 5 s apart; the next refill is a day later.
        let g = grants(&drive(&mut q, secs(3600)));
        assert_eq!(g, [(secs(60), 3), (secs(65), 4)]);
        assert_eq!(q.remaining(), 8);
        assert_eq!(q.resets_at(), secs(60 + 86_400));
    }

    #[test]
    fn exhaustion_with_16_shards_and_concurrency_4() {
        let mut q = IdentifyQueue::new(
            SessionStartLimit {
                total: 16,
                remaining: 6,
                reset_after: 100_000,
                max_concurrency: 4,
            },
            secs(0),
        );
        for id in 0..16 {
            q.request(ShardId::new(id, 16), secs(0));
        }
        let out = drive(&mut q, secs(1000));
        let g = grants(&out);
        assert_eq!(g.len(), 16);
        assert_spacing(&g, 4);
        let before: Vec<u32> = g
            .iter()
            .filter(|(t, _)| *t < secs(100))
            .map(|g| g.1)
            .collect();
        assert_eq!(before, [0, 1, 2, 3, 4, 5]);
        assert!(out.contains(&(
            secs(5),
            IdentifyOutput::Exhausted {
                until: secs(100),
                waiting: 10
            }
        )));
        // After the refill every bucket is free: at each instant lower buckets go first,
        // and each bucket serves its shards in order.
        let after: Vec<(Timestamp, u32)> =
            g.iter().copied().filter(|(t, _)| *t >= secs(100)).collect();
        assert_eq!(
            after,
            [
                (secs(100), 8),
                (secs(100), 9),
                (secs(100), 6),
                (secs(100), 7),
                (secs(105), 12),
                (secs(105), 13),
                (secs(105), 10),
                (secs(105), 11),
                (secs(110), 14),
                (secs(110), 15),
            ]
        );
    }

    #[test]
    fn a_fresh_limit_ends_exhaustion() {
        let mut q = IdentifyQueue::new(limit(0, 1), secs(0));
        q.request(ShardId::new(0, 1), secs(0));
        assert!(matches!(
            q.poll_output(),
            Some(IdentifyOutput::Exhausted { .. })
        ));
        assert_eq!(q.poll_output(), None);
        q.update_limit(limit(5, 1), secs(1));
        assert_eq!(
            q.poll_output(),
            Some(IdentifyOutput::Grant(ShardId::new(0, 1)))
        );
        assert_eq!(q.remaining(), 4);
    }

    #[test]
    fn changing_concurrency_rebuckets_waiting_shards() {
        let mut q = IdentifyQueue::new(limit(100, 1), secs(0));
        for id in 0..4 {
            q.request(ShardId::new(id, 4), secs(0));
        }
        assert_eq!(
            q.poll_output(),
            Some(IdentifyOutput::Grant(ShardId::new(0, 4)))
        );
        assert_eq!(q.poll_output(), None);
        q.update_limit(limit(100, 4), secs(1));
        let g = grants(&drive(&mut q, secs(60)));
        assert_eq!(g, [(secs(1), 1), (secs(1), 2), (secs(1), 3)]);
    }

    #[test]
    fn time_going_backwards_is_clamped() {
        let mut q = IdentifyQueue::new(limit(100, 1), secs(10));
        q.request(ShardId::new(0, 2), secs(10));
        q.request(ShardId::new(1, 2), secs(3));
        assert_eq!(
            q.poll_output(),
            Some(IdentifyOutput::Grant(ShardId::new(0, 2)))
        );
        q.handle_timeout(secs(0));
        assert_eq!(q.poll_output(), None);
        assert_eq!(q.poll_timeout(), Some(secs(15)));
    }

    /// A reference shared store: an in-memory key-value map with Redis' `SET NX PX` and
    /// `PTTL` semantics, in the store's own time.
    #[derive(Default)]
    struct KvModel {
        entries: BTreeMap<String, (u32, Timestamp)>,
        sets: u32,
    }

    impl KvModel {
        fn set_nx_px(&mut self, key: &str, owner: u32, ttl: Duration, now: Timestamp) -> bool {
            self.sets += 1;
            match self.entries.get(key) {
                Some(&(_, expires)) if expires > now => false,
                _ => {
                    self.entries
                        .insert(key.into(), (owner, now.saturating_add(ttl)));
                    true
                }
            }
        }

        fn pttl(&self, key: &str, now: Timestamp) -> Option<Duration> {
            let (_, expires) = self.entries.get(key)?;
            (*expires > now).then(|| expires.saturating_duration_since(now))
        }
    }

    /// One process's view of the store: what a Redis-backed coordinator does.
    struct SharedStore {
        kv: Rc<RefCell<KvModel>>,
        owner: u32,
    }

    impl IdentifyCoordinator for SharedStore {
        fn try_acquire(&mut self, bucket: u32, hold: Duration, now: Timestamp) -> Lease {
            let key = format!("identify:{bucket}");
            let mut kv = self.kv.borrow_mut();
            if kv.set_nx_px(&key, self.owner, hold, now) {
                Lease::Granted
            } else {
                match kv.pttl(&key, now) {
                    Some(left) => Lease::Busy {
                        until: now.saturating_add(left),
                    },
                    // Expired between the two calls: ask again very soon.
                    None => Lease::Busy { until: now },
                }
            }
        }
    }

    #[test]
    fn two_processes_sharing_a_store_keep_the_single_queue_guarantees() {
        for mc in [1u32, 4, 16] {
            let shards = 32u32;
            // Reference: one in-process queue for all shards.
            let mut single = IdentifyQueue::new(limit(1000, mc), secs(0));
            for id in 0..shards {
                single.request(ShardId::new(id, shards), secs(0));
            }
            let reference = grants(&drive(&mut single, secs(3600)));

            // Two processes, each with half of the shards, one shared store.
            let kv = Rc::new(RefCell::new(KvModel::default()));
            let mut procs: Vec<IdentifyQueue<SharedStore>> = (0..2)
                .map(|p| {
                    let store = SharedStore {
                        kv: kv.clone(),
                        owner: p,
                    };
                    let mut q = IdentifyQueue::with_coordinator(limit(1000, mc), secs(0), store);
                    for id in crate::shard::shard_range(p, 2, shards) {
                        q.request(ShardId::new(id, shards), secs(0));
                    }
                    q
                })
                .collect();

            let mut fleet: Vec<(Timestamp, u32)> = Vec::new();
            let mut now = secs(0);
            for step in 0..10_000 {
                // Alternate who asks first, as real processes would race.
                let order = if step % 2 == 0 { [0, 1] } else { [1, 0] };
                for p in order {
                    procs[p].handle_timeout(now);
                    while let Some(o) = procs[p].poll_output() {
                        match o {
                            IdentifyOutput::Grant(s) => fleet.push((now, s.id)),
                            other => panic!("unexpected {other:?}"),
                        }
                    }
                }
                match procs.iter().filter_map(|q| q.poll_timeout()).min() {
                    Some(next) => {
                        assert!(next > now);
                        now = next;
                    }
                    None => break,
                }
            }

            assert_eq!(fleet.len() as u32, shards, "mc {mc}");
            let mut ids: Vec<u32> = fleet.iter().map(|g| g.1).collect();
            ids.sort();
            assert_eq!(ids, (0..shards).collect::<Vec<_>>());
            assert_spacing(&fleet, mc);
            // Same schedule as the single queue: per bucket, the same grant times.
            let times = |g: &[(Timestamp, u32)]| {
                let mut per_bucket: BTreeMap<u32, Vec<Timestamp>> = BTreeMap::new();
                for &(t, id) in g {
                    per_bucket.entry(id % mc).or_default().push(t);
                }
                per_bucket
            };
            assert_eq!(times(&fleet), times(&reference), "mc {mc}");
            // Within each process, shards of a bucket still go in shard order.
            for p in 0..2u32 {
                let r = crate::shard::shard_range(p, 2, shards);
                let mut last: BTreeMap<u32, u32> = BTreeMap::new();
                for &(_, id) in fleet.iter().filter(|g| r.contains(&g.1)) {
                    if let Some(prev) = last.insert(id % mc, id) {
                        assert!(prev < id);
                    }
                }
            }
        }
    }
}
