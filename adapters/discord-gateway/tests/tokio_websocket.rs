//! The tokio shard's WebSocket layer (tokio-websockets) against a bare tokio-tungstenite
//! server on loopback: what `FakeGatewayServer` cannot script. A server ping is answered
//! with the same payload, and a message over `BufferSizes::max_message` ends the connection
//! with a transport error (the shard goes on and reconnects) instead of being read.

use std::time::Duration;

use discord_gateway::tokio::Shard;
use discord_gateway::{BufferSizes, GatewayConfig, Intents, ShardEvent, ShardOptions, Token};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

const LIMIT: Duration = Duration::from_secs(20);
const HELLO: &str = r#"{"op":10,"d":{"heartbeat_interval":60000}}"#;

/// A server that, on every connection, sends Hello and then `after_hello`, and reports each
/// message it receives (and each new connection, as `"connected"`) on the channel.
async fn serve(after_hello: Message) -> (String, mpsc::UnboundedReceiver<Message>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}", listener.local_addr().expect("addr"));
    let (report, reports) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let report = report.clone();
            let after_hello = after_hello.clone();
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                let _ = report.send(Message::text("connected"));
                if ws.send(Message::text(HELLO)).await.is_err()
                    || ws.send(after_hello).await.is_err()
                {
                    return;
                }
                while let Some(Ok(message)) = ws.next().await {
                    let _ = report.send(message);
                }
            });
        }
    });
    (url, reports)
}

fn shard(url: &str, options: ShardOptions) -> Shard {
    let config = GatewayConfig::new(Token::new("test-token"), Intents::GUILDS)
        .with_gateway_url(url)
        .with_auto_grant(true);
    Shard::from_config(config, options.seed(7)).expect("config")
}

#[tokio::test]
async fn a_server_ping_is_answered_with_its_payload() {
    let (url, mut reports) = serve(Message::Ping(b"are you there".to_vec().into())).await;
    let mut shard = shard(&url, ShardOptions::new());
    let answered = async {
        loop {
            tokio::select! {
                _ = shard.next_event() => {}
                message = reports.recv() => match message.expect("server running") {
                    Message::Pong(payload) => return payload,
                    _ => continue,
                },
            }
        }
    };
    let payload = tokio::time::timeout(LIMIT, answered)
        .await
        .expect("pong in time");
    assert_eq!(&payload[..], b"are you there");
}

#[tokio::test]
async fn a_message_over_the_size_limit_ends_the_connection_not_the_shard() {
    let oversized = format!(r#"{{"op":11,"d":null,"pad":"{}"}}"#, "x".repeat(4096));
    let (url, mut reports) = serve(Message::text(oversized)).await;
    let options = ShardOptions::new().buffers(BufferSizes {
        max_message: 1024,
        ..BufferSizes::default()
    });
    let mut shard = shard(&url, options);
    let run = async {
        let mut error = None;
        let mut connections = 0;
        loop {
            tokio::select! {
                event = shard.next_event() => match event.expect("the shard goes on") {
                    ShardEvent::TransportError(text) => error = Some(text),
                    ShardEvent::Fatal(reason) => panic!("fatal: {reason:?}"),
                    _ => {}
                },
                message = reports.recv() => {
                    if message.expect("server running").to_text().ok() == Some("connected") {
                        connections += 1;
                    }
                }
            }
            // The shard reconnected after the oversized message.
            if connections >= 2 {
                if let Some(error) = error {
                    return error;
                }
            }
        }
    };
    let error = tokio::time::timeout(LIMIT, run)
        .await
        .expect("reconnected in time");
    assert!(error.contains("exceeds"), "{error}");
}
