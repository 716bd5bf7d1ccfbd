//! The phases of a machine's life.

use crate::output::FatalReason;

/// Where the machine is in the connection lifecycle.
///
/// ```text
///            ┌────────────── reconnect (backoff) ◄──────────────┐
///            ▼                                                  │ close, zombie, op 7, op 9,
/// Connecting ─► AwaitingHello ─┬► AwaitingIdentifyGrant ─► Identifying ─┐   timeouts
///                              └► Resuming ───────────────────────────┴► Connected
/// any ─► Fatal (close 4004, 4010-4014, attempts exhausted)   any ─► Closed (shutdown)
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// No socket; waiting for the reconnect deadline.
    Disconnected,
    /// `Connect` was issued; waiting for the socket to open.
    Connecting,
    /// The socket is open; waiting for Hello.
    AwaitingHello,
    /// Hello arrived and a new session is needed; waiting for `grant_identify`.
    AwaitingIdentifyGrant,
    /// Identify was sent; waiting for READY.
    Identifying,
    /// Resume was sent; waiting for RESUMED (replayed dispatches arrive meanwhile).
    Resuming,
    /// The session is live: dispatches flow, commands may be sent.
    Connected,
    /// Shut down by the application.
    Closed,
    /// Stopped for good.
    Fatal(FatalReason),
}

impl Phase {
    /// Whether the machine has stopped for good (shut down or fatal).
    pub const fn is_terminal(self) -> bool {
        matches!(self, Phase::Closed | Phase::Fatal(_))
    }

    /// Whether a socket is open (from `handle_connected` until a close).
    pub const fn has_open_socket(self) -> bool {
        matches!(
            self,
            Phase::AwaitingHello
                | Phase::AwaitingIdentifyGrant
                | Phase::Identifying
                | Phase::Resuming
                | Phase::Connected
        )
    }

    /// Whether Hello has been received on the current socket.
    pub const fn after_hello(self) -> bool {
        matches!(
            self,
            Phase::AwaitingIdentifyGrant | Phase::Identifying | Phase::Resuming | Phase::Connected
        )
    }

    /// A short lowercase name, for messages.
    pub const fn name(self) -> &'static str {
        match self {
            Phase::Disconnected => "disconnected",
            Phase::Connecting => "connecting",
            Phase::AwaitingHello => "awaiting hello",
            Phase::AwaitingIdentifyGrant => "awaiting identify grant",
            Phase::Identifying => "identifying",
            Phase::Resuming => "resuming",
            Phase::Connected => "connected",
            Phase::Closed => "closed",
            Phase::Fatal(_) => "fatal",
        }
    }
}
