//! `wss://`: a shard connects over rustls to a loopback gateway with a self-signed
//! certificate (trusted through `ShardOptions::tls_config`), and with the default
//! configuration it refuses that certificate with a transport error, never a panic (no
//! process-level `CryptoProvider` is installed anywhere in this test binary).

use std::sync::Arc;
use std::time::Duration;

use discord_gateway::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use discord_gateway::rustls::{ClientConfig, RootCertStore, ServerConfig};
use discord_gateway::tokio::Shard;
use discord_gateway::{GatewayConfig, Intents, ShardEvent, ShardOptions, Token};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::Message;

const HELLO: &str = r#"{"op":10,"d":{"heartbeat_interval":41250}}"#;
const READY: &str = r#"{"t":"READY","s":1,"op":0,"d":{"v":10,"session_id":"tls","resume_gateway_url":"wss://localhost:9","user":{"id":"1"},"guilds":[]}}"#;

/// A certificate for `localhost`, and a gateway serving Hello, then READY after the
/// client's Identify, over TLS with it. Returns the certificate and the URL.
async fn tls_gateway() -> (CertificateDer<'static>, String) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    let cert = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let provider = Arc::new(discord_gateway::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .expect("server config");
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!(
        "wss://localhost:{}",
        listener.local_addr().expect("addr").port()
    );
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut ws) = tokio_tungstenite::accept_async(tls).await else {
                    return;
                };
                let _ = ws.send(Message::text(HELLO)).await;
                while let Some(Ok(message)) = ws.next().await {
                    if message.to_text().is_ok_and(|t| t.contains(r#""op":2"#)) {
                        let _ = ws.send(Message::text(READY)).await;
                    }
                }
            });
        }
    });
    (cert, url)
}

fn config(url: &str) -> GatewayConfig {
    GatewayConfig::new(Token::new("test-token"), Intents::GUILDS)
        .with_gateway_url(url)
        .with_auto_grant(true)
}

#[tokio::test]
async fn a_shard_identifies_over_wss() {
    let (cert, url) = tls_gateway().await;
    let mut roots = RootCertStore::empty();
    roots.add(cert).expect("root");
    let provider = Arc::new(discord_gateway::rustls::crypto::ring::default_provider());
    let tls = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let options = ShardOptions::new().tls_config(Arc::new(tls));
    let mut shard = Shard::from_config(config(&url), options).expect("config");
    let ready = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(event) = shard.next_event().await {
            match event {
                ShardEvent::Ready(info) => return info.session_id,
                ShardEvent::TransportError(e) => panic!("{e}"),
                _ => {}
            }
        }
        panic!("the shard ended");
    })
    .await
    .expect("READY in time");
    assert_eq!(ready, "tls");
}

#[tokio::test]
async fn the_default_tls_config_refuses_an_unknown_issuer_without_panicking() {
    let (_cert, url) = tls_gateway().await;
    let mut shard = Shard::from_config(config(&url), ShardOptions::new()).expect("config");
    let error = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(event) = shard.next_event().await {
            if let ShardEvent::TransportError(error) = event {
                return error;
            }
        }
        panic!("the shard ended");
    })
    .await
    .expect("an error in time");
    assert!(
        error.contains("TLS handshake with localhost failed"),
        "{error}"
    );
    assert!(error.contains("UnknownIssuer"), "{error}");
    // The shard goes on: it reconnects (and fails again) rather than stopping.
    let next = tokio::time::timeout(Duration::from_secs(10), shard.next_event())
        .await
        .expect("in time");
    assert!(
        matches!(next, Some(ShardEvent::Disconnected { .. })),
        "{next:?}"
    );
}

/// A client configuration trusting `cert` only.
fn trusting(cert: CertificateDer<'static>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(cert).expect("root");
    let provider = Arc::new(discord_gateway::rustls::crypto::ring::default_provider());
    let tls = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(tls)
}

/// The first READY's session id, or the first transport error, of a blocking shard.
fn blocking_outcome(shard: &mut discord_gateway::blocking::Shard) -> Result<String, String> {
    loop {
        match shard.next_event_timeout(Duration::from_secs(10)) {
            Ok(ShardEvent::Ready(info)) => return Ok(info.session_id),
            Ok(ShardEvent::TransportError(error)) => return Err(error),
            Ok(_) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
}

/// The blocking shard: a non-blocking rustls handshake, with `localhost` resolved on the
/// DNS helper thread.
#[tokio::test]
async fn a_blocking_shard_identifies_over_wss_and_refuses_an_unknown_issuer() {
    use discord_gateway::blocking::Shard;
    let (cert, url) = tls_gateway().await;
    let outcomes = tokio::task::spawn_blocking(move || {
        let options = ShardOptions::new().tls_config(trusting(cert));
        let mut trusting = Shard::from_config(config(&url), options).expect("config");
        let mut default = Shard::from_config(config(&url), ShardOptions::new()).expect("config");
        (
            blocking_outcome(&mut trusting),
            blocking_outcome(&mut default),
        )
    })
    .await
    .expect("the shards' thread");
    assert_eq!(outcomes.0, Ok("tls".to_string()));
    let error = outcomes.1.expect_err("refused");
    assert!(
        error.contains("TLS handshake with localhost failed"),
        "{error}"
    );
    assert!(error.contains("UnknownIssuer"), "{error}");
}

/// The smol shard: futures-rustls with the same configuration.
#[tokio::test]
async fn a_smol_shard_identifies_over_wss_and_refuses_an_unknown_issuer() {
    use discord_gateway::smol::Shard;
    async fn outcome(shard: &mut Shard) -> Result<String, String> {
        while let Some(event) = shard.next_event().await {
            match event {
                ShardEvent::Ready(info) => return Ok(info.session_id),
                ShardEvent::TransportError(error) => return Err(error),
                _ => {}
            }
        }
        panic!("the shard ended");
    }
    let (cert, url) = tls_gateway().await;
    let outcomes = tokio::task::spawn_blocking(move || {
        smol::block_on(async {
            let options = ShardOptions::new().tls_config(trusting(cert));
            let mut trusting = Shard::from_config(config(&url), options).expect("config");
            let mut default =
                Shard::from_config(config(&url), ShardOptions::new()).expect("config");
            let limit = Duration::from_secs(10);
            let in_time = |future| async move {
                smol::future::or(async { Some(future.await) }, async {
                    smol::Timer::after(limit).await;
                    None
                })
                .await
                .expect("in time")
            };
            (
                in_time(Box::pin(outcome(&mut trusting))).await,
                in_time(Box::pin(outcome(&mut default))).await,
            )
        })
    })
    .await
    .expect("the shards' thread");
    assert_eq!(outcomes.0, Ok("tls".to_string()));
    let error = outcomes.1.expect_err("refused");
    assert!(
        error.contains("TLS handshake with localhost failed"),
        "{error}"
    );
    assert!(error.contains("UnknownIssuer"), "{error}");
}
