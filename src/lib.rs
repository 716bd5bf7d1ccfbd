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
pub mod error;
pub mod heartbeat;
pub mod inflate;
mod machine;
pub mod output;
pub mod phase;
pub mod protocol;
pub(crate) mod rng;
pub mod session;
#[cfg(feature = "sim")]
pub mod sim;
pub mod time;

pub use backoff::{Backoff, BackoffSchedule};
pub use close_code::{CloseAction, CloseCode};
pub use config::{Compression, GatewayConfig, ShardId, Token};
pub use error::CommandError;
pub use heartbeat::Latency;
pub use machine::{GatewayMachine, Message, StartOptions, MAX_FRAME_BYTES};
pub use output::{
    CloseFrame, Disconnect, DisconnectReason, Dispatch, Event, FatalReason, Frame, Output,
    ProtocolError,
};
pub use phase::Phase;
pub use protocol::commands::Command;
pub use protocol::intents::Intents;
pub use protocol::opcode::OpCode;
pub use session::Session;
pub use time::Timestamp;
