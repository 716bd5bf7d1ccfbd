//! [`FleetEvent`]: what the fleet's merged stream carries: every shard's own events, tagged
//! with the shard, and what the fleet does with its shards (claims, hand-overs, stops,
//! resharding).

use std::time::Duration;

use discord_gateway_proto::{Session, ShardId};

use crate::event::{DispatchEvent, ShardEvent};

/// One item of the fleet's event stream.
///
/// Nearly all are [`FleetEvent::Shard`] with a dispatch inside. Each shard's events come in
/// its own order; events of different shards interleave as they arrive. Match what you need
/// and ignore the rest (`_ => {}`): variants may be added.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum FleetEvent {
    /// An event of one shard: a dispatch, READY, a disconnection, an identify that waits...
    Shard {
        /// The shard it came from: its id and the shard count of its set (during a
        /// reshard, two sets run; the count tells them apart).
        shard: ShardId,
        /// What the shard reported.
        event: ShardEvent,
    },
    /// The shard's lease was taken (a fleet with a session store): it starts now, resuming
    /// a saved session when `resuming`, identifying otherwise.
    Claimed {
        /// The shard.
        shard: ShardId,
        /// Whether a session was found in the store (or kept here) to resume.
        resuming: bool,
    },
    /// Another process holds the shard's lease; the fleet asks again after `retry_in`
    /// (a rolling restart: the old process hands the shard over when it stops, or its
    /// lease expires if it crashed). Reported when the holder changes.
    ClaimWaiting {
        /// The shard.
        shard: ShardId,
        /// The holder's lease token (its process label first).
        holder: String,
        /// When the fleet asks again.
        retry_in: Duration,
    },
    /// The session store did not answer (Redis unreachable or slow). A running shard goes
    /// on (its lease stays good here until it would expire in Redis); a shard waiting for
    /// its lease keeps waiting. Reported when the reason changes.
    StoreUnavailable {
        /// The shard whose call failed.
        shard: ShardId,
        /// Why.
        error: String,
    },
    /// The shard's lease is lost: Redis says another process holds it (or nobody, after
    /// Redis lost its data), or it expired here while Redis could not be reached and the
    /// connection dropped. The shard was stopped here, its session kept but not handed
    /// over, so that two processes never run it; the fleet claims it again (waiting while
    /// another process holds it).
    LeaseLost {
        /// The shard.
        shard: ShardId,
        /// Who holds it now, if anyone is known to.
        holder: Option<String>,
    },
    /// The shard left the fleet: removed, the fleet shut down, replaced by a reshard, or
    /// ended by itself (a fatal close). Nothing more comes from it.
    Stopped {
        /// The shard.
        shard: ShardId,
        /// Why.
        reason: StopReason,
        /// The session, if it was kept (and, with a store, handed over).
        session: Option<Session>,
    },
    /// A reshard began: a new set of `to` shards starts beside the running set of `from`
    /// (see the module docs for what the stream carries meanwhile).
    ReshardStarted {
        /// The running set's shard count.
        from: u32,
        /// The new set's shard count.
        to: u32,
    },
    /// Every shard of the new set is READY: the fleet now belongs to it
    /// ([`FleetHandle::shard_count`](super::FleetHandle::shard_count) is `to`), and the old
    /// set is being closed (its last events, then its [`FleetEvent::Stopped`], follow).
    Resharded {
        /// The old set's shard count.
        from: u32,
        /// The new set's shard count.
        to: u32,
    },
    /// A reshard was given up (a shard of the new set stopped before READY); the new set
    /// was closed and the old one runs on.
    ReshardFailed {
        /// The new set's shard count.
        to: u32,
        /// Why.
        reason: String,
    },
}

/// Why a shard left the fleet.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// [`FleetHandle::remove`](super::FleetHandle::remove) or a shutdown.
    Removed,
    /// The shard's own stream ended: a fatal close (its [`ShardEvent::Fatal`] came just
    /// before), or a `ShardSender::close` from the application (a session it kept is
    /// handed over, with a store).
    Ended,
    /// A reshard replaced its set.
    Replaced,
    /// The fleet's event stream was dropped.
    FleetDropped,
    /// The shard could not be built from the fleet's configuration.
    Config(String),
}

impl FleetEvent {
    /// The shard this event is about, if it is about one.
    pub fn shard(&self) -> Option<ShardId> {
        match self {
            FleetEvent::Shard { shard, .. }
            | FleetEvent::Claimed { shard, .. }
            | FleetEvent::ClaimWaiting { shard, .. }
            | FleetEvent::StoreUnavailable { shard, .. }
            | FleetEvent::LeaseLost { shard, .. }
            | FleetEvent::Stopped { shard, .. } => Some(*shard),
            FleetEvent::ReshardStarted { .. }
            | FleetEvent::Resharded { .. }
            | FleetEvent::ReshardFailed { .. } => None,
        }
    }

    /// The dispatch and its shard, if this is one.
    pub fn as_dispatch(&self) -> Option<(ShardId, &DispatchEvent)> {
        match self {
            FleetEvent::Shard {
                shard,
                event: ShardEvent::Dispatch(dispatch),
            } => Some((*shard, dispatch)),
            _ => None,
        }
    }
}
