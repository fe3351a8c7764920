//! `passback ui-server` end to end: the spawned bridge on loopback refuses what a
//! foreign web page could send (no or a wrong token, a foreign `Host` as in DNS
//! rebinding, a foreign `Origin`, a body that is not JSON) and serves the UI and the
//! command table to a caller that has the printed token.
//!
//! Refusals are checked on `overview` and on an unknown command: the core answers an
//! unknown command with 404 `not_found`, so a refusal status there shows the request
//! never reached the command table.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::TempLedger;

/// What the minimal UI folder's index page says.
const INDEX_MARKER: &str = "passback-bridge-test-index";

/// A spawned `passback ui-server` on a temporary ledger and UI folder, killed when dropped.
struct Bridge {
    child: Child,
    info: Value,
    port: u16,
    token: String,
    ledger: TempLedger,
    _ui: tempfile::TempDir,
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP answer.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{}: {e}: {}", self.status, String::from_utf8_lossy(&self.body)))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The status is `status` and the body is the core's `{kind, message}` error shape.
    fn assert_refused(&self, status: u16, what: &str) {
        assert_eq!(
            self.status,
            status,
            "{what}: {}",
            String::from_utf8_lossy(&self.body)
        );
        let e = self.json();
        assert_eq!(e["kind"], "invalid", "{what}: {e}");
        assert!(
            e["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: {e}"
        );
        assert_eq!(
            e.as_object().map(|o| o.len()),
            Some(2),
            "{what}: only kind and message: {e}"
        );
    }
}

impl Bridge {
    fn start() -> Self {
        let ledger = TempLedger::new();
        let ui = tempfile::tempdir().expect("temp UI dir");
        std::fs::write(
            ui.path().join("index.html"),
            format!("<!doctype html><title>{INDEX_MARKER}</title><p>{INDEX_MARKER}</p>\n"),
        )
        .unwrap();
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("passback"))
            .arg("--db")
            .arg(ledger.db())
            .args(["ui-server", "--listen", "127.0.0.1:0", "--ui-dir"])
            .arg(ui.path())
            .env_remove("PASSBACK_DB")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn ui-server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let info: Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(e) => {
                let _ = child.kill();
                panic!("ui-server's first line {line:?}: {e}");
            }
        };
        let base = url::Url::parse(info["base_url"].as_str().expect("base_url")).unwrap();
        let port = base.port().expect("the base URL names its port");
        let token = info["token"].as_str().expect("token").to_string();
        Self {
            child,
            info,
            port,
            token,
            ledger,
            _ui: ui,
        }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// One raw HTTP/1.1 request with exactly `headers` (nothing added but
    /// `Content-Length` when there is a body, and `Connection: close`).
    fn raw(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut req = format!("{method} {path} HTTP/1.1\r\n");
        for (n, v) in headers {
            req.push_str(&format!("{n}: {v}\r\n"));
        }
        if !body.is_empty() || method == "POST" {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("Connection: close\r\n\r\n");
        req.push_str(body);
        s.write_all(req.as_bytes()).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        parse_answer(&raw)
    }

    /// A bridge call as the UI makes it, with the headers given (Host always).
    fn api(&self, command: &str, extra: &[(&str, &str)], body: &str) -> Answer {
        let host = self.host();
        let mut headers = vec![("Host", host.as_str())];
        headers.extend_from_slice(extra);
        self.raw("POST", &format!("/api/{command}"), &headers, body)
    }
}

fn parse_answer(raw: &[u8]) -> Answer {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..split]).unwrap();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Answer {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").expect("chunk size line");
        let size_text = std::str::from_utf8(&b[..eol]).unwrap();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        b = &b[eol + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

/// `passback ui-server`'s refusals go to both `overview` and an unknown command;
/// the unknown one would be a 404 from the core if the request got through.
fn assert_refused_everywhere(
    b: &Bridge,
    extra: &[(&str, &str)],
    body: &str,
    status: u16,
    what: &str,
) -> Answer {
    b.api("no_such_command", extra, body)
        .assert_refused(status, &format!("{what} (unknown command)"));
    // The job stream is behind the same guard.
    b.api("stream/watch_job", extra, body)
        .assert_refused(status, &format!("{what} (job stream)"));
    let a = b.api("overview", extra, body);
    a.assert_refused(status, what);
    a
}

#[test]
fn the_printed_url_carries_the_token_in_its_fragment_and_the_index_is_served() {
    let b = Bridge::start();
    let base = b.info["base_url"].as_str().unwrap();
    assert_eq!(base, format!("http://127.0.0.1:{}/", b.port));
    assert_eq!(b.info["url"], format!("{base}#token={}", b.token));
    let url = url::Url::parse(b.info["url"].as_str().unwrap()).unwrap();
    assert_eq!(url.fragment(), Some(format!("token={}", b.token).as_str()));
    assert_eq!(url.query(), None, "the token is never in the path or the query");
    assert_eq!(url.path(), "/");
    assert!(b.token.len() >= 32, "at least 128 bits: {}", b.token);
    assert!(b.token.bytes().all(|c| c.is_ascii_hexdigit()), "{}", b.token);
    assert_eq!(b.info["db"], b.ledger.db());

    // The static UI needs no token: a browser opening the printed URL sends no fragment.
    let client = reqwest::blocking::Client::new();
    for path in ["", "index.html", "some/screen"] {
        let r = client.get(format!("{base}{path}")).send().unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(r.text().unwrap().contains(INDEX_MARKER), "{path}");
    }
    // Opening the full URL (the client drops the fragment) serves the index too.
    let r = client.get(url.as_str()).send().unwrap();
    assert_eq!(r.status(), 200);

    // Each run has its own token.
    let other = Bridge::start();
    assert_ne!(other.token, b.token);
}

#[test]
fn the_right_token_host_and_json_run_the_command() {
    let b = Bridge::start();
    let client = reqwest::blocking::Client::new();
    let r = client
        .post(format!("{}api/overview", b.info["base_url"].as_str().unwrap()))
        .header("X-Passback-Token", &b.token)
        .json(&json!({}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let o: Value = r.json().unwrap();
    assert_eq!(o["workspace"], "ledger", "{o}");
    assert_eq!(o["db_path"], b.ledger.db());
    assert_eq!(o["platforms"], json!([]));

    // Content-Type parameters, an empty body (no arguments), the page's own origin
    // and the `localhost` name of the same address are all fine.
    let token = b.token.as_str();
    let origin = b.origin();
    let ok: [(&[(&str, &str)], &str); 3] = [
        (
            &[
                ("X-Passback-Token", token),
                ("Content-Type", "application/json; charset=utf-8"),
            ],
            "{}",
        ),
        (
            &[("X-Passback-Token", token), ("Content-Type", "application/json")],
            "",
        ),
        (
            &[
                ("X-Passback-Token", token),
                ("Content-Type", "application/json"),
                ("Origin", &origin),
            ],
            "{}",
        ),
    ];
    for (headers, body) in ok {
        let a = b.api("overview", headers, body);
        assert_eq!(a.status, 200, "{headers:?}: {}", String::from_utf8_lossy(&a.body));
        assert_eq!(a.json()["workspace"], "ledger");
    }
    let localhost = format!("localhost:{}", b.port);
    let a = b.raw(
        "POST",
        "/api/overview",
        &[
            ("Host", &localhost),
            ("X-Passback-Token", token),
            ("Content-Type", "application/json"),
        ],
        "{}",
    );
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));

    // Through the guard, the core answers: an unknown command is its 404, bad
    // arguments its 400.
    let headers = [("X-Passback-Token", token), ("Content-Type", "application/json")];
    let a = b.api("no_such_command", &headers, "{}");
    assert_eq!(a.status, 404);
    assert_eq!(a.json()["kind"], "not_found");
    let a = b.api("overview", &headers, "[1, 2]");
    assert_eq!(a.status, 400);
    assert_eq!(a.json()["kind"], "invalid");
}

#[test]
fn a_call_without_the_token_is_refused() {
    let b = Bridge::start();
    let a = assert_refused_everywhere(&b, &[("Content-Type", "application/json")], "{}", 401, "no token");
    assert!(a.json()["message"].as_str().unwrap().contains("X-Passback-Token"));
    assert!(a.header("WWW-Authenticate").is_some());
    // Not in a query string or a cookie either.
    let path = format!("/api/overview?token={}", b.token);
    let host = b.host();
    let a = b.raw(
        "POST",
        &path,
        &[("Host", &host), ("Content-Type", "application/json")],
        "{}",
    );
    a.assert_refused(401, "token in the query");
    let cookie = format!("token={}", b.token);
    let a = b.api(
        "overview",
        &[("Cookie", &cookie), ("Content-Type", "application/json")],
        "{}",
    );
    a.assert_refused(401, "token in a cookie");
}

#[test]
fn a_call_with_a_wrong_token_is_refused() {
    let b = Bridge::start();
    // Same length, one character changed; shorter; longer; empty.
    let mut same_len = b.token.clone().into_bytes();
    same_len[0] = if same_len[0] == b'0' { b'1' } else { b'0' };
    let same_len = String::from_utf8(same_len).unwrap();
    let shorter = b.token[..b.token.len() - 1].to_string();
    let longer = format!("{}0", b.token);
    for wrong in [same_len.as_str(), shorter.as_str(), longer.as_str(), ""] {
        assert_refused_everywhere(
            &b,
            &[("X-Passback-Token", wrong), ("Content-Type", "application/json")],
            "{}",
            401,
            &format!("wrong token {wrong:?}"),
        );
    }
    // Two token headers (one right) are refused too.
    let token = b.token.clone();
    assert_refused_everywhere(
        &b,
        &[
            ("X-Passback-Token", "nope"),
            ("X-Passback-Token", &token),
            ("Content-Type", "application/json"),
        ],
        "{}",
        401,
        "two tokens",
    );
}

#[test]
fn a_foreign_host_is_refused_even_with_the_right_token() {
    let b = Bridge::start();
    let token = b.token.clone();
    let port = b.port;
    let evil = format!("evil.example:{port}");
    let other_port = format!("127.0.0.1:{}", if port == 65535 { 1 } else { port + 1 });
    let rebinding_localhost = format!("localhost.evil.example:{port}");
    for host in [
        evil.as_str(),
        "evil.example",
        other_port.as_str(),
        rebinding_localhost.as_str(),
    ] {
        let headers = [
            ("Host", host),
            ("X-Passback-Token", &token),
            ("Content-Type", "application/json"),
        ];
        let a = b.raw("POST", "/api/overview", &headers, "{}");
        a.assert_refused(403, &format!("Host {host}"));
        let a = b.raw("POST", "/api/no_such_command", &headers, "{}");
        a.assert_refused(403, &format!("Host {host} (unknown command)"));
        // The static files are refused under a foreign name too.
        let a = b.raw("GET", "/", &[("Host", host)], "");
        a.assert_refused(403, &format!("GET / with Host {host}"));
        assert!(!String::from_utf8_lossy(&a.body).contains(INDEX_MARKER));
    }
    // No Host at all (HTTP/1.0 style) is refused as well.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    assert_eq!(parse_answer(&raw).status, 403);
}

#[test]
fn a_foreign_origin_is_refused_even_with_the_right_token() {
    let b = Bridge::start();
    let token = b.token.clone();
    let https_same = format!("https://127.0.0.1:{}", b.port);
    for origin in ["http://evil.example", "null", https_same.as_str()] {
        assert_refused_everywhere(
            &b,
            &[
                ("Origin", origin),
                ("X-Passback-Token", &token),
                ("Content-Type", "application/json"),
            ],
            "{}",
            403,
            &format!("Origin {origin}"),
        );
    }
    // A foreign page loading the static files is refused as well.
    let host = b.host();
    let a = b.raw(
        "GET",
        "/",
        &[("Host", &host), ("Origin", "http://evil.example")],
        "",
    );
    a.assert_refused(403, "GET / from a foreign origin");
}

#[test]
fn a_call_without_a_content_type_is_refused() {
    let b = Bridge::start();
    let token = b.token.clone();
    // `[1, 2]` would be the core's 400 if the body reached it.
    assert_refused_everywhere(
        &b,
        &[("X-Passback-Token", &token)],
        "[1, 2]",
        415,
        "no Content-Type",
    );
    assert_refused_everywhere(
        &b,
        &[("X-Passback-Token", &token)],
        "",
        415,
        "no Content-Type, no body",
    );
}

#[test]
fn a_call_that_is_not_json_is_refused() {
    let b = Bridge::start();
    let token = b.token.clone();
    for ct in [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonx",
    ] {
        assert_refused_everywhere(
            &b,
            &[("X-Passback-Token", &token), ("Content-Type", ct)],
            "{}",
            415,
            &format!("Content-Type {ct}"),
        );
    }
}

#[test]
fn a_job_started_through_the_bridge_streams_its_events_as_ndjson() {
    let b = Bridge::start();
    let headers = [
        ("X-Passback-Token", b.token.as_str()),
        ("Content-Type", "application/json"),
    ];
    // No job yet: the stream refuses with the core's not_found, as JSON.
    let a = b.api("stream/watch_job", &headers, r#"{"job_id": 7}"#);
    assert_eq!(a.status, 404, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(a.json()["kind"], "not_found");

    let a = b.api("start_sync", &headers, "{}");
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    let job = a.json()["job_id"].as_u64().unwrap();
    let a = b.api(
        "stream/watch_job",
        &headers,
        &format!(r#"{{"job_id": {job}, "after": 0}}"#),
    );
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(a.header("Content-Type"), Some("application/x-ndjson"));
    let events: Vec<Value> = String::from_utf8(a.body.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"begin"), "{events:?}");
    assert_eq!(kinds.last(), Some(&"finished"), "{events:?}");
    assert_eq!(events.last().unwrap()["report"]["run"]["job"], "sync");
    // Polling gives the same events.
    let a = b.api("job_events", &headers, &format!(r#"{{"job_id": {job}}}"#));
    assert_eq!(a.json()["events"].as_array().unwrap().len(), events.len());
    assert_eq!(a.json()["finished"], true);
}
