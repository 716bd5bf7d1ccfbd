//! The gateway's event names, so that a dispatch whose text had to be copied (decompressed)
//! gets its name without an allocation.

use crate::text::SharedStr;

/// Discord's dispatch event names, sorted by length, then by bytes: a binary search compares
/// lengths first, so most probes cost no byte comparison (`known` runs once per dispatch on
/// a compressed connection).
const KNOWN: &[&str] = &[
    "READY",
    "RESUMED",
    "USER_UPDATE",
    "CHANNEL_INFO",
    "GUILD_CREATE",
    "GUILD_DELETE",
    "GUILD_UPDATE",
    "RATE_LIMITED",
    "TYPING_START",
    "GUILD_BAN_ADD",
    "INVITE_CREATE",
    "INVITE_DELETE",
    "THREAD_CREATE",
    "THREAD_DELETE",
    "THREAD_UPDATE",
    "CHANNEL_CREATE",
    "CHANNEL_DELETE",
    "CHANNEL_UPDATE",
    "MESSAGE_CREATE",
    "MESSAGE_DELETE",
    "MESSAGE_UPDATE",
    "PRESENCE_UPDATE",
    "WEBHOOKS_UPDATE",
    "GUILD_BAN_REMOVE",
    "GUILD_MEMBER_ADD",
    "THREAD_LIST_SYNC",
    "GUILD_ROLE_CREATE",
    "GUILD_ROLE_DELETE",
    "GUILD_ROLE_UPDATE",
    "SOUNDBOARD_SOUNDS",
    "ENTITLEMENT_CREATE",
    "ENTITLEMENT_DELETE",
    "ENTITLEMENT_UPDATE",
    "INTEGRATION_CREATE",
    "INTEGRATION_DELETE",
    "INTEGRATION_UPDATE",
    "INTERACTION_CREATE",
    "VOICE_STATE_UPDATE",
    "CHANNEL_PINS_UPDATE",
    "GUILD_EMOJIS_UPDATE",
    "GUILD_MEMBERS_CHUNK",
    "GUILD_MEMBER_REMOVE",
    "GUILD_MEMBER_UPDATE",
    "MESSAGE_DELETE_BULK",
    "SUBSCRIPTION_CREATE",
    "SUBSCRIPTION_DELETE",
    "SUBSCRIPTION_UPDATE",
    "VOICE_SERVER_UPDATE",
    "MESSAGE_REACTION_ADD",
    "THREAD_MEMBER_UPDATE",
    "GUILD_STICKERS_UPDATE",
    "MESSAGE_POLL_VOTE_ADD",
    "STAGE_INSTANCE_CREATE",
    "STAGE_INSTANCE_DELETE",
    "STAGE_INSTANCE_UPDATE",
    "THREAD_MEMBERS_UPDATE",
    "MESSAGE_REACTION_REMOVE",
    "MESSAGE_POLL_VOTE_REMOVE",
    "GUILD_INTEGRATIONS_UPDATE",
    "VOICE_CHANNEL_EFFECT_SEND",
    "AUTO_MODERATION_RULE_CREATE",
    "AUTO_MODERATION_RULE_DELETE",
    "AUTO_MODERATION_RULE_UPDATE",
    "MESSAGE_REACTION_REMOVE_ALL",
    "GUILD_AUDIT_LOG_ENTRY_CREATE",
    "GUILD_SCHEDULED_EVENT_CREATE",
    "GUILD_SCHEDULED_EVENT_DELETE",
    "GUILD_SCHEDULED_EVENT_UPDATE",
    "GUILD_SOUNDBOARD_SOUND_CREATE",
    "GUILD_SOUNDBOARD_SOUND_DELETE",
    "GUILD_SOUNDBOARD_SOUND_UPDATE",
    "MESSAGE_REACTION_REMOVE_EMOJI",
    "GUILD_SCHEDULED_EVENT_USER_ADD",
    "GUILD_SOUNDBOARD_SOUNDS_UPDATE",
    "AUTO_MODERATION_ACTION_EXECUTION",
    "GUILD_SCHEDULED_EVENT_USER_REMOVE",
    "APPLICATION_COMMAND_PERMISSIONS_UPDATE",
];

/// The table's order: length first, then bytes.
fn by_length(name: &str) -> (usize, &str) {
    (name.len(), name)
}

/// `name` as a static string, if it is a known event name.
pub(crate) fn known(name: &str) -> Option<SharedStr> {
    KNOWN
        .binary_search_by(|probe| by_length(probe).cmp(&by_length(name)))
        .ok()
        .map(|i| SharedStr::from_static(KNOWN[i]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_found() {
        assert!(KNOWN.windows(2).all(|w| by_length(w[0]) < by_length(w[1])));
        for name in KNOWN {
            assert_eq!(known(name).as_deref(), Some(*name));
        }
        assert!(known("SOMETHING_NEW").is_none());
        assert!(known("message_create").is_none());
    }
}
