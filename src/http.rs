//! The protocol-neutral HTTP layer both protocols (`lti11`, `ltiaas`) build on:
//! one client builder (rustls, no redirects, timeouts), a capped body reader,
//! transport errors, the [`Verdict`] every exchange ends in, `Retry-After` and
//! HTTP dates, the loopback rule for plain http, and excerpts for the journal.
//!
//! Nothing here knows about LTI, the ledger or the app.

use std::time::Duration;

use url::Url;

use crate::error::{Error, Result};
use crate::model::{AttemptOutcome, Cause, ErrorClass};

/// Largest response body a client reads (anything longer is cut and reported).
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// How much of a request or response the attempt journal keeps.
pub const EXCERPT_BYTES: usize = 2048;

/// Timeouts for requests to an LMS or to LTIAAS.
#[derive(Debug, Clone, Copy)]
pub struct ClientOptions {
    pub connect_timeout: Duration,
    pub total_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            total_timeout: Duration::from_secs(30),
        }
    }
}

/// An HTTP client for signed requests: rustls, never follows redirects (a signed
/// request must not be replayed to another URL), bounded by `opts`.
pub fn build_client(opts: ClientOptions) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(opts.connect_timeout)
        .timeout(opts.total_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("Passback/", env!("CARGO_PKG_VERSION")))
        // The environment's proxies (an institution's), but never for a loopback IP:
        // a request to this computer carries secrets in clear (plain http to a test
        // LMS) and has no business leaving it.
        .no_proxy()
        .proxy(
            reqwest::Proxy::custom(|url| {
                if is_loopback_ip(url) {
                    return None;
                }
                let var = |names: &[&str]| {
                    names
                        .iter()
                        .find_map(|n| std::env::var(n).ok().filter(|v| !v.trim().is_empty()))
                };
                match url.scheme() {
                    "https" => var(&["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]),
                    _ => var(&["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]),
                }
            })
            .no_proxy(reqwest::NoProxy::from_env()),
        )
        .build()
        .map_err(|e| Error::internal(format!("cannot build the HTTP client: {e}")))
}

/// The transport failed before a whole answer arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportError {
    Connect(String),
    Timeout,
    Other(String),
}

impl TransportError {
    /// Classify a reqwest error; `scrub` removes secrets from its text.
    pub fn from_reqwest(e: &reqwest::Error, scrub: impl Fn(&str) -> String) -> Self {
        if e.is_timeout() {
            TransportError::Timeout
        } else if e.is_connect() {
            TransportError::Connect(scrub(&error_chain(e)))
        } else {
            TransportError::Other(scrub(&error_chain(e)))
        }
    }

    /// The stable cause of a transport failure: [`Cause::Timeout`] when no answer
    /// came in time (including a body that stopped arriving), else
    /// [`Cause::ConnectionFailed`].
    pub fn cause(&self) -> Cause {
        match self {
            TransportError::Timeout => Cause::Timeout,
            TransportError::Connect(_) => Cause::ConnectionFailed,
            TransportError::Other(e) if e.to_ascii_lowercase().contains("timed out") => Cause::Timeout,
            TransportError::Other(_) => Cause::ConnectionFailed,
        }
    }
}

/// The verdict on one attempt, whatever the protocol.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub outcome: AttemptOutcome,
    pub error_class: Option<ErrorClass>,
    /// A one-line description of what went wrong (the LMS's words when it gave any).
    pub description: String,
    pub fix_hint: Option<String>,
    /// When to try again (transient only).
    pub retry_after: Option<Duration>,
    /// The stable code of why (see [`Cause`]).
    pub cause: Cause,
}

/// What an LMS said of its request budget (Canvas: `X-Rate-Limit-Remaining`,
/// `X-Request-Cost`), so a bulk sender can slow down before being throttled.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RateBudget {
    /// Units left in the bucket.
    pub remaining: Option<f64>,
    /// What this request cost.
    pub cost: Option<f64>,
}

/// Canvas's header for the units left in its request bucket.
pub const RATE_LIMIT_REMAINING_HEADER: &str = "x-rate-limit-remaining";
/// Canvas's header for what one request cost.
pub const REQUEST_COST_HEADER: &str = "x-request-cost";

/// How long to wait when throttled without a `Retry-After` and without budget
/// headers (a 429 from a server that says nothing more).
pub const RATE_LIMIT_DEFAULT_WAIT: Duration = Duration::from_secs(30);

/// How long to wait when throttled without a `Retry-After` but with budget
/// headers (Canvas's leaky bucket drains continuously, about 10 units a second,
/// so a few seconds free enough room for the next requests).
pub const BUDGET_THROTTLE_DEFAULT_WAIT: Duration = Duration::from_secs(5);

impl RateBudget {
    /// Read `X-Rate-Limit-Remaining` and `X-Request-Cost` (header names are
    /// case-insensitive; values are floats; unreadable or non-finite values are
    /// ignored).
    pub fn from_headers(headers: &reqwest::header::HeaderMap) -> Self {
        let num = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|v| v.is_finite())
        };
        Self {
            remaining: num(RATE_LIMIT_REMAINING_HEADER),
            cost: num(REQUEST_COST_HEADER),
        }
    }

    /// The LMS said its bucket is empty (`X-Rate-Limit-Remaining` ≤ 0).
    pub fn is_exhausted(&self) -> bool {
        self.remaining.is_some_and(|r| r <= 0.0)
    }
}

/// Whether a body says `Rate Limit Exceeded` (any case), as Canvas's throttling
/// `403 Forbidden (Rate Limit Exceeded)` does.
pub fn says_rate_limit_exceeded(body: &[u8]) -> bool {
    const WORDS: &[u8] = b"rate limit exceeded";
    body.windows(WORDS.len()).any(|w| w.eq_ignore_ascii_case(WORDS))
}

/// How long to wait after being throttled: the `Retry-After` the LMS sent, else
/// [`BUDGET_THROTTLE_DEFAULT_WAIT`] when it reported a request budget, else
/// [`RATE_LIMIT_DEFAULT_WAIT`].
pub fn throttle_wait(retry_after: Option<Duration>, budget: &RateBudget) -> Duration {
    match retry_after {
        Some(d) => d,
        None if budget.remaining.is_some() => BUDGET_THROTTLE_DEFAULT_WAIT,
        None => RATE_LIMIT_DEFAULT_WAIT,
    }
}

impl Verdict {
    pub fn new(
        outcome: AttemptOutcome,
        class: Option<ErrorClass>,
        description: String,
        hint: Option<&str>,
    ) -> Self {
        Self {
            outcome,
            error_class: class,
            description,
            fix_hint: hint.filter(|h| !h.is_empty()).map(str::to_string),
            retry_after: None,
            cause: Cause::default_for(outcome, class),
        }
    }

    /// The same verdict with its stable cause code.
    pub fn with_cause(mut self, cause: Cause) -> Self {
        self.cause = cause;
        self
    }

    pub fn is_success(&self) -> bool {
        self.outcome == AttemptOutcome::Success
    }

    /// Nothing was sent because the request could not be built.
    pub fn not_sent(description: String) -> Self {
        Self::new(
            AttemptOutcome::Error,
            Some(ErrorClass::Permanent),
            description,
            Some("Nothing was sent; fix the input and try again."),
        )
        .with_cause(Cause::InvalidRequest)
    }
}

/// An error and its chain of sources on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// Why a response body could not be read whole.
pub enum BodyError {
    /// The connection broke or timed out mid-body.
    Transport(String),
    /// The body is larger than [`MAX_RESPONSE_BYTES`]; the first bytes are kept.
    TooLarge(Vec<u8>),
}

/// Read a response body, stopping at [`MAX_RESPONSE_BYTES`].
pub async fn read_capped(mut resp: reqwest::Response) -> Result<Vec<u8>, BodyError> {
    let mut buf = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if buf.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    let room = MAX_RESPONSE_BYTES - buf.len();
                    buf.extend_from_slice(&chunk[..room]);
                    return Err(BodyError::TooLarge(buf));
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(buf),
            Err(e) if e.is_timeout() => {
                return Err(BodyError::Transport("timed out reading the answer".into()));
            }
            Err(e) => return Err(BodyError::Transport(error_chain(&e))),
        }
    }
}

/// A response header as text, if present and readable.
pub fn header(resp: &reqwest::Response, name: reqwest::header::HeaderName) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Cut `s` to at most `max` bytes on a character boundary, saying how long it was.
/// A journal excerpt (`METHOD URL`, `Authorization: …` with its secret parts
/// redacted, a blank line, the body) as a `curl` command a person can paste and
/// adapt. It carries no secret (the excerpt has none): the redacted signature or
/// key must be replaced before the LMS would accept it. `None` when the excerpt
/// does not start with a request line.
pub fn curl_from_excerpt(excerpt: &str) -> Option<String> {
    let (head, body) = match excerpt.split_once("\n\n") {
        Some((h, b)) => (h, Some(b)),
        None => (excerpt, None),
    };
    let mut lines = head.lines();
    let (method, url) = lines.next()?.split_once(' ')?;
    if !method.chars().all(|c| c.is_ascii_uppercase())
        || !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return None;
    }
    let quote = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
    let mut cmd = format!("curl -X {method} {}", quote(url));
    for h in lines.filter(|l| l.contains(':')) {
        cmd.push_str(" \\\n  -H ");
        cmd.push_str(&quote(h));
    }
    if let Some(b) = body.filter(|b| !b.is_empty()) {
        let ct = if b.trim_start().starts_with('<') {
            "application/xml"
        } else {
            "application/json"
        };
        cmd.push_str(" \\\n  -H ");
        cmd.push_str(&quote(&format!("Content-Type: {ct}")));
        cmd.push_str(" \\\n  --data-binary ");
        cmd.push_str(&quote(b));
    }
    Some(cmd)
}

pub fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [{} bytes in all]", &s[..end], s.len())
}

/// Whether `url`'s host is a loopback IP literal (`127.0.0.0/8`, `::1`). Only literals
/// count: a name such as `localhost` is what DNS (or a hosts file) says it is, and a
/// URL's userinfo is never mistaken for its host (`http://localhost:x@evil.example`
/// is `evil.example`), because the `url` crate parses it, not string splitting.
pub fn is_loopback_ip(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    }
}

/// The rule for where a secret may travel: `https`, or plain `http` only to a
/// loopback IP literal (a test LMS on this computer); never with userinfo in the URL.
/// `what` names the URL in the error ("the LTIAAS base URL").
pub fn check_secret_destination(url: &Url, what: &str) -> Result<()> {
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::invalid(format!(
            "{what} {url} carries a user name or password before its host: refused (it hides where requests go)"
        )));
    }
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" if is_loopback_ip(url) => Ok(()),
        "http" => Err(Error::invalid(format!(
            "{what} {url} uses plain http to a host that is not a loopback IP address (127.0.0.1 or [::1]): use https://"
        ))),
        _ => Err(Error::invalid(format!("{what} {url} must start with https://"))),
    }
}

/// Parse a `Retry-After` value: delta seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: time::OffsetDateTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = parse_http_date(value)?;
    let delta = (when - now).whole_seconds();
    Some(Duration::from_secs(delta.max(0) as u64))
}

/// Parse an RFC 7231 IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn parse_http_date(value: &str) -> Option<time::OffsetDateTime> {
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(value.trim(), &fmt)
        .ok()
        .map(|p| p.assume_utc())
}

/// Format an IMF-fixdate (the sandbox's `Date` and `Retry-After` headers).
pub fn format_http_date(t: time::OffsetDateTime) -> String {
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    t.to_offset(time::UtcOffset::UTC).format(&fmt).unwrap_or_default()
}

/// A loopback HTTP server for the protocol clients' tests: one canned answer per
/// connection, in order, each built from the request body (to echo identifiers).
#[cfg(test)]
pub(crate) mod test_server {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    pub type Answer = Box<dyn Fn(&str) -> String + Send>;

    /// Start serving `answers` (one per connection) and return `http://127.0.0.1:PORT`.
    pub fn serve(answers: Vec<Answer>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("local address");
        std::thread::spawn(move || {
            for answer in answers {
                let Ok((mut stream, _)) = listener.accept() else {
                    return;
                };
                let Ok(read_half) = stream.try_clone() else {
                    return;
                };
                let mut reader = BufReader::new(read_half);
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':')
                        && name.eq_ignore_ascii_case("content-length")
                    {
                        len = value.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; len];
                let _ = reader.read_exact(&mut body);
                let _ = stream.write_all(answer(&String::from_utf8_lossy(&body)).as_bytes());
                let _ = stream.flush();
            }
        });
        format!("http://{addr}")
    }

    /// A TLS server on loopback whose certificate no one trusts (self-signed, made
    /// fresh by the `openssl` command), killed when dropped. Its `url` is
    /// `https://127.0.0.1:PORT`.
    pub struct UntrustedTls {
        pub url: String,
        child: std::process::Child,
        _dir: tempfile::TempDir,
    }

    impl Drop for UntrustedTls {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    pub fn untrusted_tls() -> UntrustedTls {
        use std::process::{Command, Stdio};
        let dir = tempfile::tempdir().expect("temp dir");
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let made = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
            ])
            .args([
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
                "-days",
                "1",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("the openssl command (Debian package openssl) runs");
        assert!(made.success(), "openssl made a self-signed certificate");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let child = Command::new("openssl")
            .args(["s_server", "-www", "-quiet", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_server starts");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "openssl s_server listens");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        UntrustedTls {
            url: format!("https://127.0.0.1:{port}"),
            child,
            _dir: dir,
        }
    }

    /// A server that records whether anyone connected (the target of a redirect that
    /// must not be followed). Returns its `http://127.0.0.1:PORT` and the flag.
    pub fn witness() -> (String, std::sync::Arc<std::sync::atomic::AtomicBool>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("local address");
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = seen.clone();
        std::thread::spawn(move || {
            if listener.accept().is_ok() {
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        });
        (format!("http://{addr}"), seen)
    }

    /// A server that answers only after 3 s, and client options that give up after
    /// 300 ms: an answer that does not come in time.
    pub fn too_late() -> (String, super::ClientOptions) {
        let base = serve(vec![Box::new(|_| {
            std::thread::sleep(std::time::Duration::from_secs(3));
            String::new()
        })]);
        let opts = super::ClientOptions {
            connect_timeout: std::time::Duration::from_secs(2),
            total_timeout: std::time::Duration::from_millis(300),
        };
        (base, opts)
    }

    /// A whole HTTP/1.1 response (`Connection: close`).
    pub fn response(status_line: &str, headers: &[(&str, &str)], body: &str) -> String {
        let mut s = format!(
            "HTTP/1.1 {status_line}\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for (name, value) in headers {
            s.push_str(&format!("{name}: {value}\r\n"));
        }
        s.push_str("\r\n");
        s.push_str(body);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_ip_literals_may_receive_secrets_over_plain_http() {
        let ok = |u: &str| check_secret_destination(&Url::parse(u).unwrap(), "the URL").is_ok();
        for u in [
            "https://tool.ltiaas.com",
            "https://tool.ltiaas.com:8443/base",
            "http://127.0.0.1:8080",
            "http://127.1.2.3",
            "http://[::1]:9/",
        ] {
            assert!(ok(u), "{u}");
        }
        for u in [
            // The review's cases: userinfo that looks like a loopback host.
            "http://localhost:x@evil.example",
            "http://[::1]@evil.example",
            "http://127.0.0.1:80@evil.example/",
            "https://user@tool.ltiaas.com",
            // Names are what DNS says they are.
            "http://localhost:8080",
            "http://LOCALHOST",
            "http://app.localhost",
            "http://evil.example",
            "http://10.0.0.1",
            "http://[::2]",
            "ftp://127.0.0.1",
        ] {
            assert!(!ok(u), "{u}");
        }
    }

    #[test]
    fn http_dates_and_retry_after() {
        let now = time::macros::datetime!(2026-11-23 10:00:00 UTC);
        assert_eq!(parse_retry_after("12", now), Some(Duration::from_secs(12)));
        let d = format_http_date(now + time::Duration::seconds(90));
        assert_eq!(d, "Mon, 23 Nov 2026 10:01:30 GMT");
        assert_eq!(parse_retry_after(&d, now), Some(Duration::from_secs(90)));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_http_date(&format_http_date(now)), Some(now));
    }

    #[test]
    fn budgets_are_read_from_headers_case_insensitively() {
        use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
        let mut h = HeaderMap::new();
        h.insert(
            HeaderName::from_static("x-rate-limit-remaining"),
            HeaderValue::from_static(" 599.25 "),
        );
        h.insert(
            HeaderName::from_bytes(b"X-Request-Cost").unwrap(),
            HeaderValue::from_static("0.75"),
        );
        let b = RateBudget::from_headers(&h);
        assert_eq!(b.remaining, Some(599.25));
        assert_eq!(b.cost, Some(0.75));
        assert!(!b.is_exhausted());
        for (v, exhausted) in [("0", true), ("0.0", true), ("-3.5", true), ("0.01", false)] {
            h.insert(
                HeaderName::from_static("x-rate-limit-remaining"),
                HeaderValue::from_str(v).unwrap(),
            );
            assert_eq!(RateBudget::from_headers(&h).is_exhausted(), exhausted, "{v}");
        }
        h.insert(
            HeaderName::from_static("x-request-cost"),
            HeaderValue::from_static("lots"),
        );
        h.insert(
            HeaderName::from_static("x-rate-limit-remaining"),
            HeaderValue::from_static("NaN"),
        );
        assert_eq!(RateBudget::from_headers(&h), RateBudget::default());
        assert_eq!(RateBudget::from_headers(&HeaderMap::new()), RateBudget::default());
    }

    #[test]
    fn throttling_words_and_waits() {
        assert!(says_rate_limit_exceeded(b"403 Forbidden (Rate Limit Exceeded)\n"));
        assert!(says_rate_limit_exceeded(b"{\"message\":\"RATE LIMIT EXCEEDED\"}"));
        assert!(!says_rate_limit_exceeded(b"403 Forbidden"));
        assert!(!says_rate_limit_exceeded(b""));
        let none = RateBudget::default();
        let spent = RateBudget {
            remaining: Some(0.0),
            cost: None,
        };
        assert_eq!(
            throttle_wait(Some(Duration::from_secs(7)), &spent),
            Duration::from_secs(7)
        );
        assert_eq!(throttle_wait(None, &spent), BUDGET_THROTTLE_DEFAULT_WAIT);
        assert_eq!(throttle_wait(None, &none), RATE_LIMIT_DEFAULT_WAIT);
    }

    #[test]
    fn transport_causes() {
        assert_eq!(TransportError::Timeout.cause(), Cause::Timeout);
        assert_eq!(
            TransportError::Connect("refused".into()).cause(),
            Cause::ConnectionFailed
        );
        assert_eq!(
            TransportError::Other("the answer broke off: timed out reading the answer".into()).cause(),
            Cause::Timeout
        );
        assert_eq!(
            TransportError::Other("connection reset by peer".into()).cause(),
            Cause::ConnectionFailed
        );
    }

    #[test]
    fn a_journal_excerpt_becomes_a_curl_command_without_secrets() {
        let excerpt = "POST https://lms.example.edu/outcomes?x=1\nAuthorization: OAuth oauth_consumer_key=\"ck\", \
                       oauth_signature=\"[redacted]\"\n\n<?xml version=\"1.0\"?><a>it's</a>";
        assert_eq!(
            curl_from_excerpt(excerpt).unwrap(),
            "curl -X POST 'https://lms.example.edu/outcomes?x=1' \\\n  \
             -H 'Authorization: OAuth oauth_consumer_key=\"ck\", oauth_signature=\"[redacted]\"' \\\n  \
             -H 'Content-Type: application/xml' \\\n  \
             --data-binary '<?xml version=\"1.0\"?><a>it'\\''s</a>'"
        );
        let get = "GET https://x.ltiaas.com/api/lineitems/1/results?user_id=u\nAuthorization: SERVICE-AUTH-V1 [redacted]";
        assert_eq!(
            curl_from_excerpt(get).unwrap(),
            "curl -X GET 'https://x.ltiaas.com/api/lineitems/1/results?user_id=u' \\\n  \
             -H 'Authorization: SERVICE-AUTH-V1 [redacted]'"
        );
        assert_eq!(curl_from_excerpt("(no request: no secret)"), None);
        assert_eq!(curl_from_excerpt("post file:///etc/passwd"), None);
    }

    #[test]
    fn cut_keeps_char_boundaries_and_says_the_length() {
        assert_eq!(cut("abc", 5), "abc");
        assert_eq!(cut("héllo", 2), "h… [6 bytes in all]");
    }
}
