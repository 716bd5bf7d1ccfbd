//! Idle shards at scale, ours beside twilight-gateway 0.18 in the same run (issues 15 and
//! 16): `SHARD_BENCH_SHARDS` (default 1,000) shards of each library, each polled in its own
//! tokio task, connect to a loopback fake gateway (a child process), identify, and idle with
//! heartbeats (a short Hello interval, 5 s by default, so that minutes show many beats).
//! Each library runs in a process of its own (children of this one, at the same time), so
//! that its heap, resident memory and CPU time are its own.
//!
//! Per shard: heap bytes (counting allocator: live bytes once every shard is READY and has
//! beaten at least once, minus live bytes before the first shard was made, divided by the
//! shard count; WebSocket buffers, the task, the socket's registration with tokio
//! included), resident memory the same way, process CPU time per shard per minute over the
//! idle window, allocations while idle, and heartbeat punctuality as the server saw it (see
//! `support/server.rs`, `report`). Uncompressed and zlib-stream, one after the other.
//!
//! ```sh
//! cargo bench -p discord-gateway-shard-bench --bench idle_shards
//! SHARD_BENCH_SHARDS=100 SHARD_BENCH_IDLE_SECS=20 cargo bench -p discord-gateway-shard-bench --bench idle_shards
//! ```

mod support;

use serde_json::Value;

use support::child::Child;
use support::stats::{bytes, ratio};
use support::{env_or, Client, Transport};

fn main() {
    match std::env::var(support::ROLE).as_deref() {
        Ok("server") => return support::server::run(),
        Ok("client") => return support::clients::run_idle_client(),
        Ok(role) => panic!("unknown role {role}"),
        Err(_) => {}
    }
    let shards: u32 = env_or("SHARD_BENCH_SHARDS", 1000);
    let hello_ms: u64 = env_or("SHARD_BENCH_HELLO_MS", 5000);
    let idle_secs: f64 = env_or("SHARD_BENCH_IDLE_SECS", 180.0);
    // Every shard's first beat comes within one interval of Hello.
    let settle_secs: f64 = env_or("SHARD_BENCH_SETTLE_SECS", hello_ms as f64 / 1000.0 + 2.0);
    let workers: usize = env_or("SHARD_BENCH_WORKERS", 2);
    let guild_members: usize = env_or("SHARD_BENCH_GUILD_MEMBERS", 0);
    // `ours` or `twilight` alone (to profile one); default both.
    let clients: Vec<Client> = env_or("SHARD_BENCH_CLIENTS", "ours,twilight".to_string())
        .split(',')
        .filter_map(|name| Client::parse(name.trim()))
        .collect();
    let transports: Vec<Transport> = env_or("SHARD_BENCH_TRANSPORTS", "plain,zlib".to_string())
        .split(',')
        .filter_map(|name| Transport::parse(name.trim()))
        .collect();

    for transport in transports {
        eprintln!(
            "{shards} shards each, {}, Hello interval {hello_ms} ms, settle {settle_secs} s, idle {idle_secs} s; load before: {}",
            transport.name(),
            load_average()
        );
        let mut server = Child::spawn(
            "server",
            "fake gateway",
            &[
                ("SHARD_BENCH_HELLO_MS", hello_ms.to_string()),
                ("SHARD_BENCH_GUILD_MEMBERS", guild_members.to_string()),
            ],
        );
        let url = server.expect("LISTEN");
        let spawn_client = |client: Client| {
            Child::spawn(
                "client",
                client.name(),
                &[
                    ("SHARD_BENCH_CLIENT", client.name().to_string()),
                    ("SHARD_BENCH_SERVER", url.clone()),
                    ("SHARD_BENCH_TRANSPORT", transport.name().to_string()),
                    ("SHARD_BENCH_SHARDS", shards.to_string()),
                    ("SHARD_BENCH_SETTLE_SECS", settle_secs.to_string()),
                    ("SHARD_BENCH_IDLE_SECS", idle_secs.to_string()),
                    ("SHARD_BENCH_WORKERS", workers.to_string()),
                ],
            )
        };
        let mut children: Vec<(Client, Child)> = clients
            .iter()
            .map(|&client| (client, spawn_client(client)))
            .collect();
        let mut results = [Value::Null, Value::Null];
        for (client, child) in &mut children {
            results[*client as usize] =
                serde_json::from_str(&child.expect("RESULT")).expect("json");
        }
        server.send("report");
        let report: Value = serde_json::from_str(&server.expect("REPORT")).expect("json");
        for (_, child) in children {
            child.finish();
        }
        server.finish();
        let [ours, theirs] = results;
        print_table(
            transport, shards, hello_ms, idle_secs, &ours, &theirs, &report,
        );
    }
}

fn print_table(
    transport: Transport,
    shards: u32,
    hello_ms: u64,
    idle_secs: f64,
    ours: &Value,
    theirs: &Value,
    report: &Value,
) {
    let served = |client: Client| &report[format!("{}-{}", client.name(), transport.name())];
    let (ours_served, theirs_served) = (served(Client::Ours), served(Client::Twilight));
    let number = |value: &Value| value.as_f64().unwrap_or(f64::NAN);
    println!();
    println!(
        "Idle shards, {}: {shards} shards of each library, Hello interval {hello_ms} ms, idle window {idle_secs} s; load after: {}",
        transport.name(),
        load_average()
    );
    println!();
    println!("| per shard | ours | twilight | twilight / ours |");
    println!("|---|---:|---:|---:|");
    let row = |name: &str, o: f64, t: f64, format: &dyn Fn(f64) -> String| {
        println!(
            "| {name} | {} | {} | {} |",
            format(o),
            format(t),
            ratio(t / o)
        );
    };
    let plain = |v: f64| bytes(v);
    let one = |v: f64| format!("{v:.1}");
    row(
        "heap, bytes (all READY, every shard beaten once)",
        number(&ours["heap_per_shard"]),
        number(&theirs["heap_per_shard"]),
        &plain,
    );
    if transport == Transport::Plain {
        let unused = number(&theirs["twilight_unused_decompressor_bytes"]);
        row(
            &format!(
                "heap, bytes, twilight built without `zlib` (its unused decompressor, {} bytes, taken off)",
                bytes(unused)
            ),
            number(&ours["heap_per_shard"]),
            number(&theirs["heap_per_shard"]) - unused,
            &plain,
        );
    }
    row(
        "heap, bytes (end of the idle window)",
        number(&ours["heap_per_shard_end"]),
        number(&theirs["heap_per_shard_end"]),
        &plain,
    );
    row(
        "resident memory, bytes",
        number(&ours["resident_per_shard"]),
        number(&theirs["resident_per_shard"]),
        &plain,
    );
    row(
        "idle CPU, us per shard per minute",
        number(&ours["cpu_us_per_shard_minute"]),
        number(&theirs["cpu_us_per_shard_minute"]),
        &one,
    );
    let per_minute = |result: &Value, key: &str| {
        number(&result[key]) / f64::from(shards) / (number(&result["idle_secs"]) / 60.0)
    };
    row(
        "allocations per shard per minute, idle",
        per_minute(ours, "idle_allocations"),
        per_minute(theirs, "idle_allocations"),
        &one,
    );
    row(
        "task polls per shard per minute, idle",
        per_minute(ours, "idle_polls"),
        per_minute(theirs, "idle_polls"),
        &one,
    );
    row(
        "latest beat past its deadline, ms (max over all beats)",
        number(&ours_served["late_max_ms"]),
        number(&theirs_served["late_max_ms"]),
        &one,
    );
    row(
        "beat lateness p99 / p50, ms",
        number(&ours_served["late_p99_ms"]),
        number(&theirs_served["late_p99_ms"]),
        &one,
    );
    row(
        "",
        number(&ours_served["late_p50_ms"]),
        number(&theirs_served["late_p50_ms"]),
        &one,
    );
    row(
        "same, from each connection's third beat on (after the connection storm), ms",
        number(&ours_served["steady_late_max_ms"]),
        number(&theirs_served["steady_late_max_ms"]),
        &one,
    );
    row(
        "latest beat past the previous beat + interval, ms (max)",
        number(&ours_served["gap_late_max_ms"]),
        number(&theirs_served["gap_late_max_ms"]),
        &one,
    );
    row(
        "same, p99, ms",
        number(&ours_served["gap_late_p99_ms"]),
        number(&theirs_served["gap_late_p99_ms"]),
        &one,
    );
    row(
        "control: the process's own 10 ms timer, latest wake-up, ms (idle window)",
        number(&ours["ticker"]["late_max_ms"]),
        number(&theirs["ticker"]["late_max_ms"]),
        &one,
    );
    println!();
    println!(
        "Control: the fake gateway's own 10 ms timer woke at most {:.1} ms late (p99 {:.1} ms) over the whole run, {:.1} ms after its first 20 s: beats that look late by about that much are the server's (or the machine's) stalls, not a client's.",
        number(&report["server_ticker"]["late_max_ms"]),
        number(&report["server_ticker"]["late_p99_ms"]),
        number(&report["server_ticker_steady"]["late_max_ms"]),
    );
    println!();
    for (client, result, served) in [
        (Client::Ours, ours, ours_served),
        (Client::Twilight, theirs, theirs_served),
    ] {
        println!(
            "{}: {} of {shards} READY in {:.1} s; {} heartbeats served on {} connections ({} still open), {} resumes; {} disconnects, {} errors; first beat at most {:.0} ms past one interval after Hello (negative: in time); open-file limit {}",
            client.name(),
            result["ready"],
            number(&result["all_ready_secs"]),
            served["beats"],
            served["connections"],
            served["open"],
            served["resumes"],
            result["disconnects"],
            result["errors"],
            number(&served["first_overdue_max_ms"]),
            result["fd_limit"],
        );
    }
}

/// The 1-minute load average, as `uptime` shows it.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}
