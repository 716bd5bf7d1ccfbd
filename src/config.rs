//! Configuration: plain data with defaults and a builder-style API.
//!
//! One [`GatewayConfig`] may be shared (behind an `Arc`) by every shard of a process; the
//! per-machine part (which shard) is chosen when the machine is created.

use alloc::string::String;
use core::fmt;
use core::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::backoff::Backoff;
use crate::protocol::commands::{UpdatePresence, MAX_FRAME_BYTES};
use crate::protocol::intents::Intents;
use crate::protocol::url::{gateway_url, GatewayUrlError, DEFAULT_GATEWAY_URL};

/// A bot token. Its `Debug` output is redacted and it has no `Display`, so it never ends up
/// in logs, errors or recordings by accident.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Token(String);

impl Token {
    /// Wraps a token (with or without the `Bot ` prefix; the gateway takes it without).
    pub fn new(token: impl Into<String>) -> Self {
        let token = token.into();
        match token.strip_prefix("Bot ") {
            Some(bare) => Token(bare.into()),
            None => Token(token),
        }
    }

    /// The secret itself, for building Identify and Resume payloads.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Which shard a machine runs: `[id, count]` in Identify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ShardId {
    /// This shard's index, `0..count`.
    pub id: u32,
    /// The total number of shards.
    pub count: u32,
}

impl ShardId {
    /// The only shard of an unsharded bot: `[0, 1]`.
    pub const ONE: ShardId = ShardId { id: 0, count: 1 };

    /// Shard `id` of `count`.
    pub const fn new(id: u32, count: u32) -> Self {
        ShardId { id, count }
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {}]", self.id, self.count)
    }
}

/// The `properties` object of Identify.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentifyProperties {
    /// Operating system, e.g. `linux`.
    pub os: String,
    /// Library name.
    pub browser: String,
    /// Library name.
    pub device: String,
}

impl Default for IdentifyProperties {
    fn default() -> Self {
        IdentifyProperties {
            os: String::from("linux"),
            browser: String::from("discord-gateway-proto"),
            device: String::from("discord-gateway-proto"),
        }
    }
}

/// Compression of the data Discord sends.
///
/// Every variant exists whatever the crate features, so a `match` on it compiles the same in
/// every build; a compression whose feature is off in this build (see
/// [`feature`](Self::feature)) is refused by [`GatewayConfig::validate`] with
/// [`ConfigError::CompressionUnavailable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Compression {
    /// Plain JSON text messages.
    #[default]
    None,
    /// `compress=zlib-stream`: one zlib context for the whole connection (feature
    /// `zlib-stream`).
    ZlibStream,
    /// `compress=zstd-stream`: one zstd context for the whole connection (feature
    /// `zstd-stream`).
    ZstdStream,
    /// Identify `compress: true`: some messages arrive as single zlib payloads (feature
    /// `zlib-stream`).
    Payload,
}

impl Compression {
    /// The value of the URL's `compress` query parameter, if any.
    pub const fn query_value(self) -> Option<&'static str> {
        match self {
            Compression::None | Compression::Payload => None,
            Compression::ZlibStream => Some("zlib-stream"),
            Compression::ZstdStream => Some("zstd-stream"),
        }
    }

    /// Whether Identify asks for payload compression (`compress: true`).
    pub const fn identify_compress(self) -> bool {
        matches!(self, Compression::Payload)
    }

    /// The crate feature this compression needs, if any.
    pub const fn feature(self) -> Option<&'static str> {
        match self {
            Compression::None => None,
            Compression::ZlibStream | Compression::Payload => Some("zlib-stream"),
            Compression::ZstdStream => Some("zstd-stream"),
        }
    }

    /// `Ok` if this build can decompress it, else the [`ConfigError`] that says which feature
    /// is missing.
    pub(crate) fn check_available(self) -> Result<(), ConfigError> {
        match self.feature() {
            Some(feature) if !self.is_available() => Err(ConfigError::CompressionUnavailable {
                compression: self,
                feature,
            }),
            _ => Ok(()),
        }
    }

    /// Whether this build can decompress it (its [`feature`](Self::feature) is on).
    pub const fn is_available(self) -> bool {
        match self {
            Compression::None => true,
            Compression::ZlibStream | Compression::Payload => cfg!(feature = "zlib-stream"),
            Compression::ZstdStream => cfg!(feature = "zstd-stream"),
        }
    }
}

/// What counts as proof that a connection is alive between two heartbeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Liveness {
    /// Only a Heartbeat ACK (Discord's documented rule).
    #[default]
    AckOnly,
    /// Any message received after the beat. Use when the driver may read slowly (bursts of
    /// GUILD_CREATE): an ACK queued behind dispatches then does not cause a false verdict.
    AnyMessage,
}

/// Heartbeat and dead-connection policy.
///
/// The interval itself comes from Hello; the machine clamps it to 1 s - 10 min so that a
/// hostile or broken Hello can neither make it flood nor stop beating.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatPolicy {
    /// How many beats in a row may go unacknowledged before the connection is declared a
    /// zombie. `1` (the default, per Discord's docs): if the previous beat got no ACK when
    /// the next one is due, the connection is dead.
    pub missed_acks_before_zombie: u32,
    /// What counts as an acknowledgement.
    pub liveness: Liveness,
}

impl Default for HeartbeatPolicy {
    fn default() -> Self {
        HeartbeatPolicy {
            missed_acks_before_zombie: 1,
            liveness: Liveness::AckOnly,
        }
    }
}

/// Deadlines for a connection that stalls before it is ready. Each must be longer than
/// zero ([`ConfigError::ZeroTimeout`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeouts {
    /// From `Connect` to `handle_connected`.
    pub connect: Duration,
    /// From the socket opening to Hello.
    pub hello: Duration,
    /// How long the server may stay silent while the machine waits for READY or RESUMED:
    /// counted from sending Identify or Resume, and again from each dispatch replayed
    /// before RESUMED, so a long replay that keeps coming is never cut off; only silence
    /// is. Heartbeat ACKs are not progress: a server that ACKs but never finishes the
    /// handshake still times out.
    pub ready: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(30),
            hello: Duration::from_secs(20),
            ready: Duration::from_secs(60),
        }
    }
}

/// Session policy: when a session is given up.
///
/// A session is kept through everything that does not say it is gone: a network outage
/// (connections refused, timing out or dropped before Hello, on either URL), op 7, a lost
/// transport, a resumable close code. It is dropped, and the machine identifies anew, only
/// when the server rejects it (op 9 `false`, close 4007 or 4009, or 4003), when it is
/// stale, or when the resume circuit breaker trips.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionPolicy {
    /// A session whose last ACK is older than this is not resumed; the machine identifies
    /// instead. Discord publishes no resume window; 15 minutes is the seed's heuristic. It
    /// also bounds how long an outage is ridden out with the session kept.
    pub stale_after: Duration,
    /// The resume circuit breaker: after this many resumes in a row that the server
    /// received and did not complete (op 9 `true`, or the connection ends between Resume
    /// and RESUMED, silence included), the session is dropped and the machine identifies.
    /// Attempts that end before Hello (the Resume never reached a server: a network outage)
    /// and op 7 (the server asking for a reconnect) do not count.
    pub max_failed_resumes: u32,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy {
            stale_after: Duration::from_secs(15 * 60),
            max_failed_resumes: 3,
        }
    }
}

/// Identify policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentifyPolicy {
    /// Grant every identify request at once (a single-shard bot). Otherwise the machine emits
    /// [`Event::IdentifyRequested`](crate::Event::IdentifyRequested) and waits for
    /// [`grant_identify`](crate::GatewayMachine::grant_identify).
    pub auto_grant: bool,
    /// Before re-identifying after an Invalid Session (op 9, `d: false`), wait a random time
    /// in `[min, max)` as Discord asks. Default 1-5 s.
    pub invalid_session_delay: (Duration, Duration),
}

impl Default for IdentifyPolicy {
    fn default() -> Self {
        IdentifyPolicy {
            auto_grant: false,
            invalid_session_delay: (Duration::from_secs(1), Duration::from_secs(5)),
        }
    }
}

/// Limits on what the machine buffers for the application and from the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Commands waiting for a rate-limit slot or for READY; past this, `send` fails.
    pub command_queue: usize,
    /// The largest decompressed message accepted (a GUILD_CREATE of a huge guild is a few
    /// MiB). Default 64 MiB.
    pub max_message_size: usize,
    /// The most compressed bytes buffered while waiting for a message's end. Default 16 MiB.
    pub max_buffered_compressed: usize,
    /// The largest window a zstd-stream frame may declare, in bytes (rounded down to a power
    /// of two; at least 1 KiB). libzstd allocates the window a frame header asks for, up to
    /// 2 GiB, before any data arrives: this bounds what one connection's decompressor can
    /// make the process allocate. A frame declaring more is refused
    /// ([`InflateError::WindowTooLarge`](crate::inflate::InflateError::WindowTooLarge), then
    /// a reconnect that keeps the session). (zlib's window is always 32 KiB.)
    ///
    /// Default 8 MiB ([`DEFAULT_MAX_WINDOW`]): Discord's zstd-stream frames declare 256 KiB
    /// (window log 18, e.g. the Hello captured in twilight-gateway's tests), so the default
    /// leaves 32 times that for a change on Discord's side, and it is the bound RFC 8878
    /// recommends every decoder accept (what zstd's levels 1-19 use at most).
    #[serde(default = "default_max_window")]
    pub max_window: usize,
}

/// The default of [`Limits::max_window`]: 8 MiB.
pub const DEFAULT_MAX_WINDOW: usize = 8 * 1024 * 1024;

/// The smallest [`Limits::max_window`]: zstd's smallest window, 1 KiB.
pub const MIN_MAX_WINDOW: usize = 1 << 10;

fn default_max_window() -> usize {
    DEFAULT_MAX_WINDOW
}

impl Limits {
    /// The base-2 logarithm of the largest zstd window accepted (libzstd's
    /// `ZSTD_d_windowLogMax`): [`max_window`](Self::max_window) rounded down to a power of
    /// two, at most 2^31 bytes (2^30 on 32-bit targets, libzstd's limits).
    pub fn max_window_log(&self) -> Result<u32, ConfigError> {
        if self.max_window < MIN_MAX_WINDOW {
            return Err(ConfigError::MaxWindow(self.max_window));
        }
        let most = if cfg!(target_pointer_width = "32") {
            30
        } else {
            31
        };
        Ok(self.max_window.ilog2().min(most))
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            command_queue: 64,
            max_message_size: 64 * 1024 * 1024,
            max_buffered_compressed: 16 * 1024 * 1024,
            max_window: DEFAULT_MAX_WINDOW,
        }
    }
}

/// Everything a machine needs to know before it connects.
///
/// Serializable for recordings and config files, except the token: it is never serialized
/// and deserializes as empty (set it afterwards; an empty token fails validation).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GatewayConfig {
    /// The bot token (never serialized).
    #[serde(skip)]
    pub token: Token,
    /// Intents sent in Identify.
    pub intents: Intents,
    /// The shard this machine runs (default `[0, 1]`). Machines of one process may share one
    /// config and override it with [`StartOptions::shard`](crate::StartOptions::shard).
    pub shard: ShardId,
    /// Identify `properties`.
    pub properties: IdentifyProperties,
    /// Identify `large_threshold`: 50-250, or `None` for Discord's default.
    pub large_threshold: Option<u8>,
    /// The presence to identify with.
    pub presence: Option<UpdatePresence>,
    /// The gateway base URL (`wss://gateway.discord.gg` unless `GET /gateway/bot` says
    /// otherwise).
    pub gateway_url: String,
    /// Compression of what Discord sends.
    pub compression: Compression,
    /// Heartbeat and zombie policy.
    pub heartbeat: HeartbeatPolicy,
    /// Session staleness and resume circuit breaker.
    pub session: SessionPolicy,
    /// Identify gating and the invalid-session wait.
    pub identify: IdentifyPolicy,
    /// Reconnect delays.
    pub reconnect: Backoff,
    /// Stall deadlines.
    pub timeouts: Timeouts,
    /// Buffer limits.
    pub limits: Limits,
}

/// Why a configuration was rejected.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `shard.id >= shard.count` or `shard.count == 0`.
    #[error("invalid shard {0}: the id must be below a non-zero count")]
    Shard(ShardId),
    /// `large_threshold` outside 50-250.
    #[error("large_threshold must be between 50 and 250, not {0}")]
    LargeThreshold(u8),
    /// The gateway URL is unusable.
    #[error(transparent)]
    GatewayUrl(#[from] GatewayUrlError),
    /// `missed_acks_before_zombie` is zero.
    #[error("missed_acks_before_zombie must be at least 1")]
    MissedAcks,
    /// The invalid-session delay range is empty or reversed.
    #[error("invalid_session_delay must be a range with min <= max")]
    InvalidSessionDelay,
    /// The token is empty.
    #[error("the token is empty")]
    EmptyToken,
    /// [`Limits::max_window`] is below zstd's smallest window, 1 KiB.
    #[error("max_window must be at least 1024 bytes, not {0}")]
    MaxWindow(usize),
    /// The compression needs a crate feature that is off in this build.
    #[error("{compression:?} compression needs the crate feature `{feature}`, which is off")]
    CompressionUnavailable {
        /// The compression asked for.
        compression: Compression,
        /// The feature it needs ([`Compression::feature`]).
        feature: &'static str,
    },
    /// A stall timeout ([`Timeouts`]) is zero: nothing can happen in no time, and a machine
    /// with it would give up on every connection the moment it starts.
    #[error("the {0} timeout must be longer than zero")]
    ZeroTimeout(&'static str),
    /// The Identify this configuration produces does not fit in one gateway message
    /// (Discord closes with 4002 and the same Identify would be sent again forever). `size`
    /// is computed with the longest shard numbers, so it holds for every shard; shorten the
    /// presence or the properties.
    #[error("the Identify payload is {size} bytes, over the gateway's limit of {limit}")]
    IdentifyTooLarge {
        /// The serialized Identify's size in bytes, token included.
        size: usize,
        /// The most bytes one gateway message may have
        /// ([`MAX_FRAME_BYTES`]).
        limit: usize,
    },
}

impl GatewayConfig {
    /// A configuration with every default: shard `[0, 1]`, Discord's gateway, no compression,
    /// the documented heartbeat rule, exponential backoff, identify gated by the driver.
    pub fn new(token: Token, intents: Intents) -> Self {
        GatewayConfig {
            token,
            intents,
            shard: ShardId::ONE,
            properties: IdentifyProperties::default(),
            large_threshold: None,
            presence: None,
            gateway_url: String::from(DEFAULT_GATEWAY_URL),
            compression: Compression::None,
            heartbeat: HeartbeatPolicy::default(),
            session: SessionPolicy::default(),
            identify: IdentifyPolicy::default(),
            reconnect: Backoff::default(),
            timeouts: Timeouts::default(),
            limits: Limits::default(),
        }
    }

    /// Sets the shard.
    pub fn with_shard(mut self, shard: ShardId) -> Self {
        self.shard = shard;
        self
    }

    /// Sets the gateway base URL.
    pub fn with_gateway_url(mut self, url: impl Into<String>) -> Self {
        self.gateway_url = url.into();
        self
    }

    /// Sets the compression.
    pub fn with_compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Grants identify requests automatically (single-shard bots).
    pub fn with_auto_grant(mut self, auto_grant: bool) -> Self {
        self.identify.auto_grant = auto_grant;
        self
    }

    /// Sets the heartbeat policy.
    pub fn with_heartbeat(mut self, policy: HeartbeatPolicy) -> Self {
        self.heartbeat = policy;
        self
    }

    /// Sets the session policy.
    pub fn with_session_policy(mut self, policy: SessionPolicy) -> Self {
        self.session = policy;
        self
    }

    /// Sets the reconnect backoff.
    pub fn with_reconnect(mut self, backoff: Backoff) -> Self {
        self.reconnect = backoff;
        self
    }

    /// Sets the stall timeouts.
    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// Sets the buffer limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets Identify's `properties`.
    pub fn with_properties(mut self, properties: IdentifyProperties) -> Self {
        self.properties = properties;
        self
    }

    /// Sets Identify's `large_threshold` (50-250).
    pub fn with_large_threshold(mut self, threshold: u8) -> Self {
        self.large_threshold = Some(threshold);
        self
    }

    /// Sets the presence to identify with.
    pub fn with_presence(mut self, presence: UpdatePresence) -> Self {
        self.presence = Some(presence);
        self
    }

    /// Checks every field; the machine calls this before it starts.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_shard(self.shard)?;
        if self.token.expose_secret().is_empty() {
            return Err(ConfigError::EmptyToken);
        }
        if let Some(t) = self.large_threshold {
            if !(50..=250).contains(&t) {
                return Err(ConfigError::LargeThreshold(t));
            }
        }
        self.compression.check_available()?;
        self.limits.max_window_log()?;
        gateway_url(&self.gateway_url, self.compression)?;
        if self.heartbeat.missed_acks_before_zombie == 0 {
            return Err(ConfigError::MissedAcks);
        }
        let (min, max) = self.identify.invalid_session_delay;
        if min > max {
            return Err(ConfigError::InvalidSessionDelay);
        }
        for (name, timeout) in [
            ("connect", self.timeouts.connect),
            ("hello", self.timeouts.hello),
            ("ready", self.timeouts.ready),
        ] {
            if timeout.is_zero() {
                return Err(ConfigError::ZeroTimeout(name));
            }
        }
        let size = self.largest_identify_size();
        if size > MAX_FRAME_BYTES {
            return Err(ConfigError::IdentifyTooLarge {
                size,
                limit: MAX_FRAME_BYTES,
            });
        }
        Ok(())
    }

    /// The size of this configuration's Identify for the shard whose `[id, count]` is the
    /// longest to write, so that no shard's Identify is larger.
    fn largest_identify_size(&self) -> usize {
        let longest = ShardId::new(u32::MAX - 1, u32::MAX);
        crate::protocol::payloads::identify(self, longest).len()
    }

    pub(crate) fn validate_shard(&self, shard: ShardId) -> Result<(), ConfigError> {
        if shard.count == 0 || shard.id >= shard.count {
            return Err(ConfigError::Shard(shard));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn token_is_redacted_and_prefix_stripped() {
        let t = Token::new("Bot abc.def.secret");
        assert_eq!(t.expose_secret(), "abc.def.secret");
        let config = GatewayConfig::new(t, Intents::GUILDS);
        let debug = format!("{config:?}");
        assert!(!debug.contains("secret"), "{debug}");
        assert!(debug.contains("<redacted>"));
    }

    #[test]
    fn validation() {
        let base = GatewayConfig::new(Token::new("t"), Intents::GUILDS);
        assert_eq!(base.validate(), Ok(()));
        assert_eq!(
            base.clone().with_shard(ShardId::new(2, 2)).validate(),
            Err(ConfigError::Shard(ShardId::new(2, 2)))
        );
        assert_eq!(
            base.clone().with_large_threshold(10).validate(),
            Err(ConfigError::LargeThreshold(10))
        );
        assert!(matches!(
            base.clone().with_gateway_url("http://x").validate(),
            Err(ConfigError::GatewayUrl(_))
        ));
        assert_eq!(
            GatewayConfig::new(Token::new(""), Intents::GUILDS).validate(),
            Err(ConfigError::EmptyToken)
        );
    }

    #[test]
    fn max_window_below_one_kib_is_refused_and_rounds_down_to_a_power_of_two() {
        let with = |max_window| {
            GatewayConfig::new(Token::new("t"), Intents::GUILDS).with_limits(Limits {
                max_window,
                ..Limits::default()
            })
        };
        assert_eq!(with(1023).validate(), Err(ConfigError::MaxWindow(1023)));
        assert_eq!(with(1024).validate(), Ok(()));
        assert_eq!(with(1024).limits.max_window_log(), Ok(10));
        assert_eq!(with((8 << 20) + 1).limits.max_window_log(), Ok(23));
        assert_eq!(Limits::default().max_window_log(), Ok(23));
        assert_eq!(
            with(usize::MAX).limits.max_window_log().unwrap(),
            if cfg!(target_pointer_width = "32") {
                30
            } else {
                31
            }
        );
    }

    /// Configurations saved before `max_window` existed (recording headers) still load.
    #[test]
    fn limits_without_max_window_deserialize_with_the_default() {
        let limits: Limits = serde_json::from_str(
            r#"{"command_queue":64,"max_message_size":67108864,"max_buffered_compressed":16777216}"#,
        )
        .unwrap();
        assert_eq!(limits, Limits::default());
    }

    /// Every compression exists in every build; one whose feature is off is refused by
    /// `validate` (and so by `GatewayMachine::new`), naming the feature.
    #[test]
    fn compression_whose_feature_is_off_is_a_config_error() {
        let base = GatewayConfig::new(Token::new("t"), Intents::GUILDS);
        let all = [
            (Compression::None, true, None),
            (
                Compression::ZlibStream,
                cfg!(feature = "zlib-stream"),
                Some("zlib-stream"),
            ),
            (
                Compression::Payload,
                cfg!(feature = "zlib-stream"),
                Some("zlib-stream"),
            ),
            (
                Compression::ZstdStream,
                cfg!(feature = "zstd-stream"),
                Some("zstd-stream"),
            ),
        ];
        for (compression, on, feature) in all {
            assert_eq!(compression.is_available(), on, "{compression:?}");
            assert_eq!(compression.feature(), feature, "{compression:?}");
            let result = base.clone().with_compression(compression).validate();
            match feature {
                Some(feature) if !on => assert_eq!(
                    result,
                    Err(ConfigError::CompressionUnavailable {
                        compression,
                        feature
                    })
                ),
                _ => assert_eq!(result, Ok(()), "{compression:?}"),
            }
            assert_eq!(
                crate::inflate::Decompressor::new(compression, &base.limits).is_ok(),
                on,
                "{compression:?}"
            );
            let machine = crate::GatewayMachine::with_options(
                base.clone().with_compression(compression),
                crate::StartOptions::default(),
                7,
                crate::Timestamp::ZERO,
            );
            assert_eq!(machine.is_ok(), on, "{compression:?}");
        }
    }

    #[test]
    fn zero_timeouts_are_refused() {
        let base = GatewayConfig::new(Token::new("t"), Intents::GUILDS);
        for (name, timeouts) in [
            (
                "connect",
                Timeouts {
                    connect: Duration::ZERO,
                    ..Timeouts::default()
                },
            ),
            (
                "hello",
                Timeouts {
                    hello: Duration::ZERO,
                    ..Timeouts::default()
                },
            ),
            (
                "ready",
                Timeouts {
                    ready: Duration::ZERO,
                    ..Timeouts::default()
                },
            ),
        ] {
            assert_eq!(
                base.clone().with_timeouts(timeouts).validate(),
                Err(ConfigError::ZeroTimeout(name))
            );
        }
        let tiny = Timeouts {
            connect: Duration::from_micros(1),
            hello: Duration::from_micros(1),
            ready: Duration::from_micros(1),
        };
        assert_eq!(base.with_timeouts(tiny).validate(), Ok(()));
    }
}
