//! The sim's fake gateway speaks Discord's shapes: every message it sends in a scenario
//! (READY, GUILD_CREATE, MESSAGE_CREATE, GUILD_MEMBERS_CHUNK, RESUMED, Hello, ACKs, op 7)
//! deserializes with twilight-model 0.18, a model crate that follows Discord's documented
//! shapes strictly, and says what the fake was configured to say.
//!
//! It lives in the adapter crate so that twilight-model is not a dev-dependency of the root
//! package, which `cargo run --example demo` builds.

use std::time::Duration;

use discord_gateway_proto::protocol::commands::{MemberFilter, Nonce, RequestGuildMembers};
use discord_gateway_proto::sim::{
    FakeGateway, FakeGatewayConfig, ScriptAction, SimDriver, SimGuild, SimMessage, SimUser,
    TraceKind, Trigger,
};
use discord_gateway_proto::{Command, GatewayConfig, Intents, ShardId, Snowflake, Token};
use serde::de::DeserializeSeed;
use twilight_model::gateway::event::{DispatchEvent, GatewayEvent, GatewayEventDeserializer};
use twilight_model::gateway::payload::incoming::GuildCreate;
use twilight_model::gateway::ShardId as TwilightShardId;

/// Parses one gateway message the way twilight-gateway does.
fn parse(text: &str) -> GatewayEvent {
    let seed = GatewayEventDeserializer::from_json(text)
        .unwrap_or_else(|| panic!("no op/t found by twilight in {text}"));
    let mut json = serde_json::Deserializer::from_str(text);
    seed.deserialize(&mut json)
        .unwrap_or_else(|e| panic!("twilight-model rejects {text}: {e}"))
}

/// Every text message the fake sent to the client, in order.
fn server_texts(sim: &SimDriver) -> Vec<String> {
    sim.trace()
        .entries()
        .iter()
        .filter_map(|e| match &e.kind {
            TraceKind::ServerText { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

fn ferris() -> SimUser {
    SimUser::bot(870_000_000_000_000_001, "ferris-bot").with_global_name("Ferris Bot")
}

fn owner() -> SimUser {
    SimUser::person(41_771_983_423_143_937, "owner").with_global_name("The Owner")
}

fn guilds() -> Vec<SimGuild> {
    vec![
        SimGuild::new(81_384_788_765_712_384, "Discord API")
            .with_member(owner())
            .with_member(SimUser::person(41_771_983_423_143_938, "other")),
        SimGuild::new(613_425_648_685_547_541, "Rust"),
    ]
}

/// A scenario touching every kind of dispatch the fake makes: READY for shard [2, 4], two
/// GUILD_CREATEs, a guild message and a direct one, two member requests answered, and an
/// op 7 reconnect resumed with a missed message replayed.
fn scenario() -> SimDriver {
    let guilds = guilds();
    let config = FakeGatewayConfig {
        user: ferris(),
        application_id: ferris().id,
        guilds: guilds.clone(),
        ..FakeGatewayConfig::default()
    };
    let mut gateway = FakeGateway::new(config);
    gateway
        .after(
            Trigger::ReadySent(1),
            Duration::from_secs(1),
            ScriptAction::Message(SimMessage::in_guild(&guilds[0], owner(), "hello, bot")),
        )
        .after(
            Trigger::ReadySent(1),
            Duration::from_secs(2),
            ScriptAction::Message(SimMessage::direct(5, owner(), "psst \"quoted\" ✓")),
        )
        .after(
            Trigger::ReadySent(1),
            Duration::from_secs(5),
            ScriptAction::Reconnect,
        );
    let intents = Intents::GUILDS
        | Intents::GUILD_MEMBERS
        | Intents::GUILD_PRESENCES
        | Intents::GUILD_MESSAGES
        | Intents::MESSAGE_CONTENT;
    let config = GatewayConfig::new(Token::new("SIM.TOKEN"), intents)
        .with_gateway_url("wss://gateway.sim")
        .with_shard(ShardId::new(2, 4));
    let mut sim = SimDriver::new(config, 11, gateway).unwrap();
    sim.run_for(Duration::from_secs(3));
    let mut all = RequestGuildMembers::all(Snowflake(guilds[0].id));
    all.presences = true;
    all.nonce = Some(Nonce::new("all-members").unwrap());
    sim.send(Command::RequestGuildMembers(all)).unwrap();
    let mut some = RequestGuildMembers::all(Snowflake(guilds[0].id));
    some.filter = MemberFilter::UserIds(vec![Snowflake(owner().id), Snowflake(999)]);
    sim.send(Command::RequestGuildMembers(some)).unwrap();
    sim.run_for(Duration::from_secs(1));
    // Posted while the client is away after op 7: replayed on resume.
    sim.gateway_mut().after(
        Trigger::ResumeReceived(1),
        Duration::ZERO,
        ScriptAction::Message(SimMessage::in_guild(&guilds[1], owner(), "missed")),
    );
    // Long enough for heartbeats (and their ACKs) on both connections.
    sim.run_for(Duration::from_secs(90));
    sim
}

#[test]
fn every_message_of_the_fake_deserializes_with_twilight_model() {
    let sim = scenario();
    assert!(sim.gateway().violations().is_empty());
    let texts = server_texts(&sim);
    let mut dispatches = Vec::new();
    let mut others = Vec::new();
    for text in &texts {
        match parse(text) {
            GatewayEvent::Dispatch(sequence, event) => dispatches.push((sequence, event)),
            other => others.push(other),
        }
    }
    let names: Vec<&str> = dispatches
        .iter()
        .map(|(_, e)| e.kind().name().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "READY",
            "GUILD_CREATE",
            "GUILD_CREATE",
            "MESSAGE_CREATE",
            "MESSAGE_CREATE",
            "GUILD_MEMBERS_CHUNK",
            "GUILD_MEMBERS_CHUNK",
            "MESSAGE_CREATE",
            "RESUMED",
        ],
        "{}",
        sim.trace()
    );
    let sequences: Vec<u64> = dispatches.iter().map(|(s, _)| *s).collect();
    assert_eq!(sequences, (1..=9).collect::<Vec<u64>>());
    // Hello twice (two connections), op 7 once, and an ACK for every heartbeat.
    assert!(matches!(others[0], GatewayEvent::Hello(ref h) if h.heartbeat_interval == 41_250));
    assert_eq!(
        others
            .iter()
            .filter(|e| matches!(e, GatewayEvent::Hello(_)))
            .count(),
        2
    );
    assert!(others.iter().any(|e| matches!(e, GatewayEvent::Reconnect)));
    let acks = others
        .iter()
        .filter(|e| matches!(e, GatewayEvent::HeartbeatAck))
        .count();
    assert_eq!(acks as u32, sim.gateway().heartbeats_received());
    assert!(acks > 0);
}

#[test]
fn ready_says_what_the_config_and_the_identify_said() {
    let sim = scenario();
    let texts = server_texts(&sim);
    let ready = texts
        .iter()
        .find_map(|t| match parse(t) {
            GatewayEvent::Dispatch(_, DispatchEvent::Ready(ready)) => Some(ready),
            _ => None,
        })
        .unwrap();
    assert_eq!(ready.version, 10);
    assert_eq!(ready.shard, Some(TwilightShardId::new(2, 4)));
    assert_eq!(ready.user.id.get(), ferris().id);
    assert_eq!(ready.user.name, "ferris-bot");
    assert_eq!(ready.user.global_name.as_deref(), Some("Ferris Bot"));
    assert!(ready.user.bot);
    assert_eq!(ready.application.id.get(), ferris().id);
    let guild_ids: Vec<u64> = ready.guilds.iter().map(|g| g.id.get()).collect();
    let expected: Vec<u64> = guilds().iter().map(|g| g.id).collect();
    assert_eq!(guild_ids, expected);
    assert!(ready.guilds.iter().all(|g| g.unavailable));
    let session = &sim.gateway().sessions()[0];
    assert_eq!(ready.session_id, session.id);
    assert_eq!(ready.resume_gateway_url, "wss://resume.sim");
}

#[test]
fn guild_create_message_create_and_member_chunks_carry_the_configured_data() {
    let sim = scenario();
    let guilds = guilds();
    let mut guild_creates = Vec::new();
    let mut messages = Vec::new();
    let mut chunks = Vec::new();
    for text in server_texts(&sim) {
        match parse(&text) {
            GatewayEvent::Dispatch(_, DispatchEvent::GuildCreate(g)) => guild_creates.push(*g),
            GatewayEvent::Dispatch(_, DispatchEvent::MessageCreate(m)) => messages.push(*m),
            GatewayEvent::Dispatch(_, DispatchEvent::MemberChunk(c)) => chunks.push(c),
            _ => {}
        }
    }

    for (created, guild) in guild_creates.iter().zip(&guilds) {
        let GuildCreate::Available(created) = created else {
            panic!("GUILD_CREATE read as unavailable: {created:?}");
        };
        assert_eq!(created.id.get(), guild.id);
        assert_eq!(created.name, guild.name);
        assert_eq!(created.owner_id.get(), guild.owner_id(&ferris()));
        assert_eq!(created.member_count, Some(guild.members.len() as u64 + 1));
        assert_eq!(created.members.len(), 1);
        assert_eq!(created.members[0].user.id.get(), ferris().id);
        assert_eq!(created.channels[0].id.get(), guild.general_channel_id());
        assert_eq!(created.roles[0].name, "@everyone");
        assert_eq!(created.roles[0].id.get(), guild.id);
    }
    assert_eq!(guild_creates.len(), 2);

    assert_eq!(messages.len(), 3);
    let hello = &messages[0];
    assert_eq!(hello.content, "hello, bot");
    assert_eq!(hello.author.id.get(), owner().id);
    assert!(!hello.author.bot);
    assert_eq!(hello.guild_id.map(|g| g.get()), Some(guilds[0].id));
    assert_eq!(hello.channel_id.get(), guilds[0].general_channel_id());
    assert!(hello.member.is_some());
    let direct = &messages[1];
    assert_eq!(direct.content, "psst \"quoted\" ✓");
    assert_eq!(direct.guild_id, None);
    assert_eq!(direct.channel_id.get(), 5);
    // Ids are snowflakes of the virtual time: later messages have larger ids, and each
    // id's time is its timestamp (virtual zero is 2025-01-01T00:00:00Z by default).
    assert!(hello.id < direct.id && direct.id < messages[2].id);
    for message in &messages {
        let from_id = (message.id.get() >> 22) as i64 + 1_420_070_400_000;
        let stamped = message.timestamp.as_micros() / 1000;
        assert_eq!(stamped, from_id);
        assert!(stamped >= 1_735_689_600_000);
    }
    assert_eq!(messages[2].content, "missed");

    assert_eq!(chunks.len(), 2);
    let all = &chunks[0];
    assert_eq!(all.guild_id.get(), guilds[0].id);
    assert_eq!(all.nonce.as_deref(), Some("all-members"));
    let ids: Vec<u64> = all.members.iter().map(|m| m.user.id.get()).collect();
    assert_eq!(ids, [ferris().id, owner().id, 41_771_983_423_143_938]);
    assert_eq!(all.presences.len(), 3);
    assert_eq!((all.chunk_index, all.chunk_count), (0, 1));
    let some = &chunks[1];
    let ids: Vec<u64> = some.members.iter().map(|m| m.user.id.get()).collect();
    assert_eq!(ids, [owner().id]);
    let not_found: Vec<u64> = some.not_found.iter().map(|id| id.get()).collect();
    assert_eq!(not_found, [999]);
    assert!(some.presences.is_empty());
}

#[test]
fn ready_shard_defaults_to_the_identify_and_can_be_overridden() {
    let run = |ready_shard: Option<ShardId>, shard: ShardId| {
        let gateway = FakeGateway::new(FakeGatewayConfig {
            ready_shard,
            ..FakeGatewayConfig::default()
        });
        let config = GatewayConfig::new(Token::new("SIM.TOKEN"), Intents::GUILDS)
            .with_gateway_url("wss://gateway.sim")
            .with_shard(shard);
        let mut sim = SimDriver::new(config, 3, gateway).unwrap();
        sim.run_for(Duration::from_secs(1));
        server_texts(&sim)
            .iter()
            .find_map(|t| match parse(t) {
                GatewayEvent::Dispatch(_, DispatchEvent::Ready(ready)) => Some(ready.shard),
                _ => None,
            })
            .unwrap()
    };
    assert_eq!(
        run(None, ShardId::new(0, 1)),
        Some(TwilightShardId::new(0, 1))
    );
    assert_eq!(
        run(None, ShardId::new(6, 8)),
        Some(TwilightShardId::new(6, 8))
    );
    assert_eq!(
        run(Some(ShardId::new(1, 2)), ShardId::new(6, 8)),
        Some(TwilightShardId::new(1, 2))
    );
}
