//! A bot's own reactions, tested in virtual time: `SimDriver::next_event` and
//! `run_for_with` hand each event over at its virtual time, and what the bot sends in answer
//! goes through the machine (queue, rate limiter) to the fake gateway, under the driver's
//! contract checks.
#![cfg(feature = "sim")]

mod common;

use common::*;
use discord_gateway_proto::protocol::commands::{RequestGuildMembers, Status, UpdatePresence};
use discord_gateway_proto::sim::{
    FakeGateway, FakeGatewayConfig, ScriptAction, SimDriver, SimEvent, SimGuild, SimMessage,
    SimUser, TraceKind, Trigger,
};
use discord_gateway_proto::{Command, Event, GatewayConfig, Intents, OpCode, Snowflake, Timestamp};

const GUILD: u64 = 81_384_788_765_712_384;

fn guild() -> SimGuild {
    SimGuild::new(GUILD, "Discord API").with_member(SimUser::person(7, "ferris"))
}

/// The fake with one guild and `messages` MESSAGE_CREATEs, the first `first` after READY,
/// then one every `spacing`.
fn gateway_with_messages(
    messages: usize,
    first: std::time::Duration,
    spacing: std::time::Duration,
) -> FakeGateway {
    let mut gateway = FakeGateway::new(FakeGatewayConfig {
        guilds: vec![guild()],
        ..gateway_config()
    });
    for i in 0..messages {
        gateway.after(
            Trigger::ReadySent(1),
            first + spacing * i as u32,
            ScriptAction::Message(SimMessage::in_guild(
                &guild(),
                SimUser::person(7, "ferris"),
                format!("message {i}"),
            )),
        );
    }
    gateway
}

/// The standard config, with the MESSAGE_CONTENT intent (without it the fake, like Discord,
/// blanks guild messages' text).
fn config() -> GatewayConfig {
    let mut config = common::config();
    config.intents = Intents::GUILDS | Intents::GUILD_MESSAGES | Intents::MESSAGE_CONTENT;
    config
}

fn is_dispatch(event: &SimEvent, name: &str) -> bool {
    matches!(event, SimEvent::Dispatch(d) if d.name == name)
}

/// The trace index and time of the first entry matching `f`.
fn position(sim: &SimDriver, f: impl Fn(&TraceKind) -> bool) -> (usize, Timestamp) {
    let (i, e) = sim
        .trace()
        .entries()
        .iter()
        .enumerate()
        .find(|(_, e)| f(&e.kind))
        .expect("no such trace entry");
    (i, e.time)
}

#[test]
fn an_answer_to_a_dispatch_reaches_the_server_at_the_dispatch_time_after_it() {
    let gateway = gateway_with_messages(1, secs(3), secs(1));
    let mut sim = SimDriver::new(config(), 5, gateway).unwrap();
    let mut seen = Vec::new();
    sim.run_for_with(secs(20), |sim, event| {
        seen.push((sim.now(), event.clone()));
        if is_dispatch(&event, "MESSAGE_CREATE") {
            let request = RequestGuildMembers::all(Snowflake(GUILD));
            sim.send(Command::RequestGuildMembers(request)).unwrap();
        }
    });
    assert_eq!(sim.now(), at(secs(20)));
    assert_clean(&sim);

    // The message came in at READY + 3 s; the request left then, after it, on the wire.
    let (message_index, message_at) = position(
        &sim,
        |k| matches!(k, TraceKind::ServerText { text, .. } if text.contains("MESSAGE_CREATE")),
    );
    let (request_index, request_at) = position(
        &sim,
        |k| matches!(k, TraceKind::ClientSend { opcode, .. } if *opcode == OpCode::RequestGuildMembers),
    );
    let ready_at = sim
        .trace()
        .dispatches()
        .find(|(_, d)| d.name == "READY")
        .unwrap()
        .0;
    assert_eq!(message_at, ready_at.saturating_add(secs(3)));
    assert_eq!(request_at, message_at);
    assert!(message_index < request_index);
    let received: Vec<_> = sim.gateway().received_op(8).collect();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].time, message_at);
    assert_eq!(received[0].data().unwrap()["guild_id"], GUILD.to_string());

    // The handler saw every event once, in the trace's order, each at its own time, and the
    // fake's answer (50 ms later) among them.
    let traced: Vec<(Timestamp, SimEvent)> =
        sim.trace().events().map(|(t, e)| (t, e.clone())).collect();
    assert_eq!(seen, traced);
    let chunk_at = seen
        .iter()
        .find(|(_, e)| is_dispatch(e, "GUILD_MEMBERS_CHUNK"))
        .expect("the fake answers op 8")
        .0;
    assert_eq!(chunk_at, message_at.saturating_add(ms(50)));
}

#[test]
fn next_event_is_a_step_by_step_loop_and_skips_what_it_was_not_asked_for() {
    let gateway = gateway_with_messages(3, secs(1), secs(1));
    let mut sim = SimDriver::new(config(), 5, gateway).unwrap();
    // The first events: Hello, the identify request (auto-granted here: none), READY.
    let first = sim.next_event(at(secs(60))).unwrap();
    assert!(matches!(first, SimEvent::Other(Event::Hello { .. })));
    let ready = loop {
        let event = sim.next_event(at(secs(60))).unwrap();
        if let SimEvent::Other(Event::Ready(info)) = event {
            break info;
        }
    };
    assert_eq!(ready.guild_count, 1);
    let ready_at = sim.now();
    // Nothing is handed twice, and time only moves when asked to.
    let dispatch = sim.next_event(at(secs(60))).unwrap();
    assert!(is_dispatch(&dispatch, "READY"));
    assert_eq!(sim.now(), ready_at);
    let guild_create = sim.next_event(at(secs(60))).unwrap();
    assert!(is_dispatch(&guild_create, "GUILD_CREATE"));
    assert_eq!(sim.now(), ready_at.saturating_add(ms(50)));

    // Events reported during a plain run are passed over, not handed late.
    sim.run_until(ready_at.saturating_add(ms(1_500)));
    let next = sim.next_event(at(secs(60))).unwrap();
    assert!(is_dispatch(&next, "MESSAGE_CREATE"));
    let SimEvent::Dispatch(d) = &next else {
        unreachable!()
    };
    assert!(d.data.contains("message 1"), "{}", d.data);
    assert_eq!(sim.now(), ready_at.saturating_add(secs(2)));

    // With nothing before `until`, the clock stops there.
    let until = sim.now().saturating_add(ms(10));
    assert_eq!(sim.next_event(until), None);
    assert_eq!(sim.now(), until);
    assert_clean(&sim);
}

#[test]
fn a_flood_of_answers_is_held_to_the_rate_limit_and_none_is_lost() {
    // 150 messages, 100 ms apart, each answered with a presence update: more than the 112
    // commands a 60 s window leaves beside heartbeats. The machine holds the rest until the
    // window slides; the fake (which closes with 4008 on a breach) sees no violation.
    let gateway = gateway_with_messages(150, secs(1), ms(100));
    let mut sim = SimDriver::new(config(), 9, gateway).unwrap();
    let mut answered = Vec::new();
    sim.run_for_with(secs(180), |sim, event| {
        if is_dispatch(&event, "MESSAGE_CREATE") {
            let presence = UpdatePresence {
                since: None,
                activities: vec![],
                status: Status::Online,
                afk: false,
            };
            answered.push((sim.now(), sim.send(Command::UpdatePresence(presence))));
        }
    });
    assert_eq!(answered.len(), 150);
    assert!(answered.iter().all(|(_, r)| r.is_ok()), "{answered:?}");
    assert_clean(&sim);
    assert!(sim
        .trace()
        .other_events()
        .all(|(_, e)| !matches!(e, Event::RateLimited(_))));

    let presences: Vec<Timestamp> = sim.gateway().received_op(3).map(|f| f.time).collect();
    assert_eq!(presences.len(), 150);
    // The first ones leave the moment they are answered; the later ones wait for the window.
    assert_eq!(presences[0], answered[0].0);
    let held = presences
        .iter()
        .zip(&answered)
        .filter(|(sent, (asked, _))| sent > &asked)
        .count();
    assert!(held > 0, "some answers must wait for a slot");
    let first = presences[0];
    assert!(presences[149] >= first.saturating_add(secs(60)));
    // No 60 s window on the wire holds more than 120 frames.
    let all: Vec<Timestamp> = sim.gateway().received().iter().map(|f| f.time).collect();
    for (i, &start) in all.iter().enumerate() {
        let in_window = all[i..]
            .iter()
            .take_while(|&&t| t < start.saturating_add(secs(60)))
            .count();
        assert!(in_window <= 120, "{in_window} frames from {start}");
    }
}

#[test]
#[should_panic(expected = "ConnectWhileConnected")]
fn the_contract_checks_stay_on_inside_a_handler() {
    let gateway = gateway_with_messages(1, secs(1), secs(1));
    let mut sim = SimDriver::new(config(), 5, gateway).unwrap();
    sim.run_for_with(secs(10), |sim, event| {
        if is_dispatch(&event, "MESSAGE_CREATE") {
            // A driver bug: the socket reported closed while the driver still holds it.
            sim.input("closed behind the driver's back", |m, now| {
                m.handle_closed(now, None)
            });
        }
    });
}

#[test]
fn a_handler_run_is_deterministic() {
    let run = || {
        let gateway = gateway_with_messages(20, secs(1), ms(250));
        let mut sim = SimDriver::new(config(), 42, gateway).unwrap();
        sim.run_for_with(secs(90), |sim, event| {
            if is_dispatch(&event, "MESSAGE_CREATE") {
                let request = RequestGuildMembers::query(Snowflake(GUILD), "fer", 1);
                let _ = sim.send(Command::RequestGuildMembers(request));
            }
        });
        sim.trace().to_string()
    };
    let first = run();
    assert!(first.contains("GUILD_MEMBERS_CHUNK"));
    assert_eq!(first, run());
}
