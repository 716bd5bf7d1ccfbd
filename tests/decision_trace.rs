//! The decision trace names the rule that decided: never a resume rule for a decision whose
//! outcome is an identify.
#![cfg(feature = "sim")]

mod common;

use common::*;
use discord_gateway_proto::sim::{ConnectBehavior, ScriptAction, SimDriver, Trigger};
use discord_gateway_proto::trace::{Cause, Decision, Outcome, Rule};
use discord_gateway_proto::{CloseCode, Event};

fn decisions(sim: &SimDriver) -> Vec<Decision> {
    sim.trace()
        .other_events()
        .filter_map(|(_, e)| match e {
            Event::Decision(d) => Some(*d),
            _ => None,
        })
        .collect()
}

/// The reconnect decisions whose outcome identifies.
fn identifying_reconnects(sim: &SimDriver) -> Vec<Decision> {
    decisions(sim)
        .into_iter()
        .filter(|d| matches!(d.outcome, Outcome::Reconnect { resume: false, .. }))
        .collect()
}

#[test]
fn a_transport_loss_without_a_session_is_not_traced_as_a_resume() {
    // The first connections fail before any session exists.
    let mut gateway = gateway();
    gateway.connect_rule(MAIN, ConnectBehavior::Refuse, Some(3));
    let mut sim = SimDriver::new(config(), 31, gateway).unwrap();
    sim.input("trace on", |m, _| m.set_trace(true));
    run_to_ready(&mut sim);
    let lost = identifying_reconnects(&sim);
    assert_eq!(lost.len(), 3, "{}", sim.trace());
    for d in &lost {
        assert_eq!(d.cause, Cause::TransportLost);
        assert_eq!(d.rule, Rule::NoSessionToResume, "{d}");
        let line = d.to_string();
        assert!(!line.contains("resum"), "{line}");
    }
}

#[test]
fn a_resumable_close_code_without_a_session_is_not_traced_as_a_resume() {
    // 4000 allows a resume, but it comes before READY: there is nothing to resume.
    let mut gateway = gateway();
    gateway.after(Trigger::Identified(1), ms(10), ScriptAction::close(4000));
    let mut sim = SimDriver::new(config(), 32, gateway).unwrap();
    sim.input("trace on", |m, _| m.set_trace(true));
    run_to_ready(&mut sim);
    let lost = identifying_reconnects(&sim);
    assert_eq!(lost.len(), 1, "{}", sim.trace());
    assert_eq!(lost[0].cause, Cause::ServerClose(CloseCode(4000)));
    assert_eq!(lost[0].rule, Rule::NoSessionToResume);
    assert!(!lost[0].to_string().contains("resum"), "{}", lost[0]);
    // With a session, the same code is traced as the resume it is.
    sim.server(ScriptAction::close(4000));
    let last = decisions(&sim)
        .into_iter()
        .rfind(|d| d.cause == Cause::ServerClose(CloseCode(4000)))
        .unwrap();
    assert_eq!(last.rule, Rule::CloseCodeResume, "{last}");
    assert!(matches!(
        last.outcome,
        Outcome::Reconnect { resume: true, .. }
    ));
}

#[test]
fn no_identifying_decision_names_a_resume_rule() {
    // A run with every kind of loss, with and without a session.
    let mut gateway = gateway();
    gateway
        .connect_rule(MAIN, ConnectBehavior::Refuse, Some(1))
        .after(Trigger::Identified(1), ms(10), ScriptAction::Reconnect)
        .after(
            Trigger::Identified(2),
            ms(10),
            ScriptAction::InvalidSession(true),
        )
        .after(Trigger::Identified(3), ms(10), ScriptAction::Drop)
        .after(Trigger::ReadySent(1), secs(5), ScriptAction::close(4009))
        .after(Trigger::ReadySent(2), secs(5), ScriptAction::Drop);
    let mut sim = SimDriver::new(config(), 33, gateway).unwrap();
    sim.input("trace on", |m, _| m.set_trace(true));
    sim.run_until(at_ms(120_000));
    let all = decisions(&sim);
    assert!(all.len() > 10, "{}", sim.trace());
    for d in all {
        let identifies = matches!(
            d.outcome,
            Outcome::Reconnect { resume: false, .. } | Outcome::Connect { resume: false, .. }
        );
        if identifies {
            assert!(!d.rule.promises_resume(), "{d}");
        }
    }
}
