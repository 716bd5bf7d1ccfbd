//! The connection to Redis: one multiplexed connection, dialled lazily, every call bounded by
//! one deadline, and dropped after any failure so the next call dials afresh.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::MultiplexedConnection;
use ::redis::{AsyncConnectionConfig, Client, Script, Value};
use tokio::sync::Mutex;

use super::error::RedisError;

/// How long one call may take by default, dialling included.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// A handle on one Redis server (cheap to clone; clones share the connection).
///
/// Opening never touches the network: the first call dials. A call that fails drops the
/// connection, and the next call dials again, so a restarted Redis is picked up by the next
/// call without any reconnect loop. The URL is kept inside the client and never printed
/// (it may carry a password); errors and `Debug` name only `host:port`.
///
/// # Why not the client's `ConnectionManager`
///
/// redis-rs 1.x offers a `ConnectionManager` that reconnects by itself. It is not used here
/// because a fleet coordinator needs three things from a failure that it does not give:
///
/// - **a stalled server must be left.** The manager reconnects only after errors it deems
///   unrecoverable; a response timeout (a server stopped with SIGSTOP, a network path that
///   silently drops packets) is classed as "retry immediately" and keeps the same dead
///   connection. Here a timeout drops the connection and the next call dials again.
/// - **one deadline per call**, covering dialling and the answer. The manager retries its
///   dial with exponential backoff inside a shared future, so a call can wait through
///   several dial attempts; here a call fails with [`RedisError::TimedOut`] when its
///   deadline passes, and the caller decides when to ask again (the identify queue waits
///   and retries, a shard's periodic save just tries again later).
/// - **a precise reason.** Each failed call reports its own cause (refused, dropped, timed
///   out, a server error), which the fleet turns into an event.
///
/// What is left to write is small: a `Mutex<Option<MultiplexedConnection>>` (dials are
/// serialised, so a hundred shards asking at once make one dial, not a hundred), cloned out
/// for each call (multiplexed: concurrent calls share one socket).
#[derive(Clone)]
pub struct RedisLink {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    target: String,
    call_timeout: Duration,
    /// The connection and its generation (so a failed call drops only the connection it
    /// used, not a newer one another call dialled meanwhile).
    connection: Mutex<(u64, Option<MultiplexedConnection>)>,
}

impl fmt::Debug for RedisLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLink")
            .field("target", &self.inner.target)
            .field("call_timeout", &self.inner.call_timeout)
            .finish_non_exhaustive()
    }
}

impl RedisLink {
    /// A link to the server at `url` (`redis://[:password@]host:port/[db]`) with the
    /// [`DEFAULT_CALL_TIMEOUT`]. Fails only on a malformed URL; nothing is dialled yet.
    pub fn open(url: &str) -> Result<Self, RedisError> {
        Self::open_with_timeout(url, DEFAULT_CALL_TIMEOUT)
    }

    /// A link whose calls each take at most `call_timeout`, dialling included (at least
    /// 1 ms).
    pub fn open_with_timeout(url: &str, call_timeout: Duration) -> Result<Self, RedisError> {
        let client = Client::open(url).map_err(|e| RedisError::BadUrl {
            reason: e.to_string(),
        })?;
        let target = client.get_connection_info().addr().to_string();
        Ok(RedisLink {
            inner: Arc::new(Inner {
                client,
                target,
                call_timeout: call_timeout.max(Duration::from_millis(1)),
                connection: Mutex::new((0, None)),
            }),
        })
    }

    /// `host:port` of the server.
    pub fn target(&self) -> &str {
        &self.inner.target
    }

    /// The deadline of each call.
    pub fn call_timeout(&self) -> Duration {
        self.inner.call_timeout
    }

    /// Asks the server for `PONG`: whether it answers within the call timeout.
    pub async fn ping(&self) -> Result<(), RedisError> {
        let reply = self
            .run("PING", |mut connection| async move {
                ::redis::cmd("PING")
                    .query_async::<Value>(&mut connection)
                    .await
            })
            .await?;
        match reply {
            Value::SimpleString(pong) if pong == "PONG" => Ok(()),
            other => Err(RedisError::bad_reply("PING", format!("{other:?}"))),
        }
    }

    /// Runs `script` with `keys` and `args`, within the call timeout. `EVALSHA` first, the
    /// script's text when the server does not know it (after a restart).
    pub(crate) async fn eval(
        &self,
        what: &'static str,
        script: &Script,
        keys: &[&str],
        args: &[String],
    ) -> Result<Value, RedisError> {
        self.run(what, |mut connection| async move {
            let mut invocation = script.prepare_invoke();
            for key in keys {
                invocation.key(*key);
            }
            for arg in args {
                invocation.arg(arg.as_str());
            }
            invocation.invoke_async::<Value>(&mut connection).await
        })
        .await
    }

    /// Runs one request on the connection (dialling first if there is none), all within the
    /// call timeout; any failure other than a server error drops the connection.
    async fn run<F, Fut>(&self, what: &'static str, request: F) -> Result<Value, RedisError>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: std::future::Future<Output = ::redis::RedisResult<Value>>,
    {
        let mut generation = None;
        let attempt = async {
            let (current, connection) = self.connection().await?;
            generation = Some(current);
            request(connection).await
        };
        let outcome = tokio::time::timeout(self.inner.call_timeout, attempt).await;
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => {
                let error = self.classify(what, &error);
                if error.is_unavailable() || matches!(error, RedisError::BadReply { .. }) {
                    self.drop_connection(generation).await;
                }
                Err(error)
            }
            Err(_elapsed) => {
                self.drop_connection(generation).await;
                Err(RedisError::TimedOut {
                    target: self.inner.target.clone(),
                    after: self.inner.call_timeout,
                    what,
                })
            }
        }
    }

    /// The current connection and its generation, or a new one.
    async fn connection(&self) -> ::redis::RedisResult<(u64, MultiplexedConnection)> {
        let mut slot = self.inner.connection.lock().await;
        if let Some(connection) = slot.1.as_ref() {
            return Ok((slot.0, connection.clone()));
        }
        // The outer deadline bounds the dial too; these only make the client's own timers
        // agree with it.
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.inner.call_timeout))
            .set_response_timeout(Some(self.inner.call_timeout));
        let connection = self
            .inner
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        slot.0 += 1;
        slot.1 = Some(connection.clone());
        Ok((slot.0, connection))
    }

    /// Forgets the connection of `generation` (or, when the call failed while dialling, has
    /// nothing to forget: a failed dial stores nothing).
    async fn drop_connection(&self, generation: Option<u64>) {
        let mut slot = self.inner.connection.lock().await;
        if generation == Some(slot.0) {
            slot.1 = None;
        }
    }

    fn classify(&self, what: &'static str, error: &::redis::RedisError) -> RedisError {
        use ::redis::ErrorKind;
        let target = self.inner.target.clone();
        if error.is_timeout() {
            return RedisError::TimedOut {
                target,
                after: self.inner.call_timeout,
                what,
            };
        }
        match error.kind() {
            ErrorKind::Server(_) | ErrorKind::AuthenticationFailed => RedisError::Server {
                what,
                reason: error.to_string(),
            },
            ErrorKind::Parse | ErrorKind::UnexpectedReturnType => {
                RedisError::bad_reply(what, error.to_string())
            }
            _ => RedisError::Unreachable {
                target,
                reason: error.to_string(),
            },
        }
    }
}
