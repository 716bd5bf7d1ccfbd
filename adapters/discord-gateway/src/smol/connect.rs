//! Opening a WebSocket on smol: async-net's TCP (its DNS lookups run on smol's blocking
//! pool; no Nagle), futures-rustls for `wss://`, the upgrade with Discord's `User-Agent`,
//! tungstenite's buffers sized for the gateway.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_net::TcpStream;
use async_tungstenite::WebSocketStream;
use futures_io::{AsyncRead, AsyncWrite};
use futures_rustls::client::TlsStream;
use futures_rustls::TlsConnector;

use crate::websocket::ConnectSettings;

/// An open gateway connection.
pub(crate) type Socket = WebSocketStream<Stream>;

/// Opens a WebSocket to `url` (`ws://` or `wss://`). The error is a readable sentence.
pub(crate) async fn connect(url: String, settings: Arc<ConnectSettings>) -> Result<Socket, String> {
    let target = settings.target(&url)?;
    let (host, port) = (target.host.as_str(), target.port);
    let tcp = TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("TCP connect to {host}:{port} failed: {e}"))?;
    // Gateway messages are small and latency matters (heartbeats): no Nagle delay.
    tcp.set_nodelay(true)
        .map_err(|e| format!("cannot set TCP_NODELAY: {e}"))?;
    let stream = if target.secure {
        let config = settings.tls_config()?;
        let name = target.server_name()?;
        let tls = TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake with {host} failed: {e}"))?;
        Stream::Tls(Box::new(tls))
    } else {
        Stream::Plain(tcp)
    };
    let config = settings.buffers.websocket_config();
    let (socket, _response) =
        async_tungstenite::client_async_with_config(target.request, stream, Some(config))
            .await
            .map_err(|e| format!("WebSocket handshake failed: {e}"))?;
    Ok(socket)
}

/// A TCP stream, plain or in TLS.
///
/// A read or write interrupted by a signal is retried here: async-tungstenite ends its
/// stream on any error but `WouldBlock`, and an interruption is not a lost connection.
#[derive(Debug)]
pub(crate) enum Stream {
    /// `ws://`
    Plain(TcpStream),
    /// `wss://` (boxed: the TLS state is large and most of a shard's life is spent idle).
    Tls(Box<TlsStream<TcpStream>>),
}

/// Repeats `poll` while it reports [`io::ErrorKind::Interrupted`].
fn retry_interrupted<T>(mut poll: impl FnMut() -> Poll<io::Result<T>>) -> Poll<io::Result<T>> {
    loop {
        match poll() {
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        retry_interrupted(|| match this {
            Stream::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        })
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        retry_interrupted(|| match this {
            Stream::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        })
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        retry_interrupted(|| match this {
            Stream::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        })
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        retry_interrupted(|| match this {
            Stream::Plain(tcp) => Pin::new(tcp).poll_close(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_close(cx),
        })
    }
}
