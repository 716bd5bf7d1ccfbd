//! Key names: every key of one bot under one namespace.

use discord_gateway_proto::ShardId;

/// The key namespace of one bot: every key this module writes starts with `{prefix}:`.
///
/// All processes of one bot must use the same namespace; two bots (or two test runs) on one
/// server must use different ones. The prefix is wrapped in braces, a Redis Cluster hash
/// tag, so all of a bot's keys would hash to one slot (the scripts touch several keys at
/// once); this module itself talks to one server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Namespace {
    prefix: String,
}

impl Namespace {
    /// The namespace of the bot with this application id: `{discord-gateway:<id>}`.
    pub fn for_application(application_id: u64) -> Self {
        Namespace::new(format!("discord-gateway:{application_id}"))
    }

    /// A namespace with a prefix of your choosing (braces in it are removed, so the hash
    /// tag stays the whole prefix).
    pub fn new(prefix: impl AsRef<str>) -> Self {
        let clean: String = prefix
            .as_ref()
            .chars()
            .filter(|c| *c != '{' && *c != '}')
            .collect();
        Namespace {
            prefix: format!("{{{clean}}}"),
        }
    }

    /// The prefix every key starts with, braces included.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The session-start budget (a hash with a TTL of the budget's `reset_after`).
    pub fn limit(&self) -> String {
        format!("{}:limit", self.prefix)
    }

    /// The fence: while it exists nobody identifies (set for one spacing whenever the
    /// budget is created, so an identify made before Redis lost its data keeps its spacing).
    pub fn fence(&self) -> String {
        format!("{}:identify:fence", self.prefix)
    }

    /// One identify bucket's slot (exists for one spacing after each identify).
    pub fn bucket(&self, bucket: u32) -> String {
        format!("{}:identify:{bucket}", self.prefix)
    }

    /// The ownership lease of a shard (the holder's token, with a TTL).
    pub fn lease(&self, shard: ShardId) -> String {
        format!("{}:shard:{}:{}:lease", self.prefix, shard.count, shard.id)
    }

    /// The saved session of a shard (a hash with a TTL).
    pub fn session(&self, shard: ShardId) -> String {
        format!("{}:shard:{}:{}:session", self.prefix, shard.count, shard.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_namespaced_and_hash_tagged() {
        let ns = Namespace::for_application(1234);
        assert_eq!(ns.prefix(), "{discord-gateway:1234}");
        assert_eq!(ns.limit(), "{discord-gateway:1234}:limit");
        assert_eq!(ns.fence(), "{discord-gateway:1234}:identify:fence");
        assert_eq!(ns.bucket(7), "{discord-gateway:1234}:identify:7");
        let shard = ShardId::new(3, 16);
        assert_eq!(ns.lease(shard), "{discord-gateway:1234}:shard:16:3:lease");
        assert_eq!(
            ns.session(shard),
            "{discord-gateway:1234}:shard:16:3:session"
        );
        // A prefix cannot break out of its hash tag.
        assert_eq!(Namespace::new("a}b{c").limit(), "{abc}:limit");
    }
}
