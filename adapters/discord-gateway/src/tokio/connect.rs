//! Opening a WebSocket on tokio: TCP (no Nagle), rustls for `wss://`, then the upgrade
//! with Discord's `User-Agent` by tokio-websockets over that stream (its own TLS is not
//! used: one rustls configuration, ours, for every connection).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use ::tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use ::tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tokio_websockets::{ClientBuilder, WebSocketStream};

use crate::websocket::tokio_websockets_settings;
pub(crate) use crate::websocket::ConnectSettings;

/// An open gateway connection.
pub(crate) type Socket = WebSocketStream<Stream>;

/// Opens a WebSocket to `url` (`ws://` or `wss://`). The error is a readable sentence.
pub(crate) async fn connect(url: String, settings: Arc<ConnectSettings>) -> Result<Socket, String> {
    let target = settings.target(&url)?;
    let tls = match target.secure {
        true => Some(settings.tls_config()?),
        false => None,
    };
    let stream = transport(&target.host, target.port, tls).await?;
    let (config, limits) = tokio_websockets_settings(&settings.buffers);
    let mut builder = ClientBuilder::from_uri(target.request.uri().clone())
        .config(config)
        .limits(limits);
    // The request's own headers: the `User-Agent` (tokio-websockets writes `Host` and the
    // WebSocket headers itself, and refuses them here).
    for (name, value) in target.request.headers() {
        if !tokio_websockets::client::DISALLOWED_HEADERS.contains(name) {
            builder = builder
                .add_header(name.clone(), value.clone())
                .map_err(|e| format!("invalid upgrade header {name}: {e}"))?;
        }
    }
    let (socket, _response) = builder
        .connect_on(stream)
        .await
        .map_err(|e| format!("WebSocket handshake failed: {e}"))?;
    Ok(socket)
}

/// A TCP connection to `host:port` (no Nagle delay: gateway messages are small and
/// latency matters), in TLS with `tls` when given. Shared by the WebSocket and the
/// `GET /gateway/bot` request, so both trust the same roots.
pub(crate) async fn transport(
    host: &str,
    port: u16,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<Stream, String> {
    let tcp = TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("TCP connect to {host}:{port} failed: {e}"))?;
    tcp.set_nodelay(true)
        .map_err(|e| format!("cannot set TCP_NODELAY: {e}"))?;
    let Some(config) = tls else {
        return Ok(Stream::Plain(tcp));
    };
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|e| format!("invalid TLS server name {host:?}: {e}"))?;
    let tls = TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS handshake with {host} failed: {e}"))?;
    Ok(Stream::Tls(Box::new(tls)))
}

/// A TCP stream, plain or in TLS.
#[derive(Debug)]
pub(crate) enum Stream {
    /// `ws://`
    Plain(TcpStream),
    /// `wss://` (boxed: the TLS state is large and most of a shard's life is spent idle).
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    /// Forwarded, so that a frame's header and payload (which tokio-websockets hands over as
    /// two slices) leave in one system call, not two: half the sends of an idle shard.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(tcp) => tcp.is_write_vectored(),
            Stream::Tls(tls) => tls.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::tokio::io::AsyncWriteExt;
    use ::tokio::net::TcpListener;

    /// A frame's header and payload leave in one write: the stream passes vectored writes
    /// through instead of writing only the first slice (the default).
    #[::tokio::test]
    async fn a_vectored_write_takes_every_slice_at_once() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let accept = ::tokio::spawn(async move { listener.accept().await });
        let mut stream = transport("127.0.0.1", address.port(), None)
            .await
            .expect("connect");
        let _peer = accept.await.expect("join").expect("accept");
        assert!(stream.is_write_vectored());
        let header = [0x81u8, 0x85];
        let payload = *b"hello";
        let slices = [io::IoSlice::new(&header), io::IoSlice::new(&payload)];
        let written = stream.write_vectored(&slices).await.expect("write");
        assert_eq!(written, header.len() + payload.len());
    }
}
