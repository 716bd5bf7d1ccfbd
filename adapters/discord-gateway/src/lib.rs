//! # discord-gateway
//!
//! A Discord gateway shard you can depend on: the connection lifecycle (identify, resume,
//! heartbeats, zombie detection, reconnects, rate limits, compression) decided by the
//! sans-IO [`discord-gateway-proto`](discord_gateway_proto) machine, and the I/O loop around
//! it written once, here, for your runtime.
//!
//! ```no_run
//! use discord_gateway::tokio::Shard;
//! use discord_gateway::{Intents, ShardEvent, ShardId};
//! use serde::Deserialize;
//!
//! /// The part of MESSAGE_CREATE this bot reads. Any serde model works: your own structs,
//! /// or a model crate such as `twilight-model` (`twilight_model::gateway::payload::
//! /// incoming::MessageCreate`).
//! #[derive(Deserialize)]
//! struct Message {
//!     content: String,
//!     author: Author,
//! }
//!
//! #[derive(Deserialize)]
//! struct Author {
//!     username: String,
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let token = std::env::var("DISCORD_TOKEN")?;
//!     let intents = Intents::GUILD_MESSAGES | Intents::MESSAGE_CONTENT;
//!     let mut shard = Shard::new(ShardId::ONE, token, intents)?;
//!     while let Some(event) = shard.next_event().await {
//!         match event {
//!             ShardEvent::Dispatch(d) if d.name == "MESSAGE_CREATE" => {
//!                 let message: Message = serde_json::from_str(&d.data)?;
//!                 println!("{}: {}", message.author.username, message.content);
//!             }
//!             ShardEvent::Disconnected { reason, resume, .. } => {
//!                 eprintln!("disconnected ({reason:?}), resuming: {resume}");
//!             }
//!             _ => {}
//!         }
//!     }
//!     Ok(())
//! }
//! ```
//!
//! # Three runtimes, one shape
//!
//! | module | feature | `next_event` | under it |
//! |---|---|---|---|
//! | [`tokio::Shard`] | `tokio` (default) | `async`, cancel-safe; `Stream` | tokio, tokio-websockets, tokio-rustls |
//! | [`smol::Shard`] | `smol` | `async`, cancel-safe; `Stream` | async-io, async-net, async-tungstenite, futures-rustls |
//! | [`blocking::Shard`] | `blocking` | blocks the thread; `Iterator`, `next_event_timeout` | tungstenite and rustls over a non-blocking socket, mio's `Poll` |
//!
//! Each has the same constructors (`new`, `with_options`, `from_config`, `resume`), the
//! same commands (`command`, `command_json`, `sender()`, `close(keep_session)`) and the
//! same getters, and hands out the same [`ShardEvent`]s; a [`ShardSender`] is one type for
//! all three. Code and tests move between runtimes by changing the `use` line (and the
//! `.await`s).
//!
//! ```no_run
//! use discord_gateway::blocking::Shard;
//! use discord_gateway::{Intents, ShardEvent, ShardId};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut shard = Shard::new(ShardId::ONE, std::env::var("DISCORD_TOKEN")?, Intents::GUILDS)?;
//! for event in shard.iter() {
//!     if let ShardEvent::Dispatch(d) = event {
//!         println!("{} #{}", d.name, d.sequence);
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # What you get
//!
//! - A shard per runtime (above): `next_event` gives owned [`ShardEvent`]s. Dispatches are
//!   name, sequence and raw `d` ([`DispatchEvent`]); on an uncompressed connection `d` is a
//!   slice of the received message ([`SharedStr`], backed by `bytes::Bytes`): no copy, no
//!   allocation of ours. The loop runs inside `next_event` (no background task or thread
//!   per shard).
//! - [`ShardSender`] (`shard.sender()`): commands from other tasks or threads, answered with
//!   the machine's typed refusal ([`SendError`]: queue full, too large, stopped). The
//!   blocking shard's wait ends at once for them.
//! - `close(keep_session)` returns the [`Session`]; `Shard::resume` picks it up in the next
//!   process.
//! - [`SessionFile`]: the session kept in a file between runs, so a restarted bot resumes.
//! - [`SharedIdentifyQueue`]: several shards of one process take turns identifying, on any
//!   runtime.
//! - [`fleet::Fleet`] (tokio): many shards of one bot in one process (one identify queue,
//!   one merged event stream, a sender and a status per shard, resharding without
//!   downtime), and, with `redis`, many processes sharing identify turns, leases and
//!   sessions.
//! - [`http::get_gateway_bot`] (tokio): `GET /gateway/bot` (gateway URL, recommended shard
//!   count, `session_start_limit`) over the shard's own TLS.
//! - TLS with rustls and the `ring` provider chosen by the crate (no process-level
//!   `CryptoProvider` to install), the Mozilla roots by default; `ws://` and `wss://`.
//! - Everything a driver must get right, done once: connecting without blocking the loop
//!   (bounded by the machine's connect timeout), a send timeout, a failed send reported as
//!   a lost connection, close frames sent without waiting for the peer, `Interrupted`,
//!   `WouldBlock` and `TimedOut` never taken for a lost connection, Discord's `User-Agent`
//!   on the upgrade.
//! - Test tools (feature `testing`): [`testing::FakeGatewayServer`], a fake Discord on
//!   loopback to run your bot's own loop against, whatever its runtime.
//!
//! # Features
//!
//! | feature | what |
//! |---|---|
//! | `tokio` (default) | [`tokio::Shard`], [`fleet`], [`http`] (`GET /gateway/bot`) |
//! | `smol` | [`smol::Shard`] |
//! | `blocking` | [`blocking::Shard`] |
//! | `webpki-roots` (default) | trust the Mozilla roots compiled in |
//! | `native-roots` | trust the system's certificate store |
//! | `zlib-stream`, `zstd-stream` | transport compression |
//! | `testing` | [`testing::FakeGatewayServer`] |
//! | `redis` | [`redis`]: a fleet coordinator on Redis (identify spacing, the daily budget, a session store) |
#![deny(unsafe_code)]
#![warn(missing_docs)]
// Without a runtime feature only the shared types are of use; the core waits for a loop.
#![cfg_attr(
    not(any(feature = "tokio", feature = "smol", feature = "blocking")),
    allow(dead_code, unused_imports)
)]

mod clock;
mod core;
#[cfg(test)]
mod counting_alloc;
mod event;
mod identify;
mod names;
mod options;
mod sender;
mod session_file;
mod text;
mod tls;
mod websocket;

#[cfg(feature = "blocking")]
pub mod blocking;
#[cfg(feature = "tokio")]
pub mod fleet;
#[cfg(feature = "tokio")]
pub mod http;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "smol")]
pub mod smol;
#[cfg(feature = "testing")]
pub mod testing;
#[cfg(feature = "tokio")]
pub mod tokio;

pub use discord_gateway_proto as proto;
pub use discord_gateway_proto::config::ConfigError;
pub use discord_gateway_proto::output::{RateLimited, ReadyInfo};
pub use discord_gateway_proto::{
    Command, CommandError, Compression, DisconnectReason, FatalReason, GatewayConfig, Intents,
    Latency, OpCode, Phase, ProtocolError, Session, SessionStartLimit, ShardId, Token,
};

pub use event::{DispatchEvent, ShardEvent};
pub use identify::{IdentifyBlocked, SharedIdentifyQueue};
pub use options::{ShardOptions, DEFAULT_CLOSE_GRACE, DEFAULT_SEND_TIMEOUT};
pub use sender::{SendError, ShardSender};
pub use session_file::{session_age, SessionFile, SessionFileError};
pub use text::SharedStr;
pub use tls::{default_tls_config, TlsError};
pub use websocket::{user_agent, BufferSizes};

/// The rustls version this crate builds its TLS on, for [`ShardOptions::tls_config`].
pub use rustls;
