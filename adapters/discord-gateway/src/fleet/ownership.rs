//! Who runs a shard: with a session store (Redis), the process holding its lease, and no
//! other. A shard's task claims the lease before it starts the shard (taking the saved
//! session to resume), saves the session and renews the lease while it runs, and hands
//! both over (or releases them) when it stops. Without a store, every call here is
//! trivially granted.
//!
//! Renewals run beside the shard, never in its way: [`Owner::keep_alive`] takes the lease
//! out into a future the task polls next to the shard, and
//! [`Owner::kept_alive`] puts it back with the verdict.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use discord_gateway_proto::{Session, ShardId};

#[cfg(feature = "redis")]
use crate::redis::{RedisSessionStore, SessionStoreError, ShardLease, StoredSession};

/// The fleet's session store, if it has one.
#[derive(Clone, Debug, Default)]
pub(crate) struct Store {
    #[cfg(feature = "redis")]
    redis: Option<RedisSessionStore>,
}

/// What a claim found.
#[derive(Debug)]
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) enum ClaimAnswer {
    /// The lease is ours; resume this session if there is one.
    Claimed(Box<Owner>, Option<Session>),
    /// Another process holds it: ask again after `retry_in`.
    Held { holder: String, retry_in: Duration },
    /// The store did not answer.
    Unavailable(String),
}

/// The verdict of one renewal.
#[derive(Debug)]
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) enum Renewal {
    /// Saved or renewed.
    Kept,
    /// Redis says the lease is not ours.
    Lost { holder: Option<String> },
    /// Redis did not answer; the lease runs on locally until it would expire.
    Unavailable(String),
}

/// A renewal in flight.
pub(crate) type KeepAlive = Pin<Box<dyn Future<Output = (LeaseSlot, Renewal)> + Send>>;

/// The lease, while a renewal carries it.
#[derive(Debug)]
pub(crate) struct LeaseSlot {
    #[cfg(feature = "redis")]
    lease: Option<ShardLease>,
    /// The session this renewal saved, if it saved one.
    #[cfg(feature = "redis")]
    saved: Option<(String, u64)>,
    /// Whether the lease was claimed anew (the store holds no session of ours now).
    #[cfg(feature = "redis")]
    reclaimed: bool,
}

/// This process's right to run one shard.
#[derive(Debug)]
pub(crate) struct Owner {
    #[cfg(feature = "redis")]
    store: Option<RedisSessionStore>,
    #[cfg(feature = "redis")]
    lease: Option<ShardLease>,
    /// Until when the lease surely holds (kept while a renewal carries the lease).
    #[cfg(feature = "redis")]
    valid_until: Option<tokio::time::Instant>,
    /// The session as last saved: id and sequence.
    #[cfg(feature = "redis")]
    saved: Option<(String, u64)>,
}

impl Store {
    /// No store: every shard is this process's to run.
    pub(crate) fn none() -> Self {
        Store::default()
    }

    /// Sessions and leases in Redis.
    #[cfg(feature = "redis")]
    pub(crate) fn redis(store: RedisSessionStore) -> Self {
        Store { redis: Some(store) }
    }

    /// Whether there is a store.
    pub(crate) fn is_some(&self) -> bool {
        #[cfg(feature = "redis")]
        return self.redis.is_some();
        #[cfg(not(feature = "redis"))]
        false
    }

    /// Takes `shard` for this process. `local`: a session this process kept for it (after
    /// its lease was lost here), preferred when it is newer than the store's.
    pub(crate) async fn claim(&self, shard: ShardId, local: Option<Session>) -> ClaimAnswer {
        #[cfg(feature = "redis")]
        if let Some(store) = &self.redis {
            return match store.claim(shard).await {
                Ok(claim) => {
                    let session = newest(claim.session.as_ref(), local);
                    let owner = Owner {
                        store: Some(store.clone()),
                        valid_until: Some(claim.lease.valid_until()),
                        lease: Some(claim.lease),
                        saved: None,
                    };
                    ClaimAnswer::Claimed(Box::new(owner), session)
                }
                Err(SessionStoreError::Held { holder, .. }) => {
                    let renew = store.config().renew_every();
                    let retry_in = holder.expires_in.map_or(renew, |left| left.min(renew));
                    ClaimAnswer::Held {
                        holder: holder.token,
                        retry_in: retry_in.max(Duration::from_millis(50)),
                    }
                }
                Err(other) => ClaimAnswer::Unavailable(other.to_string()),
            };
        }
        let _ = shard;
        ClaimAnswer::Claimed(Box::new(Owner::unguarded()), local)
    }
}

impl Owner {
    fn unguarded() -> Self {
        Owner {
            #[cfg(feature = "redis")]
            store: None,
            #[cfg(feature = "redis")]
            lease: None,
            #[cfg(feature = "redis")]
            valid_until: None,
            #[cfg(feature = "redis")]
            saved: None,
        }
    }

    /// How often to save or renew (`None`: no store, nothing to renew).
    pub(crate) fn renew_every(&self) -> Option<Duration> {
        #[cfg(feature = "redis")]
        return self.store.as_ref().map(|s| s.config().renew_every());
        #[cfg(not(feature = "redis"))]
        None
    }

    /// Whether this process surely still holds the shard (always, without a store).
    pub(crate) fn is_valid(&self) -> bool {
        #[cfg(feature = "redis")]
        if self.store.is_some() {
            return self
                .valid_until
                .is_some_and(|until| tokio::time::Instant::now() < until);
        }
        true
    }

    /// Starts a renewal: saves `session` if it moved since the last save (a save renews
    /// the lease), renews the lease otherwise. `None` without a store, or while another
    /// renewal carries the lease.
    pub(crate) fn keep_alive(&mut self, session: Option<Session>) -> Option<KeepAlive> {
        #[cfg(feature = "redis")]
        {
            let store = self.store.clone()?;
            let mut lease = self.lease.take()?;
            let saved = self.saved.as_ref().map(|(id, seq)| (id.as_str(), *seq));
            let fresh = session.filter(|s| saved != Some((s.id.as_str(), s.sequence)));
            let future = async move {
                let result = match &fresh {
                    Some(session) => store.save(&mut lease, session, now()).await,
                    None => store.renew(&mut lease).await,
                };
                let mut reclaimed = false;
                let renewal = match result {
                    Ok(()) => Renewal::Kept,
                    // Nobody holds it (it expired while Redis was away, or Redis lost its
                    // data): take it back without stopping the shard. If another process
                    // claims first, the claim says so and the shard stops.
                    Err(SessionStoreError::LeaseLost { holder: None, .. }) => {
                        match store.claim(lease.shard()).await {
                            Ok(claim) => {
                                lease = claim.lease;
                                reclaimed = true;
                                Renewal::Kept
                            }
                            Err(SessionStoreError::Held { holder, .. }) => Renewal::Lost {
                                holder: Some(holder.token),
                            },
                            Err(other) => Renewal::Unavailable(other.to_string()),
                        }
                    }
                    Err(SessionStoreError::LeaseLost { holder, .. }) => Renewal::Lost {
                        holder: holder.map(|h| h.token),
                    },
                    Err(other) => Renewal::Unavailable(other.to_string()),
                };
                // A reclaimed lease has not stored this session yet: the next renewal does.
                let saved = match (&renewal, fresh) {
                    (Renewal::Kept, Some(session)) if !reclaimed => {
                        Some((session.id.clone(), session.sequence))
                    }
                    _ => None,
                };
                (
                    LeaseSlot {
                        lease: Some(lease),
                        saved,
                        reclaimed,
                    },
                    renewal,
                )
            };
            Some(Box::pin(future))
        }
        #[cfg(not(feature = "redis"))]
        {
            let _ = session;
            None
        }
    }

    /// Takes the lease back from a finished renewal.
    pub(crate) fn kept_alive(&mut self, slot: LeaseSlot, renewal: &Renewal) {
        #[cfg(feature = "redis")]
        {
            if let Some(lease) = slot.lease {
                if matches!(renewal, Renewal::Kept) {
                    self.valid_until = Some(lease.valid_until());
                }
                self.lease = Some(lease);
            }
            if slot.reclaimed {
                self.saved = None;
            }
            if slot.saved.is_some() {
                self.saved = slot.saved;
            }
        }
        #[cfg(not(feature = "redis"))]
        let _ = (slot, renewal);
    }

    /// Graceful stop: hands `session` over (stored with the lease given up, so another
    /// process resumes it at once), or releases the shard when there is no session (the
    /// next owner identifies). Returns why it failed, if it did.
    pub(crate) async fn hand_over(self, session: Option<&Session>) -> Result<(), String> {
        #[cfg(feature = "redis")]
        if let (Some(store), Some(lease)) = (self.store, self.lease) {
            let result = match session {
                Some(session) => store.hand_over(lease, session, now()).await,
                None => store.release(lease).await,
            };
            return result.map_err(|e| e.to_string());
        }
        let _ = session;
        Ok(())
    }

    /// The shard's session ended (closed for good, replaced by a reshard): deletes the
    /// saved session and gives the lease up.
    pub(crate) async fn release(self) -> Result<(), String> {
        self.hand_over(None).await
    }
}

/// The session to resume: the store's (rebased onto this process's clock) or the one kept
/// here, whichever is newer (same session: the higher sequence; different sessions: the
/// store's, which another process wrote after this one stopped).
#[cfg(feature = "redis")]
fn newest(stored: Option<&StoredSession>, local: Option<Session>) -> Option<Session> {
    let stored = stored.map(|s| s.rebased(now()));
    match (stored, local) {
        (Some(stored), Some(local))
            if stored.id == local.id && local.sequence > stored.sequence =>
        {
            Some(local)
        }
        (Some(stored), _) => Some(stored),
        (None, local) => local,
    }
}

/// Now, in the shards' time base (see `crate::clock`).
#[cfg(feature = "redis")]
fn now() -> discord_gateway_proto::Timestamp {
    crate::clock::Clock::start().now()
}
