//! A shard's ownership lease, as the process holding it sees it.

use std::time::Duration;

use discord_gateway_proto::ShardId;
use tokio::time::Instant;

/// The right to run (and resume) one shard, held by one process at a time.
///
/// In Redis the lease is a key holding this lease's token, with a TTL of the store's
/// `lease_ttl`. Here it also carries a local, conservative deadline: the lease is
/// [`valid`](ShardLease::is_valid) until `lease_ttl` less a tenth after the last successful
/// claim or renewal was *sent*, so it counts as expired here before Redis can expire it
/// there (clock rates may differ by up to 10%). A holder whose lease is no longer valid must
/// not resume the shard's session before renewing: another process may have taken it.
///
/// Not `Clone`: one lease, one owner. Hand it back with
/// [`RedisSessionStore::hand_over`](super::RedisSessionStore::hand_over) or
/// [`RedisSessionStore::release`](super::RedisSessionStore::release); a lease that is
/// dropped (or whose process crashes) simply expires.
#[derive(Debug, PartialEq, Eq)]
pub struct ShardLease {
    shard: ShardId,
    token: String,
    ttl: Duration,
    valid_until: Instant,
}

impl ShardLease {
    pub(crate) fn new(shard: ShardId, token: String, ttl: Duration, sent_at: Instant) -> Self {
        let mut lease = ShardLease {
            shard,
            token,
            ttl,
            valid_until: sent_at,
        };
        lease.renewed(sent_at);
        lease
    }

    /// Records a renewal whose request was sent at `sent_at`.
    pub(crate) fn renewed(&mut self, sent_at: Instant) {
        self.valid_until = sent_at + self.ttl.saturating_sub(self.ttl / 10);
    }

    /// The shard.
    pub fn shard(&self) -> ShardId {
        self.shard
    }

    /// The token stored in Redis (this process's label and a unique suffix).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The lease's length in Redis.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Until when the lease is surely still held (local monotonic time).
    pub fn valid_until(&self) -> Instant {
        self.valid_until
    }

    /// Whether the lease is surely still held now.
    pub fn is_valid(&self) -> bool {
        Instant::now() < self.valid_until
    }
}

/// Who holds a shard's lease, as Redis says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseHolder {
    /// The holder's token (its process label first).
    pub token: String,
    /// How long until the lease expires unless renewed (`None`: a key without expiry,
    /// which this module never writes).
    pub expires_in: Option<Duration>,
}
