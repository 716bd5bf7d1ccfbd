//! Reads back what criterion measured in this run, to print ratios between a bench and its
//! baselines (criterion reports each bench alone).
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::SystemTime;

/// Criterion's results of this run.
pub struct Results {
    dir: PathBuf,
    started: SystemTime,
}

impl Results {
    /// Call at the start of the bench's `main`; results older than that are ignored.
    pub fn start() -> Self {
        // Where criterion writes, found the way criterion finds it.
        let dir = std::env::var_os("CRITERION_HOME")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("CARGO_TARGET_DIR").map(|d| PathBuf::from(d).join("criterion"))
            })
            .or_else(|| {
                // <target>/release/deps/<bench>: three levels up is <target>.
                let exe = std::env::current_exe().ok()?;
                Some(exe.parent()?.parent()?.parent()?.join("criterion"))
            })
            .unwrap_or_else(|| PathBuf::from("target/criterion"));
        // The run's start, as the file system sees it (no clock read): a marker file.
        let marker = dir.join(".run-started");
        let started = std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(&marker, b""))
            .and_then(|()| std::fs::metadata(&marker)?.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        Results { dir, started }
    }

    /// Nanoseconds per iteration (criterion's median estimate) of `group/function`, if it
    /// ran in this process.
    pub fn nanos(&self, group: &str, function: &str) -> Option<f64> {
        let path = self
            .dir
            .join(group)
            .join(function)
            .join("new")
            .join("estimates.json");
        let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
        if modified < self.started {
            return None;
        }
        let text = std::fs::read_to_string(&path).ok()?;
        let json: serde_json::Value = serde_json::from_str(&text).ok()?;
        json["median"]["point_estimate"].as_f64()
    }

    /// Where a report file goes.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// `a / b`, if both are known and `b` is positive.
pub fn divide(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

/// A ratio formatted (two decimals below 10x, where targets such as 1.3x or 1.15x are
/// judged; one above), or `-`.
pub fn format_ratio(ratio: Option<f64>) -> String {
    match ratio {
        Some(r) if r < 10.0 => format!("{r:.2}x"),
        Some(r) => format!("{r:.1}x"),
        None => "-".into(),
    }
}
