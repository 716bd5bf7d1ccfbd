//! Issue #14 item 13, for real: signals delivered to the blocking shard's thread while it
//! waits for the socket must not be taken for a lost connection. A no-op SIGINT handler
//! installed without `SA_RESTART` (as a Ctrl-C handler would be) makes every blocking call
//! it lands in fail with `EINTR`; the old example driver dropped the live socket on that
//! (the server logged 1006) and opened a stray resume connection.
//!
//! Its own test binary: the handler is process-wide while the test runs.
#![cfg(unix)]

#[path = "support/shard.rs"]
mod shard_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use discord_gateway::blocking::Shard;
use discord_gateway::proto::sim::Trigger;
use discord_gateway::testing::FakeGatewayServer;
use discord_gateway::{ShardEvent, ShardOptions};
use shard_support::*;

static SIGNALS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn count_signal(_: libc::c_int) {
    // Async-signal-safe: one atomic add.
    SIGNALS.fetch_add(1, Ordering::Relaxed);
}

/// Installs the counting handler for SIGINT without `SA_RESTART`; returns the old one.
fn install_handler() -> libc::sigaction {
    // SAFETY: plain libc calls on zeroed, then filled, sigaction structs; the handler only
    // touches an atomic.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = count_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = 0; // no SA_RESTART: interrupted calls fail with EINTR
        libc::sigemptyset(&mut action.sa_mask);
        let mut old: libc::sigaction = std::mem::zeroed();
        assert_eq!(libc::sigaction(libc::SIGINT, &action, &mut old), 0);
        old
    }
}

fn restore_handler(old: &libc::sigaction) {
    // SAFETY: puts back the action `install_handler` read.
    unsafe {
        libc::sigaction(libc::SIGINT, old, std::ptr::null_mut());
    }
}

#[test]
fn signals_on_the_shard_thread_do_not_drop_the_connection() {
    let mut gateway = fast_gateway();
    // A steady stream of dispatches for the signals to land among (reads and waits).
    gateway.dispatch_stream(
        Trigger::ReadySent(1),
        Duration::from_millis(300),
        Duration::from_millis(4),
        (0..300).map(|i| ("MESSAGE_CREATE", format!(r#"{{"n":{i}}}"#))),
    );
    let server = FakeGatewayServer::start(gateway);
    let old = install_handler();

    let (ready_tx, ready_rx) = mpsc::channel();
    let config = config(&server);
    let shard_thread = std::thread::spawn(move || {
        // SAFETY: the id of the calling thread.
        let me = unsafe { libc::pthread_self() };
        let mut shard = Shard::from_config(config, ShardOptions::new().seed(5)).expect("config");
        let until = Instant::now() + LIMIT;
        let mut events = Vec::new();
        let mut messages = 0;
        while messages < 300 {
            let left = until.saturating_duration_since(Instant::now());
            let event = shard.next_event_timeout(left).expect("in time, not ended");
            if is_ready(&event) {
                ready_tx.send(me).expect("main thread");
            }
            messages += usize::from(is_dispatch("MESSAGE_CREATE")(&event));
            events.push(event);
        }
        // Two more heartbeats' worth of waiting, under signals too.
        let quiet_until = Instant::now() + Duration::from_millis(2200);
        while let Some(left) = quiet_until.checked_duration_since(Instant::now()) {
            match shard.next_event_timeout(left) {
                Ok(event) => events.push(event),
                Err(mpsc::RecvTimeoutError::Timeout) => break,
                Err(e) => panic!("{e:?}"),
            }
        }
        (shard, events)
    });

    let target = ready_rx.recv_timeout(LIMIT).expect("READY");
    let mut sent = 0;
    while !shard_thread.is_finished() {
        // SAFETY: `target` is the shard thread, alive until `is_finished`; a signal to a
        // thread that just ended is a harmless ESRCH.
        unsafe {
            libc::pthread_kill(target, libc::SIGINT);
        }
        sent += 1;
        std::thread::sleep(Duration::from_millis(2));
    }
    let (shard, events) = shard_thread.join().expect("shard thread");
    restore_handler(&old);
    let delivered = SIGNALS.load(Ordering::Relaxed);
    println!("{sent} SIGINTs sent, {delivered} handled on the shard's thread");
    assert!(delivered > 100, "only {delivered} signals handled");

    // Nothing was lost: no transport error, no disconnection, every dispatch in order.
    assert!(
        !events.iter().any(|e| matches!(
            e,
            ShardEvent::TransportError(_) | ShardEvent::Disconnected { .. }
        )),
        "{events:#?}"
    );
    let sequences: Vec<u64> = events
        .iter()
        .filter_map(ShardEvent::as_dispatch)
        .filter(|d| d.name == "MESSAGE_CREATE")
        .map(|d| d.sequence)
        .collect();
    assert_eq!(sequences, (2..302).collect::<Vec<u64>>());
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ShardEvent::HeartbeatAck { .. })),
        "heartbeats went on"
    );
    // The server saw one connection, still open: no close, no reconnect.
    let gateway = server.stop();
    assert_eq!(gateway.connections().len(), 1);
    assert_eq!(gateway.connections()[0].closed, None);
    assert_no_violations(&gateway);
    drop(shard);
}
