//! What the shard benches share: the counting allocator, CPU clocks, the loopback fake
//! gateway (run as a child process), the two clients (ours and twilight-gateway's), and the
//! report helpers. Each bench binary includes this module; not every binary uses every part.
#![allow(dead_code)]

pub mod alloc;
pub mod child;
pub mod clients;
pub mod cpu;
// The protocol crate's seeded frame generator, shared with its own benches.
#[path = "../../../../benches/support/frames.rs"]
pub mod frames;
pub mod server;
pub mod stats;
pub mod ticker;

/// The environment variable that tells a bench binary which part to play when it runs itself
/// as a child process (`server`, `client`); unset in the process `cargo bench` starts.
pub const ROLE: &str = "SHARD_BENCH_ROLE";

/// A number from the environment, or `default`.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(default)
}

/// Which client library a connection belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    /// `discord_gateway::tokio::Shard`.
    Ours,
    /// `twilight_gateway::Shard` 0.18.
    Twilight,
}

impl Client {
    /// Its name in URLs, environment variables and tables.
    pub fn name(self) -> &'static str {
        match self {
            Client::Ours => "ours",
            Client::Twilight => "twilight",
        }
    }

    /// The client named `name`.
    pub fn parse(name: &str) -> Option<Client> {
        match name {
            "ours" => Some(Client::Ours),
            "twilight" => Some(Client::Twilight),
            _ => None,
        }
    }
}

/// The transport, as the fake gateway serves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Text messages.
    Plain,
    /// zlib-stream: one zlib context per connection, a sync flush per message.
    Zlib,
}

impl Transport {
    /// Its name in URLs, environment variables and tables.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Plain => "plain",
            Transport::Zlib => "zlib",
        }
    }

    /// The transport named `name`.
    pub fn parse(name: &str) -> Option<Transport> {
        match name {
            "plain" => Some(Transport::Plain),
            "zlib" => Some(Transport::Zlib),
            _ => None,
        }
    }
}

/// The gateway base URL a client connects to: the fake gateway tells the client and the
/// transport from the path (`ws://127.0.0.1:PORT/c/ours-zlib`), never from the `compress`
/// query, so a twilight build with its `zlib` feature can be served plain text too.
pub fn base_url(server: &str, client: Client, transport: Transport) -> String {
    format!("{server}/c/{}-{}", client.name(), transport.name())
}
