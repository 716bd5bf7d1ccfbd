//! A seeded generator of realistic Discord gateway frames, for benches and tests.
//!
//! The shapes follow what Discord sends today (modelled on real captures of GUILD_CREATE,
//! MESSAGE_CREATE with a rich embed, TYPING_START, PRESENCE_UPDATE with game / Spotify /
//! custom-status / rich-presence activities, READY, HELLO): real field names in Discord's
//! order, snowflake strings, nested `member` / `user` objects, embeds, activities, ISO
//! timestamps, hashes, URLs, message text with escapes (`\"`, `\\`, `\n`) and non-ASCII
//! text (accents, CJK, emoji, combining marks). Everything is drawn from one ChaCha RNG with
//! a fixed seed, so the same seed always gives the same frames, byte for byte, on any
//! machine: nothing is read from disk.
//!
//! Included with `#[path = "..."] mod frames;` by benches and tests; not part of the
//! library's API.
#![allow(dead_code)]

use rand::rngs::ChaCha8Rng;
use rand::{Rng, SeedableRng};

/// The seed the benches and tests use.
pub const SEED: u64 = 0xD15C_02D5;

/// Discord's epoch (2015-01-01) in Unix milliseconds.
const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;
/// The stream starts at 2025-01-01T00:00:00Z.
const START_MS: u64 = 1_735_689_600_000;

/// The order of the top-level keys of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyOrder {
    /// `{"t":..,"s":..,"op":..,"d":..}`: what Discord sends.
    Discord,
    /// `{"op":..,"d":..,"s":..,"t":..}`: valid JSON Discord does not send; probes readers that
    /// assume `t` and `op` come before `d`.
    DataFirst,
}

/// One gateway frame before it is rendered to text.
#[derive(Clone, Debug)]
pub struct Frame {
    /// The event name (`t`), for dispatches.
    pub t: Option<&'static str>,
    /// The sequence (`s`), for dispatches.
    pub s: Option<u64>,
    /// The opcode.
    pub op: u8,
    /// `d` as compact JSON text.
    pub d: String,
}

impl Frame {
    /// The frame as one WebSocket text message.
    pub fn text(&self, order: KeyOrder) -> String {
        let t = match self.t {
            Some(t) => format!("\"{t}\""),
            None => "null".into(),
        };
        let s = match self.s {
            Some(s) => s.to_string(),
            None => "null".into(),
        };
        match order {
            KeyOrder::Discord => format!(r#"{{"t":{t},"s":{s},"op":{},"d":{}}}"#, self.op, self.d),
            KeyOrder::DataFirst => {
                format!(r#"{{"op":{},"d":{},"s":{s},"t":{t}}}"#, self.op, self.d)
            }
        }
    }
}

/// A JSON value with ordered keys, rendered compactly as Discord does (raw UTF-8, only the
/// escapes JSON requires).
#[derive(Clone, Debug)]
enum V {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Arr(Vec<V>),
    Obj(Vec<(&'static str, V)>),
}

fn s(text: impl Into<String>) -> V {
    V::Str(text.into())
}

fn opt(text: Option<String>) -> V {
    text.map_or(V::Null, V::Str)
}

fn int(n: impl TryInto<i64>) -> V {
    V::Int(n.try_into().ok().expect("fits in i64"))
}

impl V {
    fn render(&self, out: &mut String) {
        match self {
            V::Null => out.push_str("null"),
            V::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            V::Int(n) => out.push_str(&n.to_string()),
            V::Float(x) => out.push_str(&format!("{x:?}")),
            V::Str(text) => escape_into(text, out),
            V::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.render(out);
                }
                out.push(']');
            }
            V::Obj(fields) => {
                out.push('{');
                for (i, (key, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    escape_into(key, out);
                    out.push(':');
                    value.render(out);
                }
                out.push('}');
            }
        }
    }

    fn to_json(&self) -> String {
        let mut out = String::new();
        self.render(&mut out);
        out
    }

    fn push(&mut self, key: &'static str, value: V) {
        if let V::Obj(fields) = self {
            fields.push((key, value));
        }
    }
}

fn escape_into(text: &str, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Words for message text, names and topics: chat, gaming and programming vocabulary with
/// accents, CJK, emoji and a combining mark.
const WORDS: &[&str] = &[
    "the",
    "a",
    "to",
    "and",
    "is",
    "it",
    "you",
    "that",
    "of",
    "in",
    "for",
    "on",
    "with",
    "this",
    "lol",
    "lmao",
    "gg",
    "wp",
    "idk",
    "tbh",
    "ngl",
    "brb",
    "ok",
    "yeah",
    "nah",
    "pls",
    "thanks",
    "anyone",
    "know",
    "how",
    "fix",
    "error",
    "crash",
    "update",
    "patch",
    "release",
    "server",
    "bot",
    "command",
    "slash",
    "role",
    "channel",
    "voice",
    "stream",
    "raid",
    "tonight",
    "queue",
    "ranked",
    "match",
    "lobby",
    "discord.py",
    "serenity",
    "twilight",
    "JDA",
    "Javacord",
    "async",
    "await",
    "tokio",
    "future",
    "borrow",
    "checker",
    "lifetime",
    "Result<T,",
    "E>",
    "unwrap()",
    "panic!",
    "segfault",
    "docker",
    "kubernetes",
    "regex",
    "JSON",
    "websocket",
    "gateway",
    "heartbeat",
    "shard",
    "intents",
    "Minecraft",
    "Valorant",
    "Overwatch",
    "Hollow Knight",
    "Stardew",
    "Factorio",
    "Elden Ring",
    "League",
    "Dota",
    "osu!",
    "café",
    "naïve",
    "déjà",
    "vu",
    "señor",
    "Zürich",
    "Łódź",
    "Ærø",
    "ça",
    "va",
    "über",
    "こんにちは",
    "ありがとう",
    "日本語",
    "한국어",
    "中文",
    "привет",
    "спасибо",
    "مرحبا",
    "😂",
    "🔥",
    "👍",
    "❤️",
    "🎉",
    "👀",
    "💀",
    "🙏",
    "✨",
    "🤔",
    "🇫🇷",
    "ʖ͜",
    "ｌｏｆｉ",
    "♪",
    "https://github.com/serenity-rs/serenity",
    "https://docs.rs/tokio",
    "C:\\Users\\bot",
    "\"quoted\"",
    "it's",
    "don't",
    "can't",
    "50%",
    "#general",
    "@everyone",
    "v2.3.1",
    "10/10",
];

const NAME_PARTS: &[&str] = &[
    "Shadow",
    "Pixel",
    "Nova",
    "Frost",
    "Ember",
    "Byte",
    "Echo",
    "Lumen",
    "Vex",
    "Rook",
    "Sable",
    "Kestrel",
    "Mochi",
    "Tofu",
    "Neko",
    "Zoë",
    "Renée",
    "José",
    "Ōkami",
    "Björn",
    "Ωmega",
    "ひかり",
    "さくら",
    "龍",
    "Crab",
    "Ferris",
    "Rusty",
    "Null",
    "Void",
    "Sigma",
    "Kappa",
];

const GAMES: &[&str] = &[
    "Minecraft",
    "Valorant",
    "Overwatch 2",
    "League of Legends",
    "Counter-Strike 2",
    "Hollow Knight",
    "Stardew Valley",
    "Factorio",
    "ELDEN RING",
    "Dota 2",
    "osu!",
    "Visual Studio Code",
    "RustRover",
    "Genshin Impact",
    "Baldur's Gate 3",
    "Terraria",
    "Rocket League",
    "Apex Legends",
    "Fortnite",
    "Hearthstone",
    "Path of Exile 2",
    "Ｓｐｌａｔｏｏｎ ３",
    "Tom Clancy's Rainbow Six® Siege",
    "Destiny 2",
    "Warframe",
];

const CHANNEL_NAMES: &[&str] = &[
    "general",
    "off-topic",
    "help",
    "rust",
    "python",
    "javascript",
    "announcements",
    "memes",
    "showcase",
    "bot-commands",
    "music",
    "gaming",
    "art",
    "introductions",
    "rules",
    "faq",
    "dev-chat",
    "support",
    "bugs",
    "suggestions",
    "random",
    "media",
    "日本語",
    "español",
    "français",
    "deutsch",
    "voice-text",
    "events",
    "giveaways",
    "resources",
];

const ROLE_NAMES: &[&str] = &[
    "Admin",
    "Moderator",
    "Helper",
    "Bots",
    "Contributor",
    "Nitro Booster",
    "Verified",
    "Muted",
    "Event Host",
    "Developer",
    "Artist",
    "Streamer",
    "VIP",
    "Member",
    "Rust",
    "Python",
    "JavaScript",
    "Go",
    "C++",
    "he/him",
    "she/her",
    "they/them",
    "EU",
    "NA",
    "Asia",
    "🎮 Gamer",
    "🎨 Creator",
    "Announcements Ping",
    "Honorary Mod",
    "Level 10",
    "Level 20",
];

/// A member of the generated guild.
#[derive(Clone, Debug)]
struct Member {
    id: String,
    username: String,
    global_name: Option<String>,
    discriminator: String,
    avatar: Option<String>,
    public_flags: u32,
    bot: bool,
    nick: Option<String>,
    roles: Vec<String>,
    joined_at: String,
}

/// The generator: a seeded RNG, a clock and sequence that move forward, and one synthetic
/// guild (roles, channels, emojis, members) the events refer to.
pub struct FrameGen {
    rng: ChaCha8Rng,
    now_ms: u64,
    seq: u64,
    guild_id: String,
    roles: Vec<(String, String)>,
    text_channels: Vec<(String, String)>,
    voice_channels: Vec<(String, String)>,
    emojis: Vec<(String, String)>,
    members: Vec<Member>,
    bot: Member,
}

impl FrameGen {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        let mut g = FrameGen {
            rng: ChaCha8Rng::seed_from_u64(seed),
            now_ms: START_MS,
            seq: 0,
            guild_id: String::new(),
            roles: Vec::new(),
            text_channels: Vec::new(),
            voice_channels: Vec::new(),
            emojis: Vec::new(),
            members: Vec::new(),
            bot: placeholder_member(),
        };
        g.guild_id = g.snowflake_at(1_446_000_000_000);
        for _ in 0..50 {
            let id = g.snowflake_between(1_450_000_000_000, 1_700_000_000_000);
            let name = g.pick(ROLE_NAMES).to_string();
            g.roles.push((id, name));
        }
        for i in 0..45 {
            let id = g.snowflake_between(1_446_000_000_000, 1_700_000_000_000);
            let mut name = g.pick(CHANNEL_NAMES).to_string();
            if i >= CHANNEL_NAMES.len() {
                name = format!("{name}-{i}");
            }
            g.text_channels.push((id, name));
        }
        for i in 0..8 {
            let id = g.snowflake_between(1_446_000_000_000, 1_700_000_000_000);
            g.voice_channels.push((id, format!("Voice {}", i + 1)));
        }
        for _ in 0..26 {
            let id = g.snowflake_between(1_460_000_000_000, 1_700_000_000_000);
            let name = format!(
                "{}{}",
                g.pick(NAME_PARTS),
                g.pick(&["Pog", "Wave", "Sad", "Yes", "Lul"])
            )
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>();
            g.emojis.push((id, name));
        }
        for _ in 0..600 {
            let m = g.new_member();
            g.members.push(m);
        }
        g.bot = g.new_member();
        g.bot.bot = true;
        g
    }

    // ----- randomness -----

    fn below(&mut self, n: u64) -> u64 {
        // Multiply-shift: uniform enough for a generator, no rejection loop.
        ((u128::from(self.rng.next_u64()) * u128::from(n)) >> 64) as u64
    }

    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    fn chance(&mut self, p: f64) -> bool {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    fn hex(&mut self, digits: usize) -> String {
        (0..digits)
            .map(|_| char::from_digit(self.below(16) as u32, 16).unwrap())
            .collect()
    }

    fn alnum(&mut self, len: usize) -> String {
        const A: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        (0..len).map(|_| char::from(self.pick(A))).collect()
    }

    fn snowflake_at(&mut self, ms: u64) -> String {
        (((ms - DISCORD_EPOCH_MS) << 22) | self.below(1 << 22)).to_string()
    }

    fn snowflake_between(&mut self, lo_ms: u64, hi_ms: u64) -> String {
        let ms = self.range(lo_ms, hi_ms);
        self.snowflake_at(ms)
    }

    fn snowflake(&mut self) -> String {
        self.snowflake_at(self.now_ms)
    }

    /// Advances the clock and returns the next sequence number.
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.now_ms += self.range(1, 400);
        self.seq
    }

    /// Chat text: words, sometimes with a mention, a custom emoji, a newline, a quote or a
    /// code block with backslashes.
    fn text(&mut self, lo: u64, hi: u64) -> String {
        // Now and then a long message (only for text that can be long).
        let n = if hi >= 10 && self.chance(0.1) {
            self.range(hi, hi * 3)
        } else {
            self.range(lo, hi)
        };
        let mut out = String::new();
        for i in 0..n {
            if i > 0 {
                out.push(if self.chance(0.04) { '\n' } else { ' ' });
            }
            match self.below(60) {
                0 => {
                    let id = self.member().id;
                    out.push_str(&format!("<@{id}>"));
                }
                1 => {
                    let (id, name) = self.emoji();
                    out.push_str(&format!("<:{name}:{id}>"));
                }
                2 => out.push_str("```rust\nlet path = \"C:\\\\bot\\\\config.toml\";\n```"),
                3 => {
                    let w = self.pick(WORDS);
                    out.push_str(&format!("\"{w}\""));
                }
                _ => out.push_str(self.pick(WORDS)),
            }
        }
        out.chars().take(2000).collect()
    }

    fn iso(&self, ms: u64) -> String {
        iso8601(ms)
    }

    // ----- the guild -----

    fn new_member(&mut self) -> Member {
        let joined = self.range(1_450_000_000_000, 1_730_000_000_000);
        let created = self.range(DISCORD_EPOCH_MS, joined);
        let id = self.snowflake_at(created);
        let mut username = format!("{}{}", self.pick(NAME_PARTS), self.pick(NAME_PARTS));
        if self.chance(0.5) {
            username.push_str(&self.range(0, 9999).to_string());
        }
        let legacy = self.chance(0.3);
        let discriminator = if legacy {
            format!("{:04}", self.range(1, 9999))
        } else {
            "0".into()
        };
        let n_roles = self.below(4);
        let roles = (0..n_roles).map(|_| self.role_id()).collect();
        let global_name = self.chance(0.8).then(|| username.clone());
        let avatar = self.chance(0.85).then(|| {
            let animated = if self.chance(0.1) { "a_" } else { "" };
            format!("{animated}{}", self.hex(32))
        });
        let nick = self
            .chance(0.2)
            .then(|| format!("{} | {}", self.pick(NAME_PARTS), self.pick(WORDS)));
        let public_flags = self.pick(&[0, 0, 0, 0, 64, 128, 256, 4_194_304]);
        Member {
            id,
            username,
            global_name,
            discriminator,
            avatar,
            public_flags,
            bot: false,
            nick,
            roles,
            joined_at: iso8601(joined),
        }
    }

    fn role_id(&mut self) -> String {
        let i = self.below(self.roles.len() as u64) as usize;
        self.roles[i].0.clone()
    }

    fn emoji(&mut self) -> (String, String) {
        let i = self.below(self.emojis.len() as u64) as usize;
        self.emojis[i].clone()
    }

    fn member(&mut self) -> Member {
        let i = self.below(self.members.len() as u64) as usize;
        self.members[i].clone()
    }

    fn user_json(&mut self, m: &Member) -> V {
        let mut u = V::Obj(vec![
            ("username", s(m.username.clone())),
            ("public_flags", int(m.public_flags)),
            ("primary_guild", V::Null),
            ("id", s(m.id.clone())),
            ("global_name", opt(m.global_name.clone())),
            ("display_name_styles", V::Null),
            ("discriminator", s(m.discriminator.clone())),
            ("collectibles", V::Null),
            ("clan", V::Null),
            ("avatar_decoration_data", V::Null),
            ("avatar", opt(m.avatar.clone())),
        ]);
        if m.bot {
            u.push("bot", V::Bool(true));
        }
        u
    }

    fn member_json(&mut self, m: &Member, with_user: bool) -> V {
        let mut d = V::Obj(vec![
            (
                "roles",
                V::Arr(m.roles.iter().map(|r| s(r.clone())).collect()),
            ),
            ("premium_since", V::Null),
            ("pending", V::Bool(false)),
            ("nick", opt(m.nick.clone())),
            ("mute", V::Bool(false)),
            ("joined_at", s(m.joined_at.clone())),
            ("flags", int(0)),
            ("deaf", V::Bool(false)),
            ("communication_disabled_until", V::Null),
            ("banner", V::Null),
            ("avatar", V::Null),
        ]);
        if with_user {
            let user = self.user_json(m);
            d.push("user", user);
        }
        d
    }

    // ----- activities and presences -----

    fn game(&mut self) -> V {
        let start = self.now_ms - self.below(6 * 3600 * 1000);
        V::Obj(vec![
            ("type", int(0)),
            ("timestamps", V::Obj(vec![("start", int(start))])),
            ("name", s(self.pick(GAMES))),
            ("id", s(self.hex(16))),
            ("created_at", int(self.now_ms)),
            (
                "application_id",
                s(self.snowflake_at(self.now_ms - 10_000_000_000)),
            ),
        ])
    }

    fn spotify(&mut self, user_id: &str) -> V {
        V::Obj(vec![
            ("type", int(2)),
            (
                "timestamps",
                V::Obj(vec![
                    ("start", int(self.now_ms - 60_000)),
                    ("end", int(self.now_ms + 180_000)),
                ]),
            ),
            ("sync_id", s(self.alnum(22))),
            ("state", s(self.text(1, 4))),
            ("session_id", s(self.hex(32))),
            (
                "party",
                V::Obj(vec![("id", s(format!("spotify:{user_id}")))]),
            ),
            ("name", s("Spotify")),
            ("flags", int(48)),
            ("details", s(self.text(1, 5))),
            (
                "assets",
                V::Obj(vec![
                    ("large_text", s(self.text(1, 4))),
                    (
                        "large_image",
                        s(format!("spotify:ab67616d0000b273{}", self.hex(24))),
                    ),
                ]),
            ),
            ("id", s("spotify:1")),
            ("created_at", int(self.now_ms)),
        ])
    }

    fn custom_status(&mut self) -> V {
        V::Obj(vec![
            ("type", int(4)),
            ("state", s(self.text(1, 8))),
            ("name", s("Custom Status")),
            ("id", s("custom")),
            (
                "emoji",
                V::Obj(vec![(
                    "name",
                    s(self.pick(&["🎮", "💤", "🔥", "☕", "🦀"])),
                )]),
            ),
            ("created_at", int(self.now_ms)),
        ])
    }

    fn rich_presence(&mut self) -> V {
        let start = self.now_ms - self.below(3_600_000);
        V::Obj(vec![
            ("type", int(0)),
            ("timestamps", V::Obj(vec![("start", int(start))])),
            ("state", s("In a Group")),
            ("session_id", s(self.hex(32))),
            (
                "party",
                V::Obj(vec![
                    ("size", V::Arr(vec![int(2), int(4)])),
                    ("id", s(self.hex(24))),
                ]),
            ),
            ("name", s("Rocket League")),
            ("id", s(self.hex(16))),
            ("details", s("Ranked Duos: 2-1")),
            ("created_at", int(self.now_ms)),
            (
                "assets",
                V::Obj(vec![
                    ("small_text", s("Rank: Diamond II")),
                    ("small_image", s(self.snowflake_at(1_500_000_000_000))),
                    ("large_text", s("Champions Field - Day")),
                    ("large_image", s(self.snowflake_at(1_500_000_000_000))),
                ]),
            ),
            ("application_id", s(self.snowflake_at(1_500_000_000_000))),
            ("buttons", V::Arr(vec![s("Join Party"), s("View Profile")])),
        ])
    }

    fn activities(&mut self, user_id: &str) -> V {
        let k = self.below(100);
        V::Arr(match k {
            0..=34 => vec![],
            35..=64 => vec![self.game()],
            65..=79 => vec![self.spotify(user_id)],
            80..=91 => vec![self.custom_status()],
            _ => vec![self.rich_presence(), self.game()],
        })
    }

    fn presence_json(&mut self, m: &Member, with_guild: bool) -> V {
        let status = self.pick(&["online", "online", "online", "idle", "dnd"]);
        let platforms: &[&'static str] = self.pick(&[
            &["desktop"][..],
            &["desktop"],
            &["mobile"],
            &["web"],
            &["desktop", "mobile"],
        ]);
        let client_status = V::Obj(platforms.iter().map(|&p| (p, s(status))).collect());
        let mut d = V::Obj(vec![
            ("user", V::Obj(vec![("id", s(m.id.clone()))])),
            ("status", s(status)),
            ("client_status", client_status),
            ("activities", self.activities(&m.id)),
        ]);
        if with_guild {
            d.push("guild_id", s(self.guild_id.clone()));
        }
        d
    }

    // ----- events (`d`) -----

    fn typing_start_d(&mut self) -> V {
        let m = self.member();
        V::Obj(vec![
            ("user_id", s(m.id.clone())),
            ("timestamp", int(self.now_ms / 1000)),
            ("member", self.member_json(&m, true)),
            ("channel_id", s(self.text_channel())),
            ("guild_id", s(self.guild_id.clone())),
        ])
    }

    fn text_channel(&mut self) -> String {
        let i = self.below(self.text_channels.len() as u64) as usize;
        self.text_channels[i].0.clone()
    }

    fn embed(&mut self) -> V {
        let slug = self.alnum(12).to_lowercase();
        let img = self.below(9000) + 1000;
        let fields = (0..self.range(2, 5))
            .map(|_| {
                V::Obj(vec![
                    ("inline", V::Bool(self.chance(0.7))),
                    ("name", s(self.text(1, 2))),
                    ("value", s(self.text(1, 4))),
                ])
            })
            .collect();
        V::Obj(vec![
            ("type", s("rich")),
            ("url", s(format!("https://kitsu.io/anime/{slug}"))),
            ("title", s(self.text(2, 6))),
            ("description", s(self.text(15, 50))),
            ("color", int(self.below(0x100_0000))),
            (
                "author",
                V::Obj(vec![
                    ("url", s(format!("https://kitsu.io/users/{slug}"))),
                    ("name", s(self.text(2, 6))),
                    ("icon_url", s(format!("https://media.kitsu.io/users/avatars/{img}/large.png"))),
                    (
                        "proxy_icon_url",
                        s(format!(
                            "https://images-ext-1.discordapp.net/external/{}/https/media.kitsu.io/users/avatars/{img}/large.png",
                            self.alnum(43)
                        )),
                    ),
                ]),
            ),
            ("fields", V::Arr(fields)),
            (
                "footer",
                V::Obj(vec![
                    ("text", s(format!("{} • {}", self.pick(GAMES), self.iso(self.now_ms)))),
                    ("proxy_icon_url", s(format!("https://images-ext-1.discordapp.net/external/{}/http/i.imgur.com/taRJXqB.png", self.alnum(43)))),
                    ("icon_url", s("http://i.imgur.com/taRJXqB.png")),
                ]),
            ),
            (
                "thumbnail",
                V::Obj(vec![
                    ("url", s(format!("https://media.kitsu.io/anime/poster_images/{img}/original.jpg?{}", self.range(1_400_000_000, 1_700_000_000)))),
                    ("width", int(225)),
                    ("proxy_url", s(format!("https://images-ext-2.discordapp.net/external/{}/%3F{}/https/media.kitsu.io/anime/poster_images/{img}/original.jpg", self.alnum(43), self.range(1_400_000_000, 1_700_000_000)))),
                    ("height", int(315)),
                    ("placeholder_version", int(1)),
                    ("placeholder", s(self.alnum(24))),
                    ("flags", int(0)),
                ]),
            ),
            ("content_scan_version", int(0)),
        ])
    }

    /// A MESSAGE_CREATE (or MESSAGE_UPDATE when `edited`) `d`. `kind`: 0-69 plain, 70-79
    /// with a mention, 80-94 a bot's rich embed, 95-99 an attachment.
    fn message_d(&mut self, edited: bool, kind: u64) -> V {
        let m = self.member();
        let channel_id = self.text_channel();
        let ts = self.now_ms - if edited { 60_000 } else { 0 };
        let mut author = m.clone();
        let mut mentions = vec![];
        let mut mention_roles = vec![];
        let mut embeds = vec![];
        let mut attachments = vec![];
        let mut content = self.text(2, 25);
        match kind {
            0..=69 => {}
            70..=79 => {
                let mm = self.member();
                let mut u = self.user_json(&mm);
                let member = self.member_json(&mm, false);
                u.push("member", member);
                mentions.push(u);
                content = format!("<@{}> {content}", mm.id);
                if self.chance(0.3) {
                    mention_roles.push(s(self.role_id()));
                }
            }
            80..=94 => {
                embeds.push(self.embed());
                content = String::new();
                author = self.bot.clone();
            }
            _ => {
                let aid = self.snowflake();
                let (w, h) = self.pick(&[(1920, 1080), (1280, 720), (828, 1792), (512, 512)]);
                let file = self.pick(&[
                    "image.png",
                    "Screenshot_2025-01-01_at_12.00.00.png",
                    "clip.mp4",
                ]);
                let query = format!("ex={}&is={}&hm={}&", self.hex(8), self.hex(8), self.hex(64));
                attachments.push(V::Obj(vec![
                    ("width", int(w)),
                    ("url", s(format!("https://cdn.discordapp.com/attachments/{channel_id}/{aid}/{file}?{query}"))),
                    ("size", int(self.range(1000, 8_000_000))),
                    ("proxy_url", s(format!("https://media.discordapp.net/attachments/{channel_id}/{aid}/{file}?{query}"))),
                    ("placeholder_version", int(1)),
                    ("placeholder", s(self.alnum(24))),
                    ("id", s(aid)),
                    ("height", int(h)),
                    ("filename", s(file)),
                    ("content_type", s("image/png")),
                    ("content_scan_version", int(0)),
                ]));
            }
        }
        let member = self.member_json(&author, false);
        let author_json = self.user_json(&author);
        V::Obj(vec![
            ("type", int(0)),
            ("tts", V::Bool(false)),
            ("timestamp", s(self.iso(ts))),
            ("pinned", V::Bool(false)),
            ("nonce", s(self.snowflake())),
            ("mentions", V::Arr(mentions)),
            ("mention_roles", V::Arr(mention_roles)),
            ("mention_everyone", V::Bool(false)),
            ("member", member),
            ("id", s(self.snowflake())),
            ("flags", int(0)),
            ("embeds", V::Arr(embeds)),
            (
                "edited_timestamp",
                if edited {
                    s(self.iso(self.now_ms))
                } else {
                    V::Null
                },
            ),
            ("content", s(content)),
            ("components", V::Arr(vec![])),
            ("channel_type", int(0)),
            ("channel_id", s(channel_id)),
            ("author", author_json),
            ("attachments", V::Arr(attachments)),
            ("guild_id", s(self.guild_id.clone())),
        ])
    }

    fn reaction_add_d(&mut self) -> V {
        let m = self.member();
        let emoji = if self.chance(0.5) {
            let (id, name) = self.emoji();
            V::Obj(vec![("name", s(name)), ("id", s(id))])
        } else {
            V::Obj(vec![
                ("name", s(self.pick(&["🔥", "👍", "😂", "❤️", "👀"]))),
                ("id", V::Null),
            ])
        };
        V::Obj(vec![
            ("user_id", s(m.id.clone())),
            ("type", int(0)),
            ("message_id", s(self.snowflake_at(self.now_ms - 3_600_000))),
            ("message_author_id", s(self.member().id)),
            ("member", self.member_json(&m, true)),
            ("emoji", emoji),
            ("channel_id", s(self.text_channel())),
            ("burst", V::Bool(false)),
            ("guild_id", s(self.guild_id.clone())),
        ])
    }

    fn member_update_d(&mut self) -> V {
        let m = self.member();
        let mut d = self.member_json(&m, true);
        d.push("guild_id", s(self.guild_id.clone()));
        d
    }

    fn voice_state_d(&mut self) -> V {
        let m = self.member();
        let channel = if self.chance(0.7) {
            let i = self.below(self.voice_channels.len() as u64) as usize;
            s(self.voice_channels[i].0.clone())
        } else {
            V::Null
        };
        V::Obj(vec![
            ("member", self.member_json(&m, true)),
            ("user_id", s(m.id.clone())),
            ("suppress", V::Bool(false)),
            ("session_id", s(self.hex(32))),
            ("self_video", V::Bool(false)),
            ("self_mute", V::Bool(self.chance(0.3))),
            ("self_deaf", V::Bool(self.chance(0.1))),
            ("request_to_speak_timestamp", V::Null),
            ("mute", V::Bool(false)),
            ("guild_id", s(self.guild_id.clone())),
            ("deaf", V::Bool(false)),
            ("channel_id", channel),
        ])
    }

    fn guild_create_d(&mut self, n_members: usize) -> V {
        let roles = self
            .roles
            .clone()
            .into_iter()
            .enumerate()
            .map(|(i, (id, name))| {
                let color = if self.chance(0.4) {
                    self.below(0x100_0000)
                } else {
                    0
                };
                V::Obj(vec![
                    ("position", int(i)),
                    (
                        "permissions",
                        s(self.pick(&["0", "104324673", "2251799813685247", "1071698660929"])),
                    ),
                    ("name", s(name)),
                    ("mentionable", V::Bool(self.chance(0.2))),
                    ("managed", V::Bool(false)),
                    ("id", s(id)),
                    ("hoist", V::Bool(self.chance(0.3))),
                    ("color", int(color)),
                    ("unicode_emoji", V::Null),
                    ("tags", V::Obj(vec![])),
                    ("icon", V::Null),
                    ("flags", int(0)),
                    ("description", V::Null),
                    (
                        "colors",
                        V::Obj(vec![
                            ("primary_color", int(color)),
                            ("secondary_color", V::Null),
                            ("tertiary_color", V::Null),
                        ]),
                    ),
                ])
            })
            .collect::<Vec<_>>();
        let mut channels = Vec::new();
        for (i, (id, name)) in self.text_channels.clone().into_iter().enumerate() {
            let overwrites = (0..self.below(3))
                .map(|_| {
                    V::Obj(vec![
                        ("type", int(0)),
                        ("id", s(self.role_id())),
                        ("deny", s("2048")),
                        ("allow", s("0")),
                    ])
                })
                .collect();
            channels.push(V::Obj(vec![
                ("type", int(0)),
                (
                    "topic",
                    if self.chance(0.6) {
                        s(self.text(4, 20))
                    } else {
                        V::Null
                    },
                ),
                ("rate_limit_per_user", int(self.pick(&[0, 0, 5, 30]))),
                ("position", int(i)),
                ("permission_overwrites", V::Arr(overwrites)),
                ("parent_id", V::Null),
                ("nsfw", V::Bool(false)),
                ("name", s(name)),
                ("last_message_id", s(self.snowflake())),
                ("id", s(id)),
                ("flags", int(0)),
            ]));
        }
        for (i, (id, name)) in self.voice_channels.clone().into_iter().enumerate() {
            channels.push(V::Obj(vec![
                ("user_limit", int(0)),
                ("type", int(2)),
                ("rtc_region", V::Null),
                ("position", int(i)),
                ("permission_overwrites", V::Arr(vec![])),
                ("parent_id", V::Null),
                ("nsfw", V::Bool(false)),
                ("name", s(name)),
                ("id", s(id)),
                ("flags", int(0)),
                ("bitrate", int(64000)),
            ]));
        }
        let emojis = self
            .emojis
            .clone()
            .into_iter()
            .map(|(id, name)| {
                V::Obj(vec![
                    ("roles", V::Arr(vec![])),
                    ("require_colons", V::Bool(true)),
                    ("name", s(name)),
                    ("managed", V::Bool(false)),
                    ("id", s(id)),
                    ("available", V::Bool(true)),
                    ("animated", V::Bool(self.chance(0.2))),
                ])
            })
            .collect();
        // The guild's own members first; a larger guild gets new ones (which leaves the
        // frames of up to 600 members as they were).
        let chosen: Vec<Member> = (0..n_members)
            .map(|i| match self.members.get(i) {
                Some(member) => member.clone(),
                None => self.new_member(),
            })
            .collect();
        let members = chosen.iter().map(|m| self.member_json(m, true)).collect();
        let presences = chosen
            .iter()
            .map(|m| self.presence_json(m, false))
            .collect();
        V::Obj(vec![
            ("system_channel_id", V::Null),
            ("voice_states", V::Arr(vec![])),
            ("verification_level", int(3)),
            ("unavailable", V::Bool(false)),
            ("splash", V::Null),
            ("roles", V::Arr(roles)),
            ("region", s("deprecated")),
            ("presences", V::Arr(presences)),
            ("premium_tier", int(3)),
            ("premium_subscription_count", int(self.range(14, 80))),
            ("owner_id", s(self.members[0].id.clone())),
            ("name", s("Rust Programming Language Community 🦀")),
            ("mfa_level", int(1)),
            ("members", V::Arr(members)),
            ("member_count", int(self.range(20_000, 90_000))),
            ("large", V::Bool(true)),
            ("joined_at", s(self.iso(self.now_ms - 86_400_000))),
            ("id", s(self.guild_id.clone())),
            ("icon", s(self.hex(32))),
            ("features", V::Arr(["COMMUNITY", "NEWS", "ANIMATED_ICON", "INVITE_SPLASH", "VANITY_URL", "DISCOVERABLE", "WELCOME_SCREEN_ENABLED"].iter().map(|f| s(*f)).collect())),
            ("explicit_content_filter", int(2)),
            ("emojis", V::Arr(emojis)),
            ("description", s("A place to talk about \"Rust\" — the language, its crates & its community.\nBe kind.")),
            ("default_message_notifications", int(1)),
            ("channels", V::Arr(channels)),
            ("application_id", V::Null),
            ("afk_timeout", int(300)),
            ("afk_channel_id", V::Null),
            ("preferred_locale", s("en-US")),
            ("nsfw_level", int(0)),
            ("nsfw", V::Bool(false)),
            ("system_channel_flags", int(0)),
            ("premium_progress_bar_enabled", V::Bool(false)),
            ("max_video_channel_users", int(25)),
            ("max_stage_video_channel_users", int(50)),
            ("max_members", int(500_000)),
            ("vanity_url_code", s("rust")),
            ("rules_channel_id", V::Null),
            ("public_updates_channel_id", V::Null),
            ("safety_alerts_channel_id", V::Null),
            ("discovery_splash", V::Null),
            ("stickers", V::Arr(vec![])),
            ("threads", V::Arr(vec![])),
            ("stage_instances", V::Arr(vec![])),
            ("guild_scheduled_events", V::Arr(vec![])),
            ("soundboard_sounds", V::Arr(vec![])),
            ("embedded_activities", V::Arr(vec![])),
            ("activity_instances", V::Arr(vec![])),
            ("application_command_counts", V::Obj(vec![])),
            ("hub_type", V::Null),
            ("home_header", V::Null),
            ("latest_onboarding_question_id", V::Null),
            ("incidents_data", V::Null),
            ("inventory_settings", V::Null),
            ("version", int(self.now_ms)),
            ("lazy", V::Bool(true)),
        ])
    }

    fn dispatch(&mut self, t: &'static str, d: V) -> Frame {
        let seq = self.next_seq();
        Frame {
            t: Some(t),
            s: Some(seq),
            op: 0,
            d: d.to_json(),
        }
    }

    // ----- public frames -----

    /// A heartbeat ACK: `{"t":null,"s":null,"op":11,"d":null}`.
    pub fn heartbeat_ack(&mut self) -> Frame {
        Frame {
            t: None,
            s: None,
            op: 11,
            d: "null".into(),
        }
    }

    /// HELLO with `interval_ms` and a `_trace` (a string holding escaped JSON).
    pub fn hello(&mut self, interval_ms: u64) -> Frame {
        let trace = format!(
            r#"["gateway-prd-us-east1-b-{}",{{"micros":0.0}}]"#,
            self.hex(4)
        );
        Frame {
            t: None,
            s: None,
            op: 10,
            d: V::Obj(vec![
                ("heartbeat_interval", int(interval_ms)),
                ("_trace", V::Arr(vec![s(trace)])),
            ])
            .to_json(),
        }
    }

    /// READY for a bot in `guilds` guilds (listed unavailable).
    pub fn ready(&mut self, guilds: usize) -> Frame {
        let bot = self.bot.clone();
        let mut user = self.user_json(&bot);
        user.push("verified", V::Bool(true));
        user.push("mfa_enabled", V::Bool(true));
        user.push("flags", int(0));
        user.push("email", V::Null);
        let mut guild_list = vec![V::Obj(vec![
            ("unavailable", V::Bool(true)),
            ("id", s(self.guild_id.clone())),
        ])];
        for _ in 1..guilds {
            guild_list.push(V::Obj(vec![
                ("unavailable", V::Bool(true)),
                (
                    "id",
                    s(self.snowflake_between(1_450_000_000_000, 1_730_000_000_000)),
                ),
            ]));
        }
        let session_id = self.hex(32);
        let trace = format!(
            r#"["gateway-prd-us-east1-b-{}",{{"micros":{},"calls":["id_created",{{"micros":812,"calls":[]}},"session_lookup_time",{{"micros":402,"calls":[]}}]}}]"#,
            self.hex(4),
            self.range(20_000, 90_000)
        );
        let d = V::Obj(vec![
            ("v", int(10)),
            ("user_settings", V::Obj(vec![])),
            ("user", user),
            ("session_type", s("normal")),
            ("session_id", s(session_id)),
            (
                "resume_gateway_url",
                s("wss://gateway-us-east1-b.discord.gg"),
            ),
            ("relationships", V::Arr(vec![])),
            ("private_channels", V::Arr(vec![])),
            ("presences", V::Arr(vec![])),
            ("guilds", V::Arr(guild_list)),
            ("guild_join_requests", V::Arr(vec![])),
            (
                "geo_ordered_rtc_regions",
                V::Arr(
                    ["us-east", "us-central", "atlanta", "newark", "us-south"]
                        .iter()
                        .map(|r| s(*r))
                        .collect(),
                ),
            ),
            ("auth", V::Obj(vec![])),
            (
                "application",
                V::Obj(vec![("id", s(bot.id.clone())), ("flags", int(565_248))]),
            ),
            ("shard", V::Arr(vec![int(0), int(1)])),
            ("_trace", V::Arr(vec![s(trace)])),
        ]);
        self.dispatch("READY", d)
    }

    /// A TYPING_START with the full member and user (~0.6 KB).
    pub fn typing_start(&mut self) -> Frame {
        let d = self.typing_start_d();
        self.dispatch("TYPING_START", d)
    }

    /// A PRESENCE_UPDATE: no activity, a game, Spotify, a custom status or rich presence
    /// (0.2-1.5 KB, ~0.45 KB on average).
    pub fn presence_update(&mut self) -> Frame {
        let m = self.member();
        let d = self.presence_json(&m, true);
        self.dispatch("PRESENCE_UPDATE", d)
    }

    /// A MESSAGE_CREATE from a bot with a rich embed (~2-3 KB).
    pub fn message_create_embed(&mut self) -> Frame {
        let d = self.message_d(false, 90);
        self.dispatch("MESSAGE_CREATE", d)
    }

    /// A MESSAGE_CREATE of any kind (plain, mention, embed, attachment).
    pub fn message_create(&mut self) -> Frame {
        let kind = self.below(100);
        let d = self.message_d(false, kind);
        self.dispatch("MESSAGE_CREATE", d)
    }

    /// A GUILD_CREATE with `members` members and their presences (about 0.75 KB each,
    /// plus ~40 KB of roles, channels and emojis): 220 members give ~200 KB.
    pub fn guild_create(&mut self, members: usize) -> Frame {
        let d = self.guild_create_d(members);
        self.dispatch("GUILD_CREATE", d)
    }

    /// The next event of a busy bot's stream (GUILDS, GUILD_MESSAGES, GUILD_PRESENCES,
    /// GUILD_MEMBERS, typing, reactions, voice states, MESSAGE_CONTENT), weighted: presence
    /// 50, message create 20, typing 12, reaction 5, message update 4, member update 4,
    /// voice state 3.
    pub fn busy_event(&mut self) -> Frame {
        match self.below(98) {
            0..=49 => self.presence_update(),
            50..=69 => self.message_create(),
            70..=81 => self.typing_start(),
            82..=86 => {
                let d = self.reaction_add_d();
                self.dispatch("MESSAGE_REACTION_ADD", d)
            }
            87..=90 => {
                let kind = self.below(100);
                let d = self.message_d(true, kind);
                self.dispatch("MESSAGE_UPDATE", d)
            }
            91..=94 => {
                let d = self.member_update_d();
                self.dispatch("GUILD_MEMBER_UPDATE", d)
            }
            _ => {
                let d = self.voice_state_d();
                self.dispatch("VOICE_STATE_UPDATE", d)
            }
        }
    }

    /// A connection's stream: HELLO, READY, three GUILD_CREATEs (300, 200 and 120 members)
    /// among `n - 2` busy-bot events, and a heartbeat ACK every 600 frames.
    pub fn mixed_stream(&mut self, n: usize) -> Vec<Frame> {
        let mut frames = vec![self.hello(41_250), self.ready(1)];
        while frames.len() < n {
            let i = frames.len();
            let frame = match i {
                2 => self.guild_create(300),
                _ if i == n * 17 / 50 => self.guild_create(200),
                _ if i == n * 39 / 50 => self.guild_create(120),
                _ if i % 600 == 300 => self.heartbeat_ack(),
                _ => self.busy_event(),
            };
            frames.push(frame);
        }
        frames
    }
}

fn placeholder_member() -> Member {
    Member {
        id: String::new(),
        username: String::new(),
        global_name: None,
        discriminator: String::new(),
        avatar: None,
        public_flags: 0,
        bot: false,
        nick: None,
        roles: Vec::new(),
        joined_at: String::new(),
    }
}

/// `ms` (Unix milliseconds) as Discord's ISO 8601: `2025-01-01T00:01:42.756000+00:00`.
fn iso8601(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}000+00:00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// Back-to-back GUILD_CREATEs of one size class (a bot starting on large guilds): `count`
/// frames of `members` members each, in Discord's key order. About 0.8 KB per member plus
/// ~40 KB: 344 members give ~312 KB, 4,020 members ~3.3 MB.
pub fn guild_creates(seed: u64, members: usize, count: usize) -> Vec<String> {
    let mut g = FrameGen::new(seed);
    (0..count)
        .map(|_| g.guild_create(members).text(KeyOrder::Discord))
        .collect()
}

/// Renders frames in `order`.
pub fn render(frames: &[Frame], order: KeyOrder) -> Vec<String> {
    frames.iter().map(|f| f.text(order)).collect()
}

/// The frame sets the benches measure, each rendered in Discord's key order.
pub struct FrameSets {
    /// One heartbeat ACK.
    pub heartbeat_ack: Vec<String>,
    /// 256 TYPING_STARTs.
    pub typing_start: Vec<String>,
    /// 256 PRESENCE_UPDATEs.
    pub presence_update: Vec<String>,
    /// 128 MESSAGE_CREATEs with a rich embed.
    pub message_create_embed: Vec<String>,
    /// One GUILD_CREATE of ~200 KB.
    pub guild_create: Vec<String>,
    /// A 5000-frame busy-bot stream (HELLO and READY first).
    pub mixed: Vec<Frame>,
}

impl FrameSets {
    /// All sets from one seed.
    pub fn new(seed: u64) -> Self {
        let mut g = FrameGen::new(seed);
        let discord = |frames: Vec<Frame>| render(&frames, KeyOrder::Discord);
        let heartbeat_ack = discord(vec![g.heartbeat_ack()]);
        let typing_start = discord((0..256).map(|_| g.typing_start()).collect());
        let presence_update = discord((0..256).map(|_| g.presence_update()).collect());
        let message_create_embed = discord((0..128).map(|_| g.message_create_embed()).collect());
        let guild_create = discord(vec![g.guild_create(220)]);
        let mut g = FrameGen::new(seed ^ 1);
        let mixed = g.mixed_stream(5000);
        FrameSets {
            heartbeat_ack,
            typing_start,
            presence_update,
            message_create_embed,
            guild_create,
            mixed,
        }
    }
}
