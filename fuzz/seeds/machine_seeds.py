#!/usr/bin/env python3
"""Writes the hand-made seeds of the `machine` target (fuzz/corpus/machine/seed-*).

The machine body decodes its input with the `arbitrary` crate (1.x): integers are
little-endian, a bool is a byte's low bit, an Option is a bool then the value, and an enum
variant i of n is picked by a u32 x with (x * n) >> 32 == i. This script encodes realistic
runs in that format (it mirrors the enums of tests/support/fuzz_bodies.rs, in order: keep it
in sync when they change). Run from the repository root: python3 fuzz/seeds/machine_seeds.py
"""
import struct

def tag(i, n):
    return struct.pack('<I', -(-(i << 32) // n))

u8 = lambda v: struct.pack('<B', v)
u16 = lambda v: struct.pack('<H', v)
u32 = lambda v: struct.pack('<I', v)
u64 = lambda v: struct.pack('<Q', v)
boolean = lambda b: u8(1 if b else 0)
def option(v, enc):
    return boolean(False) if v is None else boolean(True) + enc(v)

# Delta: Zero, Millis(u16), Secs(u8), Hours(u8), Back(u16)
def zero(): return tag(0, 5)
def ms(v): return tag(1, 5) + u16(v)
def secs(v): return tag(2, 5) + u8(v)
def hours(v): return tag(3, 5) + u8(v)
def back(v): return tag(4, 5) + u16(v)
# Seq: Next, Old(u8), Any(u64)
NEXT = tag(0, 3)
# ArbFrame
F = 11
def hello(interval=41250): return tag(0, F) + u32(interval)
def ready(session=1, url=True): return tag(1, F) + NEXT + u8(session) + boolean(url)
def resumed(): return tag(2, F) + NEXT
def dispatch(name=0): return tag(3, F) + u8(name) + NEXT
def rate_limited(): return tag(4, F) + NEXT + u16(3)
def ack(): return tag(5, F)
def beat_request(): return tag(6, F)
def reconnect(): return tag(7, F)
def invalid_session(resumable): return tag(8, F) + boolean(resumable)
# Step
S = 10
def connected(d=None): return tag(0, S) + (d or ms(50))
def text(frame, d=None): return tag(1, S) + (d or ms(20)) + frame
def closed_lost(d=None): return tag(4, S) + (d or ms(10)) + tag(0, 3)
def closed_code(code, d=None): return tag(4, S) + (d or ms(10)) + tag(2, 3) + u16(code)
def timeout_at_deadline(late=0): return tag(5, S) + u16(late)
def timeout(d): return tag(6, S) + d
def voice(guild=81384788765712384, channel=None, d=None):
    # ArbCommand::Voice { guild: u64, channel: Option<u64>, mute: bool, deaf: bool }
    return tag(7, S) + (d or zero()) + tag(1, 5) + u64(guild) + option(channel, u64) + boolean(False) + boolean(True)
def grant(d=None): return tag(8, S) + (d or ms(5))
def shutdown(keep, d=None): return tag(9, S) + (d or ms(5)) + boolean(keep)

def start(auto_grant=False, session=None, trace=True, max_attempts=None, short=False, queue=64):
    return (u64(7) + u16(100) + boolean(auto_grant) + boolean(False) + u8(1) + u8(3)
            + option(max_attempts, u8) + u8(queue) + boolean(short)
            + option(session, lambda s: u64(s) + boolean(True)) + boolean(trace))

seeds = {
    # Identify with a grant, dispatches, beats and ACKs, a command, op 7, resume, shutdown.
    'seed-identify-resume-shutdown': start() + connected() + text(hello()) + grant()
        + text(ready()) + text(dispatch(1)) + text(dispatch(0)) + timeout_at_deadline()
        + text(ack()) + voice(channel=127121515262115840) + timeout_at_deadline(3)
        + text(ack()) + text(reconnect()) + connected()
        + text(hello()) + text(dispatch(2)) + text(resumed()) + text(dispatch(3))
        + shutdown(True),
    # A saved session resumed, op 9 false, re-identify (auto-grant), then a fatal close.
    'seed-saved-session-invalid-fatal': start(auto_grant=True, session=1000) + connected()
        + text(hello()) + text(dispatch(0)) + text(invalid_session(False))
        + timeout_at_deadline() + connected() + text(hello()) + text(ready(2, False))
        + text(rate_limited()) + closed_code(4004) + connected() + text(ack()) + voice(),
    # A zombie: beats without ACKs, then a lost transport and backoff until attempts run out.
    'seed-zombie-backoff': start(auto_grant=True, max_attempts=3, short=True) + connected()
        + text(hello(1000)) + text(ready()) + timeout_at_deadline() + timeout_at_deadline()
        + timeout_at_deadline() + connected() + closed_lost() + timeout_at_deadline()
        + timeout_at_deadline() + timeout_at_deadline() + timeout_at_deadline()
        + timeout_at_deadline(),
    # A command flood and an op-1 storm against the 120-per-60-s limit.
    'seed-flood': start(auto_grant=True, trace=False, queue=255) + connected()
        + text(hello(1000)) + text(ready()) + voice() * 130
        + (text(beat_request(), ms(300)) + timeout_at_deadline()) * 40
        + timeout(secs(61)) + voice() * 20,
    # A suspend: a jump of days past every deadline, a late Hello, a stale session.
    'seed-suspend': start(auto_grant=True) + connected() + text(hello()) + text(ready())
        + timeout(hours(200)) + text(ack(), back(5000)) + timeout_at_deadline()
        + connected(hours(1)) + text(hello()) + closed_code(4009) + timeout_at_deadline()
        + timeout(zero()),
}
for name, data in seeds.items():
    with open(f'fuzz/corpus/machine/{name}', 'wb') as f:
        f.write(data)
    print(name, len(data))
