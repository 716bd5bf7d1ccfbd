//! # discord-gateway-proto
//!
//! The Discord gateway protocol as a pure, deterministic state machine: no sockets, no clock,
//! no threads, no async runtime, no global randomness. [`GatewayMachine`] takes what happens
//! on the WebSocket (opened, a message, closed) and the time, and returns what to do
//! (connect, send, close, report an event, wait until a deadline). Any runtime can drive it:
//! tokio, smol, a blocking loop, a game loop, WASM, or a test in virtual time.
//!
//! ## The drive loop
//!
//! ```no_run
//! use discord_gateway_proto::{GatewayConfig, GatewayMachine, Intents, Message, Output, Timestamp, Token};
//! # fn now() -> Timestamp { Timestamp::ZERO }
//! # struct Socket; impl Socket { fn send(&mut self, _: &str) {} }
//! let config = GatewayConfig::new(Token::new("..."), Intents::GUILDS | Intents::GUILD_MESSAGES)
//!     .with_auto_grant(true);
//! // Any `rand_core` 0.10 RNG (the seed of all of the machine's randomness), or a plain seed
//! // through `GatewayMachine::with_options`.
//! let mut machine = GatewayMachine::new(config, &mut rand::rng(), now()).expect("valid config");
//! # let mut socket = Socket;
//! loop {
//!     // Drain after EVERY input or command, until Wait.
//!     let deadline = loop {
//!         match machine.poll_output() {
//!             Output::Connect { url } => { /* open a WebSocket to `url`, later report
//!                                          handle_connected or handle_closed(None) */ }
//!             Output::Send(frame) => socket.send(frame.text),
//!             Output::Close(close) => { /* send `close` if possible, drop the socket now */ }
//!             Output::Event(event) => println!("{event:?}"),
//!             Output::Wait(deadline) => break deadline,
//!             _ => {} // `Output` is non-exhaustive
//!         }
//!     };
//!     // Sleep until `deadline` or the next socket event, then feed exactly one input:
//!     // machine.handle_message(now(), Message::Text(text));
//!     // machine.handle_text_buffer(now(), &mut buffer); // a String of yours, not copied
//!     // machine.handle_closed(now(), close_frame_or_none);
//!     // machine.handle_timeout(now());
//! #   let _ = deadline; break;
//! }
//! ```
//!
//! ## The contract
//!
//! - **Getters** (`phase`, `session`, `latency`, ...) have no side effects.
//! - **Inputs** (`handle_connected`, `handle_message` or `handle_text_buffer`,
//!   `handle_closed`, `handle_timeout`) never fail and never panic: anything bad from the network becomes an
//!   [`Event::ProtocolError`] and, when the connection cannot go on, a reconnect that keeps
//!   the session.
//! - **Commands** (`send`, `grant_identify`, `shutdown`) return a typed [`CommandError`]
//!   when they cannot be honoured.
//! - **Outputs**: call [`GatewayMachine::poll_output`] after every input or command until it
//!   returns [`Output::Wait`]. `Wait` comes only when nothing is queued; its deadline is the
//!   next time `handle_timeout` must be called. After `handle_timeout(t)` with `t` at or past
//!   the deadline, the next deadline is later than `t`: a driver never busy-loops.
//! - After [`Output::Close`] the socket is gone for the machine: send the close frame if you
//!   can, drop the socket without waiting for an answer (a zombie never answers), and report
//!   nothing more from it. After [`Output::Connect`], report `handle_connected` or
//!   `handle_closed(None)` for the new socket.
//!
//! ## Time
//!
//! [`Timestamp`] is a plain number of microseconds from an origin the driver picks (signed:
//! a restored session's last ACK may be before it). The crate never reads a clock. A `now` that goes backwards is clamped; a long jump forward
//! (a suspended laptop) fires each expired timer once. With the `std` feature,
//! [`time::InstantOrigin`] maps `std::time::Instant` to timestamps.
//!
//! ## Identify gating
//!
//! Discord limits how fast a bot may start sessions. When the machine needs a new session it
//! emits [`Event::IdentifyRequested`] and waits; the driver answers with
//! [`GatewayMachine::grant_identify`] when its identify queue allows. Single-shard bots can
//! set [`config::IdentifyPolicy::auto_grant`].
//!
//! ## Sessions
//!
//! [`Session`] (id, sequence, resume URL, when the connection last proved alive) is plain
//! serde data. Save it on shutdown and pass it in [`StartOptions::session`] to resume after
//! a process restart.
//!
//! ## Events are never dropped for good
//!
//! A dispatch whose message the envelope reader rejects is not simply discarded, or the
//! next dispatch would move the session past it and no resume could replay it. If its `t`,
//! `s` and `d` can still be told apart it is delivered as it came, after an
//! [`Event::ProtocolError`] ([`ProtocolError::DamagedDispatch`]) naming its sequence; if its
//! `s` can be read but `d` cannot be delimited, it is reported
//! ([`ProtocolError::LostDispatch`]) and the connection is closed and resumed, so the server
//! replays it. Sequence gaps and repeats are reported ([`Event::SequenceGap`],
//! [`Event::SequenceDuplicate`]) without changing what is delivered.
//!
//! A session is kept through whatever does not end it: a network outage (attempts to the
//! resume URL that fail before Hello send the next attempt to the main URL, still to
//! resume, and back), op 7, a lost transport, a resumable close code, a long replay. It is
//! dropped, and the machine identifies anew, only when the server rejects it (op 9 `false`,
//! close 4007 or 4009), when it is stale ([`config::SessionPolicy::stale_after`]), or when
//! the resume circuit breaker trips ([`config::SessionPolicy::max_failed_resumes`]).
//!
//! ## Determinism
//!
//! The only randomness (heartbeat jitter, backoff jitter, the invalid-session wait) comes
//! from a seed drawn once from the RNG given to [`GatewayMachine::new`] (any
//! [`rand_core::Rng`] of `rand_core` 0.10, such as `rand::rng()` from `rand` 0.10), or
//! passed to [`GatewayMachine::with_options`] by a driver with no RNG at hand. Same configuration, seed and inputs: the
//! same outputs, byte for byte.
//!
//! ## Features
//!
//! - `std` (default): [`time::InstantOrigin`] and `std::error::Error` impls. Without it the
//!   crate is `no_std` + `alloc`.
//! - `zlib-stream`, `zstd-stream`: transport compression. Every [`Compression`] variant
//!   exists in every build; choosing one whose feature is off is a
//!   [`ConfigError::CompressionUnavailable`](config::ConfigError::CompressionUnavailable).
//! - `sim`: a fake gateway and a virtual-time driver, for tests and demos.
//!
//! ## Growing enums
//!
//! The enums that will gain variants ([`Output`], [`Event`], [`Phase`], [`DisconnectReason`],
//! [`FatalReason`], [`ProtocolError`], [`CommandError`], [`OpCode`], ...) are
//! `#[non_exhaustive]`: a `match` on them needs a `_` arm.
//!
//! ## `unsafe`
//!
//! The crate denies `unsafe` everywhere but in the SIMD kernels of the envelope reader
//! (`protocol/envelope/classify.rs`, and the one call that enters the AVX2 loop), where
//! the intrinsics need it. The AVX2 kernel is only reachable through a value that run-time
//! detection creates, and tests check every kernel against a portable one and a naive
//! reference.
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod backoff;
pub mod close_code;
pub mod config;
pub mod error;
pub mod heartbeat;
pub mod identify;
pub mod inflate;
mod machine;
pub mod output;
pub mod phase;
pub mod protocol;
pub mod ratelimit;
pub mod record;
pub(crate) mod rng;
pub mod session;
pub mod shard;
#[cfg(feature = "sim")]
pub mod sim;
pub mod time;
pub mod trace;

/// The `rand_core` whose [`Rng`](rand_core::Rng) [`GatewayMachine::new`] takes (0.10, as
/// `rand` 0.10 uses).
pub use rand_core;

pub use backoff::{Backoff, BackoffSchedule};
pub use close_code::{CloseAction, CloseCode};
pub use config::{Compression, GatewayConfig, ShardId, Token};
pub use error::CommandError;
pub use heartbeat::Latency;
pub use identify::{IdentifyCoordinator, IdentifyOutput, IdentifyQueue};
pub use machine::{GatewayMachine, Message, StartOptions};
pub use output::{
    CloseFrame, Disconnect, DisconnectReason, Dispatch, Event, FatalReason, Frame, MessageSpans,
    Output, ProtocolError,
};
pub use phase::Phase;

pub use protocol::commands::{Command, InvalidCommand, MAX_FRAME_BYTES};
pub use protocol::intents::Intents;
pub use protocol::opcode::OpCode;
pub use protocol::snowflake::Snowflake;
pub use ratelimit::RateLimiter;
pub use session::Session;
pub use shard::{shard_for_guild, GatewayBot, SessionStartLimit};
pub use time::Timestamp;
