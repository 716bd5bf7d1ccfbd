//! [`Intents`]: the typed bit set of gateway intents sent in Identify.

use core::fmt;
use core::ops::{BitAnd, BitOr, BitOrAssign, Not};

use serde::{Deserialize, Serialize};

/// The gateway intents a bot subscribes to: which groups of events Discord sends it.
///
/// A plain bit set; combine with `|`. Privileged intents ([`Intents::GUILD_MEMBERS`],
/// [`Intents::GUILD_PRESENCES`], [`Intents::MESSAGE_CONTENT`]) must also be enabled for the
/// application in Discord's developer portal, or the gateway closes with 4014.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Intents(u64);

macro_rules! intents {
    ($($(#[$doc:meta])* $name:ident = $bit:expr;)*) => {
        impl Intents {
            $($(#[$doc])* pub const $name: Intents = Intents(1 << $bit);)*

            /// Every named intent with its name, in bit order.
            pub const NAMED: &'static [(&'static str, Intents)] = &[$((stringify!($name), Intents::$name)),*];
        }
    };
}

intents! {
    /// Guild create/update/delete, roles, channels, threads, stage instances.
    GUILDS = 0;
    /// Member add/update/remove (privileged).
    GUILD_MEMBERS = 1;
    /// Audit log entries and bans.
    GUILD_MODERATION = 2;
    /// Emoji and sticker updates.
    GUILD_EXPRESSIONS = 3;
    /// Integration updates.
    GUILD_INTEGRATIONS = 4;
    /// Webhook updates.
    GUILD_WEBHOOKS = 5;
    /// Invite create/delete.
    GUILD_INVITES = 6;
    /// Voice state updates.
    GUILD_VOICE_STATES = 7;
    /// Presence updates (privileged).
    GUILD_PRESENCES = 8;
    /// Messages in guilds.
    GUILD_MESSAGES = 9;
    /// Reactions in guilds.
    GUILD_MESSAGE_REACTIONS = 10;
    /// Typing in guilds.
    GUILD_MESSAGE_TYPING = 11;
    /// Direct messages.
    DIRECT_MESSAGES = 12;
    /// Reactions in direct messages.
    DIRECT_MESSAGE_REACTIONS = 13;
    /// Typing in direct messages.
    DIRECT_MESSAGE_TYPING = 14;
    /// Message content in events (privileged).
    MESSAGE_CONTENT = 15;
    /// Scheduled events.
    GUILD_SCHEDULED_EVENTS = 16;
    /// Auto-moderation rule changes.
    AUTO_MODERATION_CONFIGURATION = 20;
    /// Auto-moderation actions taken.
    AUTO_MODERATION_EXECUTION = 21;
    /// Poll votes in guilds.
    GUILD_MESSAGE_POLLS = 24;
    /// Poll votes in direct messages.
    DIRECT_MESSAGE_POLLS = 25;
}

impl Intents {
    /// No intents.
    pub const fn empty() -> Self {
        Intents(0)
    }

    /// Every intent that is not privileged.
    pub const fn non_privileged() -> Self {
        Intents(Self::all().0 & !Self::privileged().0)
    }

    /// The privileged intents: members, presences, message content.
    pub const fn privileged() -> Self {
        Intents(Self::GUILD_MEMBERS.0 | Self::GUILD_PRESENCES.0 | Self::MESSAGE_CONTENT.0)
    }

    /// Every named intent.
    pub const fn all() -> Self {
        let mut bits = 0;
        let mut i = 0;
        while i < Self::NAMED.len() {
            bits |= Self::NAMED[i].1 .0;
            i += 1;
        }
        Intents(bits)
    }

    /// Intents from raw bits; unknown bits are kept (Discord may add intents).
    pub const fn from_bits(bits: u64) -> Self {
        Intents(bits)
    }

    /// The raw bits, as sent in Identify.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// Whether every intent in `other` is set.
    pub const fn contains(self, other: Intents) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether no intent is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl BitOr for Intents {
    type Output = Intents;
    fn bitor(self, rhs: Self) -> Self {
        Intents(self.0 | rhs.0)
    }
}

impl BitOrAssign for Intents {
    fn bitor_assign(&mut self, rhs: Self) {
        self.0 |= rhs.0;
    }
}

impl BitAnd for Intents {
    type Output = Intents;
    fn bitand(self, rhs: Self) -> Self {
        Intents(self.0 & rhs.0)
    }
}

impl Not for Intents {
    type Output = Intents;
    fn not(self) -> Self {
        Intents(!self.0)
    }
}

impl fmt::Debug for Intents {
    /// Lists the named intents, e.g. `Intents(GUILDS | GUILD_MESSAGES)`, plus unknown bits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Intents(")?;
        let mut first = true;
        let mut rest = self.0;
        for (name, flag) in Self::NAMED {
            if self.contains(*flag) {
                if !first {
                    f.write_str(" | ")?;
                }
                f.write_str(name)?;
                first = false;
                rest &= !flag.0;
            }
        }
        if rest != 0 {
            if !first {
                f.write_str(" | ")?;
            }
            write!(f, "{rest:#x}")?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn bits_match_discord_docs() {
        assert_eq!(Intents::GUILDS.bits(), 1);
        assert_eq!(Intents::MESSAGE_CONTENT.bits(), 1 << 15);
        assert_eq!(Intents::DIRECT_MESSAGE_POLLS.bits(), 1 << 25);
        assert_eq!(
            Intents::privileged().bits(),
            (1 << 1) | (1 << 8) | (1 << 15)
        );
        assert!(!Intents::non_privileged().contains(Intents::GUILD_PRESENCES));
        assert_eq!(
            format!("{:?}", Intents::GUILDS | Intents::GUILD_MESSAGES),
            "Intents(GUILDS | GUILD_MESSAGES)"
        );
    }
}
