//! The decision trace: why the machine did what it did, as structured records.
//!
//! Off by default. When on ([`GatewayMachine::set_trace`](crate::GatewayMachine::set_trace)),
//! every state change is reported as an [`Event::Decision`](crate::Event::Decision) in the
//! output stream, right before the outputs it caused. A record is plain `Copy` data: what
//! happened ([`Cause`]), the rule applied ([`Rule`]) and the outcome ([`Outcome`]); its
//! `Display` reads as one line, e.g. `no ACK since the beat at 41.250s: zombie connection →
//! close 4000, reconnect at 41.250s to resume`. When off, nothing is built.

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::close_code::CloseCode;
use crate::time::Timestamp;

/// One decision: what happened, the rule applied, what the machine does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// When it was taken.
    pub at: Timestamp,
    /// What happened.
    pub cause: Cause,
    /// The rule applied.
    pub rule: Rule,
    /// What the machine does about it.
    pub outcome: Outcome,
}

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Cause {
    /// The machine was created, or the reconnect delay passed.
    ConnectDue,
    /// Hello arrived with this interval (ms).
    Hello {
        /// Heartbeat interval in milliseconds, after clamping.
        interval_ms: u64,
    },
    /// A scheduled heartbeat came due and the last one was answered.
    BeatDue,
    /// The server asked for a heartbeat (op 1).
    BeatRequested,
    /// A scheduled beat came due but the beat sent at `since_beat` got no ACK.
    MissedAck {
        /// When the unanswered beat was sent.
        since_beat: Timestamp,
    },
    /// READY arrived.
    Ready,
    /// RESUMED arrived after this many replayed dispatches.
    Resumed {
        /// Dispatches replayed before RESUMED.
        replayed: u64,
    },
    /// The server closed the connection with this code.
    ServerClose(CloseCode),
    /// The transport failed without a close frame.
    TransportLost,
    /// The socket did not open in time.
    ConnectTimeout,
    /// Hello did not arrive in time.
    HelloTimeout,
    /// READY / RESUMED did not arrive in time.
    ReadyTimeout,
    /// The server asked for a reconnect (op 7).
    ReconnectRequested,
    /// The server invalidated the session (op 9).
    InvalidSession {
        /// Whether it may be resumed.
        resumable: bool,
    },
    /// A message broke the connection (corrupt compressed stream, malformed Hello or READY).
    BrokenStream,
    /// The application asked to shut down.
    Shutdown {
        /// Whether the session is kept.
        keep_session: bool,
    },
}

/// The rule applied, named after where it comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Rule {
    /// A session exists and is not stale: resume it (on the resume URL when known).
    ResumeExistingSession,
    /// The session's last ACK is older than the stale cutoff: identify instead.
    StaleSessionCutoff,
    /// No session: a new one needs an identify, gated by the identify queue.
    IdentifyNeedsGrant,
    /// No session and auto-grant is on: identify at once.
    IdentifyAutoGranted,
    /// First beat after `interval × jitter`, then every interval.
    HeartbeatSchedule,
    /// op 1 is answered with a beat at once.
    AnswerHeartbeatRequest,
    /// op-1 requests beyond the answer budget (a storm) are coalesced into the next
    /// scheduled beat, keeping the rate limit for scheduled beats.
    CoalesceHeartbeatRequests,
    /// A beat not acknowledged before the next one means a zombie connection.
    ZombieVerdict,
    /// READY / RESUMED: the session is live, backoff and breaker reset.
    SessionLive,
    /// This close code allows a resume.
    CloseCodeResume,
    /// This close code ends the session: identify anew.
    CloseCodeIdentify,
    /// This close code must not be retried.
    CloseCodeFatal,
    /// A lost transport keeps the session resumable.
    TransportLossResumes,
    /// The connection stalled: close it and try again.
    StallTimeout,
    /// op 7: reconnect and resume.
    ReconnectAndResume,
    /// op 9 `true`: reconnect and resume.
    InvalidSessionResumable,
    /// op 9 `false`: drop the session, wait 1-5 s, identify.
    InvalidSessionNotResumable,
    /// The resume URL could not be reached (the attempt ended before Hello): the next
    /// attempt resumes through the main URL. The session is kept.
    ResumeUrlFallback,
    /// Too many failed resumes in a row: identify instead.
    ResumeCircuitBreaker,
    /// There is no session (none yet, or it was dropped): the next connection identifies,
    /// whatever ended this one.
    NoSessionToResume,
    /// A close frame while connecting cannot come from the connection being opened: it is
    /// the late close of a socket the machine already closed, and changes nothing.
    LateCloseIgnored,
    /// The server closed with 4002 (decode error) in answer to an Identify: the Identify
    /// this configuration produces could not be read. Once may be a glitch; twice in a row
    /// stops the machine.
    IdentifyUndecodable,
    /// The reconnect attempt cap was reached.
    AttemptCap,
    /// A broken stream closes the connection with a resumable code.
    BrokenStreamReconnects,
    /// Shutdown closes with 1000 (session ends) or a resumable code (session kept).
    ShutdownClose,
}

impl Rule {
    /// Whether the rule says the next connection resumes. The machine never names such a
    /// rule for a decision whose outcome identifies.
    pub const fn promises_resume(self) -> bool {
        matches!(
            self,
            Rule::ResumeExistingSession
                | Rule::CloseCodeResume
                | Rule::TransportLossResumes
                | Rule::ReconnectAndResume
                | Rule::InvalidSessionResumable
                | Rule::ResumeUrlFallback
                | Rule::BrokenStreamReconnects
        )
    }

    /// The rule in words.
    pub const fn describe(self) -> &'static str {
        match self {
            Rule::ResumeExistingSession => "a session exists: resume it",
            Rule::StaleSessionCutoff => "session older than the stale cutoff: identify instead",
            Rule::IdentifyNeedsGrant => "new session: identify once the identify queue allows",
            Rule::IdentifyAutoGranted => "new session: identify (auto-granted)",
            Rule::HeartbeatSchedule => "first beat after interval × jitter, then every interval",
            Rule::AnswerHeartbeatRequest => "op 1: beat at once",
            Rule::CoalesceHeartbeatRequests => {
                "op-1 storm: the answer budget is spent or the window is nearly full"
            }
            Rule::ZombieVerdict => "no ACK between two beats: zombie connection",
            Rule::SessionLive => "session live: backoff and resume breaker reset",
            Rule::CloseCodeResume => "close code allows resuming",
            Rule::CloseCodeIdentify => "close code ends the session: identify anew",
            Rule::CloseCodeFatal => "close code must not be retried",
            Rule::TransportLossResumes => "transport lost without close code: resume",
            Rule::StallTimeout => "stalled: close and try again",
            Rule::ReconnectAndResume => "op 7: reconnect and resume",
            Rule::InvalidSessionResumable => "op 9 true: reconnect and resume",
            Rule::InvalidSessionNotResumable => {
                "op 9 false: session dropped, identify after a random 1-5 s wait"
            }
            Rule::ResumeUrlFallback => "resume URL unreachable: resume through the main URL",
            Rule::ResumeCircuitBreaker => "too many failed resumes in a row: identify",
            Rule::NoSessionToResume => "no session (none yet, or dropped): identify",
            Rule::LateCloseIgnored => "close frame while connecting: from the old socket, ignored",
            Rule::IdentifyUndecodable => {
                "4002 after Identify: the server cannot decode it (twice in a row: stop)"
            }
            Rule::AttemptCap => "reconnect attempt cap reached",
            Rule::BrokenStreamReconnects => "broken stream: close and resume",
            Rule::ShutdownClose => "shutdown",
        }
    }
}

/// What the machine does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Outcome {
    /// Connect, to resume (on the resume URL when `resume_url`) or to identify.
    Connect {
        /// Whether the connection will resume.
        resume: bool,
        /// Whether it goes to the session's resume URL.
        resume_url: bool,
    },
    /// Send Resume.
    SendResume {
        /// The sequence resumed from.
        sequence: u64,
    },
    /// Ask the driver for permission to identify.
    RequestIdentify,
    /// Send Identify.
    SendIdentify,
    /// Send a heartbeat now; the next scheduled one is at `next` (if scheduled).
    Beat {
        /// The next scheduled beat.
        next: Option<Timestamp>,
    },
    /// Schedule the first beat.
    FirstBeat {
        /// When it is due.
        at: Timestamp,
    },
    /// The session is live.
    Live,
    /// Close (with `close`, when the machine closes) and reconnect at `at`.
    Reconnect {
        /// The close code the machine sends, if it closes the socket itself.
        close: Option<u16>,
        /// Whether the next connection resumes.
        resume: bool,
        /// When the next connection starts.
        at: Timestamp,
        /// Which attempt in a row it is (0 after a healthy connection).
        attempt: u32,
    },
    /// Nothing to do.
    Ignore,
    /// Stop for good.
    Stop,
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::ConnectDue => f.write_str("connect due"),
            Cause::Hello { interval_ms } => write!(f, "hello (interval {interval_ms} ms)"),
            Cause::BeatDue => f.write_str("heartbeat due"),
            Cause::BeatRequested => f.write_str("server asked for a heartbeat"),
            Cause::MissedAck { since_beat } => write!(f, "no ACK since the beat at {since_beat}"),
            Cause::Ready => f.write_str("READY"),
            Cause::Resumed { replayed } => write!(f, "RESUMED after {replayed} replayed"),
            Cause::ServerClose(code) => write!(f, "server closed with {code}"),
            Cause::TransportLost => f.write_str("transport lost"),
            Cause::ConnectTimeout => f.write_str("connect timed out"),
            Cause::HelloTimeout => f.write_str("no Hello in time"),
            Cause::ReadyTimeout => f.write_str("no READY/RESUMED in time"),
            Cause::ReconnectRequested => f.write_str("op 7 reconnect"),
            Cause::InvalidSession { resumable } => write!(f, "op 9 invalid session ({resumable})"),
            Cause::BrokenStream => f.write_str("broken stream"),
            Cause::Shutdown { keep_session } => {
                write!(f, "shutdown (keep session: {keep_session})")
            }
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Connect {
                resume: true,
                resume_url: true,
            } => f.write_str("connect to the resume URL to resume"),
            Outcome::Connect {
                resume: true,
                resume_url: false,
            } => f.write_str("connect to the main URL to resume"),
            Outcome::Connect { resume: false, .. } => {
                f.write_str("connect to the main URL to identify")
            }
            Outcome::SendResume { sequence } => write!(f, "send Resume from seq {sequence}"),
            Outcome::RequestIdentify => f.write_str("ask for an identify grant"),
            Outcome::SendIdentify => f.write_str("send Identify"),
            Outcome::Beat { next: Some(next) } => write!(f, "beat now, next at {next}"),
            Outcome::Beat { next: None } => f.write_str("beat now"),
            Outcome::FirstBeat { at } => write!(f, "first beat at {at}"),
            Outcome::Live => f.write_str("session live"),
            Outcome::Reconnect {
                close,
                resume,
                at,
                attempt,
            } => {
                if let Some(code) = close {
                    write!(f, "close {code}, ")?;
                }
                let what = if *resume { "resume" } else { "identify" };
                write!(f, "reconnect at {at} to {what} (attempt {attempt})")
            }
            Outcome::Ignore => f.write_str("nothing sent"),
            Outcome::Stop => f.write_str("stop"),
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {} → {}",
            self.at,
            self.cause,
            self.rule.describe(),
            self.outcome
        )
    }
}
