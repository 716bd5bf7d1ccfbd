//! A sans-IO Discord gateway client (crate docs: see README; filled in with the machine).
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod backoff;
pub mod close_code;
pub mod config;
pub mod identify;
pub mod inflate;
pub mod output;
pub mod protocol;
pub mod ratelimit;
pub(crate) mod rng;
pub mod shard;
pub mod time;

pub use backoff::{Backoff, BackoffSchedule};
pub use close_code::{CloseAction, CloseCode};
pub use config::{Compression, GatewayConfig, ShardId, Token};
pub use identify::{IdentifyCoordinator, IdentifyOutput, IdentifyQueue};
pub use output::{
    CloseFrame, Disconnect, DisconnectReason, Dispatch, Event, FatalReason, Frame, Output,
    ProtocolError,
};
pub use protocol::commands::Command;
pub use protocol::commands::{InvalidCommand, MAX_FRAME_BYTES};
pub use protocol::intents::Intents;
pub use protocol::opcode::OpCode;
pub use protocol::snowflake::Snowflake;
pub use ratelimit::RateLimiter;
pub use shard::{shard_for_guild, GatewayBot, SessionStartLimit};
pub use time::Timestamp;
