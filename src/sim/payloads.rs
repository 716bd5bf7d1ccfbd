//! The `d` of the dispatches the fake gateway sends, shaped like Discord's (the fields and
//! types of `developers/events/gateway-events.mdx` and the resource docs), so a bot's own
//! model crate (twilight-model, serenity's models, serde structs) reads them as it reads
//! Discord's.
//!
//! Ids are snowflakes: a message id carries its creation time (the fake's virtual time
//! mapped to a wall clock by [`FakeGatewayConfig::epoch_unix_ms`](super::FakeGatewayConfig)),
//! and timestamps are ISO 8601 with microseconds, as Discord writes them. Everything is a
//! pure function of its arguments: no clock, no randomness.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde_json::Value;

use crate::config::ShardId;

/// Discord's epoch (2015-01-01T00:00:00Z), in milliseconds since the Unix epoch: snowflakes
/// count from it.
pub const DISCORD_EPOCH_UNIX_MS: u64 = 1_420_070_400_000;

/// A Discord user: the bot itself (READY's `user`, its own guild member) or a person who
/// posts messages and belongs to guilds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimUser {
    /// The user id (a snowflake).
    pub id: u64,
    /// `username` (unique, lowercase since Discord's username migration).
    pub username: String,
    /// `global_name`, the display name; `None` is JSON `null`.
    pub global_name: Option<String>,
    /// Whether the account is a bot (`bot: true`).
    pub bot: bool,
}

impl SimUser {
    /// A bot account.
    pub fn bot(id: u64, username: impl Into<String>) -> Self {
        SimUser {
            id,
            username: username.into(),
            global_name: None,
            bot: true,
        }
    }

    /// A person's account.
    pub fn person(id: u64, username: impl Into<String>) -> Self {
        SimUser {
            id,
            username: username.into(),
            global_name: None,
            bot: false,
        }
    }

    /// The same user with a display name.
    pub fn with_global_name(mut self, global_name: impl Into<String>) -> Self {
        self.global_name = Some(global_name.into());
        self
    }
}

impl Default for SimUser {
    /// The fake's bot: id 1000, `sim-bot`.
    fn default() -> Self {
        SimUser::bot(1000, "sim-bot")
    }
}

/// A guild the bot is in: listed in READY as unavailable, then sent whole in its
/// GUILD_CREATE, and answered for in GUILD_MEMBERS_CHUNK.
///
/// It has one role, `@everyone` (whose id is the guild's, as on Discord), and one text
/// channel, `general` (whose id is also the guild's, as in guilds made before 2017).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimGuild {
    /// The guild id (a snowflake).
    pub id: u64,
    /// Its name.
    pub name: String,
    /// Its members besides the bot, in order; the first one owns the guild (with none, the
    /// bot does).
    pub members: Vec<SimUser>,
}

impl SimGuild {
    /// A guild with only the bot in it.
    pub fn new(id: u64, name: impl Into<String>) -> Self {
        SimGuild {
            id,
            name: name.into(),
            members: Vec::new(),
        }
    }

    /// The same guild with one more member.
    pub fn with_member(mut self, member: SimUser) -> Self {
        self.members.push(member);
        self
    }

    /// The id of its `general` text channel.
    pub fn general_channel_id(&self) -> u64 {
        self.id
    }

    /// The owner's id: the first member's, or the bot's.
    pub fn owner_id(&self, bot: &SimUser) -> u64 {
        self.members.first().map_or(bot.id, |m| m.id)
    }
}

/// A message someone posts, for [`ScriptAction::Message`](super::ScriptAction::Message): the
/// fake gives it a snowflake id and a timestamp from its virtual time when it sends the
/// MESSAGE_CREATE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimMessage {
    /// Where it is posted.
    pub channel_id: u64,
    /// The guild of the channel; `None` for a direct message.
    pub guild_id: Option<u64>,
    /// Who posts it.
    pub author: SimUser,
    /// The text.
    pub content: String,
}

impl SimMessage {
    /// A message in `guild`'s `general` channel.
    pub fn in_guild(guild: &SimGuild, author: SimUser, content: impl Into<String>) -> Self {
        SimMessage {
            channel_id: guild.general_channel_id(),
            guild_id: Some(guild.id),
            author,
            content: content.into(),
        }
    }

    /// A direct message in channel `channel_id`.
    pub fn direct(channel_id: u64, author: SimUser, content: impl Into<String>) -> Self {
        SimMessage {
            channel_id,
            guild_id: None,
            author,
            content: content.into(),
        }
    }
}

/// The snowflake made at `unix_ms` (clamped to Discord's epoch) with this 12-bit
/// `increment` (worker and process 0).
pub fn snowflake_at(unix_ms: u64, increment: u16) -> u64 {
    let since_epoch = unix_ms.saturating_sub(DISCORD_EPOCH_UNIX_MS);
    (since_epoch << 22) | u64::from(increment & 0xfff)
}

/// `unix_ms` as Discord writes timestamps: `2025-01-01T00:00:00.000000+00:00`.
pub fn iso8601(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let micros = (unix_ms % 1000) * 1000;
    let (year, month, day) = civil_from_days(secs / 86_400);
    let rem = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}+00:00",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The proleptic Gregorian date of the day `days` after 1970-01-01 (days-to-civil over
/// 400-year eras of 146,097 days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01, so a leap day is the last day of its year.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153; // 0 = March
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// A JSON object written key by key, in the order given (Discord's key order carries no
/// meaning; a fixed one keeps the fake byte-for-byte deterministic).
struct Object(String);

impl Object {
    fn new() -> Self {
        Object(String::from("{"))
    }

    /// `key: raw`, where `raw` is already JSON.
    fn raw(mut self, key: &str, raw: &str) -> Self {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        self.0.push('"');
        self.0.push_str(key);
        self.0.push_str("\":");
        self.0.push_str(raw);
        self
    }

    fn str(self, key: &str, value: &str) -> Self {
        self.raw(key, &string(value))
    }

    fn opt_str(self, key: &str, value: Option<&str>) -> Self {
        match value {
            Some(value) => self.str(key, value),
            None => self.raw(key, "null"),
        }
    }

    /// A snowflake, which Discord sends as a string.
    fn id(self, key: &str, id: u64) -> Self {
        self.raw(key, &format!("\"{id}\""))
    }

    fn num(self, key: &str, value: u64) -> Self {
        self.raw(key, &format!("{value}"))
    }

    fn bool(self, key: &str, value: bool) -> Self {
        self.raw(key, if value { "true" } else { "false" })
    }

    fn finish(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

/// A JSON string.
fn string(value: &str) -> String {
    Value::from(value).to_string()
}

/// A JSON array of already-JSON items.
fn array(items: impl IntoIterator<Item = String>) -> String {
    let items: Vec<String> = items.into_iter().collect();
    format!("[{}]", items.join(","))
}

/// A user object (`author`, `member.user`, `mentions[]`).
fn user(user: &SimUser) -> String {
    let object = Object::new()
        .id("id", user.id)
        .str("username", &user.username)
        .str("discriminator", "0")
        .opt_str("global_name", user.global_name.as_deref())
        .raw("avatar", "null");
    let object = if user.bot {
        object.bool("bot", true)
    } else {
        object
    };
    object.num("public_flags", 0).finish()
}

/// READY's `user`: the bot's own account, with the fields only its owner sees.
fn current_user(bot: &SimUser) -> String {
    Object::new()
        .id("id", bot.id)
        .str("username", &bot.username)
        .str("discriminator", "0")
        .opt_str("global_name", bot.global_name.as_deref())
        .raw("avatar", "null")
        .bool("bot", bot.bot)
        .bool("verified", true)
        .bool("mfa_enabled", false)
        .raw("email", "null")
        .num("flags", 0)
        .num("public_flags", 0)
        .finish()
}

/// A guild member object; `with_user`: whether it carries `user` (not in MESSAGE_CREATE's
/// `member`).
fn member(user_: &SimUser, joined_at: &str, with_user: bool) -> String {
    let object = if with_user {
        Object::new().raw("user", &user(user_))
    } else {
        Object::new()
    };
    object
        .raw("nick", "null")
        .raw("avatar", "null")
        .raw("banner", "null")
        .raw("roles", "[]")
        .str("joined_at", joined_at)
        .raw("premium_since", "null")
        .bool("deaf", false)
        .bool("mute", false)
        .num("flags", 0)
        .bool("pending", false)
        .raw("communication_disabled_until", "null")
        .finish()
}

/// What READY's `d` says, besides the session itself.
pub(crate) struct ReadyParts<'a> {
    pub(crate) session_id: &'a str,
    pub(crate) resume_gateway_url: &'a str,
    pub(crate) user: &'a SimUser,
    pub(crate) application_id: u64,
    pub(crate) guilds: &'a [SimGuild],
    pub(crate) shard: Option<ShardId>,
}

/// READY's `d`: gateway version 10, the bot user, its guilds as unavailable (each one's
/// GUILD_CREATE follows), the session, and `shard` only if the client identified with one.
pub(crate) fn ready(parts: &ReadyParts<'_>) -> String {
    let guilds = array(parts.guilds.iter().map(|g| {
        Object::new()
            .id("id", g.id)
            .bool("unavailable", true)
            .finish()
    }));
    let object = Object::new()
        .num("v", 10)
        .raw("user", &current_user(parts.user))
        .raw("guilds", &guilds)
        .str("session_id", parts.session_id)
        .str("session_type", "normal")
        .str("resume_gateway_url", parts.resume_gateway_url);
    let object = match parts.shard {
        Some(ShardId { id, count }) => object.raw("shard", &format!("[{id},{count}]")),
        None => object,
    };
    object
        .raw(
            "application",
            &Object::new()
                .id("id", parts.application_id)
                .num("flags", 0)
                .finish(),
        )
        .raw("_trace", "[\"sim-gateway\"]")
        .finish()
}

/// The `d` of `guild`'s GUILD_CREATE as the bot sees it on joining at `joined_unix_ms`: the
/// guild object plus the gateway-only fields (`joined_at`, `large`, `member_count`, the
/// bot's own member, the channels, empty voice states, threads, presences...).
pub fn guild_create(guild: &SimGuild, bot: &SimUser, joined_unix_ms: u64) -> String {
    let joined_at = iso8601(joined_unix_ms);
    let everyone = Object::new()
        .id("id", guild.id)
        .str("name", "@everyone")
        .num("color", 0)
        .raw(
            "colors",
            r#"{"primary_color":0,"secondary_color":null,"tertiary_color":null}"#,
        )
        .bool("hoist", false)
        .raw("icon", "null")
        .raw("unicode_emoji", "null")
        .num("position", 0)
        // VIEW_CHANNEL, SEND_MESSAGES, READ_MESSAGE_HISTORY, CONNECT, SPEAK, ...: Discord's
        // default @everyone permissions.
        .str("permissions", "2248473465835073")
        .bool("managed", false)
        .bool("mentionable", false)
        .num("flags", 0)
        .finish();
    let general = Object::new()
        .id("id", guild.general_channel_id())
        .num("type", 0)
        .str("name", "general")
        .num("position", 0)
        .raw("permission_overwrites", "[]")
        .raw("topic", "null")
        .bool("nsfw", false)
        .raw("last_message_id", "null")
        .num("rate_limit_per_user", 0)
        .raw("parent_id", "null")
        .num("flags", 0)
        .finish();
    let member_count = guild.members.len() as u64 + 1;
    Object::new()
        .id("id", guild.id)
        .str("name", &guild.name)
        .raw("icon", "null")
        .raw("splash", "null")
        .raw("discovery_splash", "null")
        .id("owner_id", guild.owner_id(bot))
        .raw("afk_channel_id", "null")
        .num("afk_timeout", 300)
        .bool("widget_enabled", false)
        .raw("widget_channel_id", "null")
        .num("verification_level", 0)
        .num("default_message_notifications", 0)
        .num("explicit_content_filter", 0)
        .raw("roles", &array([everyone]))
        .raw("emojis", "[]")
        .raw("features", "[]")
        .num("mfa_level", 0)
        .raw("application_id", "null")
        .id("system_channel_id", guild.general_channel_id())
        .num("system_channel_flags", 0)
        .raw("rules_channel_id", "null")
        .num("max_members", 500_000)
        .raw("vanity_url_code", "null")
        .raw("description", "null")
        .raw("banner", "null")
        .num("premium_tier", 0)
        .num("premium_subscription_count", 0)
        .str("preferred_locale", "en-US")
        .raw("public_updates_channel_id", "null")
        .num("max_video_channel_users", 25)
        .num("max_stage_video_channel_users", 50)
        .num("nsfw_level", 0)
        .raw("stickers", "[]")
        .bool("premium_progress_bar_enabled", false)
        .raw("safety_alerts_channel_id", "null")
        .raw("incidents_data", "null")
        .str("joined_at", &joined_at)
        .bool("large", false)
        .bool("unavailable", false)
        .num("member_count", member_count)
        .raw("voice_states", "[]")
        .raw("members", &array([member(bot, &joined_at, true)]))
        .raw("channels", &array([general]))
        .raw("threads", "[]")
        .raw("presences", "[]")
        .raw("stage_instances", "[]")
        .raw("guild_scheduled_events", "[]")
        .raw("soundboard_sounds", "[]")
        .finish()
}

/// The `d` of a MESSAGE_CREATE for `message`, with this `id` (whose snowflake time is the
/// message's `timestamp`). In a guild it carries the author's partial `member`. Without
/// `with_content`, `content` is empty, as Discord sends it to an app that lacks the
/// MESSAGE_CONTENT intent.
pub fn message_create(message: &SimMessage, id: u64, with_content: bool) -> String {
    let content = if with_content {
        &message.content[..]
    } else {
        ""
    };
    let unix_ms = (id >> 22) + DISCORD_EPOCH_UNIX_MS;
    let timestamp = iso8601(unix_ms);
    let object = Object::new()
        .num("type", 0)
        .str("content", content)
        .id("channel_id", message.channel_id)
        .id("id", id)
        .raw("author", &user(&message.author));
    let object = match message.guild_id {
        Some(guild_id) => {
            // The author's join time is not modelled: the guild's creation time stands in.
            let joined = iso8601((guild_id >> 22) + DISCORD_EPOCH_UNIX_MS);
            object
                .id("guild_id", guild_id)
                .raw("member", &member(&message.author, &joined, false))
        }
        None => object,
    };
    object
        .str("timestamp", &timestamp)
        .raw("edited_timestamp", "null")
        .bool("tts", false)
        .bool("mention_everyone", false)
        .raw("mentions", "[]")
        .raw("mention_roles", "[]")
        .raw("attachments", "[]")
        .raw("embeds", "[]")
        .raw("components", "[]")
        .bool("pinned", false)
        .num("flags", 0)
        .finish()
}

/// What a Request Guild Members (op 8) asked for.
pub(crate) struct MemberRequest<'a> {
    /// (`presences` is what the client asked; the fake clears it without the
    /// GUILD_PRESENCES intent.)
    pub(crate) guild_id: u64,
    pub(crate) query: Option<&'a str>,
    pub(crate) limit: u64,
    pub(crate) user_ids: Option<Vec<u64>>,
    pub(crate) presences: bool,
    pub(crate) nonce: Option<&'a str>,
}

impl<'a> MemberRequest<'a> {
    /// Reads op 8's `d`; `None` without a readable `guild_id` (or with an unreadable user
    /// id).
    pub(crate) fn read(d: &'a Value) -> Option<Self> {
        let user_ids = match d.get("user_ids") {
            None | Some(Value::Null) => None,
            Some(Value::Array(ids)) => Some(ids.iter().filter_map(snowflake).collect()),
            Some(one) => Some(alloc::vec![snowflake(one)?]),
        };
        Some(MemberRequest {
            guild_id: snowflake(d.get("guild_id")?)?,
            query: d.get("query").and_then(Value::as_str),
            limit: d.get("limit").and_then(Value::as_u64).unwrap_or(0),
            user_ids,
            presences: d.get("presences").and_then(Value::as_bool) == Some(true),
            nonce: d.get("nonce").and_then(Value::as_str),
        })
    }
}

/// A snowflake as JSON carries it: a string of digits (or, leniently, a number).
fn snowflake(value: &Value) -> Option<u64> {
    match value {
        Value::String(s) => s.parse().ok(),
        other => other.as_u64(),
    }
}

/// Members per GUILD_MEMBERS_CHUNK, as Discord sends them.
pub const MEMBERS_PER_CHUNK: usize = 1000;

/// The most members a `query` with a prefix or a `user_ids` list returns.
pub const MAX_MEMBERS_PER_FILTER: usize = 100;

/// The `d` of each GUILD_MEMBERS_CHUNK answering `request` for `guild` (members: the bot,
/// then [`SimGuild::members`]), [`MEMBERS_PER_CHUNK`] members a chunk, at least one chunk.
/// Those whose username starts with `query` (case-insensitively; up to `limit`, 0 = all,
/// and never more than [`MAX_MEMBERS_PER_FILTER`] for a non-empty prefix), or those in
/// `user_ids` (the first [`MAX_MEMBERS_PER_FILTER`]; the ids of no member in `not_found`).
/// Online presences if asked; the nonce echoed if it is at most 32 bytes, as Discord does.
pub(crate) fn guild_members_chunks(
    guild: &SimGuild,
    bot: &SimUser,
    joined_unix_ms: u64,
    request: &MemberRequest<'_>,
) -> Vec<String> {
    let everyone = core::iter::once(bot).chain(guild.members.iter());
    let (found, not_found): (Vec<&SimUser>, Vec<String>) = match &request.user_ids {
        Some(ids) => {
            let ids = &ids[..ids.len().min(MAX_MEMBERS_PER_FILTER)];
            let found: Vec<&SimUser> = everyone.filter(|u| ids.contains(&u.id)).collect();
            let not_found = ids
                .iter()
                .filter(|id| !found.iter().any(|u| u.id == **id))
                .map(|id| format!("\"{id}\""))
                .collect();
            (found, not_found)
        }
        None => {
            let query = request.query.unwrap_or_default().to_lowercase();
            let cap = match (query.is_empty(), request.limit as usize) {
                (true, 0) => usize::MAX,
                (true, limit) => limit,
                (false, 0) => MAX_MEMBERS_PER_FILTER,
                (false, limit) => limit.min(MAX_MEMBERS_PER_FILTER),
            };
            let found = everyone
                .filter(|u| u.username.to_lowercase().starts_with(&query))
                .take(cap)
                .collect();
            (found, Vec::new())
        }
    };
    let nonce = request.nonce.filter(|n| n.len() <= 32);
    let joined_at = iso8601(joined_unix_ms);
    let chunks: Vec<&[&SimUser]> = if found.is_empty() {
        alloc::vec![&[][..]]
    } else {
        found.chunks(MEMBERS_PER_CHUNK).collect()
    };
    let count = chunks.len() as u64;
    chunks
        .iter()
        .enumerate()
        .map(|(index, members)| {
            let object = Object::new()
                .id("guild_id", guild.id)
                .raw(
                    "members",
                    &array(members.iter().map(|u| member(u, &joined_at, true))),
                )
                .num("chunk_index", index as u64)
                .num("chunk_count", count)
                .raw("not_found", &array(not_found.iter().cloned()));
            let object = if request.presences {
                let presences = array(members.iter().map(|u| {
                    Object::new()
                        .raw("user", &Object::new().id("id", u.id).finish())
                        .str("status", "online")
                        .raw("activities", "[]")
                        .raw("client_status", r#"{"desktop":"online"}"#)
                        .finish()
                }));
                object.raw("presences", &presences)
            } else {
                object
            };
            match nonce {
                Some(nonce) => object.str("nonce", nonce).finish(),
                None => object.finish(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_matches_known_dates() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000000+00:00");
        assert_eq!(
            iso8601(DISCORD_EPOCH_UNIX_MS),
            "2015-01-01T00:00:00.000000+00:00"
        );
        // A leap day, and milliseconds.
        assert_eq!(
            iso8601(1_709_210_096_789),
            "2024-02-29T12:34:56.789000+00:00"
        );
        assert_eq!(
            iso8601(1_735_689_599_999),
            "2024-12-31T23:59:59.999000+00:00"
        );
    }

    #[test]
    fn snowflake_carries_its_time() {
        // Discord's documented example: 175928847299117063 was made at 1462015105796.
        let id = snowflake_at(1_462_015_105_796, 7);
        assert_eq!(id >> 22, 175_928_847_299_117_063 >> 22);
        assert_eq!(id & 0xfff, 7);
        assert_eq!(snowflake_at(0, 1), 1);
    }

    #[test]
    fn payloads_are_json_objects() {
        let bot = SimUser::default();
        let guild = SimGuild::new(81_384_788_765_712_384, "Discord \"API\"")
            .with_member(SimUser::person(2, "owner"));
        let guild_create: Value = serde_json::from_str(&guild_create(&guild, &bot, 0)).unwrap();
        assert_eq!(guild_create["name"], "Discord \"API\"");
        assert_eq!(guild_create["owner_id"], "2");
        assert_eq!(guild_create["member_count"], 2);
        let message = SimMessage::in_guild(&guild, SimUser::person(2, "owner"), "hi");
        let id = snowflake_at(1_735_689_600_000, 0);
        let message: Value = serde_json::from_str(&message_create(&message, id, true)).unwrap();
        assert_eq!(message["timestamp"], "2025-01-01T00:00:00.000000+00:00");
        assert_eq!(message["guild_id"], "81384788765712384");
        assert!(message["member"].get("user").is_none());
    }
}
