//! A fleet's identify queue shared through Redis: run this in several terminals (or on
//! several hosts) with different shards, and the grants of all of them keep Discord's rule,
//! one identify per bucket (`shard_id % max_concurrency`) per 5 s, as if one queue served
//! every shard.
//!
//! ```text
//! redis-server --port 6379 &
//! cargo run --example redis_identify -- --shards 0-3/8 &
//! cargo run --example redis_identify -- --shards 4-7/8
//! ```
//!
//! Options: `--shards FIRST-LAST/COUNT` (default `0-3/4`), `--max-concurrency N` (default
//! 1), `--hold-ms MS` (default 5000), `--redis URL` (default `$REDIS_URL` or
//! `redis://127.0.0.1:6379/`), `--prefix KEY` (default `identify`). A real process would call
//! `grant_identify` on the shard's machine where this prints the grant.

mod common;
#[path = "common/redis_identify.rs"]
mod redis_identify;

use std::process::ExitCode;
use std::time::Duration;

use discord_gateway_proto::{IdentifyQueue, SessionStartLimit, ShardId};
use redis_identify::RedisCoordinator;

struct Options {
    shards: Vec<ShardId>,
    max_concurrency: u32,
    hold: Duration,
    redis: String,
    prefix: String,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        shards: (0..4).map(|id| ShardId::new(id, 4)).collect(),
        max_concurrency: 1,
        hold: Duration::from_secs(5),
        redis: std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into()),
        prefix: "identify".into(),
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--shards" => options.shards = parse_shards(value)?,
            "--max-concurrency" => {
                options.max_concurrency =
                    value.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                        format!("--max-concurrency must be a positive number, not {value:?}")
                    })?
            }
            "--hold-ms" => {
                options.hold = Duration::from_millis(
                    value
                        .parse()
                        .map_err(|_| format!("--hold-ms must be a number, not {value:?}"))?,
                )
            }
            "--redis" => options.redis = value.clone(),
            "--prefix" => options.prefix = value.clone(),
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(options)
}

fn parse_shards(text: &str) -> Result<Vec<ShardId>, String> {
    let bad = || format!("--shards must be FIRST-LAST/COUNT, e.g. 0-3/8, not {text:?}");
    let (range, count) = text.split_once('/').ok_or_else(bad)?;
    let (first, last) = range.split_once('-').unwrap_or((range, range));
    let first: u32 = first.parse().map_err(|_| bad())?;
    let last: u32 = last.parse().map_err(|_| bad())?;
    let count: u32 = count.parse().map_err(|_| bad())?;
    if first > last || last >= count {
        return Err(bad());
    }
    Ok((first..=last).map(|id| ShardId::new(id, count)).collect())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse(&args) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("redis_identify: {e}");
            return ExitCode::from(2);
        }
    };
    let owner = format!("pid-{}", std::process::id());
    let coordinator = match RedisCoordinator::connect(&options.redis, &options.prefix, &owner) {
        Ok(coordinator) => coordinator,
        Err(e) => {
            eprintln!("redis_identify: {e}");
            return ExitCode::FAILURE;
        }
    };
    let clock = common::Clock::new();
    // In production the limit comes from GET /gateway/bot.
    let limit = SessionStartLimit {
        total: 1000,
        remaining: 1000,
        reset_after: 24 * 60 * 60 * 1000,
        max_concurrency: options.max_concurrency,
    };
    let mut queue =
        IdentifyQueue::with_coordinator(limit, clock.now(), coordinator).with_spacing(options.hold);
    println!(
        "{owner}: {} shards waiting, buckets of {}, {} ms apart per bucket",
        options.shards.len(),
        options.max_concurrency,
        options.hold.as_millis()
    );
    let result = redis_identify::grant_all(
        &mut queue,
        &options.shards,
        clock,
        Duration::from_secs(3600),
        |shard, at| {
            println!(
                "{at:>10}  {owner}: shard {shard} (bucket {}) may identify",
                shard.id % options.max_concurrency
            )
        },
    );
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("redis_identify: {e}");
            ExitCode::FAILURE
        }
    }
}
