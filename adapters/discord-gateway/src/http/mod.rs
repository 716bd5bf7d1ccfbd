//! `GET /gateway/bot`: the gateway URL, the recommended shard count and the daily
//! `session_start_limit` of a bot, read with its token.
//!
//! ```no_run
//! use discord_gateway::http::{get_gateway_bot, GatewayBotError};
//! use discord_gateway::Token;
//!
//! # async fn run() -> Result<(), GatewayBotError> {
//! let token = Token::new(std::env::var("DISCORD_TOKEN").unwrap_or_default());
//! match get_gateway_bot(&token).await {
//!     Ok(bot) => println!("{} shards, {} session starts left", bot.shards, bot.session_start_limit.remaining),
//!     Err(GatewayBotError::Unauthorized) => eprintln!("the token is wrong"),
//!     Err(GatewayBotError::RateLimited { retry_after, .. }) => eprintln!("ask again in {retry_after:?}"),
//!     Err(other) => return Err(other),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Why a hand-written HTTP/1.1 GET
//!
//! A gateway crate makes one REST request, a few times a day. It is sent over the very
//! transport the WebSocket uses (tokio's TCP, rustls with the `ring` provider, the same
//! roots, the same custom `ClientConfig` if you gave one), and its answer is read with
//! `httparse`, the parser the WebSocket handshake already uses: no crate is added to the
//! build, and the TLS settings cannot drift apart between the two. A general HTTP client
//! (`hyper` with `hyper-util` and `hyper-rustls`, or `ureq` with its own TLS setup and
//! blocking I/O) would add a dozen crates for one request that needs no connection pool,
//! no HTTP/2, no redirects and no compression. Use your own client if you have one: the
//! response is [`GatewayBot`], plain serde data.
//!
//! The token goes only into the `Authorization` header: it never appears in an error, in
//! `Debug` output or in a log.

mod response;

use std::sync::Arc;
use std::time::Duration;

use discord_gateway_proto::{GatewayBot, Token};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tungstenite::http::Uri;

use crate::tokio::connect::transport;
use response::{parse, Response, MAX_RESPONSE};

/// Discord's REST API, version 10.
pub const DISCORD_API: &str = "https://discord.com/api/v10";

/// How long one request may take by default, connecting included.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// How long to wait after a 429 that says nothing about it (no body, no `Retry-After`).
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);

/// Why `GET /gateway/bot` gave no answer. The token is never part of it.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayBotError {
    /// 401: Discord does not know the token (wrong, reset, or not a bot token).
    #[error("Discord refused the token (401 Unauthorized)")]
    Unauthorized,
    /// 429: too many requests; ask again after `retry_after`.
    #[error("rate limited by Discord: retry after {retry_after:?}{}", if *global { " (global limit)" } else { "" })]
    RateLimited {
        /// How long to wait (the body's `retry_after`, else the `Retry-After` header, else
        /// 5 s).
        retry_after: Duration,
        /// Whether the bot's global limit was hit, rather than this route's.
        global: bool,
    },
    /// Any other status that is not a success (403, 5xx...).
    #[error("GET /gateway/bot answered {status}: {message}")]
    Status {
        /// The HTTP status code.
        status: u16,
        /// Discord's `message`, or the start of the body.
        message: String,
    },
    /// The connection failed: DNS, TCP, TLS, or the peer went away.
    #[error("GET /gateway/bot failed: {0}")]
    Transport(String),
    /// No complete answer within the timeout.
    #[error("GET /gateway/bot got no answer within {0:?}")]
    TimedOut(Duration),
    /// The answer is not an HTTP response, or a 200 whose body is not a `GatewayBot`.
    #[error("GET /gateway/bot: unreadable answer: {0}")]
    InvalidResponse(String),
    /// The API base URL is not an `http://` or `https://` URL.
    #[error("not an API URL: {0}")]
    InvalidUrl(String),
    /// The token holds characters an HTTP header cannot carry (a line break...). The
    /// token itself is not shown.
    #[error("the token holds characters an HTTP header cannot carry")]
    InvalidToken,
}

/// Reads `GET /gateway/bot` with `token` from Discord (see the module docs): the default
/// [`GatewayBotClient`].
pub async fn get_gateway_bot(token: &Token) -> Result<GatewayBot, GatewayBotError> {
    GatewayBotClient::new().get(token).await
}

/// A `GET /gateway/bot` client: where the API is, how TLS is set up, how long a request may
/// take. Holds no token and no connection (each request opens its own); cheap to clone.
#[derive(Clone)]
pub struct GatewayBotClient {
    api: String,
    tls: Option<Arc<rustls::ClientConfig>>,
    timeout: Duration,
    user_agent: Option<String>,
}

impl std::fmt::Debug for GatewayBotClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayBotClient")
            .field("api", &self.api)
            .field("tls", &self.tls.as_ref().map(|_| "<custom>"))
            .field("timeout", &self.timeout)
            .field("user_agent", &self.user_agent)
            .finish()
    }
}

impl Default for GatewayBotClient {
    fn default() -> Self {
        GatewayBotClient {
            api: DISCORD_API.to_string(),
            tls: None,
            timeout: DEFAULT_HTTP_TIMEOUT,
            user_agent: None,
        }
    }
}

impl GatewayBotClient {
    /// Discord's API, the crate's default TLS configuration, a 10 s timeout.
    pub fn new() -> Self {
        GatewayBotClient::default()
    }

    /// Another API base (a proxy, a test server): `http://` or `https://`, with a path
    /// prefix, e.g. `http://127.0.0.1:8080/api/v10`; `/gateway/bot` is appended.
    pub fn api_base(mut self, url: impl Into<String>) -> Self {
        self.api = url.into();
        self
    }

    /// The rustls configuration for `https://` (the same one you give the shards, to
    /// trust a proxy's CA). Default: [`default_tls_config`](crate::default_tls_config).
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// How long one request may take, connecting included (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The `User-Agent` header (default [`user_agent`](crate::user_agent), the form
    /// Discord asks of bots).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// Reads `GET /gateway/bot` with `token` (with or without its `Bot ` prefix).
    pub async fn get(&self, token: &Token) -> Result<GatewayBot, GatewayBotError> {
        let secret = token.expose_secret();
        if secret.is_empty() || secret.bytes().any(|b| b.is_ascii_control()) {
            return Err(GatewayBotError::InvalidToken);
        }
        let target = Target::parse(&self.api)?;
        let response = tokio::time::timeout(self.timeout, self.exchange(&target, secret))
            .await
            .map_err(|_| GatewayBotError::TimedOut(self.timeout))??;
        read_answer(response)
    }

    /// Sends the request and reads the whole response.
    async fn exchange(&self, target: &Target, secret: &str) -> Result<Response, GatewayBotError> {
        let tls = match (target.secure, &self.tls) {
            (false, _) => None,
            (true, Some(config)) => Some(Arc::clone(config)),
            (true, None) => Some(
                crate::tls::default_tls_config()
                    .map_err(|e| GatewayBotError::Transport(e.to_string()))?,
            ),
        };
        let mut stream = transport(&target.host, target.port, tls)
            .await
            .map_err(GatewayBotError::Transport)?;
        let user_agent = self
            .user_agent
            .as_deref()
            .filter(|agent| !agent.bytes().any(|b| b.is_ascii_control()))
            .unwrap_or(crate::user_agent());
        let request = format!(
            "GET {path}/gateway/bot HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bot {secret}\r\n\
             User-Agent: {user_agent}\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
            path = target.path,
            host = target.host_header,
        );
        let sent = write_all(&mut stream, request.as_bytes()).await;
        drop(request);
        sent.map_err(|e| GatewayBotError::Transport(format!("sending the request: {e}")))?;
        let mut buf = Vec::with_capacity(1024);
        let mut chunk = [0u8; 4096];
        loop {
            let n = read(&mut stream, &mut chunk)
                .await
                .map_err(|e| GatewayBotError::Transport(format!("reading the answer: {e}")))?;
            buf.extend_from_slice(&chunk[..n]);
            if buf.len() > MAX_RESPONSE {
                return Err(GatewayBotError::InvalidResponse(format!(
                    "over {MAX_RESPONSE} bytes"
                )));
            }
            if let Some(response) = parse(&buf, n == 0).map_err(GatewayBotError::InvalidResponse)? {
                return Ok(response);
            }
        }
    }
}

/// Writes all of `bytes` and flushes (tokio's `io-util` helpers, without the feature).
async fn write_all<S: AsyncWrite + Unpin>(stream: &mut S, mut bytes: &[u8]) -> std::io::Result<()> {
    use std::pin::Pin;
    while !bytes.is_empty() {
        let n = std::future::poll_fn(|cx| Pin::new(&mut *stream).poll_write(cx, bytes)).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        bytes = &bytes[n..];
    }
    std::future::poll_fn(|cx| Pin::new(&mut *stream).poll_flush(cx)).await
}

/// Reads what is there into `buf`; 0 at the end of the stream.
async fn read<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut read = ReadBuf::new(buf);
    std::future::poll_fn(|cx| std::pin::Pin::new(&mut *stream).poll_read(cx, &mut read)).await?;
    Ok(read.filled().len())
}

/// Where the request goes.
struct Target {
    secure: bool,
    host: String,
    port: u16,
    /// `Host:` as sent (the port only when it is not the scheme's).
    host_header: String,
    /// The base path, without a trailing slash.
    path: String,
}

impl Target {
    fn parse(api: &str) -> Result<Self, GatewayBotError> {
        let invalid = |why: &str| GatewayBotError::InvalidUrl(format!("{api}: {why}"));
        let uri: Uri = api.parse().map_err(|_| invalid("not a URL"))?;
        let secure = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(invalid("the scheme must be http or https")),
        };
        let host = uri
            .host()
            .ok_or_else(|| invalid("no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let default_port = if secure { 443 } else { 80 };
        let port = uri.port_u16().unwrap_or(default_port);
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
        if authority.contains('@') {
            return Err(invalid("credentials in the URL are not supported"));
        }
        let host_header = if port == default_port {
            uri.host().unwrap_or_default().to_string()
        } else {
            format!("{}:{port}", uri.host().unwrap_or_default())
        };
        Ok(Target {
            secure,
            host,
            port,
            host_header,
            path: uri.path().trim_end_matches('/').to_string(),
        })
    }
}

/// The error body Discord sends with 4xx answers: `message`, `retry_after` (seconds),
/// `global`.
struct ErrorBody {
    message: Option<String>,
    retry_after: Option<f64>,
    global: bool,
}

impl ErrorBody {
    fn read(body: &[u8]) -> Option<Self> {
        let value: serde_json::Value = serde_json::from_slice(body).ok()?;
        Some(ErrorBody {
            message: value.get("message")?.as_str().map(str::to_string),
            retry_after: value.get("retry_after").and_then(serde_json::Value::as_f64),
            global: value
                .get("global")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false),
        })
    }
}

/// The response as a `GatewayBot` or a typed error.
fn read_answer(response: Response) -> Result<GatewayBot, GatewayBotError> {
    let error_body = || ErrorBody::read(&response.body);
    match response.status {
        200..=299 => serde_json::from_slice(&response.body)
            .map_err(|e| GatewayBotError::InvalidResponse(format!("not a GatewayBot: {e}"))),
        401 => Err(GatewayBotError::Unauthorized),
        429 => {
            let body = error_body();
            let retry_after = body
                .as_ref()
                .and_then(|b| b.retry_after)
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(Duration::from_secs_f64)
                .or(response.retry_after)
                .unwrap_or(DEFAULT_RETRY_AFTER);
            Err(GatewayBotError::RateLimited {
                retry_after,
                global: body.is_some_and(|b| b.global),
            })
        }
        status => {
            let message = error_body()
                .and_then(|b| b.message)
                .unwrap_or_else(|| String::from_utf8_lossy(&response.body).into_owned());
            Err(GatewayBotError::Status {
                status,
                message: message.chars().take(200).collect(),
            })
        }
    }
}

#[cfg(feature = "redis")]
impl GatewayBotClient {
    /// This client as the Redis identify queue's
    /// [`LimitSource`](crate::redis::LimitSource): when Redis holds no session-start
    /// budget, it is read from `GET /gateway/bot` with `token`.
    pub fn limit_source(self, token: Token) -> impl crate::redis::LimitSource {
        let shared = Arc::new((self, token));
        move || {
            let shared = Arc::clone(&shared);
            async move {
                let (client, token) = &*shared;
                client
                    .get(token)
                    .await
                    .map(|bot| bot.session_start_limit)
                    .map_err(|e| Box::new(e) as crate::redis::LimitSourceError)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str, retry_after: Option<Duration>) -> Response {
        Response {
            status,
            retry_after,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn targets_keep_their_path_and_port() {
        let t = Target::parse("https://discord.com/api/v10/").unwrap();
        assert_eq!((t.secure, t.port, t.path.as_str()), (true, 443, "/api/v10"));
        assert_eq!(t.host_header, "discord.com");
        let t = Target::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!((t.secure, t.port, t.path.as_str()), (false, 8080, ""));
        assert_eq!(t.host_header, "127.0.0.1:8080");
        assert!(Target::parse("ftp://x").is_err());
        assert!(Target::parse("https://user:pw@x/").is_err());
    }

    #[test]
    fn answers_are_typed() {
        let ok = r#"{"url":"wss://gateway.discord.gg","shards":9,"session_start_limit":{"total":1000,"remaining":999,"reset_after":14400000,"max_concurrency":1}}"#;
        assert_eq!(read_answer(response(200, ok, None)).unwrap().shards, 9);
        assert_eq!(
            read_answer(response(
                401,
                r#"{"message":"401: Unauthorized","code":0}"#,
                None
            )),
            Err(GatewayBotError::Unauthorized)
        );
        assert_eq!(
            read_answer(response(
                429,
                r#"{"message":"You are being rate limited.","retry_after":1.5,"global":true}"#,
                Some(Duration::from_secs(2))
            )),
            Err(GatewayBotError::RateLimited {
                retry_after: Duration::from_millis(1500),
                global: true
            })
        );
        // Cloudflare's 429 is HTML: the header decides.
        assert_eq!(
            read_answer(response(429, "<html>", Some(Duration::from_secs(2)))),
            Err(GatewayBotError::RateLimited {
                retry_after: Duration::from_secs(2),
                global: false
            })
        );
        assert!(matches!(
            read_answer(response(502, "bad gateway", None)),
            Err(GatewayBotError::Status { status: 502, ref message }) if message == "bad gateway"
        ));
        assert!(matches!(
            read_answer(response(200, "{}", None)),
            Err(GatewayBotError::InvalidResponse(_))
        ));
    }
}
