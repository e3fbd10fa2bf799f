//! The first request head of each connection, read and checked before hyper sees it.
//!
//! hyper answers a head it cannot take on its own — 400 for a malformed one, 414 for a target
//! over 64 KiB, 431 for too many or too large header fields — with an empty body, and the
//! connection ends there. Reading the first head here gives those answers the documented JSON
//! error shape and augur's own, lower limits ([`MAX_TARGET_BYTES`], [`MAX_HEAD_BYTES`],
//! [`MAX_HEADERS`]). Later requests on a kept-alive connection are checked against the same
//! limits by [`refuse_oversized_head`]; only heads beyond hyper's own buffer there still get
//! hyper's empty answer.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::http::StatusCode;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpStream;

use crate::error::ApiError;

/// The longest request target (path and query), bytes (RFC 9112 §3 recommends at least 8,000).
pub(crate) const MAX_TARGET_BYTES: usize = 8 * 1024;
/// The longest request head (request line and header fields), bytes.
pub(crate) const MAX_HEAD_BYTES: usize = 32 * 1024;
/// The most header fields in one request.
pub(crate) const MAX_HEADERS: usize = 100;

/// What the first head of a connection turned out to be.
pub(crate) enum FirstHead {
    /// A head within the limits: the bytes read so far (the head and maybe some body), for
    /// hyper to read first.
    Ready(Vec<u8>),
    /// A head refused with this answer.
    Refused(ApiError),
    /// The client closed the connection or it failed before a whole head arrived.
    Gone,
}

/// Reads from `stream` until a whole request head is in, or the head breaks a limit.
///
/// The head is parsed once, when its end has arrived (or a limit is passed): a client that
/// sends it a byte at a time costs a scan of each byte, not a parse of the whole buffer per
/// byte.
pub(crate) async fn read_first(stream: &mut TcpStream) -> FirstHead {
    let mut buf = Vec::with_capacity(1024);
    let mut line_ended = false;
    loop {
        let before = buf.len();
        match stream.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return FirstHead::Gone,
            Ok(_) => {}
        }
        // Only the new bytes, and the two before them a terminator may have started in.
        let fresh = &buf[before.saturating_sub(2)..];
        if !line_ended {
            // A request line holds no control character but its closing CR LF: a TLS hello or
            // binary junk is refused at once, not after the header timeout.
            let line = &fresh[..fresh
                .iter()
                .position(|&b| b == b'\n')
                .unwrap_or(fresh.len())];
            let bad = line.iter().enumerate().any(|(i, &b)| {
                (b < 0x20 && b != b'\r' && b != b'\t')
                    || b == 0x7f
                    || (b == b'\r' && i + 1 < line.len())
            });
            if bad {
                return FirstHead::Refused(ApiError::bad_request(
                    "malformed HTTP/1.1 request line: a control character",
                ));
            }
            match fresh.iter().position(|&b| b == b'\n') {
                Some(end) if before.saturating_sub(2) + end > MAX_TARGET_BYTES + 64 => {
                    return FirstHead::Refused(line_too_long(&buf));
                }
                Some(_) => line_ended = true,
                None if buf.len() > MAX_TARGET_BYTES + 64 => {
                    return FirstHead::Refused(line_too_long(&buf));
                }
                None => continue,
            }
        }
        // The head ends at an empty line: CRLF CRLF, or bare LFs, which parsers accept too.
        let ended = find(fresh, b"\n\r\n").is_some() || find(fresh, b"\n\n").is_some();
        if !ended && buf.len() <= MAX_HEAD_BYTES {
            continue;
        }
        match check(&buf) {
            Verdict::Partial => {}
            Verdict::Complete => return FirstHead::Ready(buf),
            Verdict::Refused(error) => return FirstHead::Refused(error),
        }
    }
}

/// Where `needle` starts in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

enum Verdict {
    Partial,
    Complete,
    Refused(ApiError),
}

/// Checks the head at the start of `buf`, complete or not.
fn check(buf: &[u8]) -> Verdict {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let parsed = request.parse(buf);
    if request.path.is_some_and(|p| p.len() > MAX_TARGET_BYTES) {
        return Verdict::Refused(target_too_long());
    }
    match parsed {
        Ok(httparse::Status::Complete(n)) if n > MAX_HEAD_BYTES => {
            Verdict::Refused(head_too_large())
        }
        Ok(httparse::Status::Complete(_)) => match framing_and_host(&request) {
            Ok(()) => Verdict::Complete,
            Err(why) => Verdict::Refused(ApiError::bad_request(why)),
        },
        Ok(httparse::Status::Partial) if buf.len() <= MAX_HEAD_BYTES => {
            // A request line still without its end, longer than any acceptable one.
            if request.path.is_none() && buf.len() > MAX_TARGET_BYTES + 64 {
                Verdict::Refused(target_too_long())
            } else {
                Verdict::Partial
            }
        }
        Ok(httparse::Status::Partial) if request.path.is_none() => {
            Verdict::Refused(target_too_long())
        }
        Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
            Verdict::Refused(head_too_large())
        }
        Err(e) => Verdict::Refused(ApiError::bad_request(format!(
            "malformed HTTP/1.1 request head: {e}"
        ))),
    }
}

/// What hyper would refuse in a parsed head with an empty 400, and RFC 9112 requires refusing:
/// a body length that is not one plain number (§6.3), a transfer coding that does not end in
/// `chunked` or comes with HTTP/1.0 (§6.1), and a missing, repeated or malformed `Host` in an
/// HTTP/1.1 request (§3.2).
fn framing_and_host(request: &httparse::Request<'_, '_>) -> Result<(), String> {
    let http11 = request.version == Some(1);
    let values = |name: &'static str| {
        request
            .headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    };
    let lengths: Vec<&[u8]> = values("content-length").collect();
    if lengths
        .iter()
        .any(|v| v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit))
        || lengths.windows(2).any(|w| w[0] != w[1])
    {
        return Err(
            "Content-Length must be one number of bytes (repeated, only with the same value)"
                .into(),
        );
    }
    for coding in values("transfer-encoding") {
        let last = coding
            .rsplit(|b| *b == b',')
            .next()
            .map(<[u8]>::trim_ascii)
            .unwrap_or_default();
        if !http11 || !last.eq_ignore_ascii_case(b"chunked") {
            return Err("Transfer-Encoding must end in `chunked`, in an HTTP/1.1 request".into());
        }
    }
    if http11 {
        let hosts: Vec<&[u8]> = values("host").collect();
        let valid = |h: &[u8]| {
            h.is_empty()
                || axum::http::uri::Authority::try_from(h)
                    .is_ok_and(|a| a.as_str().len() == h.len())
        };
        if hosts.len() != 1 || !valid(hosts[0]) {
            return Err(HOST_RULE.into());
        }
    }
    Ok(())
}

/// The answer to a request line over the limit: 414 when the target makes it long, 400 when
/// the method does (no method this service answers is longer than [`MAX_METHOD_BYTES`]).
fn line_too_long(buf: &[u8]) -> ApiError {
    let method = buf.iter().position(|&b| b == b' ').unwrap_or(buf.len());
    if method > MAX_METHOD_BYTES {
        ApiError::bad_request(format!(
            "the request method is longer than {MAX_METHOD_BYTES} bytes; the routes take GET and POST"
        ))
    } else {
        target_too_long()
    }
}

/// The longest method token accepted in a request line that is over the length limit.
const MAX_METHOD_BYTES: usize = 64;

/// The answer to a missing, repeated or malformed `Host`.
const HOST_RULE: &str = "an HTTP/1.1 request needs exactly one valid Host header (RFC 9112 §3.2)";

fn target_too_long() -> ApiError {
    ApiError::new(
        StatusCode::URI_TOO_LONG,
        "uri_too_long",
        format!(
            "the request target is longer than {MAX_TARGET_BYTES} bytes; send long inputs in a POST body"
        ),
    )
}

fn head_too_large() -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "headers_too_large",
        format!("the request head is over {MAX_HEAD_BYTES} bytes or {MAX_HEADERS} header fields"),
    )
}

/// Writes `error` as a whole HTTP/1.1 answer and closes the connection. The request's unread
/// bytes are drained for a moment first: closing a socket with unread input resets it, and the
/// client might lose the answer.
pub(crate) async fn refuse(mut stream: TcpStream, error: &ApiError) {
    let body = error.body().to_string();
    let answer = format!(
        "HTTP/1.1 {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        error.status,
        body.len()
    );
    if stream.write_all(answer.as_bytes()).await.is_err() || stream.shutdown().await.is_err() {
        return;
    }
    let drain = async {
        let mut sink = [0u8; 8192];
        let mut left = 1 << 20;
        while left > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left -= n.min(left),
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(1), drain)
        .await
        .ok();
}

/// Refuses a later request on a kept-alive connection whose head breaks the limits that
/// [`read_first`] applies to the first.
pub(crate) async fn refuse_oversized_head(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let uri = request.uri();
    // The target as sent: absolute form (scheme and authority) or origin form.
    let target = uri.scheme_str().map_or(0, |s| s.len() + 3)
        + uri.authority().map_or(0, |a| a.as_str().len())
        + uri.path_and_query().map_or(0, |p| p.as_str().len());
    if target > MAX_TARGET_BYTES {
        return target_too_long().into_response();
    }
    let headers = request.headers();
    // As it arrived: the request line (method, target, `HTTP/1.1`, spaces and CRLF), each field
    // (name, ": ", value, CRLF), and the empty line.
    let line = request.method().as_str().len() + 1 + target + 1 + 8 + 2;
    let fields: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if headers.len() > MAX_HEADERS || line + fields + 2 > MAX_HEAD_BYTES {
        return head_too_large().into_response();
    }
    if request.version() == axum::http::Version::HTTP_11 {
        let hosts = headers.get_all(axum::http::header::HOST).iter().count();
        if hosts != 1 {
            return ApiError::bad_request(HOST_RULE).into_response();
        }
    }
    next.run(request).await
}

/// A stream whose first bytes were already read: they are read again first.
#[derive(Debug)]
pub(crate) struct Replayed {
    read: Vec<u8>,
    at: usize,
    stream: TcpStream,
}

impl Replayed {
    /// `read`, then the rest of `stream`.
    pub(crate) fn new(read: Vec<u8>, stream: TcpStream) -> Self {
        Self {
            read,
            at: 0,
            stream,
        }
    }
}

impl AsyncRead for Replayed {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.at < this.read.len() {
            let n = buf.remaining().min(this.read.len() - this.at);
            buf.put_slice(&this.read[this.at..this.at + n]);
            this.at += n;
            if this.at == this.read.len() {
                this.read = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Replayed {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(head: &[u8]) -> Option<StatusCode> {
        match check(head) {
            Verdict::Refused(e) => Some(e.status),
            Verdict::Partial | Verdict::Complete => None,
        }
    }

    #[test]
    fn heads_within_the_limits_pass_and_others_get_their_status() {
        assert!(matches!(
            check(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"),
            Verdict::Complete
        ));
        assert!(matches!(
            check(b"GET /healthz HTTP/1.1\r\nHo"),
            Verdict::Partial
        ));
        let long_target = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_TARGET_BYTES));
        assert_eq!(
            refused(long_target.as_bytes()),
            Some(StatusCode::URI_TOO_LONG)
        );
        // Refused before the request line ends.
        let unfinished = format!("GET /{}", "a".repeat(MAX_TARGET_BYTES + 100));
        assert_eq!(
            refused(unfinished.as_bytes()),
            Some(StatusCode::URI_TOO_LONG)
        );
        let long_method = format!("{} / HTTP/1.1\r\n", "M".repeat(MAX_TARGET_BYTES + 100));
        assert_eq!(
            line_too_long(long_method.as_bytes()).status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            line_too_long(unfinished.as_bytes()).status,
            StatusCode::URI_TOO_LONG
        );
        let many = format!(
            "GET / HTTP/1.1\r\n{}\r\n",
            "X-A: 1\r\n".repeat(MAX_HEADERS + 1)
        );
        assert_eq!(
            refused(many.as_bytes()),
            Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );
        let large = format!("GET / HTTP/1.1\r\nX-A: {}", "b".repeat(MAX_HEAD_BYTES));
        assert_eq!(
            refused(large.as_bytes()),
            Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );
        assert_eq!(
            refused(b"G\x01T / HTTP/1.1\r\n\r\n"),
            Some(StatusCode::BAD_REQUEST)
        );
    }
}
