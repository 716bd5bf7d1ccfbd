//! A sans-IO fake Discord gateway and a virtual-time driver, for tests and demos (feature
//! `sim`).
//!
//! - [`FakeGateway`]: the server side, scripted ([`FakeGatewayConfig`] knobs and
//!   [`ScriptStep`]s), checking what the client sends and recording it.
//! - [`payloads`]: the `d` of its dispatches, shaped like Discord's, with the bot
//!   ([`SimUser`]), its guilds ([`SimGuild`]) and messages ([`SimMessage`]) as data.
//! - [`SimDriver`]: one [`GatewayMachine`](crate::GatewayMachine) and one `FakeGateway` in
//!   virtual time, checking the driver contract and recording a [`Trace`];
//!   [`next_event`](SimDriver::next_event) and [`run_for_with`](SimDriver::run_for_with)
//!   hand the bot each event at its virtual time, to test its reactions (see
//!   [`SimDriver`]'s "Testing a bot's reactions").
//!
//! ```
//! use core::time::Duration;
//! use discord_gateway_proto::sim::{FakeGateway, SimDriver};
//! use discord_gateway_proto::{GatewayConfig, Intents, OpCode, Token};
//!
//! let config = GatewayConfig::new(Token::new("secret"), Intents::GUILDS)
//!     .with_gateway_url("wss://gateway.sim");
//! let mut sim = SimDriver::new(config, 7, FakeGateway::default()).unwrap();
//! sim.run_for(Duration::from_secs(120));
//! assert_eq!(sim.trace().sent_opcodes()[0], OpCode::Identify);
//! assert!(sim.gateway().violations().is_empty());
//! println!("{}", sim.trace());
//! ```

mod compress;
mod driver;
mod gateway;
pub mod payloads;
mod trace;

pub use driver::{ContractViolation, GrantPolicy, SimDriver};
pub use gateway::{
    AckCutoff, Closer, ConnectBehavior, ConnectRule, ConnectionId, ConnectionRecord, FakeGateway,
    FakeGatewayConfig, LoggedDispatch, ReceivedFrame, ScriptAction, ScriptStep, ServerAction,
    ServerOutput, ServerSession, Trigger, Violation, ViolationKind,
};
pub use payloads::{SimGuild, SimMessage, SimUser};
pub use trace::{SimEvent, Trace, TraceEntry, TraceKind};
