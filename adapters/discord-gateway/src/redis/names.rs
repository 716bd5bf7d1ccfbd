//! Who is asking: a label for this process, and unique tokens for leases.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// A label for this process, unique enough to tell processes apart in Redis
/// (`pid<pid>-<random>`): what [`IdentifyQueueConfig`](super::IdentifyQueueConfig) and
/// [`RedisSessionStore`](super::RedisSessionStore) use when not given a name.
pub fn process_label() -> String {
    format!("pid{}-{:08x}", std::process::id(), random_u64() as u32)
}

/// A token no other claim shares: the owner's label, a counter and a random part.
pub(crate) fn unique_token(owner: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{owner}#{n}-{:016x}", random_u64())
}

/// 64 random bits from the standard library's per-instance hash keys (seeded from the
/// operating system): not secret, only different per process and per call.
fn random_u64() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_name_their_owner() {
        let a = unique_token("proc");
        let b = unique_token("proc");
        assert_ne!(a, b);
        assert!(a.starts_with("proc#"), "{a}");
        assert!(process_label().starts_with(&format!("pid{}-", std::process::id())));
    }
}
