//! The blocking shard's byte stream (TCP, plain or in rustls, non-blocking underneath) and
//! what one read or one flush of the WebSocket on it means for the loop.

use std::io::{self, ErrorKind, Read, Write};

use mio::net::TcpStream;
use rustls::{ClientConnection, StreamOwned};
use tungstenite::{Error as WsError, Message as WsMessage, WebSocket};

use crate::websocket::is_transient;

/// An open gateway connection.
pub(crate) type Socket = WebSocket<Stream>;

/// A non-blocking TCP stream, plain or in TLS.
///
/// A read or write interrupted by a signal is retried here at once; tungstenite sees
/// `WouldBlock` when there is nothing to read or no room to write, keeps its state (a
/// partial frame stays buffered) and is called again when the socket is ready.
#[derive(Debug)]
pub(crate) enum Stream {
    /// `ws://`
    Plain(TcpStream),
    /// `wss://` (boxed: the TLS state is large and most of a shard's life is spent idle).
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

/// Repeats `call` while it reports [`ErrorKind::Interrupted`].
fn retry_interrupted<T>(mut call: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match call() {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        retry_interrupted(|| match self {
            Stream::Plain(tcp) => tcp.read(buf),
            Stream::Tls(tls) => tls.read(buf),
        })
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        retry_interrupted(|| match self {
            Stream::Plain(tcp) => tcp.write(buf),
            Stream::Tls(tls) => tls.write(buf),
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        retry_interrupted(|| match self {
            Stream::Plain(tcp) => tcp.flush(),
            Stream::Tls(tls) => tls.flush(),
        })
    }
}

/// What one read of the WebSocket gave.
#[derive(Debug)]
pub(crate) enum Received {
    /// A message (text, binary, ping, pong...).
    Message(WsMessage),
    /// The peer's close frame (`None`: a close frame without a status).
    Closed(Option<(u16, String)>),
    /// Nothing yet (`WouldBlock`, `Interrupted`, `TimedOut`): the connection is alive and
    /// whatever part of a frame arrived stays buffered for the next read.
    Nothing,
    /// The connection is gone without a close frame (`None`: it just ended).
    Lost(Option<String>),
}

/// Reads one message from `socket`, if one is complete.
pub(crate) fn receive<S: Read + Write>(socket: &mut WebSocket<S>) -> Received {
    match socket.read() {
        Ok(WsMessage::Close(frame)) => {
            Received::Closed(frame.map(|f| (u16::from(f.code), f.reason.as_str().to_owned())))
        }
        Ok(message) => Received::Message(message),
        Err(e) if is_transient(&e) => Received::Nothing,
        Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => Received::Lost(None),
        Err(e) => Received::Lost(Some(e.to_string())),
    }
}

/// Writes out what `socket` holds. `Ok(true)` when everything left, `Ok(false)` when the
/// socket has no room yet (the rest stays buffered), `Err` when the connection is gone.
pub(crate) fn flush<S: Read + Write>(socket: &mut WebSocket<S>) -> Result<bool, String> {
    match socket.flush() {
        Ok(()) => Ok(true),
        Err(e) if is_transient(&e) => Ok(false),
        Err(e) => Err(format!("send failed: {e}")),
    }
}

/// Queues `message` on `socket` and writes out what it can. `Ok(None)` when it was taken
/// (sent, or buffered behind a full socket), `Ok(Some(message))` when tungstenite's write
/// buffer is full (try again after a flush), `Err` when the connection is gone.
pub(crate) fn write<S: Read + Write>(
    socket: &mut WebSocket<S>,
    message: WsMessage,
) -> Result<Option<WsMessage>, String> {
    match socket.write(message) {
        Ok(()) => Ok(None),
        // The frame is in tungstenite's buffer; the socket takes it later.
        Err(e) if is_transient(&e) => Ok(None),
        Err(WsError::WriteBufferFull(message)) => Ok(Some(*message)),
        Err(e) => Err(format!("send failed: {e}")),
    }
}

#[cfg(test)]
mod tests {
    //! Issue #14 item 13 at the WebSocket level: a signal (`Interrupted`), a non-blocking
    //! socket with nothing yet (`WouldBlock`) and a read timeout (`TimedOut`) in the middle
    //! of a frame, in reads and in writes, lose nothing and drop nothing.

    use super::*;
    use std::collections::VecDeque;
    use tungstenite::protocol::Role;

    /// A scripted stream: each read takes the next step (bytes, or an error of a kind);
    /// writes fail with the next scripted error, if any, then go to `written`.
    struct Scripted {
        reads: VecDeque<Result<Vec<u8>, ErrorKind>>,
        write_errors: VecDeque<ErrorKind>,
        written: Vec<u8>,
    }

    impl Read for Scripted {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.reads.pop_front() {
                Some(Ok(bytes)) => {
                    buf[..bytes.len()].copy_from_slice(&bytes);
                    Ok(bytes.len())
                }
                Some(Err(kind)) => Err(kind.into()),
                None => Err(ErrorKind::WouldBlock.into()),
            }
        }
    }

    impl Write for Scripted {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if let Some(kind) = self.write_errors.pop_front() {
                return Err(kind.into());
            }
            // A slow socket: at most 7 bytes at a time, so frames leave in pieces.
            let n = buf.len().min(7);
            self.written.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// An unmasked server text frame.
    fn server_frame(text: &str) -> Vec<u8> {
        assert!(text.len() < 126);
        let mut frame = vec![0x81, text.len() as u8];
        frame.extend_from_slice(text.as_bytes());
        frame
    }

    fn client(
        reads: Vec<Result<Vec<u8>, ErrorKind>>,
        write_errors: Vec<ErrorKind>,
    ) -> WebSocket<Scripted> {
        let stream = Scripted {
            reads: reads.into(),
            write_errors: write_errors.into(),
            written: Vec::new(),
        };
        // The shard's own configuration (no write batching: a frame goes out at once).
        let config = crate::websocket::BufferSizes::default().websocket_config();
        WebSocket::from_raw_socket(stream, Role::Client, Some(config))
    }

    #[test]
    fn a_frame_interrupted_in_the_middle_is_continued_not_dropped() {
        let frame = server_frame(r#"{"op":11}"#);
        let next = server_frame(r#"{"op":1,"d":null}"#);
        let mut reads = vec![Ok(frame[..1].to_vec())];
        for kind in [
            ErrorKind::Interrupted,
            ErrorKind::WouldBlock,
            ErrorKind::TimedOut,
        ] {
            reads.push(Err(kind));
        }
        reads.push(Ok(frame[1..5].to_vec()));
        reads.push(Err(ErrorKind::Interrupted));
        reads.push(Ok(frame[5..].to_vec()));
        reads.push(Ok(next.clone()));
        let mut socket = client(reads, Vec::new());
        let mut texts = Vec::new();
        let mut nothing = 0;
        for _ in 0..20 {
            match receive(&mut socket) {
                Received::Message(WsMessage::Text(text)) => texts.push(text.as_str().to_owned()),
                Received::Nothing => nothing += 1,
                other => panic!("{other:?}"),
            }
            if texts.len() == 2 {
                break;
            }
        }
        assert_eq!(texts, [r#"{"op":11}"#, r#"{"op":1,"d":null}"#]);
        assert_eq!(nothing, 4, "each interruption is 'nothing yet'");
        // Nothing more has arrived: still not a loss.
        assert!(matches!(receive(&mut socket), Received::Nothing));
    }

    #[test]
    fn a_send_interrupted_in_the_middle_is_finished_not_dropped() {
        let mut socket = client(
            Vec::new(),
            vec![
                ErrorKind::Interrupted,
                ErrorKind::WouldBlock,
                ErrorKind::TimedOut,
            ],
        );
        let text = r#"{"op":1,"d":41}"#;
        // The first write meets the signal: the frame stays buffered, nothing is lost.
        assert!(matches!(
            write(&mut socket, WsMessage::text(text)),
            Ok(None)
        ));
        let mut flushes = 0;
        while !flush(&mut socket).expect("alive") {
            flushes += 1;
            assert!(flushes < 10, "the flush never finishes");
        }
        assert_eq!(flushes, 2, "WouldBlock and TimedOut are 'not yet'");
        // One whole masked client frame: header (2 bytes), mask (4), payload.
        let written = &socket.get_ref().written;
        assert_eq!(written.len(), 2 + 4 + text.len());
        assert_eq!(written[0], 0x81);
        let mask = &written[2..6];
        let payload: Vec<u8> = written[6..]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i % 4])
            .collect();
        assert_eq!(payload, text.as_bytes());
    }

    #[test]
    fn a_reset_is_a_lost_connection() {
        let mut socket = client(vec![Err(ErrorKind::ConnectionReset)], Vec::new());
        assert!(matches!(receive(&mut socket), Received::Lost(Some(_))));
        let mut socket = client(vec![Ok(Vec::new())], Vec::new());
        assert!(matches!(receive(&mut socket), Received::Lost(_)));
    }
}
