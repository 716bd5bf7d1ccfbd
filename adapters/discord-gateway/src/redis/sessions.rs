//! The session store: each shard's session, saved where any process can take the shard over
//! and resume it, guarded by an ownership lease so only one process does.

use std::fmt;
use std::time::Duration;

use discord_gateway_proto::{Session, ShardId, Timestamp};
use tokio::time::Instant;

use super::budget::millis;
use super::error::RedisError;
use super::keys::Namespace;
use super::lease::{LeaseHolder, ShardLease};
use super::link::RedisLink;
use super::names::{process_label, unique_token};
use super::reply::Reply;
use super::scripts::{lease as code, Scripts};

/// How a [`RedisSessionStore`] behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionStoreConfig {
    /// How long a lease lasts without renewal (default 30 s). A crashed owner's shards can
    /// be taken over this long after its last renewal; renew every third of it.
    pub lease_ttl: Duration,
    /// How long a saved session is kept after its last save (default 15 minutes, the
    /// machine's stale-session cutoff: an older one would not be resumed anyway).
    pub session_ttl: Duration,
    /// This process's label, the first part of its lease tokens.
    pub owner: String,
}

impl Default for SessionStoreConfig {
    fn default() -> Self {
        SessionStoreConfig {
            lease_ttl: Duration::from_secs(30),
            session_ttl: Duration::from_secs(15 * 60),
            owner: process_label(),
        }
    }
}

impl SessionStoreConfig {
    /// Sets [`SessionStoreConfig::lease_ttl`].
    pub fn with_lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl;
        self
    }

    /// Sets [`SessionStoreConfig::session_ttl`].
    pub fn with_session_ttl(mut self, ttl: Duration) -> Self {
        self.session_ttl = ttl;
        self
    }

    /// How often a holder should renew (or save, which renews): a third of the lease, so
    /// two renewals in a row can fail before it runs out.
    pub fn renew_every(&self) -> Duration {
        self.lease_ttl / 3
    }

    /// Sets [`SessionStoreConfig::owner`].
    pub fn with_owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = owner.into();
        self
    }
}

/// A session read back from the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredSession {
    /// The session as saved. Its `last_alive` is in the saving process's time base and
    /// means nothing here: use [`StoredSession::rebased`].
    pub session: Session,
    /// How long ago it last proved alive, now: the age when saved plus the time since, both
    /// measured on the Redis server's clock, so the processes' clocks need not agree.
    pub ack_age: Duration,
    /// How long ago it was saved.
    pub saved_ago: Duration,
    /// The lease token of the process that saved it.
    pub saved_by: String,
}

impl StoredSession {
    /// The session with `last_alive` moved into the caller's time base (`ack_age` before
    /// `now`). A `Timestamp` cannot go below zero: a driver whose clock starts at zero
    /// should start it at `ack_age` (as the examples' `Clock::with_offset` does), or the
    /// session looks younger than it is.
    pub fn rebased(&self, now: Timestamp) -> Session {
        self.session.clone().with_ack_age(self.ack_age, now)
    }
}

/// A successful claim: the lease, and the session to resume, if one was saved.
#[derive(Debug)]
pub struct Claim {
    /// The shard's lease, now this process's.
    pub lease: ShardLease,
    /// The saved session: resume it (if not stale) instead of identifying.
    pub session: Option<StoredSession>,
    /// A saved session that could not be read (not JSON of a `Session`), with why; it is
    /// ignored and overwritten by the next save.
    pub discarded: Option<String>,
}

/// What [`RedisSessionStore::peek`] sees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardRecord {
    /// Who holds the lease, if anyone.
    pub holder: Option<LeaseHolder>,
    /// The saved session, if any (`None` also for an unreadable one).
    pub session: Option<StoredSession>,
}

/// Why a session-store call failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionStoreError {
    /// Redis did not answer (nothing changed, or the change is unknown: see
    /// [`RedisError`]).
    #[error(transparent)]
    Redis(#[from] RedisError),
    /// Another process holds the shard's lease.
    #[error("shard {shard} is held by {holder:?} (expires in {expires_in:?})", holder = .holder.token, expires_in = .holder.expires_in)]
    Held {
        /// The shard.
        shard: ShardId,
        /// Who holds it.
        holder: LeaseHolder,
    },
    /// This lease is no longer held (it expired, and maybe another process took the
    /// shard): stop the shard without resuming it, and claim again.
    #[error("the lease on shard {shard} is lost (held now by {holder:?})")]
    LeaseLost {
        /// The shard.
        shard: ShardId,
        /// Who holds it now, if anyone.
        holder: Option<LeaseHolder>,
    },
    /// The session could not be written as JSON.
    #[error("the session of shard {shard} cannot be serialised: {reason}")]
    Serialize {
        /// The shard.
        shard: ShardId,
        /// Why.
        reason: String,
    },
}

/// Each shard's session and ownership, in Redis (cheap to clone).
///
/// The life of a shard in a fleet:
///
/// ```text
/// claim(shard)            -> Claim { lease, session }    resume the session if any, else identify
/// save(&mut lease, ..)    every lease_ttl / 3            stores the session and renews the lease
///   (or renew(&mut lease))                               when there is nothing new to store
/// hand_over(lease, ..)    graceful stop, session kept    another process claims and resumes
/// release(lease)          the session ended (close 1000) the next owner identifies
/// ```
///
/// Only the holder of a shard's lease can save or hand over its session, and
/// [`claim`](RedisSessionStore::claim) hands the session to one process at a time, so two
/// processes never both resume it as long as each resumes only with a
/// [valid](ShardLease::is_valid) lease. A crashed owner's lease expires after `lease_ttl`;
/// the next claim takes the shard and its last saved session.
#[derive(Clone)]
pub struct RedisSessionStore {
    link: RedisLink,
    namespace: Namespace,
    config: SessionStoreConfig,
    scripts: std::sync::Arc<Scripts>,
}

impl fmt::Debug for RedisSessionStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSessionStore")
            .field("link", &self.link)
            .field("namespace", &self.namespace)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What the holder script is asked to do.
#[derive(Clone, Copy)]
enum HolderMode {
    Renew,
    Save,
    Keep,
    Drop,
}

impl HolderMode {
    fn name(self) -> &'static str {
        match self {
            HolderMode::Renew => "renew",
            HolderMode::Save => "save",
            HolderMode::Keep => "keep",
            HolderMode::Drop => "drop",
        }
    }

    fn what(self) -> &'static str {
        match self {
            HolderMode::Renew => "renewing a shard lease",
            HolderMode::Save => "saving a session",
            HolderMode::Keep => "handing a shard over",
            HolderMode::Drop => "releasing a shard",
        }
    }
}

impl RedisSessionStore {
    /// A store on `link`, under `namespace` (the same for every process of the bot).
    pub fn new(link: RedisLink, namespace: Namespace, config: SessionStoreConfig) -> Self {
        RedisSessionStore {
            link,
            namespace,
            config,
            scripts: std::sync::Arc::new(Scripts::new()),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SessionStoreConfig {
        &self.config
    }

    /// Takes `shard` for this process (unless another process holds its lease) and reads
    /// its saved session, in one atomic step.
    pub async fn claim(&self, shard: ShardId) -> Result<Claim, SessionStoreError> {
        const WHAT: &str = "claiming a shard";
        let token = unique_token(&self.config.owner);
        let sent_at = Instant::now();
        let value = self
            .link
            .eval(
                WHAT,
                &self.scripts.claim,
                &[&self.namespace.lease(shard), &self.namespace.session(shard)],
                &[token.clone(), millis(self.config.lease_ttl).to_string()],
            )
            .await?;
        let reply = Reply::new(WHAT, value)?;
        let outcome = reply.int(0)?;
        if outcome != code::DONE && outcome != code::NOT_HOLDER {
            return Err(RedisError::bad_reply(WHAT, format!("code {outcome}")).into());
        }
        if outcome == code::NOT_HOLDER {
            return Err(SessionStoreError::Held {
                shard,
                holder: LeaseHolder {
                    token: reply.text(1)?,
                    expires_in: reply.pttl(2)?,
                },
            });
        }
        let now_us = reply.server_time(1)?;
        let (session, discarded) = match read_session(&reply, 3, now_us) {
            Ok(session) => (session, None),
            Err(why) => (None, Some(why)),
        };
        Ok(Claim {
            lease: ShardLease::new(shard, token, self.config.lease_ttl, sent_at),
            session,
            discarded,
        })
    }

    /// Extends `lease` by `lease_ttl`, if it is still held.
    pub async fn renew(&self, lease: &mut ShardLease) -> Result<(), SessionStoreError> {
        self.as_holder(lease, HolderMode::Renew, None).await
    }

    /// Stores `session` (whose last ACK is judged against `now`, the caller's time) for
    /// `lease`'s shard and renews the lease, if it is still held.
    pub async fn save(
        &self,
        lease: &mut ShardLease,
        session: &Session,
        now: Timestamp,
    ) -> Result<(), SessionStoreError> {
        self.as_holder(lease, HolderMode::Save, Some((session, now)))
            .await
    }

    /// Graceful stop, session kept: stores `session` and gives the lease up, in one step,
    /// so another process can claim the shard at once and resume. Fails with
    /// [`SessionStoreError::LeaseLost`] (storing nothing) if the lease was no longer held.
    pub async fn hand_over(
        &self,
        lease: ShardLease,
        session: &Session,
        now: Timestamp,
    ) -> Result<(), SessionStoreError> {
        let mut lease = lease;
        self.as_holder(&mut lease, HolderMode::Keep, Some((session, now)))
            .await
    }

    /// The shard's session ended (closed with 1000, invalidated): deletes the saved
    /// session and gives the lease up. The next owner identifies.
    pub async fn release(&self, lease: ShardLease) -> Result<(), SessionStoreError> {
        let mut lease = lease;
        self.as_holder(&mut lease, HolderMode::Drop, None).await
    }

    /// Looks at a shard without claiming it (for status pages and tests: resuming what
    /// this returns, without a lease, is how two processes end up resuming one session).
    pub async fn peek(&self, shard: ShardId) -> Result<ShardRecord, SessionStoreError> {
        const WHAT: &str = "looking at a shard";
        let value = self
            .link
            .eval(
                WHAT,
                &self.scripts.peek,
                &[&self.namespace.lease(shard), &self.namespace.session(shard)],
                &[],
            )
            .await?;
        let reply = Reply::new(WHAT, value)?;
        let now_us = reply.server_time(0)?;
        let token = reply.text(2)?;
        let holder = (!token.is_empty())
            .then(|| {
                Ok::<_, RedisError>(LeaseHolder {
                    token,
                    expires_in: reply.pttl(3)?,
                })
            })
            .transpose()?;
        Ok(ShardRecord {
            holder,
            session: read_session(&reply, 4, now_us).unwrap_or(None),
        })
    }

    async fn as_holder(
        &self,
        lease: &mut ShardLease,
        mode: HolderMode,
        session: Option<(&Session, Timestamp)>,
    ) -> Result<(), SessionStoreError> {
        let shard = lease.shard();
        let (json, ack_age_ms) = match session {
            Some((session, now)) => (
                serde_json::to_string(session).map_err(|e| SessionStoreError::Serialize {
                    shard,
                    reason: e.to_string(),
                })?,
                u64::try_from(session.ack_age(now).as_millis()).unwrap_or(u64::MAX),
            ),
            None => (String::new(), 0),
        };
        let args = [
            lease.token().to_string(),
            millis(lease.ttl()).to_string(),
            mode.name().to_string(),
            json,
            ack_age_ms.to_string(),
            millis(self.config.session_ttl).to_string(),
        ];
        let sent_at = Instant::now();
        let value = self
            .link
            .eval(
                mode.what(),
                &self.scripts.holder,
                &[&self.namespace.lease(shard), &self.namespace.session(shard)],
                &args,
            )
            .await?;
        let reply = Reply::new(mode.what(), value)?;
        let outcome = reply.int(0)?;
        if outcome != code::DONE && outcome != code::NOT_HOLDER {
            return Err(RedisError::bad_reply(mode.what(), format!("code {outcome}")).into());
        }
        if outcome == code::NOT_HOLDER {
            let token = reply.text(1)?;
            let holder = (!token.is_empty())
                .then(|| {
                    Ok::<_, RedisError>(LeaseHolder {
                        token,
                        expires_in: reply.pttl(2)?,
                    })
                })
                .transpose()?;
            return Err(SessionStoreError::LeaseLost { shard, holder });
        }
        lease.renewed(sent_at);
        Ok(())
    }
}

/// The session fields from item `at` on (`session, ack_age_ms, saved_at_us, saved_by`),
/// aged to `now_us` on the server's clock. `Ok(None)`: none saved. `Err`: unreadable.
fn read_session(reply: &Reply, at: usize, now_us: u64) -> Result<Option<StoredSession>, String> {
    let json = reply.text(at).map_err(|e| e.to_string())?;
    if json.is_empty() {
        return Ok(None);
    }
    let session: Session =
        serde_json::from_str(&json).map_err(|e| format!("not a saved session: {e}"))?;
    let ack_age_ms = reply.int(at + 1).map_err(|e| e.to_string())?;
    let saved_at_us = reply.int(at + 2).map_err(|e| e.to_string())?;
    let saved_by = reply.text(at + 3).map_err(|e| e.to_string())?;
    let saved_ago = Duration::from_micros(now_us.saturating_sub(saved_at_us.max(0) as u64));
    Ok(Some(StoredSession {
        session,
        ack_age: Duration::from_millis(ack_age_ms.max(0) as u64) + saved_ago,
        saved_ago,
        saved_by,
    }))
}
