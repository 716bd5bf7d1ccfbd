//! [`SessionFile`]: a [`Session`] kept in a file between runs, so that a restarted bot
//! resumes (and gets the events it missed) instead of identifying anew.
//!
//! A shard's clock counts from the Unix epoch, so a session saved by one process is as old
//! in the next as the wall clock says: the file holds the session as it is, and the shard
//! that picks it up ([`ShardOptions::session`](crate::ShardOptions::session)) judges it
//! fresh or stale by the same rule as a live one.
//!
//! ```no_run
//! use discord_gateway::tokio::Shard;
//! use discord_gateway::{GatewayConfig, Intents, SessionFile, ShardOptions, Token};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let file = SessionFile::new("session.json");
//! let mut options = ShardOptions::new();
//! if let Some(session) = file.load()? {
//!     options = options.session(session);
//! }
//! let config = GatewayConfig::new(Token::new("token"), Intents::GUILDS);
//! let mut shard = Shard::from_config(config, options)?;
//! // ... run the bot; on Ctrl-C:
//! let session = shard.close(true).await;
//! file.store(session.as_ref())?; // saved, or removed when there is nothing to resume
//! # Ok(())
//! # }
//! ```

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use discord_gateway_proto::{Session, Timestamp};

/// Why a session file could not be read, written or removed. The session itself (and the
/// token, which it never holds) is not part of the message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionFileError {
    /// The file exists but cannot be read.
    #[error("cannot read the session file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The file is not a saved session (another program's file, or damaged).
    #[error("the session file {} is not a saved session ({source}); delete it to start afresh", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the JSON reader found.
        source: serde_json::Error,
    },
    /// The session could not be written.
    #[error("cannot write the session file {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The file could not be removed.
    #[error("cannot remove the session file {}: {source}", path.display())]
    Remove {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

/// A file that holds a bot's [`Session`] between runs, as JSON (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionFile {
    path: PathBuf,
}

impl SessionFile {
    /// The session file at `path` (nothing is read or written yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SessionFile { path: path.into() }
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved session, or `None` when there is no file (a first run, or the last run
    /// ended its session).
    pub fn load(&self) -> Result<Option<Session>, SessionFileError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(SessionFileError::Read {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|source| SessionFileError::Corrupt {
                path: self.path.clone(),
                source,
            })
    }

    /// Saves `session`, atomically: written to a temporary file beside this one, then
    /// renamed over it, so a crash midway leaves the old file or the new one, never half.
    pub fn save(&self, session: &Session) -> Result<(), SessionFileError> {
        let write_error = |source| SessionFileError::Write {
            path: self.path.clone(),
            source,
        };
        let text = serde_json::to_string_pretty(session)
            .map_err(|e| write_error(io::Error::new(io::ErrorKind::InvalidData, e)))?;
        let mut temporary = self.path.clone().into_os_string();
        temporary.push(".tmp");
        let temporary = PathBuf::from(temporary);
        std::fs::write(&temporary, text)
            .and_then(|()| std::fs::rename(&temporary, &self.path))
            .map_err(write_error)
    }

    /// Removes the file, so the next run identifies anew. No file is no error.
    pub fn remove(&self) -> Result<(), SessionFileError> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(SessionFileError::Remove {
                path: self.path.clone(),
                source: e,
            }),
            _ => Ok(()),
        }
    }

    /// What a bot does with `close`'s answer: saves the session if there is one, removes
    /// the file if not.
    pub fn store(&self, session: Option<&Session>) -> Result<(), SessionFileError> {
        match session {
            Some(session) => self.save(session),
            None => self.remove(),
        }
    }
}

/// How long ago `session` last proved alive (its `last_alive`), by the wall clock: for a
/// session from this crate's shards, whose clocks count from the Unix epoch, this is its
/// true age in any process.
#[allow(clippy::disallowed_methods)] // the adapter owns the clock
pub fn session_age(session: &Session) -> Duration {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    session.ack_age(Timestamp::ZERO.saturating_add(since_epoch))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!(
            "discord-gateway-{}-{name}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ))
    }

    fn session() -> Session {
        Session {
            id: "abc".into(),
            sequence: 42,
            resume_url: Some("wss://resume.example".into()),
            last_alive: Timestamp::from_secs(1_700_000_000),
        }
    }

    #[test]
    fn a_saved_session_loads_back_and_a_stored_none_removes_the_file() {
        let file = SessionFile::new(temp_path("round-trip.json"));
        assert_eq!(file.load().unwrap(), None, "no file: nothing to resume");
        file.save(&session()).unwrap();
        assert_eq!(file.load().unwrap(), Some(session()));
        let mut temporary = file.path().as_os_str().to_owned();
        temporary.push(".tmp");
        assert!(!PathBuf::from(temporary).exists(), "renamed into place");
        file.store(None).unwrap();
        assert!(!file.path().exists());
        assert_eq!(file.load().unwrap(), None);
        file.remove().expect("removing no file is fine");
    }

    #[test]
    fn a_file_that_is_not_a_session_is_refused_with_its_path() {
        let file = SessionFile::new(temp_path("corrupt.json"));
        std::fs::write(file.path(), "{\"not\": \"a session\"}").unwrap();
        let error = file.load().unwrap_err();
        let _ = std::fs::remove_file(file.path());
        assert!(
            matches!(error, SessionFileError::Corrupt { .. }),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(message.contains("corrupt.json"), "{message}");
        assert!(message.contains("delete it"), "{message}");
    }

    #[test]
    fn the_age_is_counted_on_the_wall_clock() {
        let mut session = session();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        session.last_alive = Timestamp::ZERO.saturating_add(now - Duration::from_secs(90));
        let age = session_age(&session);
        assert!(
            age >= Duration::from_secs(90) && age < Duration::from_secs(100),
            "{age:?}"
        );
    }
}
