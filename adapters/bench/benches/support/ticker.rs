//! A control for punctuality figures: a task that asks its runtime for a 10 ms sleep, over
//! and over, and records how late each wake-up was. Run in the fake gateway and in each
//! client process, it tells a stall of the process or the machine (every timer late at
//! once) from a library's own lateness.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::stats::{max, percentile};

const PERIOD: Duration = Duration::from_millis(10);

/// Wake-up lateness samples, in seconds.
#[derive(Clone)]
pub struct Ticker {
    late: Arc<Mutex<Vec<f64>>>,
}

/// How many samples a summary leaves out as the start (`summary_after`).
const PER_SECOND: usize = 100;

impl Ticker {
    /// Starts ticking on the current tokio runtime.
    /// Room for 100,000 samples (over 16 minutes) is taken at once, so that ticking never
    /// allocates: a client measures its heap around it.
    pub fn start() -> Ticker {
        let ticker = Ticker {
            late: Arc::new(Mutex::new(Vec::with_capacity(100_000))),
        };
        let late = Arc::clone(&ticker.late);
        tokio::spawn(async move {
            loop {
                let asked = Instant::now() + PERIOD;
                tokio::time::sleep_until(asked.into()).await;
                let lateness = Instant::now().saturating_duration_since(asked);
                let mut late = late.lock().expect("ticker");
                if late.len() < late.capacity() {
                    late.push(lateness.as_secs_f64());
                }
            }
        });
        ticker
    }

    /// Forgets the samples so far (to measure one window).
    pub fn reset(&self) {
        self.late.lock().expect("ticker").clear();
    }

    /// Max and p99 lateness of the wake-ups so far, in milliseconds.
    pub fn summary(&self) -> Value {
        self.summary_after(0)
    }

    /// [`summary`](Self::summary) of the wake-ups after roughly the first `seconds` (one
    /// sample per 10 ms period; a late wake-up stands for several periods, so this leaves
    /// out at least that long).
    pub fn summary_after(&self, seconds: usize) -> Value {
        let late = self.late.lock().expect("ticker");
        let late = &late[(seconds * PER_SECOND).min(late.len())..];
        json!({
            "ticks": late.len(),
            "late_max_ms": max(late) * 1e3,
            "late_p99_ms": percentile(late, 0.99) * 1e3,
        })
    }
}
