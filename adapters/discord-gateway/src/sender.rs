//! [`ShardSender`]: commands for a shard from anywhere (another task, another thread), with
//! the machine's answer, over a runtime-agnostic channel that every shard's loop reads.

use discord_gateway_proto::{Command, CommandError, OpCode, Session};
use futures_channel::{mpsc, oneshot};

/// Why a command was not accepted. Nothing was sent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The queue of commands waiting for READY or for a rate-limit slot (120 per 60 s) is
    /// full; try again later.
    #[error("the command queue is full ({capacity} commands waiting)")]
    QueueFull {
        /// The configured capacity (`Limits::command_queue`).
        capacity: usize,
    },
    /// The command's JSON is larger than Discord accepts.
    #[error("{opcode} payload is {size} bytes, over the gateway's {limit}-byte limit")]
    PayloadTooLarge {
        /// The command's opcode.
        opcode: OpCode,
        /// Its size in bytes.
        size: usize,
        /// The limit (4096).
        limit: usize,
    },
    /// The shard has stopped (closed, fatal, or dropped).
    #[error("the shard has stopped")]
    Stopped,
    /// Raw JSON that is not a gateway command this crate knows.
    #[error("not a gateway command: {0}")]
    InvalidCommand(String),
}

impl From<CommandError> for SendError {
    fn from(error: CommandError) -> Self {
        match error {
            CommandError::QueueFull { capacity } => SendError::QueueFull { capacity },
            CommandError::PayloadTooLarge {
                opcode,
                size,
                limit,
            } => SendError::PayloadTooLarge {
                opcode,
                size,
                limit,
            },
            // `Stopped`, and anything the machine may add: nothing was sent.
            _ => SendError::Stopped,
        }
    }
}

/// What travels from a [`ShardSender`] to the shard's loop.
#[derive(Debug)]
pub(crate) enum Request {
    /// Send a command; answer with the machine's verdict.
    Command {
        command: Command,
        reply: Option<oneshot::Sender<Result<(), SendError>>>,
    },
    /// Close the shard; answer with the session if it was kept.
    Close {
        keep_session: bool,
        reply: Option<oneshot::Sender<Option<Session>>>,
    },
}

impl Request {
    /// Answers a request the loop cannot serve any more: the shard has stopped.
    pub(crate) fn refuse(self) {
        match self {
            Request::Command { reply, .. } => {
                if let Some(reply) = reply {
                    let _ = reply.send(Err(SendError::Stopped));
                }
            }
            Request::Close { reply, .. } => {
                if let Some(reply) = reply {
                    let _ = reply.send(None);
                }
            }
        }
    }
}

/// The loop's end of the channel.
pub(crate) type Requests = mpsc::UnboundedReceiver<Request>;

/// A new channel: the sender handle and the loop's end.
pub(crate) fn channel() -> (ShardSender, Requests) {
    let (tx, rx) = mpsc::unbounded();
    (ShardSender { tx }, rx)
}

/// A cloneable handle that sends commands to one shard from other tasks or threads.
///
/// Commands go through the shard's machine: rate limited (120 per 60 s, heartbeats
/// reserved), held until READY or RESUMED, refused with a typed [`SendError`] when they
/// cannot be honoured. They are carried out while the shard is polled
/// (`next_event`): awaiting [`send`](Self::send) from the task that polls the shard would
/// wait for itself, so there use the shard's own `command` method.
#[derive(Clone, Debug)]
pub struct ShardSender {
    tx: mpsc::UnboundedSender<Request>,
}

impl ShardSender {
    /// Sends `command` and waits for the machine's verdict: `Ok` once it is sent or queued
    /// for a rate-limit slot. Works from any async runtime. If the future is dropped early
    /// the command still goes out.
    pub async fn send(&self, command: Command) -> Result<(), SendError> {
        let (reply, answer) = oneshot::channel();
        self.request(Request::Command {
            command,
            reply: Some(reply),
        })?;
        answer.await.unwrap_or(Err(SendError::Stopped))
    }

    /// [`send`](Self::send) for raw gateway JSON such as
    /// `{"op":3,"d":{"since":null,"activities":[],"status":"idle","afk":false}}`.
    pub async fn send_json(&self, json: &str) -> Result<(), SendError> {
        self.send(parse(json)?).await
    }

    /// Sends `command` without waiting for the verdict (a refusal is then only visible as
    /// the command's absence). Fails only if the shard has stopped.
    pub fn send_nowait(&self, command: Command) -> Result<(), SendError> {
        self.request(Request::Command {
            command,
            reply: None,
        })
    }

    /// Sends `command` and blocks the thread until the verdict: for threads outside any
    /// async runtime (never call it from async code).
    pub fn send_blocking(&self, command: Command) -> Result<(), SendError> {
        let (reply, answer) = oneshot::channel();
        self.request(Request::Command {
            command,
            reply: Some(reply),
        })?;
        block_on(answer).unwrap_or(Err(SendError::Stopped))
    }

    /// Closes the shard from outside (Ctrl-C in another task): the shard's stream then ends
    /// with [`ShardEvent::Closed`](crate::ShardEvent::Closed). Resolves to the session when
    /// `keep_session` kept it (save it to resume after a restart).
    pub async fn close(&self, keep_session: bool) -> Option<Session> {
        let (reply, answer) = oneshot::channel();
        self.request(Request::Close {
            keep_session,
            reply: Some(reply),
        })
        .ok()?;
        answer.await.ok().flatten()
    }

    /// [`close`](Self::close), blocking the thread until the shard has closed: for threads
    /// outside any async runtime, such as a Ctrl-C handler's (never call it from async
    /// code, nor from the thread that runs the shard: that would wait for itself).
    pub fn close_blocking(&self, keep_session: bool) -> Option<Session> {
        block_on(self.close(keep_session))
    }

    /// Whether the shard has stopped (its loop is gone).
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    fn request(&self, request: Request) -> Result<(), SendError> {
        self.tx.unbounded_send(request).map_err(|failed| {
            failed.into_inner().refuse();
            SendError::Stopped
        })
    }
}

/// Raw JSON as a typed command.
pub(crate) fn parse(json: &str) -> Result<Command, SendError> {
    Command::from_json(json.trim()).map_err(|e| SendError::InvalidCommand(e.to_string()))
}

/// Blocks the current thread on `future` (a channel's answer), parking between wake-ups.
/// Works under no runtime at all, and never panics inside one (it only blocks the thread).
pub(crate) fn block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};

    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }

    let mut future = std::pin::pin!(future);
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}
