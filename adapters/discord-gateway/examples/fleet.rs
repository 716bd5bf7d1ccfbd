//! A fleet: every shard of a bot in one process, or its shards spread over several
//! processes that share one Redis (identify spacing, the daily budget, sessions). Ctrl-C
//! stops it gracefully: with Redis, each shard's session is handed over, and the next
//! process to start with those shards resumes them.
//!
//! ```text
//! # One process, every shard GET /gateway/bot recommends:
//! DISCORD_TOKEN=... cargo run -p discord-gateway --example fleet
//!
//! # Two processes sharing one Redis, each running half:
//! DISCORD_TOKEN=... cargo run -p discord-gateway --features redis --example fleet -- --process 0/2 --redis redis://127.0.0.1:6379/
//! DISCORD_TOKEN=... cargo run -p discord-gateway --features redis --example fleet -- --process 1/2 --redis redis://127.0.0.1:6379/
//!
//! # Without Discord: a fake gateway for 4 shards that sends each a TICK every second...
//! cargo run -p discord-gateway --example fleet -- --fake 4
//! # ...and a fleet against it (stop it with Ctrl-C and start it again: it resumes, and
//! # the TICKs sent meanwhile are replayed).
//! DISCORD_TOKEN=x DISCORD_GATEWAY_URL=ws://127.0.0.1:PORT cargo run -p discord-gateway --features redis --example fleet -- --shards 0-3/4 --redis redis://127.0.0.1:6379/
//! ```
//!
//! Options: `--shards FIRST-LAST/COUNT` (default: every shard `GET /gateway/bot`
//! recommends), `--process P/N` (this process runs the P-th of N ranges), `--redis URL`
//! (feature `redis`), `--app ID` (the Redis key namespace, default 0), `--fake COUNT`
//! (feature `testing`: serve a fake gateway instead). Prints one line per event.

use discord_gateway::fleet::{Fleet, FleetBuilder, FleetEvent};
use discord_gateway::http::GatewayBotClient;
use discord_gateway::proto::shard::shard_range;
use discord_gateway::{GatewayConfig, Intents, SessionStartLimit, ShardEvent, ShardId, Token};

type Error = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        let at = args.iter().position(|a| a == name)?;
        args.get(at + 1).cloned()
    };
    if let Some(count) = flag("--fake") {
        return serve_fake(count.parse()?).await;
    }
    let token = Token::new(std::env::var("DISCORD_TOKEN").map_err(|_| "set DISCORD_TOKEN")?);
    let mut config = GatewayConfig::new(token.clone(), Intents::GUILDS | Intents::GUILD_MESSAGES);
    // The gateway, the shard count and the daily budget: from Discord, or made up for a
    // test gateway.
    let (count, limit) = match std::env::var("DISCORD_GATEWAY_URL") {
        Ok(url) => {
            config = config.with_gateway_url(url);
            let limit = SessionStartLimit {
                total: 1000,
                remaining: 1000,
                reset_after: 86_400_000,
                max_concurrency: 1,
            };
            (None, limit)
        }
        Err(_) => {
            let bot = GatewayBotClient::new().get(&token).await?;
            println!(
                "GET /gateway/bot: {} shards, {:?}",
                bot.shards, bot.session_start_limit
            );
            config = config.with_gateway_url(bot.url);
            (Some(bot.shards), bot.session_start_limit)
        }
    };
    let shards: Vec<ShardId> = match (flag("--shards"), flag("--process"), count) {
        (Some(spec), _, _) => parse_range(&spec)?,
        (None, Some(spec), Some(count)) => {
            let (p, n) = spec.split_once('/').ok_or("--process P/N")?;
            shard_range(p.parse()?, n.parse()?, count)
                .map(|id| ShardId::new(id, count))
                .collect()
        }
        (None, None, Some(count)) => (0..count).map(|id| ShardId::new(id, count)).collect(),
        (None, _, None) => {
            return Err("with DISCORD_GATEWAY_URL, say which shards: --shards 0-3/4".into())
        }
    };
    let builder = Fleet::builder(config).session_start_limit(limit);
    let builder = with_redis(builder, flag("--redis"), flag("--app"), &token, limit).await?;
    let mut fleet = builder.start(shards.clone())?;
    println!(
        "running shards {}..={} of {}",
        shards[0].id,
        shards[shards.len() - 1].id,
        shards[0].count
    );

    loop {
        tokio::select! {
            event = fleet.next_event() => match event {
                Some(event) => print_event(&event),
                None => break,
            },
            _ = tokio::signal::ctrl_c() => {
                println!("stopping: sessions kept (and handed over, with Redis)");
                fleet.shutdown(true).await;
            }
        }
    }
    Ok(())
}

/// With `--redis`: identify through Redis and keep sessions there.
#[cfg(feature = "redis")]
async fn with_redis(
    builder: FleetBuilder,
    url: Option<String>,
    app: Option<String>,
    token: &Token,
    limit: SessionStartLimit,
) -> Result<FleetBuilder, Error> {
    use discord_gateway::redis::*;
    let Some(url) = url else { return Ok(builder) };
    let link = RedisLink::open(&url)?;
    let namespace = Namespace::for_application(app.as_deref().unwrap_or("0").parse()?);
    let mut identify = IdentifyQueueConfig::default();
    if std::env::var("DISCORD_GATEWAY_URL").is_ok() {
        // A test gateway: the made-up budget, published once.
        identify =
            identify.with_limit_source(move || async move { Ok::<_, LimitSourceError>(limit) });
    } else {
        identify = identify.with_limit_source(GatewayBotClient::new().limit_source(token.clone()));
    }
    let queue = RedisIdentifyQueue::new(link.clone(), namespace.clone(), identify);
    let store = RedisSessionStore::new(link, namespace, SessionStoreConfig::default());
    Ok(builder.redis_identify(queue).session_store(store))
}

#[cfg(not(feature = "redis"))]
async fn with_redis(
    builder: FleetBuilder,
    url: Option<String>,
    _: Option<String>,
    _: &Token,
    _: SessionStartLimit,
) -> Result<FleetBuilder, Error> {
    match url {
        Some(_) => Err("--redis needs --features redis".into()),
        None => Ok(builder),
    }
}

fn print_event(event: &FleetEvent) {
    match event {
        FleetEvent::Shard { shard, event } => {
            let shard = format!("shard {}/{}", shard.id, shard.count);
            match event {
                ShardEvent::Dispatch(d) => println!("{shard} #{} {}", d.sequence, d.name),
                ShardEvent::Ready(_) => println!("{shard} ready"),
                ShardEvent::Resumed { replayed } => {
                    println!("{shard} resumed, {replayed} replayed")
                }
                ShardEvent::Disconnected { reason, resume, .. } => {
                    println!("{shard} disconnected ({reason:?}), resuming: {resume}")
                }
                ShardEvent::IdentifyBlocked(why) => println!("{shard} waits to identify: {why}"),
                ShardEvent::IdentifyExhausted { retry_in } => {
                    println!(
                        "{shard} waits: the daily session starts are spent ({retry_in:?} left)"
                    )
                }
                ShardEvent::Fatal(reason) => println!("{shard} stopped for good: {reason:?}"),
                _ => {}
            }
        }
        other => println!("{other:?}"),
    }
}

/// `FIRST-LAST/COUNT`.
fn parse_range(spec: &str) -> Result<Vec<ShardId>, Error> {
    let (range, count) = spec.split_once('/').ok_or("--shards FIRST-LAST/COUNT")?;
    let (first, last) = range.split_once('-').unwrap_or((range, range));
    let count: u32 = count.parse()?;
    Ok((first.parse()?..=last.parse()?)
        .map(|id| ShardId::new(id, count))
        .collect())
}

/// `--fake COUNT`: a fake gateway on loopback that sends every shard's session a TICK each
/// second (to the live connection, or kept for the replay while no process runs it).
#[cfg(feature = "testing")]
async fn serve_fake(count: u32) -> Result<(), Error> {
    use discord_gateway::proto::sim::{FakeGateway, FakeGatewayConfig, ScriptAction};
    use discord_gateway::testing::FakeGatewayServer;
    use std::time::Duration;
    let server = FakeGatewayServer::start(FakeGateway::new(FakeGatewayConfig::default()));
    println!(
        "fake gateway at {} (DISCORD_GATEWAY_URL); Ctrl-C to stop",
        server.url()
    );
    let mut n = 0u64;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
        n += 1;
        for id in 0..count {
            server.perform(ScriptAction::shard_dispatch(
                ShardId::new(id, count),
                "TICK",
                n.to_string(),
            ));
        }
    }
}

#[cfg(not(feature = "testing"))]
async fn serve_fake(_: u32) -> Result<(), Error> {
    Err("--fake needs --features testing".into())
}
