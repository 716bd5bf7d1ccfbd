//! Resharding without downtime: the new set comes up beside the old one; when all of it is
//! READY the fleet switches its count and closes the old set.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use discord_gateway_proto::ShardId;
use tokio::sync::mpsc::Sender;

use super::event::{FleetEvent, StopReason};
use super::handle::{lock, stop, FleetHandle, Slot};

/// Where the new set stands.
enum Progress {
    /// Every shard of it is READY.
    Ready,
    /// Some are still on their way.
    Waiting,
    /// This one left the fleet before READY (a fatal close, a removal).
    Lost(ShardId),
}

/// The reshard task: `from` is the running set's count, `shards` the new set.
pub(crate) async fn run(
    handle: FleetHandle,
    events: Sender<FleetEvent>,
    from: u32,
    shards: Vec<ShardId>,
) {
    let shared = Arc::clone(&handle.shared);
    let to = shards.first().map_or(0, |s| s.count);
    let _ = events.send(FleetEvent::ReshardStarted { from, to }).await;
    let mut failure = None;
    for shard in &shards {
        if let Err(error) = handle.start(*shard, None) {
            failure = Some(format!("shard {shard} could not start: {error}"));
            break;
        }
    }
    while failure.is_none() {
        let changed = shared.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        match progress(&handle, &shards) {
            Progress::Ready => break,
            Progress::Waiting => changed.await,
            Progress::Lost(shard) => {
                failure = Some(format!("shard {shard} stopped before READY"));
            }
        }
    }
    if let Some(reason) = failure {
        stop_set(
            &handle,
            |s| s.count == to && shards.contains(&s),
            StopReason::Removed,
        )
        .await;
        *lock(&shared.resharding) = None;
        let _ = events.send(FleetEvent::ReshardFailed { to, reason }).await;
        return;
    }
    // The switch: from now on the fleet is the new set.
    shared.shard_count.store(to, Ordering::Release);
    *lock(&shared.resharding) = None;
    let _ = events.send(FleetEvent::Resharded { from, to }).await;
    stop_set(&handle, |s| s.count != to, StopReason::Replaced).await;
}

fn progress(handle: &FleetHandle, shards: &[ShardId]) -> Progress {
    let slots = lock(&handle.shared.slots);
    let mut ready = true;
    for shard in shards {
        match slots.get(shard) {
            None => return Progress::Lost(*shard),
            Some(slot) => ready &= slot.status().ready,
        }
    }
    if ready {
        Progress::Ready
    } else {
        Progress::Waiting
    }
}

/// Stops (sessions ended) every shard `which` picks, all at once.
async fn stop_set(handle: &FleetHandle, which: impl Fn(ShardId) -> bool, reason: StopReason) {
    let slots: Vec<Arc<Slot>> = lock(&handle.shared.slots)
        .values()
        .filter(|slot| which(slot.shard))
        .cloned()
        .collect();
    let stops = slots.iter().map(|slot| stop(slot, false, reason.clone()));
    futures_util::future::join_all(stops).await;
}
