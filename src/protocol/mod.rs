//! The wire format: opcodes, the envelope reader, outgoing payloads, intents and the gateway URL.

pub mod commands;
pub mod envelope;
pub mod intents;
pub mod opcode;
pub(crate) mod payloads;
pub mod rate_limited;
pub mod snowflake;
pub mod url;
