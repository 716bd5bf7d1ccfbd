//! How the blocking shard's thread waits: on the OS's readiness queue (mio's `Poll`:
//! epoll, kqueue, IOCP) for the socket, with a timeout at the machine's next deadline, and
//! with a cross-thread [`Waker`] that ends the wait at once when a `ShardSender` (or the
//! shared identify queue, or the DNS helper thread) has news.

use std::io::ErrorKind;
use std::sync::Arc;
use std::task::{Wake, Waker};
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Registry, Token};

/// The token of the cross-thread waker.
const WAKER: Token = Token(0);
/// The token of every socket (the loop tries everything on any wake-up, so sockets need
/// not be told apart).
pub(crate) const SOCKET: Token = Token(1);
/// What a socket is watched for. mio's readiness is edge-triggered: the loop reads until
/// `WouldBlock` before it waits again, and an unfinished flush waits for the next
/// "writable" edge.
pub(crate) const INTERESTS: Interest = Interest::READABLE.add(Interest::WRITABLE);

/// The wait of one shard's loop.
pub(crate) struct Waiter {
    poll: Poll,
    events: Events,
    wake: Arc<WakeLoop>,
    waker: Waker,
}

impl std::fmt::Debug for Waiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiter").finish_non_exhaustive()
    }
}

/// Ends the loop's wait from any thread.
#[derive(Debug)]
pub(crate) struct WakeLoop(mio::Waker);

impl WakeLoop {
    /// Ends the wait (or the next one, if the loop is not waiting).
    pub(crate) fn wake_now(&self) {
        // Only fails if the OS refuses the write to its eventfd/pipe: the loop then wakes
        // at its next deadline, as if the news came later.
        let _ = self.0.wake();
    }
}

impl Wake for WakeLoop {
    fn wake(self: Arc<Self>) {
        self.wake_now();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wake_now();
    }
}

impl Waiter {
    /// A new readiness queue with its waker.
    pub(crate) fn new() -> std::io::Result<Self> {
        let poll = Poll::new()?;
        let wake = Arc::new(WakeLoop(mio::Waker::new(poll.registry(), WAKER)?));
        let waker = Waker::from(Arc::clone(&wake));
        Ok(Waiter {
            poll,
            events: Events::with_capacity(4),
            wake,
            waker,
        })
    }

    /// Where sockets are registered.
    pub(crate) fn registry(&self) -> &Registry {
        self.poll.registry()
    }

    /// The waker for `poll_*` calls made by the loop (command channel, identify queue).
    pub(crate) fn waker(&self) -> &Waker {
        &self.waker
    }

    /// The waker for a helper thread.
    pub(crate) fn wake_handle(&self) -> Arc<WakeLoop> {
        Arc::clone(&self.wake)
    }

    /// Blocks until a socket is ready, the waker is woken, `deadline` passes, or a signal
    /// arrives (`EINTR`: issue #14 item 13, a Ctrl-C is not news about the connection, the
    /// loop just looks again). `None` waits without a deadline.
    pub(crate) fn wait(&mut self, deadline: Option<Instant>) {
        #[allow(clippy::disallowed_methods)] // the adapter owns the clock
        let timeout = deadline.map(|at| at.saturating_duration_since(Instant::now()));
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // The queue itself failed (out of memory...): wait a little instead, so the
            // loop neither spins nor stops; the deadlines still hold.
            Err(_) => std::thread::sleep(timeout.unwrap_or(FALLBACK).min(FALLBACK)),
        }
    }
}

/// The longest the loop sleeps when the readiness queue itself fails.
const FALLBACK: Duration = Duration::from_millis(20);
