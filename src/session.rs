//! Session state: what a resume needs, as plain serializable data.

use alloc::string::String;
use core::time::Duration;

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// A gateway session: everything needed to resume it, on this machine or on a new one
/// after a process restart.
///
/// `last_alive` is in the time base of the driver that produced it. A driver that persists a
/// session across restarts either keeps a time origin that survives restarts (e.g. Unix
/// time) or saves the session's age in wall-clock terms and rebases it with
/// [`Session::with_ack_age`] when restoring; the clock of the new process can start at
/// zero, as `last_alive` may be before the origin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// READY's `session_id`.
    pub id: String,
    /// The last dispatch sequence number received.
    pub sequence: u64,
    /// READY's `resume_gateway_url`, where resumes go.
    pub resume_url: Option<String>,
    /// When the connection last proved alive by the rule of the configured
    /// [`Liveness`](crate::config::Liveness): READY, RESUMED or a heartbeat ACK, and under
    /// `Liveness::AnyMessage` any message. The stale-session cutoff counts from here.
    ///
    /// ACKs, READY and RESUMED are recorded as they arrive; other messages (under
    /// `AnyMessage`) are brought in at each heartbeat, when the connection ends and on
    /// shutdown, so between two beats this may lag by up to one heartbeat interval.
    ///
    /// Sessions saved before this field was renamed (as `last_ack`) still deserialize.
    #[serde(alias = "last_ack")]
    pub last_alive: Timestamp,
}

impl Session {
    /// How long ago the connection last proved alive (see [`Session::last_alive`]), as of
    /// `now`.
    pub fn ack_age(&self, now: Timestamp) -> Duration {
        now.saturating_duration_since(self.last_alive)
    }

    /// The same session with `last_alive` set to `age` before `now` (for restoring a saved
    /// session into a driver with a different time origin). `age` may be longer than the
    /// time since the origin: `last_alive` is then before it, and the session is exactly `age`
    /// old at `now` (so the stale cutoff judges it right).
    pub fn with_ack_age(mut self, age: Duration, now: Timestamp) -> Self {
        self.last_alive = now.saturating_sub(age);
        self
    }

    /// Records proof of life at `at` (never moving `last_alive` back).
    pub(crate) fn alive_at(&mut self, at: Timestamp) {
        self.last_alive = self.last_alive.max(at);
    }

    /// Whether the session is too old to resume under a cutoff of `stale_after`.
    pub fn is_stale(&self, now: Timestamp, stale_after: Duration) -> bool {
        self.ack_age(now) > stale_after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staleness_and_rebasing() {
        let s = Session {
            id: "abc".into(),
            sequence: 5,
            resume_url: None,
            last_alive: Timestamp::from_secs(10),
        };
        let cutoff = Duration::from_secs(900);
        assert!(!s.is_stale(Timestamp::from_secs(910), cutoff));
        assert!(s.is_stale(Timestamp::from_secs(911), cutoff));
        let s = s.with_ack_age(Duration::from_secs(60), Timestamp::from_secs(1000));
        assert_eq!(s.last_alive, Timestamp::from_secs(940));
    }

    #[test]
    fn a_session_saved_with_last_ack_still_loads() {
        let old = r#"{"id":"abc","sequence":7,"resume_url":null,"last_ack":5000000}"#;
        let s: Session = serde_json::from_str(old).unwrap();
        assert_eq!(s.last_alive, Timestamp::from_secs(5));
        let new = serde_json::to_string(&s).unwrap();
        assert!(new.contains(r#""last_alive":5000000"#), "{new}");
        assert_eq!(serde_json::from_str::<Session>(&new).unwrap(), s);
    }

    /// A session older than the process: restored into a clock that starts at zero, it is
    /// as old as it is, not as old as the process.
    #[test]
    fn a_restored_session_keeps_an_age_longer_than_the_clock() {
        let s = Session {
            id: "abc".into(),
            sequence: 5,
            resume_url: None,
            last_alive: Timestamp::from_secs(10),
        };
        let restored = s.with_ack_age(Duration::from_millis(119_700), Timestamp::ZERO);
        assert_eq!(
            restored.ack_age(Timestamp::ZERO),
            Duration::from_millis(119_700)
        );
        let later = Timestamp::from_secs(800);
        assert_eq!(restored.ack_age(later), Duration::from_millis(919_700));
        assert!(restored.is_stale(later, Duration::from_secs(900)));
        assert!(!restored.is_stale(Timestamp::from_secs(780), Duration::from_secs(900)));
    }
}
