//! Driver settings from the environment.
//!
//! | variable | meaning |
//! |---|---|
//! | `DISCORD_TOKEN` | the bot token (required; never printed) |
//! | `DISCORD_GATEWAY_URL` | gateway base URL, `ws://` or `wss://` (default `wss://gateway.discord.gg`) |
//! | `DISCORD_INTENTS` | intents bit set as a number (default: every non-privileged intent) |
//! | `DISCORD_COMPRESS` | `none`, `zlib-stream` or `zstd-stream` (needs the crate feature of that name) |
//! | `DISCORD_SHARD` | `id/count`, e.g. `0/1` (default) |
//! | `DISCORD_SESSION_FILE` | save the session here on exit; resume from it on the next start |
//! | `DISCORD_KEEP_SESSION` | `true`/`false`: keep the session resumable on Ctrl-C (default: `true` when a session file is set) |
//! | `DISCORD_RECORD` | record the run (see `examples/replay.rs`) to this file |
//! | `DISCORD_TRACE` | `true`: print the machine's decision trace |

use std::path::PathBuf;

use discord_gateway::{Compression, GatewayConfig, Intents, ShardId, Token};

/// Everything a driver takes from the environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The bot token (its `Debug` is redacted).
    pub token: Token,
    /// The gateway base URL.
    pub gateway_url: String,
    /// The intents.
    pub intents: Intents,
    /// Transport compression.
    pub compression: Compression,
    /// This process's shard.
    pub shard: ShardId,
    /// The session file.
    pub session_file: Option<PathBuf>,
    /// Keep the session on shutdown.
    pub keep_session: bool,
    /// The recording file.
    pub record: Option<PathBuf>,
    /// Print the decision trace.
    pub trace: bool,
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Settings, String> {
        Settings::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `get` (the environment, or a map in tests). Empty values count
    /// as unset.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let token = get("DISCORD_TOKEN").ok_or(
            "DISCORD_TOKEN is not set: export your bot token (Developer Portal → Bot → Token)",
        )?;
        let gateway_url =
            get("DISCORD_GATEWAY_URL").unwrap_or_else(|| "wss://gateway.discord.gg".into());
        if !(gateway_url.starts_with("ws://") || gateway_url.starts_with("wss://")) {
            return Err(format!(
                "DISCORD_GATEWAY_URL must start with ws:// or wss://, not {gateway_url:?}"
            ));
        }
        let intents = match get("DISCORD_INTENTS") {
            None => Intents::non_privileged(),
            Some(text) => text
                .trim()
                .parse::<u64>()
                .map(Intents::from_bits)
                .map_err(|_| {
                    format!("DISCORD_INTENTS must be a number (the intents bit set), not {text:?}")
                })?,
        };
        let compression = match get("DISCORD_COMPRESS") {
            None => Compression::None,
            Some(text) => parse_compression(text.trim())?,
        };
        let shard = match get("DISCORD_SHARD") {
            None => ShardId::ONE,
            Some(text) => parse_shard(text.trim())?,
        };
        let session_file = get("DISCORD_SESSION_FILE").map(PathBuf::from);
        let keep_session = match get("DISCORD_KEEP_SESSION") {
            None => session_file.is_some(),
            Some(text) => parse_bool("DISCORD_KEEP_SESSION", &text)?,
        };
        let trace = match get("DISCORD_TRACE") {
            None => false,
            Some(text) => parse_bool("DISCORD_TRACE", &text)?,
        };
        let settings = Settings {
            token: Token::new(token),
            gateway_url,
            intents,
            compression,
            shard,
            session_file,
            keep_session,
            record: get("DISCORD_RECORD").map(PathBuf::from),
            trace,
        };
        settings
            .config()
            .validate()
            .map_err(|e| format!("invalid settings: {e}"))?;
        Ok(settings)
    }

    /// The machine configuration these settings describe.
    pub fn config(&self) -> GatewayConfig {
        GatewayConfig::new(self.token.clone(), self.intents)
            .with_gateway_url(self.gateway_url.clone())
            .with_compression(self.compression)
            .with_shard(self.shard)
    }
}

fn parse_bool(name: &str, text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!("{name} must be true or false, not {text:?}")),
    }
}

fn parse_shard(text: &str) -> Result<ShardId, String> {
    let bad = || format!("DISCORD_SHARD must be id/count with id < count, e.g. 0/1, not {text:?}");
    let (id, count) = text.split_once(['/', ',']).ok_or_else(bad)?;
    let id: u32 = id.trim().parse().map_err(|_| bad())?;
    let count: u32 = count.trim().parse().map_err(|_| bad())?;
    if count == 0 || id >= count {
        return Err(bad());
    }
    Ok(ShardId::new(id, count))
}

fn parse_compression(text: &str) -> Result<Compression, String> {
    let compression = match text {
        "none" => Compression::None,
        "zlib-stream" => Compression::ZlibStream,
        "zstd-stream" => Compression::ZstdStream,
        _ => {
            return Err(format!(
                "DISCORD_COMPRESS must be none, zlib-stream or zstd-stream, not {text:?}"
            ))
        }
    };
    match compression.feature() {
        Some(feature) if !compression.is_available() => Err(format!(
            "DISCORD_COMPRESS={text} needs the crate feature `{feature}`, which this build \
             lacks: run with `--features {feature}`"
        )),
        _ => Ok(compression),
    }
}
