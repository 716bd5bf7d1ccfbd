//! # discord-gateway
//!
//! The runtime half of `discord-gateway-proto`: a Discord gateway shard driven by tokio, smol
//! or a blocking thread. The protocol decisions live in the sans-IO
//! [`GatewayMachine`](discord_gateway_proto::GatewayMachine); this crate owns the socket loop.
#![warn(missing_docs)]

pub use discord_gateway_proto as proto;

#[cfg(feature = "redis")]
pub mod redis;
