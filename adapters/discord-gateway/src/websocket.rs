//! The WebSocket side every runtime shares: the upgrade request (with Discord's
//! `User-Agent`), buffer sizes fitted to Discord's traffic, and which transport errors mean
//! "nothing yet" rather than "the connection is gone".

use std::io::ErrorKind;
use std::sync::OnceLock;

use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::Request;
use tungstenite::http::header::{HeaderValue, USER_AGENT as USER_AGENT_HEADER};
#[cfg(any(feature = "smol", feature = "blocking"))]
use tungstenite::protocol::WebSocketConfig;

/// The `User-Agent` sent on the WebSocket upgrade, in the form Discord asks of bots:
/// `DiscordBot (<repository URL>, <version>)`. The URL is the package's `repository`, or
/// its crates.io page while none is set.
pub fn user_agent() -> &'static str {
    static AGENT: OnceLock<String> = OnceLock::new();
    AGENT.get_or_init(|| {
        let repository = env!("CARGO_PKG_REPOSITORY");
        let url = if repository.is_empty() {
            concat!("https://crates.io/crates/", env!("CARGO_PKG_NAME"))
        } else {
            repository
        };
        format!("DiscordBot ({url}, {})", env!("CARGO_PKG_VERSION"))
    })
}

/// The upgrade request for `url`: the WebSocket headers plus [`user_agent()`] (or
/// `user_agent`, when the application set its own and it is a valid header value).
pub(crate) fn upgrade_request(
    url: &str,
    user_agent: Option<&str>,
) -> Result<Request, tungstenite::Error> {
    let mut request = url.into_client_request()?;
    let value = user_agent
        .and_then(|custom| HeaderValue::from_str(custom).ok())
        .or_else(|| HeaderValue::from_str(self::user_agent()).ok());
    if let Some(value) = value {
        request.headers_mut().insert(USER_AGENT_HEADER, value);
    }
    Ok(request)
}

/// What a connection needs, shared by every attempt of one shard, whatever the runtime.
#[derive(Debug)]
pub(crate) struct ConnectSettings {
    /// A rustls configuration of the application's, or `None` for the default.
    pub(crate) tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    /// tungstenite's buffer sizes.
    pub(crate) buffers: BufferSizes,
    /// The application's own `User-Agent`, if any.
    pub(crate) user_agent: Option<String>,
}

impl ConnectSettings {
    /// The connection settings of `options` (taken out of them).
    pub(crate) fn take_from(options: &mut crate::ShardOptions) -> Self {
        ConnectSettings {
            tls: options.tls.take(),
            buffers: options.buffers,
            user_agent: options.user_agent.take(),
        }
    }

    /// The target of `url` with these settings' `User-Agent`.
    pub(crate) fn target(&self, url: &str) -> Result<Target, String> {
        Target::parse(url, self.user_agent.as_deref())
    }

    /// The rustls configuration for `wss://`: the application's, or the crate's default.
    pub(crate) fn tls_config(&self) -> Result<std::sync::Arc<rustls::ClientConfig>, String> {
        match &self.tls {
            Some(config) => Ok(std::sync::Arc::clone(config)),
            None => crate::tls::default_tls_config().map_err(|e| e.to_string()),
        }
    }
}

/// Where an upgrade request goes: the request itself, whether it is `wss://`, and the
/// host and port to open TCP to. Every runtime's connect starts here.
#[derive(Debug)]
pub(crate) struct Target {
    /// The upgrade request (with the `User-Agent`).
    pub(crate) request: Request,
    /// `wss://` (TLS) rather than `ws://`.
    pub(crate) secure: bool,
    /// The host, without the brackets of an IPv6 literal.
    pub(crate) host: String,
    /// The port, 443 or 80 by default.
    pub(crate) port: u16,
}

impl Target {
    /// The target of `url`; the error is a readable sentence.
    pub(crate) fn parse(url: &str, user_agent: Option<&str>) -> Result<Target, String> {
        let request = upgrade_request(url, user_agent).map_err(|e| e.to_string())?;
        let uri = request.uri();
        let secure = match uri.scheme_str() {
            Some("wss") => true,
            Some("ws") => false,
            other => return Err(format!("not a WebSocket URL (scheme {other:?})")),
        };
        let host = uri
            .host()
            .ok_or("the URL has no host")?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
        Ok(Target {
            request,
            secure,
            host,
            port,
        })
    }

    /// The TLS server name of the host (the smol and blocking connectors; the tokio one
    /// makes its own in `transport`, shared with `GET /gateway/bot`).
    #[cfg(any(feature = "smol", feature = "blocking"))]
    pub(crate) fn server_name(&self) -> Result<rustls::pki_types::ServerName<'static>, String> {
        rustls::pki_types::ServerName::try_from(self.host.clone())
            .map_err(|e| format!("invalid TLS server name {:?}: {e}", self.host))
    }
}

/// The WebSocket's buffers, sized for Discord. tungstenite's defaults (128 KiB to read,
/// 128 KiB of write batching) are made for bulk transfer; a shard mostly idles between small
/// messages, and thousands of shards may share a process.
///
/// The smol and blocking shards run on tungstenite and use every field. The tokio shard runs
/// on tokio-websockets, which has fewer knobs: it uses `write` and `max_message`, and ignores
/// `read` and `max_write` (see each field).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferSizes {
    /// The read buffer's initial capacity and the most read from the socket at once
    /// (default 8 KiB). A larger message grows the buffer for itself. tungstenite allocates
    /// it when the connection opens and keeps it, so it is most of an idle shard's heap;
    /// 8 KiB reads the firehose as fast as 16 or 64 KiB do, and 4 KiB costs a third more
    /// CPU per event (adapters/bench/README.md, "Read buffer").
    ///
    /// tokio: not used. tokio-websockets starts with an 8 KiB buffer of its own, grows it
    /// for larger messages and reads as much as there is room for.
    pub read: usize,
    /// Bytes buffered before a write goes to the socket (default 0: every message is
    /// written at once; the shard flushes after each anyway).
    ///
    /// tokio: the frames queued before a new message waits for them to be flushed
    /// (tokio-websockets' flush threshold).
    pub write: usize,
    /// The most bytes waiting to be written before a send fails (default 1 MiB; a gateway
    /// command is at most 4 KiB).
    ///
    /// tokio: not used. A new message waits until what is queued passes `write` is flushed,
    /// so the queue never holds more than `write` plus one message; a socket that takes
    /// nothing is caught by the send timeout instead.
    pub max_write: usize,
    /// The largest message accepted (default 64 MiB, as the machine's own limit). A larger
    /// one ends the connection.
    pub max_message: usize,
}

impl Default for BufferSizes {
    fn default() -> Self {
        BufferSizes {
            read: 8 * 1024,
            write: 0,
            max_write: 1024 * 1024,
            max_message: 64 * 1024 * 1024,
        }
    }
}

impl BufferSizes {
    /// tungstenite's configuration with these sizes (the smol and blocking shards).
    #[cfg(any(feature = "smol", feature = "blocking"))]
    pub(crate) fn websocket_config(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .read_buffer_size(self.read.max(256))
            .write_buffer_size(self.write)
            // tungstenite requires the cap to exceed the batching threshold.
            .max_write_buffer_size(self.max_write.max(self.write + 1))
            .max_message_size(Some(self.max_message))
            .max_frame_size(Some(self.max_message))
    }
}

/// tokio-websockets' settings with these sizes: its flush threshold and its limit on a
/// message's (and a frame's) payload.
#[cfg(feature = "tokio")]
pub(crate) fn tokio_websockets_settings(
    sizes: &BufferSizes,
) -> (tokio_websockets::Config, tokio_websockets::Limits) {
    let config = tokio_websockets::Config::default().flush_threshold(sizes.write);
    let limits = tokio_websockets::Limits::default().max_payload_len(Some(sizes.max_message));
    (config, limits)
}

/// Whether a transport error means "nothing yet" (a signal interrupted a blocking call, a
/// non-blocking or timed-out read has no data): the connection is still alive and the
/// call is simply repeated later. Every other error means the connection is gone.
#[cfg(any(feature = "smol", feature = "blocking"))]
pub(crate) fn is_transient(error: &tungstenite::Error) -> bool {
    match error {
        tungstenite::Error::Io(io) => is_transient_io(io.kind()),
        _ => false,
    }
}

/// [`is_transient`] for tokio-websockets' errors.
#[cfg(feature = "tokio")]
pub(crate) fn is_transient_tokio(error: &tokio_websockets::Error) -> bool {
    match error {
        tokio_websockets::Error::Io(io) => is_transient_io(io.kind()),
        _ => false,
    }
}

/// [`is_transient`] for a plain I/O error kind.
pub(crate) fn is_transient_io(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::Interrupted | ErrorKind::WouldBlock | ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upgrade_request_carries_the_user_agent() {
        let request =
            upgrade_request("wss://gateway.discord.gg/?v=10&encoding=json", None).expect("request");
        let agent = request.headers()[USER_AGENT_HEADER]
            .to_str()
            .expect("ascii");
        assert!(agent.starts_with("DiscordBot (https://"), "{agent}");
        assert!(
            agent.ends_with(concat!(", ", env!("CARGO_PKG_VERSION"), ")")),
            "{agent}"
        );
        assert_eq!(request.uri().query(), Some("v=10&encoding=json"));
        let custom = upgrade_request("ws://127.0.0.1:1/", Some("DiscordBot (x, 1)")).unwrap();
        assert_eq!(custom.headers()[USER_AGENT_HEADER], "DiscordBot (x, 1)");
    }

    #[cfg(any(feature = "smol", feature = "blocking"))]
    #[test]
    fn interrupted_and_would_block_are_not_a_lost_connection() {
        for kind in [
            ErrorKind::Interrupted,
            ErrorKind::WouldBlock,
            ErrorKind::TimedOut,
        ] {
            assert!(
                is_transient(&tungstenite::Error::Io(kind.into())),
                "{kind:?}"
            );
        }
        for kind in [
            ErrorKind::ConnectionReset,
            ErrorKind::UnexpectedEof,
            ErrorKind::BrokenPipe,
        ] {
            assert!(
                !is_transient(&tungstenite::Error::Io(kind.into())),
                "{kind:?}"
            );
        }
        assert!(!is_transient(&tungstenite::Error::ConnectionClosed));
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn tokio_websockets_errors_are_judged_like_tungstenites() {
        use tokio_websockets::Error;
        assert!(is_transient_tokio(&Error::Io(
            ErrorKind::Interrupted.into()
        )));
        assert!(is_transient_tokio(&Error::Io(ErrorKind::WouldBlock.into())));
        assert!(!is_transient_tokio(&Error::Io(
            ErrorKind::ConnectionReset.into()
        )));
        assert!(!is_transient_tokio(&Error::AlreadyClosed));
        assert!(!is_transient_tokio(&Error::PayloadTooLong {
            len: 2,
            max_len: 1
        }));
    }

    #[cfg(any(feature = "smol", feature = "blocking"))]
    #[test]
    fn buffer_sizes_make_a_valid_config() {
        let config = BufferSizes::default().websocket_config();
        assert_eq!(config.read_buffer_size, 8 * 1024);
        assert!(config.max_write_buffer_size > config.write_buffer_size);
    }
}
