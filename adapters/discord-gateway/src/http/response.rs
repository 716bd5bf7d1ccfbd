//! Reading one HTTP/1.1 response: the status line and headers (httparse, already the
//! WebSocket handshake's parser), then a body framed by `Content-Length`, by chunks, or by
//! the end of the connection. Pure functions over the bytes read so far, so the framing is
//! tested without a socket.

use std::time::Duration;

/// The most a response may take, head and body: `GET /gateway/bot` answers in about
/// 200 bytes, so anything near this is not Discord.
pub(crate) const MAX_RESPONSE: usize = 256 * 1024;

/// A complete response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Response {
    /// The status code.
    pub(crate) status: u16,
    /// The `Retry-After` header, in seconds, if present and readable.
    pub(crate) retry_after: Option<Duration>,
    /// The body, de-chunked.
    pub(crate) body: Vec<u8>,
}

/// How the body is delimited.
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

/// Reads a response from the bytes received so far. `Ok(None)`: more bytes are needed
/// (`eof` false), `Err`: the bytes are not a response this client can read.
pub(crate) fn parse(buf: &[u8], eof: bool) -> Result<Option<Response>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut head = httparse::Response::new(&mut headers);
    let head_len = match head.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if eof => {
            return Err("the connection closed before the response's headers ended".into())
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("not an HTTP/1.x response: {e}")),
    };
    let status = head.code.ok_or("no status code")?;
    let mut framing = Framing::UntilClose;
    let mut retry_after = None;
    for header in head.headers.iter() {
        let value = std::str::from_utf8(header.value).unwrap_or("").trim();
        if header.name.eq_ignore_ascii_case("content-length") {
            let length = value
                .parse::<usize>()
                .map_err(|_| format!("bad Content-Length {value:?}"))?;
            if !matches!(framing, Framing::Chunked) {
                framing = Framing::Length(length);
            }
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            if value
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
            {
                framing = Framing::Chunked;
            }
        } else if header.name.eq_ignore_ascii_case("retry-after") {
            retry_after = value
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(Duration::from_secs_f64);
        }
    }
    let rest = &buf[head_len..];
    let body = match framing {
        Framing::Length(length) if rest.len() >= length => Some(rest[..length].to_vec()),
        Framing::Length(length) if eof => {
            return Err(format!(
                "the connection closed after {} of {length} body bytes",
                rest.len()
            ))
        }
        Framing::Length(_) => None,
        Framing::Chunked => match dechunk(rest)? {
            Some(body) => Some(body),
            None if eof => return Err("the connection closed inside a chunked body".into()),
            None => None,
        },
        Framing::UntilClose => eof.then(|| rest.to_vec()),
    };
    Ok(body.map(|body| Response {
        status,
        retry_after,
        body,
    }))
}

/// The body of a complete chunked encoding, or `None` while its last chunk has not come.
fn dechunk(mut rest: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = find(rest, b"\r\n") else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&rest[..line_end]).map_err(|_| "bad chunk size line")?;
        let size = line.split(';').next().unwrap_or("").trim();
        let size =
            usize::from_str_radix(size, 16).map_err(|_| format!("bad chunk size {size:?}"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            // Trailers, if any, end with an empty line.
            let done = rest.starts_with(b"\r\n") || find(rest, b"\r\n\r\n").is_some();
            return Ok(done.then_some(body));
        }
        if body.len() + size > MAX_RESPONSE {
            return Err("the chunked body is too large".into());
        }
        if rest.len() < size + 2 {
            return Ok(None);
        }
        if &rest[size..size + 2] != b"\r\n" {
            return Err("a chunk does not end with CRLF".into());
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_content_length_body_is_complete_when_every_byte_came() {
        let text = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        for cut in 0..text.len() {
            assert_eq!(parse(&text[..cut], false), Ok(None), "cut at {cut}");
        }
        let response = parse(text, false).unwrap().unwrap();
        assert_eq!((response.status, &response.body[..]), (200, &b"hello"[..]));
        assert!(parse(&text[..text.len() - 1], true).is_err());
    }

    #[test]
    fn a_chunked_body_is_put_together() {
        let text = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
        for cut in 0..text.len() {
            assert_eq!(parse(&text[..cut], false), Ok(None), "cut at {cut}");
        }
        let response = parse(text, false).unwrap().unwrap();
        assert_eq!(response.body, b"hello world");
        let bad = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert!(parse(bad, false).is_err());
    }

    #[test]
    fn without_framing_the_body_ends_with_the_connection() {
        let text = b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 2.5\r\n\r\n{}";
        assert_eq!(parse(text, false), Ok(None));
        let response = parse(text, true).unwrap().unwrap();
        assert_eq!(response.status, 429);
        assert_eq!(response.retry_after, Some(Duration::from_millis(2500)));
        assert_eq!(response.body, b"{}");
        assert!(parse(b"SSH-2.0-OpenSSH\r\n\r\n", true).is_err());
        assert!(parse(b"HTTP/1.1 200 OK\r\n", true).is_err());
    }
}
