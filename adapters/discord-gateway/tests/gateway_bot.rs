//! `GET /gateway/bot` against a loopback HTTP server of the test's own (plain, and over TLS
//! with a self-signed certificate): the request Discord expects, the answer read through
//! each body framing, 401 and 429 as typed errors, timeouts and refused connections, and
//! the token in none of them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use discord_gateway::http::{GatewayBotClient, GatewayBotError};
use discord_gateway::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use discord_gateway::rustls::{ClientConfig, RootCertStore, ServerConfig};
use discord_gateway::{SessionStartLimit, Token};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const SECRET: &str = "MTIz.secret-token.never-shown";
const BODY: &str = r#"{"url":"wss://gateway.discord.gg","shards":24,"session_start_limit":{"total":1000,"remaining":987,"reset_after":3600000,"max_concurrency":16}}"#;

/// What the server answers: the response, in pieces written apart (to cross reads), and
/// whether it then keeps the connection open.
#[derive(Clone)]
struct Answer {
    pieces: Vec<Vec<u8>>,
    hold_open: bool,
}

impl Answer {
    fn whole(text: &str) -> Self {
        Answer {
            pieces: vec![text.as_bytes().to_vec()],
            hold_open: false,
        }
    }
}

/// A loopback HTTP server answering every request with `answer`; returns its base URL and
/// the requests it received.
async fn server(
    answer: Option<Answer>,
    tls: Option<TlsAcceptor>,
) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let scheme = if tls.is_some() {
        "https://localhost"
    } else {
        "http://127.0.0.1"
    };
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (answer, seen, tls) = (answer.clone(), seen.clone(), tls.clone());
            tokio::spawn(async move {
                match tls {
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(tcp).await {
                            serve(stream, answer, seen).await;
                        }
                    }
                    None => serve(tcp, answer, seen).await,
                }
            });
        }
    });
    (format!("{scheme}:{port}/api/v10"), requests)
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    answer: Option<Answer>,
    seen: Arc<Mutex<Vec<String>>>,
) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.unwrap_or(0) == 0 {
            return;
        }
        head.push(byte[0]);
    }
    seen.lock()
        .unwrap()
        .push(String::from_utf8_lossy(&head).into_owned());
    let Some(answer) = answer else {
        // Never answer.
        tokio::time::sleep(Duration::from_secs(60)).await;
        return;
    };
    for piece in &answer.pieces {
        let _ = stream.write_all(piece).await;
        let _ = stream.flush().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if answer.hold_open {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    let _ = stream.shutdown().await;
}

fn token() -> Token {
    Token::new(format!("Bot {SECRET}"))
}

fn assert_no_secret(error: &GatewayBotError) {
    assert!(!format!("{error}").contains(SECRET), "{error}");
    assert!(!format!("{error:?}").contains(SECRET), "{error:?}");
}

#[tokio::test]
async fn the_request_is_discords_and_a_chunked_answer_is_read() {
    let chunked = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{}\r\n{:x}\r\n{}\r\n0\r\n\r\n",
        40,
        &BODY[..40],
        BODY.len() - 40,
        &BODY[40..]
    );
    let bytes = chunked.into_bytes();
    // Cut through the head and through a chunk, and keep the connection open: the client
    // stops at the last chunk, not at the end of the connection.
    let answer = Answer {
        pieces: vec![
            bytes[..30].to_vec(),
            bytes[30..120].to_vec(),
            bytes[120..].to_vec(),
        ],
        hold_open: true,
    };
    let (url, requests) = server(Some(answer), None).await;
    let client = GatewayBotClient::new()
        .api_base(&url)
        .timeout(Duration::from_secs(5));
    let bot = client.get(&token()).await.expect("GatewayBot");
    assert_eq!(bot.url, "wss://gateway.discord.gg");
    assert_eq!(bot.shards, 24);
    assert_eq!(
        bot.session_start_limit,
        SessionStartLimit {
            total: 1000,
            remaining: 987,
            reset_after: 3_600_000,
            max_concurrency: 16
        }
    );
    let requests = requests.lock().unwrap();
    let request = &requests[0];
    assert!(
        request.starts_with("GET /api/v10/gateway/bot HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(
        request.contains(&format!("\r\nAuthorization: Bot {SECRET}\r\n")),
        "{request}"
    );
    assert!(request.contains(&format!(
        "\r\nUser-Agent: {}\r\n",
        discord_gateway::user_agent()
    )));
    assert!(request.contains(&format!(
        "\r\nHost: {}\r\n",
        url.trim_start_matches("http://")
            .trim_end_matches("/api/v10")
    )));
    // The client's Debug carries no token (it holds none).
    assert!(!format!("{client:?}").contains(SECRET));
}

#[tokio::test]
async fn content_length_and_close_delimited_answers_are_read() {
    let with_length = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let mut answer = Answer::whole(&with_length);
    answer.hold_open = true;
    let (url, _) = server(Some(answer), None).await;
    let bot = GatewayBotClient::new()
        .api_base(url)
        .get(&token())
        .await
        .unwrap();
    assert_eq!(bot.shards, 24);

    let until_close = format!("HTTP/1.0 200 OK\r\n\r\n{BODY}");
    let (url, _) = server(Some(Answer::whole(&until_close)), None).await;
    let bot = GatewayBotClient::new()
        .api_base(url)
        .get(&token())
        .await
        .unwrap();
    assert_eq!(bot.session_start_limit.max_concurrency, 16);
}

#[tokio::test]
async fn unauthorized_and_rate_limited_are_typed_and_never_show_the_token() {
    let body = r#"{"message": "401: Unauthorized", "code": 0}"#;
    let text = format!(
        "HTTP/1.1 401 Unauthorized\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let (url, _) = server(Some(Answer::whole(&text)), None).await;
    let error = GatewayBotClient::new()
        .api_base(url)
        .get(&token())
        .await
        .unwrap_err();
    assert_eq!(error, GatewayBotError::Unauthorized);
    assert_no_secret(&error);

    let body =
        r#"{"message": "You are being rate limited.", "retry_after": 64.57, "global": false}"#;
    let text = format!(
        "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 65\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let (url, _) = server(Some(Answer::whole(&text)), None).await;
    let error = GatewayBotClient::new()
        .api_base(url)
        .get(&token())
        .await
        .unwrap_err();
    assert_eq!(
        error,
        GatewayBotError::RateLimited {
            retry_after: Duration::from_secs_f64(64.57),
            global: false
        }
    );
    assert_no_secret(&error);

    let text = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";
    let (url, _) = server(Some(Answer::whole(text)), None).await;
    let error = GatewayBotClient::new()
        .api_base(url)
        .get(&token())
        .await
        .unwrap_err();
    assert!(
        matches!(error, GatewayBotError::Status { status: 503, .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn silence_times_out_and_a_closed_port_is_a_transport_error() {
    let (url, requests) = server(None, None).await;
    let started = tokio::time::Instant::now();
    let error = GatewayBotClient::new()
        .api_base(url)
        .timeout(Duration::from_millis(300))
        .get(&token())
        .await
        .unwrap_err();
    assert_eq!(error, GatewayBotError::TimedOut(Duration::from_millis(300)));
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(requests.lock().unwrap().len(), 1);

    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let error = GatewayBotClient::new()
        .api_base(format!("http://127.0.0.1:{port}/api/v10"))
        .get(&token())
        .await
        .unwrap_err();
    assert!(matches!(error, GatewayBotError::Transport(_)), "{error:?}");
    assert_no_secret(&error);

    // A token that would break the header is refused before anything is sent.
    let error = GatewayBotClient::new()
        .api_base(format!("http://127.0.0.1:{port}"))
        .get(&Token::new("abc\r\nX-Evil: 1"))
        .await
        .unwrap_err();
    assert_eq!(error, GatewayBotError::InvalidToken);
}

#[tokio::test]
async fn https_uses_the_given_tls_config_and_the_default_refuses_an_unknown_issuer() {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    let cert: CertificateDer<'static> = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let provider = Arc::new(discord_gateway::rustls::crypto::ring::default_provider());
    let server_config = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let text = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let (url, _) = server(
        Some(Answer::whole(&text)),
        Some(TlsAcceptor::from(Arc::new(server_config))),
    )
    .await;
    let mut roots = RootCertStore::empty();
    roots.add(cert).unwrap();
    let client_config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let bot = GatewayBotClient::new()
        .api_base(&url)
        .tls_config(Arc::new(client_config))
        .get(&token())
        .await
        .expect("over TLS");
    assert_eq!(bot.shards, 24);
    let error = GatewayBotClient::new()
        .api_base(&url)
        .get(&token())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, GatewayBotError::Transport(why) if why.contains("TLS")),
        "{error:?}"
    );
}
