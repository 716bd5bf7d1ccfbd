#!/usr/bin/env python3
"""Writes the hand-made seeds of the `inflate` target (fuzz/corpus/inflate/seed-*).

Input format (see `inflate` in tests/support/fuzz_bodies.rs): a mode byte (bits 0-1 the
compression: 0 zlib-stream, 1 payload, 2 zstd-stream; bits 2-3 the message limit 0/16/1000/
70000; bits 4-5 the buffer limit 0/64/4096/1 MiB; bits 6-7 the mode: 0-1 raw bytes, 2 round
trip, 3 machine), then messages, each prefixed by a one-byte length.
Run from the repository root: python3 fuzz/seeds/inflate_seeds.py
"""
import subprocess, zlib

HELLO = b'{"t":null,"s":null,"op":10,"d":{"heartbeat_interval":41250,"_trace":["gw"]}}'
ACK = b'{"t":null,"s":null,"op":11,"d":null}'
DISPATCH = b'{"t":"MESSAGE_CREATE","s":1,"op":0,"d":{"id":"7","content":"hi"}}'

def mode(compression, message_limit=3, buffer_limit=3, kind=0):
    return bytes([compression | message_limit << 2 | buffer_limit << 4 | kind << 6])

def framed(messages):
    out = b''
    for m in messages:
        assert len(m) < 256
        out += bytes([len(m)]) + m
    return out

def zlib_stream(messages):
    c = zlib.compressobj()
    return [c.compress(m) + c.flush(zlib.Z_SYNC_FLUSH) for m in messages]

def zstd_frame(data):
    return subprocess.run(['zstd', '-q', '-c', '--no-check'], input=data, capture_output=True,
                          check=True).stdout

stream = zlib_stream([HELLO, ACK, DISPATCH])
# The first message split in two pieces (buffered until the 00 00 ff ff suffix).
split = [stream[0][:10], stream[0][10:]] + stream[1:]
seeds = {
    'seed-zlib-stream': mode(0) + framed(stream),
    'seed-zlib-stream-split': mode(0, buffer_limit=2) + framed(split),
    'seed-zlib-stream-small-limit': mode(0, message_limit=1) + framed(stream),
    'seed-payload': mode(1) + framed([zlib.compress(m) for m in (HELLO, ACK)]),
    'seed-zstd': mode(2) + framed([zstd_frame(HELLO)]),
    'seed-machine-zlib': mode(0, kind=3) + framed(stream),
    'seed-machine-zstd': mode(2, kind=3) + framed([zstd_frame(HELLO)]),
    'seed-roundtrip-zlib': mode(0, kind=2) + framed([HELLO, ACK, b'', DISPATCH]),
    'seed-roundtrip-payload': mode(1, kind=2) + framed([HELLO, ACK]),
    'seed-roundtrip-zstd': mode(2, kind=2) + framed([HELLO, b'', ACK, DISPATCH]),
}
for name, data in seeds.items():
    with open(f'fuzz/corpus/inflate/{name}', 'wb') as f:
        f.write(data)
    print(name, len(data))
