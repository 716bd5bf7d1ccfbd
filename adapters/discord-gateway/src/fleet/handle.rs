//! [`FleetHandle`]: the fleet's control side (add and remove shards, reach each one, read
//! their status, reshard, shut down), cloneable, usable from any task; and the state every
//! shard's task shares with it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use discord_gateway_proto::config::ConfigError;
use discord_gateway_proto::shard::shard_for_guild;
use discord_gateway_proto::{GatewayConfig, Session, ShardId};
use futures_channel::oneshot;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, Notify};

use super::event::{FleetEvent, StopReason};
use super::ownership::Store;
use super::runner;
use super::status::ShardStatus;
use crate::http::GatewayBotError;
use crate::identify::SharedIdentifyQueue;
use crate::options::ShardOptions;
use crate::sender::ShardSender;

/// Why a fleet operation was refused.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FleetError {
    /// The fleet starts shard tasks: it must be started inside a tokio runtime.
    #[error("a fleet must be started inside a tokio runtime")]
    NoRuntime,
    /// The gateway configuration cannot work (checked for every shard before any starts).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `GET /gateway/bot` failed.
    #[error(transparent)]
    GatewayBot(#[from] GatewayBotError),
    /// The shard already runs in this fleet.
    #[error("shard {0} is already in the fleet")]
    AlreadyRunning(ShardId),
    /// The shard is not in this fleet.
    #[error("shard {0} is not in the fleet")]
    NotInFleet(ShardId),
    /// The fleet was shut down: it starts nothing more.
    #[error("the fleet was shut down")]
    ShutDown,
    /// A reshard is under way (to this many shards); wait for its end.
    #[error("a reshard to {0} shards is under way")]
    Resharding(u32),
    /// The shards given to a reshard are not one new set (empty, mixed counts, or the
    /// count the fleet already has).
    #[error("not a new set of shards: {0}")]
    NotANewSet(String),
}

/// Builds the options of each shard.
pub(crate) type OptionsFn = Arc<dyn Fn(ShardId) -> ShardOptions + Send + Sync>;

/// What the fleet and every shard task share.
pub(crate) struct Shared {
    /// The protocol settings; each shard overrides the shard id.
    pub(crate) config: Arc<GatewayConfig>,
    pub(crate) options: OptionsFn,
    pub(crate) identify: SharedIdentifyQueue,
    pub(crate) store: Store,
    /// The merged stream's sending side, cloned into every task; taken at shutdown, so
    /// the stream ends once the last task has said its last.
    pub(crate) events: Mutex<Option<mpsc::Sender<FleetEvent>>>,
    pub(crate) slots: Mutex<BTreeMap<ShardId, Arc<Slot>>>,
    /// The shard count of the set the fleet belongs to (changes at a reshard's switch).
    pub(crate) shard_count: AtomicU32,
    /// The count a reshard is bringing up, while one runs.
    pub(crate) resharding: Mutex<Option<u32>>,
    /// Signalled when a shard's readiness changes or a shard leaves.
    pub(crate) changed: Notify,
    pub(crate) runtime: Handle,
}

/// One shard's place in the fleet.
pub(crate) struct Slot {
    pub(crate) shard: ShardId,
    pub(crate) status: Mutex<ShardStatus>,
    /// The running shard's command handle (a new one each time the shard is started).
    pub(crate) sender: Mutex<Option<ShardSender>>,
    /// Tells the shard's task to stop.
    pub(crate) stop: Mutex<Option<oneshot::Sender<StopRequest>>>,
}

/// A request to stop one shard.
pub(crate) struct StopRequest {
    pub(crate) keep_session: bool,
    pub(crate) reason: StopReason,
    pub(crate) reply: Option<oneshot::Sender<Option<Session>>>,
}

impl Slot {
    pub(crate) fn status(&self) -> MutexGuard<'_, ShardStatus> {
        lock(&self.status)
    }
}

/// The fleet's control side: cheap to clone, usable from any task (see [`Fleet`](super::Fleet)
/// for the event stream).
#[derive(Clone)]
pub struct FleetHandle {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for FleetHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetHandle")
            .field("shard_count", &self.shard_count())
            .field("shards", &lock(&self.shared.slots).len())
            .field("identify", &self.shared.identify)
            .field("store", &self.shared.store.is_some())
            .finish_non_exhaustive()
    }
}

impl FleetHandle {
    // ----- getters -----

    /// The shard count of the fleet's set: the count its shards were started with, and
    /// after a reshard's switch, the new one.
    pub fn shard_count(&self) -> u32 {
        self.shared.shard_count.load(Ordering::Acquire)
    }

    /// The shard that receives `guild_id`'s events in the fleet's set:
    /// `(guild_id >> 22) % shard_count`. During a reshard, the new set's shard for the same
    /// guild is `proto::shard::shard_for_guild(guild_id, new_count)`; see the module docs
    /// on deduplicating the overlap.
    pub fn shard_for_guild(&self, guild_id: u64) -> ShardId {
        let count = self.shard_count();
        ShardId::new(shard_for_guild(guild_id, count), count.max(1))
    }

    /// The shards in the fleet, in order (both sets during a reshard).
    pub fn shards(&self) -> Vec<ShardId> {
        lock(&self.shared.slots).keys().copied().collect()
    }

    /// The command handle of a running shard (`None` if it is not in the fleet, or not
    /// started yet: waiting for its lease). A shard restarted by the fleet (after its lease
    /// was lost) gets a new handle; the old one answers `SendError::Stopped`.
    pub fn sender(&self, shard: ShardId) -> Option<ShardSender> {
        let slot = lock(&self.shared.slots).get(&shard).cloned()?;
        let sender = lock(&slot.sender).clone();
        sender
    }

    /// One shard's status (`None` if it is not in the fleet).
    pub fn status(&self, shard: ShardId) -> Option<ShardStatus> {
        let slot = lock(&self.shared.slots).get(&shard).cloned()?;
        let status = slot.status().clone();
        Some(status)
    }

    /// Every shard's status, in shard order.
    pub fn statuses(&self) -> Vec<ShardStatus> {
        let slots: Vec<Arc<Slot>> = lock(&self.shared.slots).values().cloned().collect();
        slots.iter().map(|slot| slot.status().clone()).collect()
    }

    /// The identify queue every shard of the fleet takes turns in.
    pub fn identify_queue(&self) -> &SharedIdentifyQueue {
        &self.shared.identify
    }

    /// The shard count a reshard is bringing up, while one runs.
    pub fn resharding(&self) -> Option<u32> {
        *lock(&self.shared.resharding)
    }

    // ----- commands -----

    /// Starts `shard` in the fleet (with a store: once its lease is claimed). Its events
    /// join the stream.
    pub fn add(&self, shard: ShardId) -> Result<(), FleetError> {
        self.start(shard, None)
    }

    /// Starts `shard` resuming `session` (saved from an earlier run), unless the store
    /// holds a newer one.
    pub fn resume(&self, shard: ShardId, session: Session) -> Result<(), FleetError> {
        self.start(shard, Some(session))
    }

    /// Stops `shard`: closes it, keeping its session resumable when `keep_session` (and,
    /// with a store, handing it over for another process to resume), and returns that
    /// session. A [`FleetEvent::Stopped`] follows in the stream.
    pub async fn remove(
        &self,
        shard: ShardId,
        keep_session: bool,
    ) -> Result<Option<Session>, FleetError> {
        let slot = lock(&self.shared.slots)
            .get(&shard)
            .cloned()
            .ok_or(FleetError::NotInFleet(shard))?;
        Ok(stop(&slot, keep_session, StopReason::Removed).await)
    }

    /// Stops every shard at once (each as [`remove`](Self::remove) does) and returns their
    /// sessions, in shard order. With `keep_session` and a store, every session is handed
    /// over: the next process to start takes the shards and resumes them.
    pub async fn shutdown(&self, keep_session: bool) -> Vec<(ShardId, Option<Session>)> {
        // Nothing starts from now on; the stream ends after the last shard's last event.
        lock(&self.shared.events).take();
        let slots: Vec<Arc<Slot>> = lock(&self.shared.slots).values().cloned().collect();
        let stops = slots.iter().map(|slot| async move {
            (
                slot.shard,
                stop(slot, keep_session, StopReason::Removed).await,
            )
        });
        futures_util::future::join_all(stops).await
    }

    /// Reshards without downtime: starts `shards` (a new set, one shard count, e.g.
    /// `GatewayBot::shard_ids()` of a fresh `GET /gateway/bot`, or this process's range of
    /// it) beside the running set; when every one of them is READY, the fleet switches to
    /// the new count and closes the old set (sessions ended). Returns at once; the stream
    /// tells the progress ([`FleetEvent::ReshardStarted`], [`FleetEvent::Resharded`] or
    /// [`FleetEvent::ReshardFailed`]). See the module docs for what the application sees
    /// during the overlap.
    pub fn reshard(&self, shards: impl IntoIterator<Item = ShardId>) -> Result<(), FleetError> {
        let shards: Vec<ShardId> = shards.into_iter().collect();
        let Some(first) = shards.first() else {
            return Err(FleetError::NotANewSet("no shard given".into()));
        };
        let to = first.count;
        if shards.iter().any(|s| s.count != to) {
            return Err(FleetError::NotANewSet(
                "the shards have different counts".into(),
            ));
        }
        if to == self.shard_count() {
            return Err(FleetError::NotANewSet(format!(
                "the fleet already runs {to} shards"
            )));
        }
        let config = (*self.shared.config).clone().with_shard(*first);
        config.validate()?;
        {
            let mut resharding = lock(&self.shared.resharding);
            if let Some(count) = *resharding {
                return Err(FleetError::Resharding(count));
            }
            *resharding = Some(to);
        }
        let Some(events) = self.events() else {
            *lock(&self.shared.resharding) = None;
            return Err(FleetError::ShutDown);
        };
        let handle = self.clone();
        let from = self.shard_count();
        self.shared
            .runtime
            .spawn(super::reshard::run(handle, events, from, shards));
        Ok(())
    }

    /// A sender into the merged stream (`None` after shutdown).
    pub(crate) fn events(&self) -> Option<mpsc::Sender<FleetEvent>> {
        lock(&self.shared.events).clone()
    }

    /// Puts `shard` in the table and starts its task.
    pub(crate) fn start(&self, shard: ShardId, session: Option<Session>) -> Result<(), FleetError> {
        let config = (*self.shared.config).clone().with_shard(shard);
        config.validate()?;
        let events = self.events().ok_or(FleetError::ShutDown)?;
        let (stop_tx, stop_rx) = oneshot::channel();
        let slot = Arc::new(Slot {
            shard,
            status: Mutex::new(ShardStatus::new(shard)),
            sender: Mutex::new(None),
            stop: Mutex::new(Some(stop_tx)),
        });
        {
            let mut slots = lock(&self.shared.slots);
            if slots.contains_key(&shard) {
                return Err(FleetError::AlreadyRunning(shard));
            }
            slots.insert(shard, Arc::clone(&slot));
        }
        // The first shard sets the fleet's count.
        let _ = self.shared.shard_count.compare_exchange(
            0,
            shard.count,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        let shared = Arc::clone(&self.shared);
        self.shared
            .runtime
            .spawn(runner::run(shared, events, slot, stop_rx, session));
        Ok(())
    }
}

/// Asks `slot`'s task to stop and waits for the session.
pub(crate) async fn stop(slot: &Slot, keep_session: bool, reason: StopReason) -> Option<Session> {
    let (reply, answer) = oneshot::channel();
    let request = StopRequest {
        keep_session,
        reason,
        reply: Some(reply),
    };
    let stopper = lock(&slot.stop).take()?;
    stopper.send(request).ok()?;
    answer.await.ok().flatten()
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every change under these locks is one assignment: a panic cannot leave them half done.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
