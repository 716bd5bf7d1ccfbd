//! One shard's task in a fleet: claim the shard (with a store), start it, drive it and
//! forward its events into the merged stream, keep its lease alive, stop it when asked.
//!
//! ```text
//! loop {
//!     claim the lease (waiting while another process holds it)  -> Claimed / ClaimWaiting
//!     start the Shard (resuming the claimed or kept session)
//!     drive: next_event -> status -> merged stream (backpressure: see below)
//!            every renew_every: save the session (or renew the lease), beside the shard
//!            stop request     -> close, hand over (or release), Stopped, end
//!            shard ended      -> release, Stopped, end
//!            lease lost       -> close (session kept here), LeaseLost, claim again
//! }
//! ```
//!
//! Backpressure: events go into the bounded merged channel without waiting. When it is
//! full, the shard stops *reading* its socket ([`Shard::set_reading`]) but goes on being
//! driven (heartbeats, commands, reconnects), and the events it still produces wait here,
//! in order, until the channel has room; then reading resumes. A slow application slows
//! the sockets (TCP pushes back to Discord), never the heartbeats.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use discord_gateway_proto::{Phase, Session, ShardId};
use futures_channel::oneshot;
use futures_util::future::Either;
use tokio::sync::mpsc::error::SendError;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::mpsc::{OwnedPermit, Sender};
use tokio::time::{sleep, Instant};

use super::event::{FleetEvent, StopReason};
use super::handle::{lock, Shared, Slot, StopRequest};
use super::ownership::{ClaimAnswer, KeepAlive, Owner, Renewal};
use super::status::ShardState;
use crate::event::ShardEvent;
use crate::tokio::Shard;

/// How long to wait before asking the store again after it failed.
const STORE_RETRY: Duration = Duration::from_secs(1);

/// Waiting for room in the merged channel.
type Reserve = Pin<Box<dyn Future<Output = Result<OwnedPermit<FleetEvent>, SendError<()>>> + Send>>;

/// How a shard's run ended.
enum Outcome {
    /// The application (or a reshard, or the fleet's end) asked it to stop.
    Stop(StopRequest),
    /// The shard's stream ended by itself (fatal close, or closed by a `ShardSender`).
    Ended,
    /// Its lease is not this process's any more: stop here, claim again.
    LeaseLost(Option<String>),
    /// The merged stream was dropped.
    FleetGone,
}

/// The shard's task.
///
/// Its future stays small (about the size of the `Shard` it drives): the store's calls and
/// the closing steps, whose futures are large and short-lived, are boxed, so an idle shard
/// does not carry their room.
pub(crate) async fn run(
    shared: Arc<Shared>,
    events: Sender<FleetEvent>,
    slot: Arc<Slot>,
    mut stop: oneshot::Receiver<StopRequest>,
    mut kept: Option<Session>,
) {
    let shard = slot.shard;
    loop {
        slot.status().state = ShardState::Claiming;
        let claimed = Box::pin(claim(&shared, &events, shard, &mut stop, kept.take())).await;
        let (mut owner, session) = match claimed {
            Ok(claimed) => claimed,
            Err(request) => return Box::pin(leave(&shared, &events, &slot, request, None)).await,
        };
        let options = (shared.options)(shard).shard(shard);
        let options = options.identify_queue(shared.identify.clone());
        let options = match session {
            Some(session) => options.session(session),
            None => options,
        };
        let mut running = match Shard::from_config(Arc::clone(&shared.config), options) {
            Ok(running) => running,
            Err(error) => {
                let reason = StopReason::Config(error.to_string());
                let ending = async {
                    let _ = owner.release().await;
                    finish(&shared, &events, &slot, reason, None).await;
                };
                return Box::pin(ending).await;
            }
        };
        *lock(&slot.sender) = Some(running.sender());
        slot.status().state = ShardState::Running;
        let mut run = Run {
            shared: &shared,
            events: &events,
            slot: &slot,
            held: VecDeque::new(),
        };
        let outcome = run.drive(&mut running, &mut owner, &mut stop).await;
        let held = std::mem::take(&mut run.held);
        slot.status().state = ShardState::Stopping;
        *lock(&slot.sender) = None;
        let end = End {
            shared: &shared,
            events: &events,
            slot: &slot,
            shard: running,
            owner: *owner,
            held,
        };
        match Box::pin(end.conclude(outcome)).await {
            Some(session) => kept = session,
            None => return,
        }
    }
}

/// A shard's run is over: what is left to do with it.
struct End<'a> {
    shared: &'a Shared,
    events: &'a Sender<FleetEvent>,
    slot: &'a Slot,
    shard: Shard,
    owner: Owner,
    held: VecDeque<FleetEvent>,
}

impl End<'_> {
    /// Closes the shard as `outcome` asks; `Some(kept session)` when the task must claim it
    /// again, `None` when the shard left the fleet.
    async fn conclude(mut self, outcome: Outcome) -> Option<Option<Session>> {
        let (shared, events, slot) = (self.shared, self.events, self.slot);
        let shard = slot.shard;
        match outcome {
            Outcome::Stop(request) => {
                let session = self.shard.close(request.keep_session).await;
                flush(events, self.held).await;
                let handed = match (&session, request.keep_session) {
                    (Some(session), true) => self.owner.hand_over(Some(session)).await,
                    _ => self.owner.release().await,
                };
                if let Err(error) = handed {
                    emit(events, FleetEvent::StoreUnavailable { shard, error }).await;
                }
                leave(shared, events, slot, request, session).await;
                None
            }
            Outcome::Ended => {
                flush(events, self.held).await;
                // Closed by the application through its `ShardSender`: a session it kept
                // is handed over like any graceful stop's; after a fatal close, nothing is
                // left to resume.
                let session = match self.shard.phase() {
                    Phase::Closed => self.shard.session(),
                    _ => None,
                };
                let _ = self.owner.hand_over(session.as_ref()).await;
                finish(shared, events, slot, StopReason::Ended, session).await;
                None
            }
            Outcome::FleetGone => {
                let session = self.shard.close(true).await;
                let _ = self.owner.hand_over(session.as_ref()).await;
                finish(shared, events, slot, StopReason::FleetDropped, session).await;
                None
            }
            Outcome::LeaseLost(holder) => {
                // Another process may run it now: stop without a word to the store, keep
                // the session here in case the lease comes back to us.
                let kept = self.shard.close(true).await;
                flush(events, self.held).await;
                emit(events, FleetEvent::LeaseLost { shard, holder }).await;
                Some(kept)
            }
        }
    }
}

/// Takes the shard's lease (at once without a store), or returns the stop request that
/// came first.
async fn claim(
    shared: &Shared,
    events: &Sender<FleetEvent>,
    shard: ShardId,
    stop: &mut oneshot::Receiver<StopRequest>,
    kept: Option<Session>,
) -> Result<(Box<Owner>, Option<Session>), StopRequest> {
    let mut reported: Option<String> = None;
    loop {
        let answer = unless_stopped(stop, shared.store.claim(shard, kept.clone())).await?;
        let wait = match answer {
            ClaimAnswer::Claimed(owner, session) => {
                if shared.store.is_some() {
                    let resuming = session.is_some();
                    emit(events, FleetEvent::Claimed { shard, resuming }).await;
                }
                return Ok((owner, session));
            }
            ClaimAnswer::Held { holder, retry_in } => {
                if reported.as_deref() != Some(holder.as_str()) {
                    reported = Some(holder.clone());
                    let event = FleetEvent::ClaimWaiting {
                        shard,
                        holder,
                        retry_in,
                    };
                    emit(events, event).await;
                }
                retry_in
            }
            ClaimAnswer::Unavailable(error) => {
                if reported.as_deref() != Some(error.as_str()) {
                    reported = Some(error.clone());
                    emit(events, FleetEvent::StoreUnavailable { shard, error }).await;
                }
                STORE_RETRY
            }
        };
        unless_stopped(stop, sleep(wait)).await?;
    }
}

/// Runs `future`, unless a stop request comes first.
async fn unless_stopped<F: Future>(
    stop: &mut oneshot::Receiver<StopRequest>,
    future: F,
) -> Result<F::Output, StopRequest> {
    let future = std::pin::pin!(future);
    match futures_util::future::select(stop, future).await {
        Either::Left((request, _)) => Err(stop_request(request)),
        Either::Right((output, _)) => Ok(output),
    }
}

/// A dropped stop handle (the fleet is gone): stop, keeping the session.
fn stop_request(request: Result<StopRequest, oneshot::Canceled>) -> StopRequest {
    request.unwrap_or(StopRequest {
        keep_session: true,
        reason: StopReason::FleetDropped,
        reply: None,
    })
}

/// One run of a started shard.
struct Run<'a> {
    shared: &'a Shared,
    events: &'a Sender<FleetEvent>,
    slot: &'a Slot,
    /// Events waiting for room in the merged channel, in order.
    held: VecDeque<FleetEvent>,
}

impl Run<'_> {
    /// Drives the shard until it must stop. Every pass looks, in this order, at: a stop
    /// request, the stream's end, a renewal's verdict, the renewal timer, room for held
    /// events, and the shard itself (which runs its own loop: timers first).
    async fn drive(
        &mut self,
        shard: &mut Shard,
        owner: &mut Owner,
        stop: &mut oneshot::Receiver<StopRequest>,
    ) -> Outcome {
        let renew_every = owner.renew_every();
        let mut renew_timer = renew_every.map(|every| Box::pin(sleep(every)));
        let mut renewal: Option<KeepAlive> = None;
        let mut room: Option<Reserve> = None;
        let mut store_error: Option<String> = None;
        let mut closed = {
            let events = self.events.clone();
            Box::pin(async move { events.closed().await })
        };
        poll_fn(|cx| loop {
            // Read the socket only while the merged channel takes events as they come.
            shard.set_reading(self.held.is_empty());
            if let Poll::Ready(request) = Pin::new(&mut *stop).poll(cx) {
                return Poll::Ready(Outcome::Stop(stop_request(request)));
            }
            if closed.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Outcome::FleetGone);
            }
            if let Some(future) = renewal.as_mut() {
                if let Poll::Ready((lease, verdict)) = future.as_mut().poll(cx) {
                    renewal = None;
                    owner.kept_alive(lease, &verdict);
                    match verdict {
                        Renewal::Kept => store_error = None,
                        Renewal::Lost { holder } => {
                            return Poll::Ready(Outcome::LeaseLost(holder));
                        }
                        Renewal::Unavailable(error) => {
                            if store_error.as_deref() != Some(error.as_str()) {
                                store_error = Some(error.clone());
                                let shard = self.slot.shard;
                                self.push(FleetEvent::StoreUnavailable { shard, error });
                            }
                        }
                    }
                    continue;
                }
            }
            if let (None, Some(timer), Some(every)) = (&renewal, renew_timer.as_mut(), renew_every)
            {
                if timer.as_mut().poll(cx).is_ready() {
                    renewal = owner.keep_alive(shard.session());
                    timer.as_mut().reset(Instant::now() + every);
                    continue;
                }
            }
            if !self.held.is_empty() {
                let reserve =
                    room.get_or_insert_with(|| Box::pin(self.events.clone().reserve_owned()));
                if let Poll::Ready(permit) = reserve.as_mut().poll(cx) {
                    room = None;
                    let Ok(permit) = permit else {
                        return Poll::Ready(Outcome::FleetGone);
                    };
                    if let Some(event) = self.held.pop_front() {
                        permit.send(event);
                    }
                    continue;
                }
            }
            match shard.poll_next_event(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(Outcome::Ended),
                Poll::Ready(Some(event)) => {
                    let lost = self.observe(shard, &event, owner);
                    let shard_id = self.slot.shard;
                    self.push(FleetEvent::Shard {
                        shard: shard_id,
                        event,
                    });
                    if lost {
                        return Poll::Ready(Outcome::LeaseLost(None));
                    }
                }
            }
        })
        .await
    }

    /// Updates the shard's status from a (non-dispatch) event; returns whether the shard
    /// must stop because its connection dropped while its lease is no longer sure.
    fn observe(&self, shard: &Shard, event: &ShardEvent, owner: &Owner) -> bool {
        if matches!(event, ShardEvent::Dispatch(_)) {
            return false;
        }
        let changed = self
            .slot
            .status()
            .observe(event, shard.phase(), shard.latency());
        if changed {
            self.shared.changed.notify_waiters();
        }
        matches!(event, ShardEvent::Disconnected { .. }) && !owner.is_valid()
    }

    /// Sends `event` now if the channel has room and nothing waits before it; otherwise it
    /// waits in `held`.
    fn push(&mut self, event: FleetEvent) {
        if !self.held.is_empty() {
            self.held.push_back(event);
            return;
        }
        match self.events.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(event)) | Err(TrySendError::Closed(event)) => {
                self.held.push_back(event);
            }
        }
    }
}

/// Sends what is held (after the shard stopped: waiting is harmless now).
async fn flush(events: &Sender<FleetEvent>, held: VecDeque<FleetEvent>) {
    for event in held {
        emit(events, event).await;
    }
}

/// Sends one event, waiting for room (used while no shard runs in this task).
async fn emit(events: &Sender<FleetEvent>, event: FleetEvent) {
    let _ = events.send(event).await;
}

/// The shard leaves the fleet at a stop request: answers it, then says so.
async fn leave(
    shared: &Shared,
    events: &Sender<FleetEvent>,
    slot: &Slot,
    request: StopRequest,
    session: Option<Session>,
) {
    if let Some(reply) = request.reply {
        let _ = reply.send(session.clone());
    }
    finish(shared, events, slot, request.reason, session).await;
}

/// Takes the shard out of the table and reports its end.
async fn finish(
    shared: &Shared,
    events: &Sender<FleetEvent>,
    slot: &Slot,
    reason: StopReason,
    session: Option<Session>,
) {
    {
        let mut slots = lock(&shared.slots);
        if slots
            .get(&slot.shard)
            .is_some_and(|s| std::ptr::eq(Arc::as_ptr(s), slot))
        {
            slots.remove(&slot.shard);
        }
    }
    shared.changed.notify_waiters();
    let shard = slot.shard;
    emit(
        events,
        FleetEvent::Stopped {
            shard,
            reason,
            session,
        },
    )
    .await;
}
