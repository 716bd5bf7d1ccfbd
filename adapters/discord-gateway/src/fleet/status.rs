//! [`ShardStatus`]: how each shard of a fleet is doing, kept up to date by its task from the
//! events it sees (never from dispatches: they cost nothing here).

use discord_gateway_proto::{Latency, Phase, ShardId};

use crate::event::ShardEvent;

/// Where a shard of the fleet is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShardState {
    /// Waiting for its lease in the session store (another process holds it, or the store
    /// does not answer).
    Claiming,
    /// Its connection runs (connecting, identifying, connected, reconnecting...: see
    /// [`ShardStatus::phase`]).
    Running,
    /// Closing (removed, replaced, or its lease was lost).
    Stopping,
}

/// One shard's status in a fleet (a snapshot).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ShardStatus {
    /// The shard.
    pub shard: ShardId,
    /// Where it is in its life.
    pub state: ShardState,
    /// Its machine's phase as of its last event (`Disconnected` before it starts).
    pub phase: Phase,
    /// Whether its session is live: READY or RESUMED came since its last connection began.
    pub ready: bool,
    /// Heartbeat round trips (last and recent average).
    pub latency: Latency,
    /// How many times its connection was lost (each one followed by a reconnect).
    pub reconnects: u32,
    /// How many times a session was started from scratch (READY), resumes not counted.
    pub identifies: u32,
}

impl ShardStatus {
    pub(crate) fn new(shard: ShardId) -> Self {
        ShardStatus {
            shard,
            state: ShardState::Claiming,
            phase: Phase::Disconnected,
            ready: false,
            latency: Latency::default(),
            reconnects: 0,
            identifies: 0,
        }
    }

    /// Takes in one of the shard's events (not a dispatch); returns whether `ready` changed.
    pub(crate) fn observe(&mut self, event: &ShardEvent, phase: Phase, latency: Latency) -> bool {
        let was_ready = self.ready;
        self.phase = phase;
        self.latency = latency;
        match event {
            ShardEvent::Ready(_) => {
                self.ready = true;
                self.identifies += 1;
            }
            ShardEvent::Resumed { .. } => self.ready = true,
            ShardEvent::Disconnected { .. } => {
                self.ready = false;
                self.reconnects += 1;
            }
            ShardEvent::Fatal(_) | ShardEvent::Closed { .. } => self.ready = false,
            _ => {}
        }
        was_ready != self.ready
    }
}
