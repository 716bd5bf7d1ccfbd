//! Opening a WebSocket without blocking the loop's thread: DNS on a short-lived helper
//! thread (only for a host name; an IP address needs none), a non-blocking TCP connect
//! (each resolved address in turn), the rustls handshake and the WebSocket upgrade (with
//! Discord's `User-Agent`), each moved on when the socket is ready. The loop serves
//! commands and timers meanwhile; the whole attempt is bounded by the machine's connect
//! timeout, which abandons it (dropping the socket; a DNS thread still running finishes by
//! itself and its answer is dropped).

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::Arc;

use mio::net::TcpStream;
use mio::Registry;
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};
use tungstenite::handshake::client::{ClientHandshake, Request, Response};
use tungstenite::handshake::{HandshakeError, MidHandshake};

use super::stream::{Socket, Stream};
use super::wake::{WakeLoop, INTERESTS, SOCKET};
use crate::websocket::{is_transient_io, ConnectSettings, Target};

/// How far an attempt got (a transient value: its size does not matter).
#[allow(clippy::large_enum_variant)]
pub(crate) enum Progress {
    /// Waiting for the network (or the resolver).
    Pending,
    /// The WebSocket is open.
    Open(Socket),
    /// The attempt failed; the text says where and why.
    Failed(String),
}

/// One connection attempt.
pub(crate) struct Attempt {
    stage: Stage,
    host: String,
    port: u16,
    /// The TLS server name, for `wss://`.
    tls_name: Option<ServerName<'static>>,
    request: Option<Request>,
    settings: Arc<ConnectSettings>,
}

impl std::fmt::Debug for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attempt")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("stage", &self.stage.name())
            .finish_non_exhaustive()
    }
}

enum Stage {
    /// The helper thread is resolving the host name.
    Resolving(Receiver<io::Result<Vec<SocketAddr>>>),
    /// TCP is connecting to an address; the others are tried after it.
    Tcp {
        tcp: TcpStream,
        addr: SocketAddr,
        rest: VecDeque<SocketAddr>,
    },
    /// The TLS handshake.
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
    /// The WebSocket upgrade, waiting for the socket.
    Upgrade(MidHandshake<ClientHandshake<Stream>>),
    /// Moved on (transient, inside [`Attempt::advance`]).
    Taken,
}

impl Stage {
    fn name(&self) -> &'static str {
        match self {
            Stage::Resolving(_) => "resolving",
            Stage::Tcp { .. } => "tcp",
            Stage::Tls(_) => "tls",
            Stage::Upgrade(_) => "upgrade",
            Stage::Taken => "taken",
        }
    }
}

impl Attempt {
    /// Starts connecting to `url`. A bad URL or an address that cannot be connected to at
    /// all shows as [`Progress::Failed`] on the first [`advance`](Self::advance).
    pub(crate) fn start(
        url: &str,
        settings: &Arc<ConnectSettings>,
        registry: &Registry,
        wake: Arc<WakeLoop>,
    ) -> Result<Attempt, String> {
        let target = settings.target(url)?;
        let tls_name = target.secure.then(|| target.server_name()).transpose()?;
        let Target {
            request,
            host,
            port,
            ..
        } = target;
        let mut attempt = Attempt {
            stage: Stage::Taken,
            host,
            port,
            tls_name,
            request: Some(request),
            settings: Arc::clone(settings),
        };
        attempt.stage = match attempt.host.parse::<IpAddr>() {
            Ok(ip) => attempt.connect_next(registry, [SocketAddr::new(ip, port)].into(), None)?,
            Err(_) => Stage::Resolving(resolve(&attempt.host, port, wake)),
        };
        Ok(attempt)
    }

    /// Moves the attempt on as far as the network allows now.
    pub(crate) fn advance(&mut self, registry: &Registry) -> Progress {
        loop {
            match self.step(registry) {
                Ok(Some(socket)) => return Progress::Open(socket),
                Ok(None) if matches!(self.stage, Stage::Taken) => {
                    return Progress::Failed("connection attempt ended".into())
                }
                Ok(None) => {}
                Err(Step::Wait) => return Progress::Pending,
                Err(Step::Failed(error)) => return Progress::Failed(error),
            }
        }
    }

    /// One stage forward: `Ok(Some)` open, `Ok(None)` moved to the next stage.
    fn step(&mut self, registry: &Registry) -> Result<Option<Socket>, Step> {
        let host = self.host.as_str();
        match std::mem::replace(&mut self.stage, Stage::Taken) {
            Stage::Taken => Ok(None),
            Stage::Resolving(answer) => match answer.try_recv() {
                Ok(Ok(addrs)) => {
                    self.stage = self
                        .connect_next(registry, addrs.into(), None)
                        .map_err(Step::Failed)?;
                    Ok(None)
                }
                Ok(Err(e)) => Err(Step::Failed(format!("cannot resolve {host}: {e}"))),
                Err(TryRecvError::Empty) => {
                    self.stage = Stage::Resolving(answer);
                    Err(Step::Wait)
                }
                Err(TryRecvError::Disconnected) => Err(Step::Failed(format!(
                    "cannot resolve {host}: the resolver stopped"
                ))),
            },
            Stage::Tcp { tcp, addr, rest } => {
                let failed = match tcp.take_error() {
                    Ok(Some(e)) | Err(e) => Some(e),
                    Ok(None) => match tcp.peer_addr() {
                        Ok(_) => None,
                        // Still connecting (the wake-up was for something else).
                        Err(e)
                            if e.kind() == io::ErrorKind::NotConnected
                                || is_transient_io(e.kind()) =>
                        {
                            self.stage = Stage::Tcp { tcp, addr, rest };
                            return Err(Step::Wait);
                        }
                        Err(e) => Some(e),
                    },
                };
                if let Some(error) = failed {
                    drop(tcp);
                    self.stage = self
                        .connect_next(registry, rest, Some(format!("{addr}: {error}")))
                        .map_err(Step::Failed)?;
                    return Ok(None);
                }
                // Gateway messages are small and latency matters (heartbeats): no Nagle.
                tcp.set_nodelay(true)
                    .map_err(|e| Step::Failed(format!("cannot set TCP_NODELAY: {e}")))?;
                self.stage = if let Some(name) = self.tls_name.clone() {
                    let config = self.settings.tls_config().map_err(Step::Failed)?;
                    let connection = ClientConnection::new(config, name).map_err(|e| {
                        Step::Failed(format!("TLS handshake with {host} failed: {e}"))
                    })?;
                    Stage::Tls(Box::new(StreamOwned::new(connection, tcp)))
                } else {
                    return self.upgrade(Stream::Plain(tcp));
                };
                Ok(None)
            }
            Stage::Tls(mut tls) => {
                while tls.conn.is_handshaking() {
                    match tls.conn.complete_io(&mut tls.sock) {
                        Ok((0, 0)) => {
                            self.stage = Stage::Tls(tls);
                            return Err(Step::Wait);
                        }
                        Ok(_) => {}
                        Err(e) if is_transient_io(e.kind()) => {
                            self.stage = Stage::Tls(tls);
                            return Err(Step::Wait);
                        }
                        Err(e) => {
                            return Err(Step::Failed(format!(
                                "TLS handshake with {host} failed: {e}"
                            )))
                        }
                    }
                }
                self.upgrade(Stream::Tls(tls))
            }
            Stage::Upgrade(mid) => self.handshake_result(mid.handshake()),
        }
    }

    /// Starts the WebSocket upgrade on an open stream.
    fn upgrade(&mut self, stream: Stream) -> Result<Option<Socket>, Step> {
        let request = self
            .request
            .take()
            .ok_or_else(|| Step::Failed("the upgrade request was used".into()))?;
        let config = self.settings.buffers.websocket_config();
        let started = ClientHandshake::start(stream, request, Some(config))
            .map_err(|e| Step::Failed(format!("WebSocket handshake failed: {e}")))?;
        self.handshake_result(started.handshake())
    }

    fn handshake_result(
        &mut self,
        result: Result<(Socket, Response), HandshakeError<ClientHandshake<Stream>>>,
    ) -> Result<Option<Socket>, Step> {
        match result {
            Ok((socket, _response)) => Ok(Some(socket)),
            Err(HandshakeError::Interrupted(mid)) => {
                self.stage = Stage::Upgrade(mid);
                Err(Step::Wait)
            }
            Err(HandshakeError::Failure(e)) => {
                Err(Step::Failed(format!("WebSocket handshake failed: {e}")))
            }
        }
    }

    /// Connects to the next of `addrs`; `last` is why the previous one failed.
    fn connect_next(
        &self,
        registry: &Registry,
        mut addrs: VecDeque<SocketAddr>,
        mut last: Option<String>,
    ) -> Result<Stage, String> {
        while let Some(addr) = addrs.pop_front() {
            let connected = TcpStream::connect(addr).and_then(|mut tcp| {
                registry.register(&mut tcp, SOCKET, INTERESTS)?;
                Ok(tcp)
            });
            match connected {
                Ok(tcp) => {
                    return Ok(Stage::Tcp {
                        tcp,
                        addr,
                        rest: addrs,
                    })
                }
                Err(e) => last = Some(format!("{addr}: {e}")),
            }
        }
        let (host, port) = (&self.host, self.port);
        Err(match last {
            Some(last) => format!("TCP connect to {host}:{port} failed: {last}"),
            None => format!("cannot resolve {host}: no address"),
        })
    }
}

/// Why a stage did not move on.
enum Step {
    Wait,
    Failed(String),
}

/// Resolves `host` on a helper thread, which wakes the loop when it has the answer.
fn resolve(host: &str, port: u16, wake: Arc<WakeLoop>) -> Receiver<io::Result<Vec<SocketAddr>>> {
    let (tx, rx) = mpsc::channel();
    let host = host.to_owned();
    let spawned = std::thread::Builder::new()
        .name("discord-gateway-dns".into())
        .spawn(move || {
            let addrs = (host.as_str(), port)
                .to_socket_addrs()
                .map(Iterator::collect);
            // Nobody listens if the machine gave up on this attempt: fine.
            let _ = tx.send(addrs);
            wake.wake_now();
        });
    if let Err(e) = spawned {
        let (tx, rx) = mpsc::channel();
        let _ = tx.send(Err(e));
        return rx;
    }
    rx
}
