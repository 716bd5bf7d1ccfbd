//! The loopback fake gateway of the shard benches, run as a child process (role `server`)
//! so that its heap and CPU time never count against a client.
//!
//! Every connection gets the same handshake, whichever client it is: Hello (the interval
//! from `SHARD_BENCH_HELLO_MS`), then READY once Identify arrives (its
//! `resume_gateway_url` pointing back here). Then, in one of two modes:
//! - **stream** (`SHARD_BENCH_STREAM_REPEATS` > 0): the generated mixed stream
//!   (`frames::FrameGen::mixed_stream`, 4,998 frames after HELLO and READY), that many times
//!   with the sequence numbers going on, written as WebSocket frames encoded once at start
//!   (zlib-stream compressed once too: every connection's context goes through the same
//!   messages, so the bytes are the same). The client, not the server, is the bottleneck.
//!   Heartbeats are read and not answered (the Hello interval is long enough for none to
//!   be due).
//! - **idle**: READY is followed by one GUILD_CREATE of `SHARD_BENCH_GUILD_MEMBERS`
//!   members if that is set (a bot's first guild; ~215 KB for 220 members), then every
//!   heartbeat is answered at once with an ACK, and its arrival time recorded for the
//!   punctuality report.
//!
//! The path says which client and transport a connection is (`/c/ours-zlib`), never the
//! `compress` query: twilight-gateway built with `zlib` asks for zlib-stream on every
//! connection, and is served plain text on a `-plain` path.
//!
//! Lines out: `LISTEN ws://127.0.0.1:PORT`, `STREAM frames=F last_seq=S`, and
//! `REPORT {json}` after each `report` line in; it exits when its standard input closes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flate2::{Compress, Compression, FlushCompress};
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::child::say;
use super::cpu::raise_fd_limit;
use super::frames::{FrameGen, KeyOrder, SEED};
use super::stats::{max, percentile};
use super::ticker::Ticker;
use super::{env_or, Transport};

/// The resume URL READY carries before the server knows its port (replaced at start).
const GENERATED_RESUME_URL: &str = "wss://gateway-us-east1-b.discord.gg";

/// How long the connection storm at the start lasts, for the server's own timer control:
/// every client connects and identifies at once, and each of the (up to 2,000) connections
/// gets its zlib context then (about 256 KB each).
const STORM_SECS: usize = 20;

/// WebSocket opcodes of the frames the server writes itself.
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;

/// Runs the fake gateway until standard input closes.
pub fn run() {
    raise_fd_limit(16_384);
    let hello_ms: u64 = env_or("SHARD_BENCH_HELLO_MS", 41_250);
    let repeats: u32 = env_or("SHARD_BENCH_STREAM_REPEATS", 0);
    let guild_members: usize = env_or("SHARD_BENCH_GUILD_MEMBERS", 0);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the server's runtime");
    runtime.block_on(serve(hello_ms, repeats, guild_members));
}

/// What every connection is sent, encoded once.
struct Script {
    hello: String,
    ready: String,
    /// Idle mode: a GUILD_CREATE sent right after READY, as Discord does for each guild.
    guild_create: Option<String>,
    ack: String,
    interval: Duration,
    stream: Option<Stream>,
}

/// The stream mode's bytes: WebSocket frames ready to be written.
struct Stream {
    /// Frames after READY.
    frames: u64,
    /// The last dispatch's sequence number.
    last_seq: u64,
    /// Hello as a text frame.
    plain_hello: Vec<u8>,
    /// READY and the stream as text frames.
    plain_rest: Vec<u8>,
    /// Hello compressed (the context's first message), as a binary frame.
    zlib_hello: Vec<u8>,
    /// READY and the stream, compressed by the same context, as binary frames.
    zlib_rest: Vec<u8>,
}

impl Script {
    fn new(hello_ms: u64, repeats: u32, guild_members: usize, base: &str) -> Script {
        let hello = FrameGen::new(SEED).hello(hello_ms).text(KeyOrder::Discord);
        let mut generator = FrameGen::new(SEED ^ 1);
        let frames = generator.mixed_stream(5000);
        let ready = frames[1]
            .text(KeyOrder::Discord)
            .replace(GENERATED_RESUME_URL, &format!("{base}/c/resume"));
        let ack = generator.heartbeat_ack().text(KeyOrder::Discord);
        let guild_create = (guild_members > 0).then(|| {
            let mut frame = FrameGen::new(SEED ^ 2).guild_create(guild_members);
            frame.s = Some(2);
            frame.text(KeyOrder::Discord)
        });
        let stream = (repeats > 0).then(|| {
            let body = &frames[2..];
            let dispatches = body.iter().filter(|f| f.s.is_some()).count() as u64;
            let mut texts = Vec::with_capacity(body.len() * repeats as usize);
            let mut last_seq = 0;
            for round in 0..u64::from(repeats) {
                for frame in body {
                    let mut frame = frame.clone();
                    if let Some(s) = frame.s.as_mut() {
                        *s += round * dispatches;
                        last_seq = *s;
                    }
                    texts.push(frame.text(KeyOrder::Discord));
                }
            }
            let mut plain_hello = Vec::new();
            push_frame(&mut plain_hello, TEXT, hello.as_bytes());
            let mut plain_rest = Vec::new();
            push_frame(&mut plain_rest, TEXT, ready.as_bytes());
            let mut zlib = Compress::new(Compression::default(), true);
            let mut zlib_hello = Vec::new();
            push_frame(
                &mut zlib_hello,
                BINARY,
                &compress(&mut zlib, hello.as_bytes()),
            );
            let mut zlib_rest = Vec::new();
            push_frame(
                &mut zlib_rest,
                BINARY,
                &compress(&mut zlib, ready.as_bytes()),
            );
            for text in &texts {
                push_frame(&mut plain_rest, TEXT, text.as_bytes());
                push_frame(
                    &mut zlib_rest,
                    BINARY,
                    &compress(&mut zlib, text.as_bytes()),
                );
            }
            Stream {
                frames: texts.len() as u64,
                last_seq,
                plain_hello,
                plain_rest,
                zlib_hello,
                zlib_rest,
            }
        });
        Script {
            hello,
            ready,
            guild_create,
            ack,
            interval: Duration::from_millis(hello_ms),
            stream,
        }
    }
}

/// One server-to-client WebSocket frame (unmasked, final), appended to `out`.
fn push_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    out.push(0x80 | opcode);
    let len = payload.len();
    if len < 126 {
        out.push(len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        out.push(126);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(payload);
}

/// One message through a zlib-stream context: all of it in, then a sync flush (the output
/// ends with `00 00 ff ff`), as Discord sends each message.
fn compress(context: &mut Compress, message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() / 2 + 64);
    let start = context.total_in();
    while ((context.total_in() - start) as usize) < message.len() {
        out.reserve(message.len() / 2 + 1024);
        let consumed = (context.total_in() - start) as usize;
        context
            .compress_vec(&message[consumed..], &mut out, FlushCompress::None)
            .expect("zlib compression");
    }
    loop {
        out.reserve(1024);
        context
            .compress_vec(&[], &mut out, FlushCompress::Sync)
            .expect("zlib flush");
        if out.len() < out.capacity() {
            return out;
        }
    }
}

/// What the server saw on one connection.
struct Record {
    label: String,
    hello_at: Instant,
    identified: bool,
    beats: Vec<Instant>,
    resumes: u32,
    open: bool,
}

type Records = Arc<Mutex<Vec<Record>>>;

async fn serve(hello_ms: u64, repeats: u32, guild_members: usize) {
    let socket = TcpSocket::new_v4().expect("a socket");
    socket
        .bind(([127, 0, 0, 1], 0).into())
        .expect("bind on loopback");
    // Room for a thousand clients or two connecting at once.
    let listener = socket.listen(4096).expect("listen");
    let base = format!("ws://{}", listener.local_addr().expect("address"));
    let script = Arc::new(Script::new(hello_ms, repeats, guild_members, &base));
    say("LISTEN", &base);
    if let Some(stream) = &script.stream {
        say(
            "STREAM",
            &format!("frames={} last_seq={}", stream.frames, stream.last_seq),
        );
    }
    let records: Records = Arc::default();
    let ticker = Ticker::start();
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((tcp, _)) = accepted {
                    tokio::spawn(connection(tcp, Arc::clone(&script), Arc::clone(&records)));
                }
            }
            line = lines.recv() => match line.as_deref().map(str::trim) {
                Some("report") => {
                    let mut report = report(&records, script.interval);
                    report["server_ticker"] = ticker.summary();
                    report["server_ticker_steady"] = ticker.summary_after(STORM_SECS);
                    say("REPORT", &report.to_string());
                }
                Some(_) => {}
                None => break,
            },
        }
    }
}

/// One connection: the handshake, then the stream or the idle loop.
async fn connection(tcp: TcpStream, script: Arc<Script>, records: Records) {
    let _ = tcp.set_nodelay(true);
    let mut path = String::new();
    // The error type is tungstenite's (an HTTP response), not ours to shrink.
    #[allow(clippy::result_large_err)]
    let callback = |request: &Request, response: Response| {
        path = request.uri().path().to_string();
        Ok(response)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
        return;
    };
    let label = path
        .trim_start_matches("/c/")
        .trim_end_matches('/')
        .to_string();
    let transport = if label.ends_with("-zlib") {
        Transport::Zlib
    } else {
        Transport::Plain
    };
    let index = {
        let mut records = records.lock().expect("records");
        records.push(Record {
            label,
            hello_at: Instant::now(),
            identified: false,
            beats: Vec::new(),
            resumes: 0,
            open: true,
        });
        records.len() - 1
    };
    match &script.stream {
        Some(stream) => stream_mode(&mut ws, stream, transport, &records, index).await,
        None => idle_mode(&mut ws, &script, transport, &records, index).await,
    }
    records.lock().expect("records")[index].open = false;
}

/// Writes bytes that are already WebSocket frames.
async fn write_raw(ws: &mut WebSocketStream<TcpStream>, bytes: &[u8]) -> bool {
    ws.get_mut().write_all(bytes).await.is_ok()
}

/// The opcode of a client's gateway message.
fn opcode(text: &str) -> Option<u64> {
    serde_json::from_str::<Value>(text)
        .ok()?
        .get("op")?
        .as_u64()
}

/// How a connection's session starts.
#[derive(PartialEq)]
enum Start {
    Identify,
    Resume,
}

/// Reads the client's messages until Identify (op 2) or Resume (op 6); `None` if the
/// connection ended first.
async fn await_start(
    ws: &mut WebSocketStream<TcpStream>,
    records: &Records,
    index: usize,
) -> Option<Start> {
    while let Some(Ok(message)) = ws.next().await {
        if let Message::Text(text) = message {
            match opcode(&text) {
                Some(2) => {
                    records.lock().expect("records")[index].identified = true;
                    return Some(Start::Identify);
                }
                Some(6) => {
                    records.lock().expect("records")[index].resumes += 1;
                    return Some(Start::Resume);
                }
                _ => {}
            }
        }
    }
    None
}

async fn stream_mode(
    ws: &mut WebSocketStream<TcpStream>,
    stream: &Stream,
    transport: Transport,
    records: &Records,
    index: usize,
) {
    let (hello, rest) = match transport {
        Transport::Plain => (&stream.plain_hello, &stream.plain_rest),
        Transport::Zlib => (&stream.zlib_hello, &stream.zlib_rest),
    };
    if !write_raw(ws, hello).await {
        return;
    }
    records.lock().expect("records")[index].hello_at = Instant::now();
    if await_start(ws, records, index).await != Some(Start::Identify) || !write_raw(ws, rest).await
    {
        return;
    }
    // Read (and drop) whatever the client sends until it goes away.
    while let Some(Ok(_)) = ws.next().await {}
}

async fn idle_mode(
    ws: &mut WebSocketStream<TcpStream>,
    script: &Script,
    transport: Transport,
    records: &Records,
    index: usize,
) {
    let mut zlib =
        (transport == Transport::Zlib).then(|| Compress::new(Compression::default(), true));
    let mut send = |ws_text: &str| {
        let mut frame = Vec::new();
        match zlib.as_mut() {
            Some(context) => push_frame(&mut frame, BINARY, &compress(context, ws_text.as_bytes())),
            None => push_frame(&mut frame, TEXT, ws_text.as_bytes()),
        }
        frame
    };
    let hello = send(&script.hello);
    if !write_raw(ws, &hello).await {
        return;
    }
    records.lock().expect("records")[index].hello_at = Instant::now();
    match await_start(ws, records, index).await {
        None => return,
        Some(Start::Identify) => {
            // READY's resume URL keeps this connection's path (client and transport).
            let ready = script.ready.replace(
                "/c/resume",
                &format!("/c/{}", records.lock().expect("records")[index].label),
            );
            let ready = send(&ready);
            if !write_raw(ws, &ready).await {
                return;
            }
            if let Some(guild_create) = &script.guild_create {
                let guild_create = send(guild_create);
                if !write_raw(ws, &guild_create).await {
                    return;
                }
            }
        }
        // A shard that lost its connection (a stalled server) resumes: nothing was missed.
        Some(Start::Resume) => {
            let resumed = send(r#"{"t":"RESUMED","s":3,"op":0,"d":{}}"#);
            if !write_raw(ws, &resumed).await {
                return;
            }
        }
    }
    while let Some(Ok(message)) = ws.next().await {
        let Message::Text(text) = message else {
            continue;
        };
        match opcode(&text) {
            Some(1) => {
                records.lock().expect("records")[index]
                    .beats
                    .push(Instant::now());
                let ack = send(&script.ack);
                if !write_raw(ws, &ack).await {
                    return;
                }
            }
            Some(6) => records.lock().expect("records")[index].resumes += 1,
            _ => {}
        }
    }
}

/// Punctuality and counts per client label.
///
/// Both clients schedule beats on a grid (the first at Hello + interval x jitter, then one
/// interval after the previous *deadline*: the machine's `deadline + interval`,
/// twilight's `tokio::time::interval`). So on one connection the k-th beat (from 0) is due
/// at `g + k * interval` for an unknown `g`; `t_k - k * interval` is `g` plus that beat's
/// lateness, and its smallest value over the connection's beats is taken as `g` (the most
/// punctual beat counts as on time). A beat's lateness is then `t_k - k * interval - g`,
/// arrival at the server included. That is exact for a schedule that stays on its grid
/// (ours: a late beat does not move the next deadline); for one that restarts from a late
/// beat (twilight's interval, `MissedTickBehavior::Delay`) every later beat would count the
/// shift again, so each beat is also measured against the previous one (`gap_late`:
/// `t_k - t_(k-1) - interval`, exact there). The first beat is also checked against the one
/// bound known without the jitter: it is due at most one interval after Hello was sent.
fn report(records: &Records, interval: Duration) -> Value {
    let records = records.lock().expect("records");
    let mut labels: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
    for record in records.iter() {
        labels
            .entry(record.label.as_str())
            .or_default()
            .push(record);
    }
    let interval = interval.as_secs_f64();
    let mut out = serde_json::Map::new();
    for (label, connections) in labels {
        let mut lateness = Vec::new();
        let mut steady = Vec::new();
        let mut gap_lateness = Vec::new();
        let mut first_overdue = Vec::new();
        let mut beats = 0;
        for record in &connections {
            beats += record.beats.len();
            let phases: Vec<f64> = record
                .beats
                .iter()
                .enumerate()
                .map(|(k, t)| t.duration_since(record.hello_at).as_secs_f64() - k as f64 * interval)
                .collect();
            if let Some(&first) = phases.first() {
                first_overdue.push(first - interval);
            }
            if phases.len() >= 2 {
                let origin = phases.iter().copied().fold(f64::INFINITY, f64::min);
                lateness.extend(phases.iter().map(|p| p - origin));
                // From the third beat on: the connection storm (every client connecting
                // and identifying at once) is over.
                steady.extend(phases.iter().skip(2).map(|p| p - origin));
                // Against the previous beat: exact for a schedule that restarts from a late
                // beat (tokio's `MissedTickBehavior::Delay`, twilight's), where the grid
                // above would count one late beat again in every later one.
                gap_lateness.extend(phases.windows(2).map(|w| w[1] - w[0]));
            }
        }
        out.insert(
            label.to_string(),
            json!({
                "connections": connections.len(),
                "identified": connections.iter().filter(|r| r.identified).count(),
                "open": connections.iter().filter(|r| r.open).count(),
                "resumes": connections.iter().map(|r| r.resumes).sum::<u32>(),
                "beats": beats,
                "late_max_ms": max(&lateness) * 1e3,
                "late_p99_ms": percentile(&lateness, 0.99) * 1e3,
                "late_p50_ms": percentile(&lateness, 0.5) * 1e3,
                "steady_late_max_ms": max(&steady) * 1e3,
                "gap_late_max_ms": max(&gap_lateness) * 1e3,
                "gap_late_p99_ms": percentile(&gap_lateness, 0.99) * 1e3,
                "first_overdue_max_ms": max(&first_overdue) * 1e3,
            }),
        );
    }
    Value::Object(out)
}
