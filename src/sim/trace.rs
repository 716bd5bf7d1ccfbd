//! The record of a simulated run: every action of the client, the server and the driver,
//! with its virtual time. Usable in assertions and printable as a timeline.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use super::gateway::ConnectionId;
use crate::error::CommandError;
use crate::output::{Dispatch, Event, OwnedDispatch};
use crate::protocol::opcode::OpCode;
use crate::time::Timestamp;

/// A machine [`Event`] that owns its data (dispatches are copied out of the machine).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimEvent {
    /// A dispatch.
    Dispatch(OwnedDispatch),
    /// Any other event (none of them borrow).
    Other(Event<'static>),
}

impl SimEvent {
    /// Copies an event out of the machine.
    pub fn from_event(event: &Event<'_>) -> Self {
        let other = match event {
            Event::Dispatch(d) => return SimEvent::Dispatch(d.to_owned()),
            Event::Hello { heartbeat_interval } => Event::Hello {
                heartbeat_interval: *heartbeat_interval,
            },
            Event::IdentifyRequested => Event::IdentifyRequested,
            Event::Ready(info) => Event::Ready(info.clone()),
            Event::Resumed { replayed } => Event::Resumed {
                replayed: *replayed,
            },
            Event::SequenceGap { expected, received } => Event::SequenceGap {
                expected: *expected,
                received: *received,
            },
            Event::SequenceDuplicate { expected, received } => Event::SequenceDuplicate {
                expected: *expected,
                received: *received,
            },
            Event::HeartbeatAck { latency } => Event::HeartbeatAck { latency: *latency },
            Event::InvalidSession { resumable } => Event::InvalidSession {
                resumable: *resumable,
            },
            Event::ProtocolError(e) => Event::ProtocolError(*e),
            Event::Disconnected(d) => Event::Disconnected(*d),
            Event::RateLimited(r) => Event::RateLimited(r.clone()),
            Event::Fatal(f) => Event::Fatal(*f),
            Event::Decision(d) => Event::Decision(*d),
            Event::Shutdown { session_kept } => Event::Shutdown {
                session_kept: *session_kept,
            },
        };
        SimEvent::Other(other)
    }

    /// The event, borrowing from `self`, to `match` like a machine output.
    pub fn as_event(&self) -> Event<'_> {
        match self {
            SimEvent::Dispatch(d) => Event::Dispatch(Dispatch {
                name: &d.name,
                sequence: d.sequence,
                data: &d.data,
                spans: None,
            }),
            SimEvent::Other(e) => e.clone(),
        }
    }
}

/// What happened at one point of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TraceKind {
    /// The machine asked for a connection; the fake gateway numbered it.
    Connect {
        /// The connection.
        connection: ConnectionId,
        /// The URL, query included.
        url: String,
    },
    /// The machine sent a frame (Identify and Resume with the token redacted).
    ClientSend {
        /// The connection it went to (`None`: the machine sent with no socket open).
        connection: Option<ConnectionId>,
        /// The opcode.
        opcode: OpCode,
        /// The JSON text.
        text: String,
    },
    /// The machine closed its connection.
    ClientClose {
        /// The connection (`None`: the machine closed with no socket open).
        connection: Option<ConnectionId>,
        /// The close code.
        code: u16,
        /// The reason.
        reason: String,
    },
    /// The machine reported an event.
    Event(SimEvent),
    /// The server accepted a connection.
    ServerAccept(ConnectionId),
    /// The server refused a connection.
    ServerRefuse(ConnectionId),
    /// The server sent a text message.
    ServerText {
        /// The connection.
        connection: ConnectionId,
        /// The text.
        text: String,
    },
    /// The server sent a text message as raw bytes.
    ServerTextBytes {
        /// The connection.
        connection: ConnectionId,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// The server sent a binary message.
    ServerBinary {
        /// The connection.
        connection: ConnectionId,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// The server closed the connection.
    ServerClose {
        /// The connection.
        connection: ConnectionId,
        /// The close code.
        code: u16,
        /// The reason.
        reason: String,
    },
    /// The server dropped the transport.
    ServerDrop(ConnectionId),
    /// The driver called `handle_timeout` at this time for this deadline.
    Timeout {
        /// The deadline that was due.
        deadline: Timestamp,
    },
    /// The driver called `grant_identify`.
    Grant(Result<(), CommandError>),
    /// The driver called `send` with a command of this opcode.
    Command {
        /// The opcode.
        opcode: OpCode,
        /// What `send` returned.
        result: Result<(), CommandError>,
    },
    /// The driver called `shutdown`.
    Shutdown {
        /// The `keep_session` argument.
        keep_session: bool,
    },
    /// A custom input made by the test (see [`SimDriver::input`](super::SimDriver::input)).
    Input(String),
}

/// One trace entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceEntry {
    /// When.
    pub time: Timestamp,
    /// What.
    pub kind: TraceKind,
}

/// The full record of a run, in order. `Display` prints it as a timeline.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trace {
    entries: Vec<TraceEntry>,
}

impl Trace {
    pub(crate) fn push(&mut self, time: Timestamp, kind: TraceKind) {
        self.entries.push(TraceEntry { time, kind });
    }

    /// Every entry, in order.
    pub fn entries(&self) -> &[TraceEntry] {
        &self.entries
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing happened.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The frames the machine sent: time, opcode, text.
    pub fn client_frames(&self) -> impl Iterator<Item = (Timestamp, OpCode, &str)> + '_ {
        self.entries.iter().filter_map(|e| match &e.kind {
            TraceKind::ClientSend { opcode, text, .. } => Some((e.time, *opcode, text.as_str())),
            _ => None,
        })
    }

    /// The times at which the machine sent frames with `opcode`.
    pub fn send_times(&self, opcode: OpCode) -> Vec<Timestamp> {
        self.client_frames()
            .filter(|&(_, op, _)| op == opcode)
            .map(|(t, _, _)| t)
            .collect()
    }

    /// The opcodes of the frames the machine sent, in order.
    pub fn sent_opcodes(&self) -> Vec<OpCode> {
        self.client_frames().map(|(_, op, _)| op).collect()
    }

    /// The machine's events: time and event.
    pub fn events(&self) -> impl Iterator<Item = (Timestamp, &SimEvent)> + '_ {
        self.entries.iter().filter_map(|e| match &e.kind {
            TraceKind::Event(ev) => Some((e.time, ev)),
            _ => None,
        })
    }

    /// The machine's events other than dispatches, in order (to `match` on).
    pub fn other_events(&self) -> impl Iterator<Item = (Timestamp, &Event<'static>)> + '_ {
        self.events().filter_map(|(t, e)| match e {
            SimEvent::Other(e) => Some((t, e)),
            SimEvent::Dispatch(_) => None,
        })
    }

    /// The dispatches the machine reported, in order.
    pub fn dispatches(&self) -> impl Iterator<Item = (Timestamp, &OwnedDispatch)> + '_ {
        self.events().filter_map(|(t, e)| match e {
            SimEvent::Dispatch(d) => Some((t, d)),
            SimEvent::Other(_) => None,
        })
    }

    /// The connections the machine asked for: time and URL.
    pub fn connects(&self) -> impl Iterator<Item = (Timestamp, &str)> + '_ {
        self.entries.iter().filter_map(|e| match &e.kind {
            TraceKind::Connect { url, .. } => Some((e.time, url.as_str())),
            _ => None,
        })
    }

    /// The closes the machine asked for: time and code.
    pub fn client_closes(&self) -> impl Iterator<Item = (Timestamp, u16)> + '_ {
        self.entries.iter().filter_map(|e| match &e.kind {
            TraceKind::ClientClose { code, .. } => Some((e.time, *code)),
            _ => None,
        })
    }

    /// The entries from index `start` on (to look only at what followed a point).
    pub fn since(&self, start: usize) -> Trace {
        Trace {
            entries: self.entries.get(start..).unwrap_or_default().to_vec(),
        }
    }
}

impl fmt::Display for TraceEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:>10}  ", alloc::format!("{}", self.time))?;
        let conn = |c: &Option<ConnectionId>| match c {
            Some(c) => alloc::format!("{c}"),
            None => String::from("#-"),
        };
        match &self.kind {
            TraceKind::Connect { connection, url } => {
                write!(f, "client -> {connection} CONNECT {url}")
            }
            TraceKind::ClientSend {
                connection, text, ..
            } => write!(f, "client -> {} {text}", conn(connection)),
            TraceKind::ClientClose {
                connection,
                code,
                reason,
            } => write!(f, "client -> {} CLOSE {code} {reason:?}", conn(connection)),
            TraceKind::Event(SimEvent::Dispatch(d)) => write!(
                f,
                "  event    Dispatch {} s={} {}",
                d.name,
                d.sequence,
                Abbrev(&d.data)
            ),
            TraceKind::Event(SimEvent::Other(e)) => write!(f, "  event    {e:?}"),
            TraceKind::ServerAccept(c) => write!(f, "server {c} -> ACCEPT"),
            TraceKind::ServerRefuse(c) => write!(f, "server {c} -> REFUSE"),
            TraceKind::ServerText { connection, text } => {
                write!(f, "server {connection} -> {}", Abbrev(text))
            }
            TraceKind::ServerTextBytes { connection, bytes } => {
                write!(f, "server {connection} -> text bytes {bytes:02x?}")
            }
            TraceKind::ServerBinary { connection, bytes } => {
                write!(f, "server {connection} -> binary {bytes:02x?}")
            }
            TraceKind::ServerClose {
                connection,
                code,
                reason,
            } => write!(f, "server {connection} -> CLOSE {code} {reason:?}"),
            TraceKind::ServerDrop(c) => write!(f, "server {c} -> DROP"),
            TraceKind::Timeout { deadline } => write!(f, "  driver   timeout (due {deadline})"),
            TraceKind::Grant(r) => write!(f, "  driver   grant_identify -> {r:?}"),
            TraceKind::Command { opcode, result } => {
                write!(f, "  driver   send {opcode} -> {result:?}")
            }
            TraceKind::Shutdown { keep_session } => {
                write!(f, "  driver   shutdown(keep_session={keep_session})")
            }
            TraceKind::Input(label) => write!(f, "  driver   {label}"),
        }
    }
}

impl fmt::Display for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for entry in &self.entries {
            writeln!(f, "{entry}")?;
        }
        Ok(())
    }
}

/// Long text cut to a readable length.
struct Abbrev<'a>(&'a str);

impl fmt::Display for Abbrev<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX: usize = 160;
        if self.0.len() <= MAX {
            return f.write_str(self.0);
        }
        let mut end = MAX;
        while !self.0.is_char_boundary(end) {
            end -= 1;
        }
        write!(f, "{}… ({} bytes)", &self.0[..end], self.0.len())
    }
}
