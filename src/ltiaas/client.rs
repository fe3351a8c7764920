//! The LTIAAS service API client: `Authorization` headers, URL building (a line
//! item id is URL-encoded exactly once as one path segment; a `next` page goes
//! back through `?url=`), one HTTP exchange at a time with a capped body, and
//! typed answers read leniently.
//!
//! Secrets (API key, ltik, service key) live only inside [`LtiaasAuth`]: its
//! `Debug` redacts them, journal excerpts show `SERVICE-AUTH-V1 [redacted]`,
//! dry runs show `SERVICE-AUTH-V1 <API_KEY>:<SERVICE_KEY>`, and every text kept
//! from an answer is scrubbed of them.

use std::collections::HashSet;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use url::Url;

use super::classify::{AuthScheme, LtiaasError, Observed, classify};
use crate::error::{Error, Result};
use crate::http::{
    BodyError, ClientOptions, EXCERPT_BYTES, MAX_RESPONSE_BYTES, RateBudget, TransportError, Verdict,
    build_client, cut, header, parse_retry_after, read_capped, says_rate_limit_exceeded,
};
use crate::model::{AttemptOutcome, ErrorClass};

/// Most pages followed through `next` in one listing (a loop guard).
pub const MAX_PAGES: usize = 200;

/// `encodeURIComponent`: everything but `A-Z a-z 0-9 - _ . ! ~ * ' ( )` is escaped.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// Percent-encode one value as JavaScript's `encodeURIComponent` does (so `/`,
/// `?`, `%`, `#`, `:` and `&` are all escaped).
pub fn encode_component(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

/// A secret string: never printed by `Debug`, never serialized.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    /// The secret itself (for the keyring and the `Authorization` header only).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Credentials for one request: the API key plus an ltik or a service key.
#[derive(Clone)]
pub struct LtiaasAuth {
    scheme: AuthScheme,
    api_key: SecretString,
    token: SecretString,
}

impl std::fmt::Debug for LtiaasAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LtiaasAuth({})", self.redacted_header())
    }
}

impl LtiaasAuth {
    /// `LTIK-AUTH-V2 API_KEY:LTIK` (inside a launch).
    pub fn ltik(api_key: &str, ltik: &str) -> Result<Self> {
        Self::new(AuthScheme::Ltik, api_key, ltik)
    }

    /// `SERVICE-AUTH-V1 API_KEY:SERVICE_KEY` (outside a launch).
    pub fn service_key(api_key: &str, service_key: &str) -> Result<Self> {
        Self::new(AuthScheme::ServiceKey, api_key, service_key)
    }

    fn new(scheme: AuthScheme, api_key: &str, token: &str) -> Result<Self> {
        let what = match scheme {
            AuthScheme::Ltik => "ltik",
            AuthScheme::ServiceKey => "service key",
        };
        for (name, v) in [("API key", api_key), (what, token)] {
            if v.trim().is_empty() {
                return Err(Error::invalid(format!("the LTIAAS {name} is empty")));
            }
            if v.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return Err(Error::invalid(format!(
                    "the LTIAAS {name} contains spaces or control characters; copy it again without them"
                )));
            }
        }
        if api_key.contains(':') {
            return Err(Error::invalid(
                "the LTIAAS API key contains ':', which the Authorization header uses as a separator; check the key",
            ));
        }
        Ok(Self {
            scheme,
            api_key: SecretString::new(api_key),
            token: SecretString::new(token),
        })
    }

    pub fn scheme(&self) -> AuthScheme {
        self.scheme
    }

    fn prefix(scheme: AuthScheme) -> &'static str {
        match scheme {
            AuthScheme::Ltik => "LTIK-AUTH-V2",
            AuthScheme::ServiceKey => "SERVICE-AUTH-V1",
        }
    }

    /// The real header value. Goes only into the HTTP request.
    fn header_value(&self) -> String {
        format!(
            "{} {}:{}",
            Self::prefix(self.scheme),
            self.api_key.expose(),
            self.token.expose()
        )
    }

    /// `SERVICE-AUTH-V1 [redacted]`, for journals and logs.
    pub fn redacted_header(&self) -> String {
        redacted_header(self.scheme)
    }

    /// `text` scrubbed, then cut to `max` bytes — in that order, so a secret that
    /// straddles the cut is still found whole and replaced.
    pub fn scrub_cut(&self, text: &str, max: usize) -> String {
        cut(&self.scrub(text), max)
    }

    /// Replace every occurrence of the API key or the token in `text` with `[redacted]`:
    /// as sent, and as an answer may echo it — JSON-escaped (`\/`, `\"`, `\uXXXX`) or
    /// percent-encoded (a URL in an error message).
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in [self.api_key.expose(), self.token.expose()] {
            if s.is_empty() {
                continue;
            }
            for form in echoed_forms(s) {
                out = out.replace(&form, "[redacted]");
            }
        }
        out
    }
}

/// The ways a secret may come back inside an answer: as sent, JSON-escaped (serde's
/// form, with `/` escaped too, and every non-ASCII or special character as `\uXXXX`),
/// and percent-encoded (upper- and lower-case hex). Longest first, so a longer form is
/// never left half-replaced by a shorter one.
fn echoed_forms(secret: &str) -> Vec<String> {
    let json = serde_json::to_string(secret).unwrap_or_default();
    let json = json.trim_matches('"').to_string();
    // Every character but letters and digits escaped, with hex digits in either case
    // (only the hex changes case, never the secret's own letters).
    let escaped = |unicode: bool, upper: bool| -> String {
        let hex = |v: u32, width: usize| {
            if upper {
                format!("{v:0width$X}")
            } else {
                format!("{v:0width$x}")
            }
        };
        let mut out = String::new();
        for c in secret.chars() {
            if c.is_ascii_alphanumeric() {
                out.push(c);
            } else if unicode {
                for u in c.encode_utf16(&mut [0; 2]) {
                    out.push_str(&format!("\\u{}", hex(u32::from(*u), 4)));
                }
            } else {
                for b in c.to_string().bytes() {
                    out.push_str(&format!("%{}", hex(u32::from(b), 2)));
                }
            }
        }
        out
    };
    let mut forms = vec![
        secret.to_string(),
        json.replace('/', "\\/"),
        json,
        escaped(true, false),
        escaped(true, true),
        escaped(false, true),
        escaped(false, false),
        encode_component(secret),
    ];
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    forms.dedup();
    forms
}

/// `SERVICE-AUTH-V1 [redacted]` / `LTIK-AUTH-V2 [redacted]`.
pub fn redacted_header(scheme: AuthScheme) -> String {
    format!("{} [redacted]", LtiaasAuth::prefix(scheme))
}

/// `SERVICE-AUTH-V1 <API_KEY>:<SERVICE_KEY>` / `LTIK-AUTH-V2 <API_KEY>:<LTIK>`, for dry runs.
pub fn placeholder_header(scheme: AuthScheme) -> String {
    match scheme {
        AuthScheme::Ltik => "LTIK-AUTH-V2 <API_KEY>:<LTIK>".into(),
        AuthScheme::ServiceKey => "SERVICE-AUTH-V1 <API_KEY>:<SERVICE_KEY>".into(),
    }
}

/// HTTP method of an LTIAAS request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Method {
    #[serde(rename = "GET")]
    Get,
    #[serde(rename = "POST")]
    Post,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// One request ready to send (and to show in `--dry-run`). Holds no secret.
#[derive(Debug, Clone, PartialEq)]
pub struct LtiaasRequest {
    pub method: Method,
    pub url: Url,
    pub scheme: AuthScheme,
    /// JSON body (POST only).
    pub body: Option<String>,
}

impl LtiaasRequest {
    fn target(&self) -> String {
        match self.url.query() {
            Some(q) => format!("{}?{q}", self.url.path()),
            None => self.url.path().to_string(),
        }
    }

    /// The request as HTTP text with `<API_KEY>:<SERVICE_KEY>` placeholders (never a secret).
    pub fn to_http_text(&self) -> String {
        let host = self.url.host_str().unwrap_or("");
        let host = match self.url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        let mut s = format!(
            "{} {} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\nAuthorization: {}\r\n",
            self.method.as_str(),
            self.target(),
            placeholder_header(self.scheme)
        );
        match &self.body {
            Some(b) => s.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
                b.len()
            )),
            None => s.push_str("\r\n"),
        }
        s
    }

    /// A redacted excerpt for the attempt journal.
    pub fn journal_excerpt(&self) -> String {
        let mut s = format!(
            "{} {}\nAuthorization: {}",
            self.method.as_str(),
            self.url,
            redacted_header(self.scheme)
        );
        if let Some(b) = &self.body {
            s.push_str("\n\n");
            s.push_str(&cut(b, EXCERPT_BYTES));
        }
        s
    }
}

// ---------------------------------------------------------------------------
// Answer types, read leniently.

fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

fn lenient_f64<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<f64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|v| v.is_finite()),
        _ => None,
    })
}

fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<bool, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Bool(b) => b,
        Value::String(s) => s.eq_ignore_ascii_case("true"),
        _ => false,
    })
}

fn string_list<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Array(items) => items
            .into_iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(s),
                _ => None,
            })
            .collect(),
        Value::String(s) => s.split(',').map(|r| r.trim().to_string()).collect(),
        _ => Vec::new(),
    })
}

/// `user` of an ID token.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct IdTokenUser {
    #[serde(deserialize_with = "lenient_string")]
    pub id: Option<String>,
    #[serde(deserialize_with = "string_list")]
    pub roles: Vec<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub email: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub name: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub given_name: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub family_name: Option<String>,
}

/// `platform` of an ID token (LTIAAS's registration of the LMS).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct IdTokenPlatform {
    #[serde(deserialize_with = "lenient_string")]
    pub id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub url: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub name: Option<String>,
}

/// `launch.context` of an ID token.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct IdTokenContext {
    #[serde(deserialize_with = "lenient_string")]
    pub id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub label: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub title: Option<String>,
}

/// `launch.resourceLink` of an ID token.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct IdTokenResourceLink {
    #[serde(deserialize_with = "lenient_string")]
    pub id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub title: Option<String>,
}

/// `launch` of an ID token.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct IdTokenLaunch {
    pub context: IdTokenContext,
    pub resource_link: IdTokenResourceLink,
}

/// `services.assignmentAndGrades` of an ID token.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AgsService {
    #[serde(deserialize_with = "lenient_bool")]
    pub available: bool,
    /// Present only when exactly one line item is tied to the launch.
    #[serde(deserialize_with = "lenient_string")]
    pub line_item_id: Option<String>,
}

/// `services` of an ID token.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct IdTokenServices {
    pub assignment_and_grades: AgsService,
    /// The per-context key for calls outside the launch. Secret.
    pub service_key: Option<SecretString>,
}

/// The parts of `GET /api/idtoken` Passback uses. Its `Debug` never shows the service key.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct IdToken {
    pub user: IdTokenUser,
    pub platform: IdTokenPlatform,
    pub launch: IdTokenLaunch,
    pub services: IdTokenServices,
}

/// An AGS line item as LTIAAS returns it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct LineItem {
    #[serde(deserialize_with = "lenient_string")]
    pub id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub label: Option<String>,
    #[serde(deserialize_with = "lenient_f64")]
    pub score_maximum: Option<f64>,
    #[serde(deserialize_with = "lenient_string")]
    pub resource_link_id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub resource_id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub tag: Option<String>,
}

/// A line item to create (`POST /api/lineitems`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewLineItem {
    pub label: String,
    pub score_maximum: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_link_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// Filters for `GET /api/lineitems`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LineItemFilter {
    pub resource_link_id: Option<String>,
    pub resource_id: Option<String>,
    pub tag: Option<String>,
    /// Page size asked for (the LMS may return fewer).
    pub limit: Option<u32>,
}

/// AGS `activityProgress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActivityProgress {
    Initialized,
    Started,
    InProgress,
    Submitted,
    Completed,
}

/// AGS `gradingProgress` (LMSs may ignore scores that are not `FullyGraded`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GradingProgress {
    FullyGraded,
    Pending,
    PendingManual,
    Failed,
    NotReady,
}

/// The body of `POST /api/lineitems/{id}/scores`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScoreBody {
    pub user_id: String,
    /// 0 is a real score; `None` clears the score.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score_given: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score_maximum: Option<f64>,
    /// Omitted means "clear the comment" on most LMSs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub activity_progress: ActivityProgress,
    pub grading_progress: GradingProgress,
    /// ISO 8601 with milliseconds, fresh and strictly increasing per (line item, user).
    pub timestamp: String,
}

/// One result from `GET /api/lineitems/{id}/scores`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ResultScore {
    #[serde(deserialize_with = "lenient_string")]
    pub id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub user_id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub score_of: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub timestamp: Option<String>,
    #[serde(deserialize_with = "lenient_f64")]
    pub result_score: Option<f64>,
    #[serde(deserialize_with = "lenient_f64")]
    pub result_maximum: Option<f64>,
    #[serde(deserialize_with = "lenient_string")]
    pub comment: Option<String>,
}

/// What one request (or one walk through pages) to LTIAAS produced.
#[derive(Debug, Clone)]
pub struct ApiAnswer<T> {
    pub verdict: Verdict,
    pub http_status: Option<u16>,
    /// The parsed answer (2xx only).
    pub value: Option<T>,
    /// The first bytes of the (last) answer, scrubbed of secrets.
    pub response_excerpt: Option<String>,
    /// Pages fetched (listings).
    pub pages: usize,
    /// What the LMS said of its request budget on the (last) answer
    /// (`X-Rate-Limit-Remaining`, `X-Request-Cost`, when LTIAAS passes them on);
    /// empty when nothing was sent or no answer arrived.
    pub budget: RateBudget,
}

impl<T> ApiAnswer<T> {
    fn fail(verdict: Verdict, http_status: Option<u16>, excerpt: Option<String>) -> Self {
        Self {
            verdict,
            http_status,
            value: None,
            response_excerpt: excerpt,
            pages: 0,
            budget: RateBudget::default(),
        }
    }

    fn with_budget(mut self, budget: RateBudget) -> Self {
        self.budget = budget;
        self
    }
}

struct Raw {
    verdict: Verdict,
    http_status: Option<u16>,
    body: Vec<u8>,
    excerpt: Option<String>,
    budget: RateBudget,
}

/// An LTIAAS base URL, checked: https, or plain http to a loopback IP literal, with
/// no userinfo, query or fragment. Returns it without a trailing slash, and its
/// `host` or `host:port` (lower case): where the API key may go.
pub fn parse_base(url: &str) -> Result<(String, String)> {
    let base = url.trim().trim_end_matches('/').to_string();
    let parsed = Url::parse(&base).map_err(|e| {
        Error::invalid(format!(
            "the LTIAAS base URL {base:?} is not a valid URL ({e}); it must start with https://"
        ))
    })?;
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(Error::invalid(format!(
            "the LTIAAS base URL {base:?} must not have a query or fragment"
        )));
    }
    crate::http::check_secret_destination(&parsed, "the LTIAAS base URL")?;
    let host = match (parsed.host_str(), parsed.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        (None, _) => {
            return Err(Error::invalid(format!(
                "the LTIAAS base URL {base:?} has no host"
            )));
        }
    };
    Ok((base, host.to_ascii_lowercase()))
}

/// The LTIAAS HTTP client (rustls, no redirects, bounded bodies).
#[derive(Debug, Clone)]
pub struct LtiaasClient {
    http: reqwest::Client,
    base: String,
    /// `host` or `host:port` of the base URL, lower case: where every request goes.
    host: String,
}

impl LtiaasClient {
    /// A client for `base_url` (e.g. `https://your.ltiaas.com`). The API key travels
    /// in every request: the URL is checked here, where it is sent, not only when the
    /// platform was stored (a ledger may have been edited since).
    pub fn new(base_url: &str, opts: ClientOptions) -> Result<Self> {
        let (base, host) = parse_base(base_url)?;
        Ok(Self {
            http: build_client(opts)?,
            base,
            host,
        })
    }

    /// `host` or `host:port` of the base URL: the only host this client sends to.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The base URL without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, path_and_query: &str) -> Result<Url> {
        Url::parse(&format!("{}{path_and_query}", self.base))
            .map_err(|e| Error::invalid(format!("cannot build an LTIAAS URL from {path_and_query:?}: {e}")))
    }

    /// `GET /api/idtoken`.
    pub fn idtoken_request(&self) -> Result<LtiaasRequest> {
        Ok(LtiaasRequest {
            method: Method::Get,
            url: self.url("/api/idtoken")?,
            scheme: AuthScheme::Ltik,
            body: None,
        })
    }

    /// `GET /api/lineitems?resourceLinkId=…&resourceId=…&tag=…&limit=…`.
    pub fn line_items_request(&self, filter: &LineItemFilter, scheme: AuthScheme) -> Result<LtiaasRequest> {
        let mut q = Vec::new();
        for (k, v) in [
            ("resourceLinkId", &filter.resource_link_id),
            ("resourceId", &filter.resource_id),
            ("tag", &filter.tag),
        ] {
            if let Some(v) = v {
                q.push(format!("{k}={}", encode_component(v)));
            }
        }
        if let Some(l) = filter.limit {
            q.push(format!("limit={l}"));
        }
        let query = if q.is_empty() {
            String::new()
        } else {
            format!("?{}", q.join("&"))
        };
        Ok(LtiaasRequest {
            method: Method::Get,
            url: self.url(&format!("/api/lineitems{query}"))?,
            scheme,
            body: None,
        })
    }

    /// The same listing endpoint asked for the page at `next` (`?url=`, encoded once).
    fn page_request(&self, path: &str, next: &str, scheme: AuthScheme) -> Result<LtiaasRequest> {
        Ok(LtiaasRequest {
            method: Method::Get,
            url: self.url(&format!("{path}?url={}", encode_component(next)))?,
            scheme,
            body: None,
        })
    }

    /// `/api/lineitems/{id}` with the id encoded exactly once as one path segment.
    pub fn line_item_path(line_item_id: &str) -> String {
        format!("/api/lineitems/{}", encode_component(line_item_id))
    }

    /// `POST /api/lineitems` creating `item`.
    pub fn create_line_item_request(&self, item: &NewLineItem) -> Result<LtiaasRequest> {
        Ok(LtiaasRequest {
            method: Method::Post,
            url: self.url("/api/lineitems")?,
            scheme: AuthScheme::ServiceKey,
            body: Some(serde_json::to_string(item).map_err(|e| Error::internal(e.to_string()))?),
        })
    }

    /// `POST /api/lineitems/{id}/scores` with `score` as the body.
    pub fn score_request(&self, line_item_id: &str, score: &ScoreBody) -> Result<LtiaasRequest> {
        Ok(LtiaasRequest {
            method: Method::Post,
            url: self.url(&format!("{}/scores", Self::line_item_path(line_item_id)))?,
            scheme: AuthScheme::ServiceKey,
            body: Some(serde_json::to_string(score).map_err(|e| Error::internal(e.to_string()))?),
        })
    }

    /// `GET /api/lineitems/{id}/scores?userId=…&limit=…`.
    pub fn scores_request(
        &self,
        line_item_id: &str,
        user_id: Option<&str>,
        limit: Option<u32>,
    ) -> Result<LtiaasRequest> {
        let mut q = Vec::new();
        if let Some(u) = user_id {
            q.push(format!("userId={}", encode_component(u)));
        }
        if let Some(l) = limit {
            q.push(format!("limit={l}"));
        }
        let query = if q.is_empty() {
            String::new()
        } else {
            format!("?{}", q.join("&"))
        };
        Ok(LtiaasRequest {
            method: Method::Get,
            url: self.url(&format!("{}/scores{query}", Self::line_item_path(line_item_id)))?,
            scheme: AuthScheme::ServiceKey,
            body: None,
        })
    }

    /// `GET /api/idtoken` with an ltik. The answer carries the service key, so
    /// no excerpt of a successful answer is ever kept.
    pub async fn get_idtoken(&self, auth: &LtiaasAuth) -> ApiAnswer<IdToken> {
        let req = match self.idtoken_request() {
            Ok(r) => r,
            Err(e) => return ApiAnswer::fail(Verdict::not_sent(e.message.clone()), None, None),
        };
        let raw = self.execute(auth, &req).await;
        if !raw.verdict.is_success() {
            return ApiAnswer::fail(raw.verdict, raw.http_status, raw.excerpt).with_budget(raw.budget);
        }
        match serde_json::from_slice::<IdToken>(&raw.body) {
            Ok(t) => ApiAnswer {
                verdict: raw.verdict,
                http_status: raw.http_status,
                value: Some(t),
                response_excerpt: None,
                pages: 1,
                budget: raw.budget,
            },
            Err(e) => ApiAnswer::fail(
                shape_error(
                    raw.http_status,
                    &format!("the ID token is not the expected JSON ({e})"),
                ),
                raw.http_status,
                None,
            )
            .with_budget(raw.budget),
        }
    }

    /// List line items, following `next` through `?url=` until the last page.
    pub async fn list_line_items(
        &self,
        auth: &LtiaasAuth,
        filter: &LineItemFilter,
    ) -> ApiAnswer<Vec<LineItem>> {
        let first = match self.line_items_request(filter, auth.scheme()) {
            Ok(r) => r,
            Err(e) => return ApiAnswer::fail(Verdict::not_sent(e.message.clone()), None, None),
        };
        self.walk(auth, first, "/api/lineitems", "lineItems").await
    }

    /// Create a line item in the launch's context.
    pub async fn create_line_item(&self, auth: &LtiaasAuth, item: &NewLineItem) -> ApiAnswer<LineItem> {
        let mut req = match self.create_line_item_request(item) {
            Ok(r) => r,
            Err(e) => return ApiAnswer::fail(Verdict::not_sent(e.message.clone()), None, None),
        };
        req.scheme = auth.scheme();
        let raw = self.execute(auth, &req).await;
        if !raw.verdict.is_success() {
            return ApiAnswer::fail(raw.verdict, raw.http_status, raw.excerpt).with_budget(raw.budget);
        }
        match serde_json::from_slice::<LineItem>(&raw.body) {
            Ok(li) if li.id.is_some() => ApiAnswer {
                verdict: raw.verdict,
                http_status: raw.http_status,
                value: Some(li),
                response_excerpt: raw.excerpt,
                pages: 1,
                budget: raw.budget,
            },
            _ => ApiAnswer::fail(
                shape_error(raw.http_status, "the created line item has no id"),
                raw.http_status,
                raw.excerpt,
            )
            .with_budget(raw.budget),
        }
    }

    /// Send a prepared score request (`204`, or `200`/`201` with any body, is success).
    pub async fn post_score(&self, auth: &LtiaasAuth, req: &LtiaasRequest) -> ApiAnswer<()> {
        let raw = self.execute(auth, req).await;
        let ok = raw.verdict.is_success();
        ApiAnswer {
            verdict: raw.verdict,
            http_status: raw.http_status,
            value: ok.then_some(()),
            response_excerpt: raw.excerpt,
            pages: 1,
            budget: raw.budget,
        }
    }

    /// Read results of a line item (optionally one user's), following `next`.
    pub async fn read_scores(
        &self,
        auth: &LtiaasAuth,
        line_item_id: &str,
        user_id: Option<&str>,
        limit: Option<u32>,
    ) -> ApiAnswer<Vec<ResultScore>> {
        let first = match self.scores_request(line_item_id, user_id, limit) {
            Ok(r) => r,
            Err(e) => return ApiAnswer::fail(Verdict::not_sent(e.message.clone()), None, None),
        };
        let path = format!("{}/scores", Self::line_item_path(line_item_id));
        self.walk(auth, first, &path, "scores").await
    }

    /// Fetch `first` and every `next` page, collecting the array under `field`.
    async fn walk<T: serde::de::DeserializeOwned>(
        &self,
        auth: &LtiaasAuth,
        first: LtiaasRequest,
        path: &str,
        field: &str,
    ) -> ApiAnswer<Vec<T>> {
        let mut req = first;
        let mut all = Vec::new();
        let mut seen = HashSet::new();
        let mut pages = 0;
        loop {
            let raw = self.execute(auth, &req).await;
            pages += 1;
            if !raw.verdict.is_success() {
                let mut failed =
                    ApiAnswer::fail(raw.verdict, raw.http_status, raw.excerpt).with_budget(raw.budget);
                failed.pages = pages;
                return failed;
            }
            let page: Value = match serde_json::from_slice(&raw.body) {
                Ok(v) => v,
                Err(e) => {
                    return ApiAnswer::fail(
                        shape_error(raw.http_status, &format!("page {pages} is not JSON ({e})")),
                        raw.http_status,
                        raw.excerpt,
                    )
                    .with_budget(raw.budget);
                }
            };
            // LTIAAS wraps the array (`{"lineItems": [...], "next": …}`); plain AGS is a bare array.
            let (items, next) = match &page {
                Value::Array(a) => (Some(a.clone()), None),
                Value::Object(m) => (
                    m.get(field).and_then(Value::as_array).cloned(),
                    m.get("next").and_then(Value::as_str).map(str::to_string),
                ),
                _ => (None, None),
            };
            let Some(items) = items else {
                return ApiAnswer::fail(
                    shape_error(raw.http_status, &format!("page {pages} has no {field:?} list")),
                    raw.http_status,
                    raw.excerpt,
                )
                .with_budget(raw.budget);
            };
            for item in items {
                match serde_json::from_value::<T>(item) {
                    Ok(v) => all.push(v),
                    Err(e) => tracing::warn!(page = pages, "skipping an unreadable {field} entry: {e}"),
                }
            }
            let next = next.filter(|n| !n.trim().is_empty());
            let Some(next) = next else {
                return ApiAnswer {
                    verdict: raw.verdict,
                    http_status: raw.http_status,
                    value: Some(all),
                    response_excerpt: raw.excerpt,
                    pages,
                    budget: raw.budget,
                };
            };
            if !seen.insert(next.clone()) || pages >= MAX_PAGES {
                return ApiAnswer::fail(
                    shape_error(
                        raw.http_status,
                        &format!(
                            "paging did not end after {pages} pages (the next link repeats or never stops)"
                        ),
                    ),
                    raw.http_status,
                    raw.excerpt,
                )
                .with_budget(raw.budget);
            }
            req = match self.page_request(path, &next, auth.scheme()) {
                Ok(r) => r,
                Err(e) => {
                    let mut failed = ApiAnswer::fail(Verdict::not_sent(e.message.clone()), None, None)
                        .with_budget(raw.budget);
                    failed.pages = pages;
                    return failed;
                }
            };
        }
    }

    /// One HTTP exchange and its verdict. Nothing secret is logged or kept.
    async fn execute(&self, auth: &LtiaasAuth, req: &LtiaasRequest) -> Raw {
        tracing::debug!(method = req.method.as_str(), url = %req.url, "LTIAAS request");
        let mut b = match req.method {
            Method::Get => self.http.get(req.url.clone()),
            Method::Post => self.http.post(req.url.clone()),
        }
        .header(ACCEPT, "application/json")
        .header(AUTHORIZATION, auth.header_value());
        if let Some(body) = &req.body {
            b = b.header(CONTENT_TYPE, "application/json").body(body.clone());
        }
        let mut obs = Observed::new(auth.scheme());
        let resp = match b.send().await {
            Ok(r) => r,
            Err(e) => {
                // reqwest errors name the URL, never the headers; scrub anyway.
                obs.transport_error = Some(TransportError::from_reqwest(&e, |t| auth.scrub(t)));
                return Raw {
                    verdict: classify(&obs),
                    http_status: None,
                    body: Vec::new(),
                    excerpt: None,
                    budget: RateBudget::default(),
                };
            }
        };
        let status = resp.status().as_u16();
        obs.http_status = Some(status);
        obs.budget = RateBudget::from_headers(resp.headers());
        obs.retry_after = header(&resp, RETRY_AFTER)
            .as_deref()
            .and_then(|v| parse_retry_after(v, time::OffsetDateTime::now_utc()));
        if (300..400).contains(&status) {
            obs.redirect_to =
                Some(auth.scrub(&header(&resp, LOCATION).unwrap_or_else(|| "(no Location)".into())));
        }
        let body = match read_capped(resp).await {
            Ok(b) => b,
            Err(BodyError::Transport(e)) => {
                obs.transport_error = Some(TransportError::Other(format!(
                    "the answer broke off: {}",
                    auth.scrub(&e)
                )));
                return Raw {
                    verdict: classify(&obs),
                    http_status: Some(status),
                    body: Vec::new(),
                    excerpt: None,
                    budget: obs.budget,
                };
            }
            Err(BodyError::TooLarge(b)) => {
                obs.body_problem = Some(format!("the answer is larger than {MAX_RESPONSE_BYTES} bytes"));
                b
            }
        };
        let text = String::from_utf8_lossy(&body);
        let excerpt = (!body.is_empty()).then(|| auth.scrub_cut(&text, EXCERPT_BYTES));
        if (200..300).contains(&status) {
            if obs.body_problem.is_none()
                && !body.is_empty()
                && let Err(e) = serde_json::from_slice::<Value>(&body)
            {
                let t = text.trim_start();
                if t.starts_with('{') || t.starts_with('[') {
                    obs.body_malformed = true;
                    obs.body_problem = Some(format!("the JSON answer broke off or is malformed ({e})"));
                } else {
                    obs.body_problem = Some(format!("not JSON: {:?}", auth.scrub_cut(text.trim(), 120)));
                }
            }
        } else {
            obs.error = LtiaasError::parse(&body);
            obs.says_rate_limited = status >= 400 && says_rate_limit_exceeded(&body);
        }
        let mut verdict = classify(&obs);
        verdict.description = auth.scrub(&verdict.description);
        Raw {
            verdict,
            http_status: Some(status),
            body,
            excerpt,
            budget: obs.budget,
        }
    }
}

/// A verdict for a 2xx answer Passback could not use.
fn shape_error(status: Option<u16>, what: &str) -> Verdict {
    Verdict {
        outcome: AttemptOutcome::Error,
        error_class: Some(ErrorClass::Permanent),
        description: match status {
            Some(s) => format!("HTTP {s}: {what}"),
            None => what.to_string(),
        },
        fix_hint: Some(
            "The answer was not what the LTIAAS API returns: check the platform's base URL (it should be your \
             LTIAAS domain)."
                .into(),
        ),
        retry_after: None,
        cause: crate::model::Cause::NotAnOutcomeService,
    }
}

/// Format Unix milliseconds as ISO 8601 UTC with milliseconds (`2026-11-23T10:00:00.123Z`).
pub fn format_timestamp_ms(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&fmt).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> LtiaasClient {
        LtiaasClient::new("https://your.ltiaas.com/", ClientOptions::default()).unwrap()
    }

    #[test]
    fn a_secret_echoed_across_the_excerpt_boundary_is_scrubbed_before_the_cut() {
        let a = LtiaasAuth::service_key("API-KEY-0123456789", "SK-ABCDEFGHIJ").unwrap();
        // The API key starts 8 bytes before the cut: cutting first would keep
        // "API-KEY-" and scrubbing could no longer recognise it.
        for at in [EXCERPT_BYTES - 8, EXCERPT_BYTES - 1, 112] {
            let body = format!(
                "{}API-KEY-0123456789 and SK-ABCDEFGHIJ{}",
                "x".repeat(at),
                "y".repeat(4096)
            );
            for max in [EXCERPT_BYTES, 120] {
                let excerpt = a.scrub_cut(&body, max);
                for secret in ["API-KEY-0123456789", "SK-ABCDEFGHIJ"] {
                    for len in 4..=secret.len() {
                        assert!(
                            !excerpt.contains(&secret[..len]),
                            "{len} bytes of a secret at {at}, cut at {max}: …{:?}",
                            &excerpt[excerpt.len().saturating_sub(60)..]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_secret_echoed_json_escaped_or_percent_encoded_is_scrubbed_too() {
        let api = "API/key+\"quoted\"&é=1";
        let sk = "SK:ab/cd?ef";
        let a = LtiaasAuth::service_key(api, sk).unwrap();
        for secret in [api, sk] {
            let json = serde_json::to_string(secret).unwrap();
            let json = json.trim_matches('"');
            // Hex digits in either case; the secret's own letters as they are.
            let escape = |f: &dyn Fn(u32) -> String, unicode: bool| -> String {
                secret
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() {
                            c.to_string()
                        } else if unicode {
                            f(c as u32)
                        } else {
                            c.to_string().bytes().map(|b| f(u32::from(b))).collect()
                        }
                    })
                    .collect()
            };
            for echoed in [
                secret.to_string(),
                json.to_string(),
                json.replace('/', "\\/"),
                escape(&|u| format!("\\u{u:04x}"), true),
                escape(&|u| format!("\\u{u:04X}"), true),
                escape(&|b| format!("%{b:02X}"), false),
                escape(&|b| format!("%{b:02x}"), false),
            ] {
                let body = format!("{{\"error\":\"bad key {echoed} given\"}}");
                let out = a.scrub(&body);
                assert!(!out.contains(&echoed), "{echoed:?} survived: {out}");
                assert!(out.contains("[redacted]"), "{out}");
            }
        }
    }

    #[test]
    fn headers_are_built_redacted_and_never_debug_printed() {
        let a = LtiaasAuth::service_key("API-123", "SK-456").unwrap();
        assert_eq!(a.header_value(), "SERVICE-AUTH-V1 API-123:SK-456");
        assert_eq!(a.redacted_header(), "SERVICE-AUTH-V1 [redacted]");
        let dbg = format!("{a:?}");
        assert!(!dbg.contains("API-123") && !dbg.contains("SK-456"), "{dbg}");
        assert_eq!(
            a.scrub("key API-123 and SK-456!"),
            "key [redacted] and [redacted]!"
        );
        let l = LtiaasAuth::ltik("API-123", "LTIK-789").unwrap();
        assert_eq!(l.header_value(), "LTIK-AUTH-V2 API-123:LTIK-789");
        assert!(LtiaasAuth::ltik("", "x").is_err());
        assert!(LtiaasAuth::ltik("a b", "x").is_err());
        assert!(LtiaasAuth::service_key("a:b", "x").is_err());
        assert!(LtiaasAuth::service_key("a", "x\n").is_err());
    }

    #[test]
    fn a_line_item_id_is_encoded_exactly_once_as_one_segment() {
        let id = "https://lms.example/api/lti/courses/1/line_items/5?type_id=7&x=50%25/a b#f";
        let body = ScoreBody {
            user_id: "u1".into(),
            score_given: Some(0.0),
            score_maximum: Some(10.0),
            comment: None,
            activity_progress: ActivityProgress::Completed,
            grading_progress: GradingProgress::FullyGraded,
            timestamp: format_timestamp_ms(1_700_000_000_123),
        };
        let req = client().score_request(id, &body).unwrap();
        let path = req.url.path();
        let enc = "https%3A%2F%2Flms.example%2Fapi%2Flti%2Fcourses%2F1%2Fline_items%2F5%3Ftype_id%3D7%26x%3D50%2525%2Fa%20b%23f";
        assert_eq!(path, format!("/api/lineitems/{enc}/scores"));
        assert_eq!(req.url.query(), None, "the id's '?' stays inside the segment");
        let segs: Vec<_> = req.url.path_segments().unwrap().collect();
        assert_eq!(segs.len(), 4);
        assert_eq!(
            percent_encoding::percent_decode_str(segs[2])
                .decode_utf8()
                .unwrap(),
            id,
            "decoding once gives the id back"
        );
        let json: Value = serde_json::from_str(req.body.as_deref().unwrap()).unwrap();
        assert_eq!(json["scoreGiven"], 0.0, "a score of 0 is sent, not dropped");
        assert_eq!(json["timestamp"], "2023-11-14T22:13:20.123Z");
        assert_eq!(json["activityProgress"], "Completed");
        assert_eq!(json["gradingProgress"], "FullyGraded");
        assert!(json.get("comment").is_none());
    }

    #[test]
    fn listing_urls_and_next_pages() {
        let c = client();
        let r = c
            .line_items_request(
                &LineItemFilter {
                    resource_link_id: Some("rl 1/2".into()),
                    tag: Some("t&x".into()),
                    limit: Some(3),
                    ..Default::default()
                },
                AuthScheme::ServiceKey,
            )
            .unwrap();
        assert_eq!(
            r.url.as_str(),
            "https://your.ltiaas.com/api/lineitems?resourceLinkId=rl%201%2F2&tag=t%26x&limit=3"
        );
        let next = "https://lms.example/api/lti/courses/1/line_items?page=2&per_page=3";
        let p = c
            .page_request("/api/lineitems", next, AuthScheme::ServiceKey)
            .unwrap();
        let got: Vec<_> = p.url.query_pairs().collect();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "url");
        assert_eq!(got[0].1, next);
        let s = c.scores_request("li/1", Some("user 1"), None).unwrap();
        assert_eq!(
            s.url.as_str(),
            "https://your.ltiaas.com/api/lineitems/li%2F1/scores?userId=user%201"
        );
    }

    #[test]
    fn dry_run_text_and_journal_excerpt_hold_no_secret() {
        let c = client();
        let body = ScoreBody {
            user_id: "u1".into(),
            score_given: Some(7.0),
            score_maximum: Some(10.0),
            comment: Some("ok".into()),
            activity_progress: ActivityProgress::Completed,
            grading_progress: GradingProgress::FullyGraded,
            timestamp: format_timestamp_ms(0),
        };
        let req = c.score_request("li", &body).unwrap();
        let text = req.to_http_text();
        assert!(text.starts_with("POST /api/lineitems/li/scores HTTP/1.1\r\nHost: your.ltiaas.com\r\n"));
        assert!(text.contains("Authorization: SERVICE-AUTH-V1 <API_KEY>:<SERVICE_KEY>\r\n"));
        assert!(text.contains("\"scoreGiven\":7.0"));
        let ex = req.journal_excerpt();
        assert!(ex.contains("Authorization: SERVICE-AUTH-V1 [redacted]"), "{ex}");
    }

    #[test]
    fn id_tokens_are_read_leniently_and_hide_the_service_key() {
        let t: IdToken = serde_json::from_value(serde_json::json!({
            "user": {"id": 42, "roles": "Learner, Instructor", "name": "Ada"},
            "platform": {"id": "p1"},
            "launch": {"context": {"id": "c1", "title": "Course"}, "resourceLink": {"id": "r1"}},
            "services": {"assignmentAndGrades": {"available": "true", "lineItemId": "li"}, "serviceKey": "SK-SECRET"},
            "extra": {"anything": [1, 2]}
        }))
        .unwrap();
        assert_eq!(t.user.id.as_deref(), Some("42"));
        assert_eq!(t.user.roles, vec!["Learner", "Instructor"]);
        assert!(t.services.assignment_and_grades.available);
        assert_eq!(t.services.service_key.as_ref().unwrap().expose(), "SK-SECRET");
        assert!(!format!("{t:?}").contains("SK-SECRET"));
        let empty: IdToken = serde_json::from_str("{}").unwrap();
        assert!(empty.services.service_key.is_none());
        let li: LineItem = serde_json::from_str(r#"{"id":"x","scoreMaximum":"10"}"#).unwrap();
        assert_eq!(li.score_maximum, Some(10.0));
    }

    async fn post_one(answer: crate::http::test_server::Answer) -> ApiAnswer<()> {
        let base = crate::http::test_server::serve(vec![answer]);
        let c = LtiaasClient::new(&base, ClientOptions::default()).unwrap();
        let auth = LtiaasAuth::service_key("API-123", "SK-456").unwrap();
        let body = ScoreBody {
            user_id: "u1".into(),
            score_given: Some(7.0),
            score_maximum: Some(10.0),
            comment: None,
            activity_progress: ActivityProgress::Completed,
            grading_progress: GradingProgress::FullyGraded,
            timestamp: format_timestamp_ms(0),
        };
        let req = c.score_request("li", &body).unwrap();
        c.post_score(&auth, &req).await
    }

    #[tokio::test]
    async fn the_api_key_is_never_sent_on_to_a_redirect_target_or_an_untrusted_server() {
        use crate::http::test_server::{response, witness};
        let (elsewhere, seen) = witness();
        let location = format!("{elsewhere}/api/lineitems/li/scores");
        let a = post_one(Box::new(move |_| {
            response("307 Temporary Redirect", &[("Location", &location)], "")
        }))
        .await;
        assert!(!a.verdict.is_success());
        assert_eq!(a.verdict.cause, crate::model::Cause::Redirected);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(
            !seen.load(std::sync::atomic::Ordering::SeqCst),
            "nothing reached the redirect target"
        );

        let tls = crate::http::test_server::untrusted_tls();
        let c = LtiaasClient::new(&tls.url, ClientOptions::default()).unwrap();
        let auth = LtiaasAuth::service_key("API-123", "SK-456").unwrap();
        let a = c
            .get_idtoken(&LtiaasAuth::ltik("API-123", "LTIK-789").unwrap())
            .await;
        assert!(!a.verdict.is_success());
        assert_eq!(a.verdict.cause, crate::model::Cause::ConnectionFailed);
        assert!(
            a.verdict.description.to_ascii_lowercase().contains("certificate"),
            "{}",
            a.verdict.description
        );
        let req = c
            .score_request(
                "li",
                &ScoreBody {
                    user_id: "u1".into(),
                    score_given: Some(1.0),
                    score_maximum: Some(1.0),
                    comment: None,
                    activity_progress: ActivityProgress::Completed,
                    grading_progress: GradingProgress::FullyGraded,
                    timestamp: format_timestamp_ms(0),
                },
            )
            .unwrap();
        assert!(!c.post_score(&auth, &req).await.verdict.is_success());
    }

    #[tokio::test]
    async fn answers_over_the_size_cap_or_too_late_are_not_successes() {
        let a = post_one(Box::new(|_| {
            crate::http::test_server::response(
                "200 OK",
                &[],
                &format!("{{}}{}", " ".repeat(MAX_RESPONSE_BYTES)),
            )
        }))
        .await;
        assert!(!a.verdict.is_success(), "{:?}", a.verdict);
        assert!(
            a.verdict.description.contains("larger than"),
            "{}",
            a.verdict.description
        );

        let (base, opts) = crate::http::test_server::too_late();
        let c = LtiaasClient::new(&base, opts).unwrap();
        let a = c
            .get_idtoken(&LtiaasAuth::ltik("API-123", "LTIK-789").unwrap())
            .await;
        assert_eq!(a.verdict.cause, crate::model::Cause::Timeout, "{:?}", a.verdict);
        assert_eq!(a.verdict.error_class, Some(crate::model::ErrorClass::Transient));
    }

    #[tokio::test]
    async fn answers_carry_the_budget_and_throttling_is_transient() {
        let a = post_one(Box::new(|_| {
            crate::http::test_server::response(
                "204 No Content",
                &[("X-Rate-Limit-Remaining", "650.5"), ("x-request-cost", "2")],
                "",
            )
        }))
        .await;
        assert!(a.verdict.is_success(), "{:?}", a.verdict);
        assert_eq!(
            a.budget,
            RateBudget {
                remaining: Some(650.5),
                cost: Some(2.0)
            }
        );
        let a = post_one(Box::new(|_| {
            crate::http::test_server::response(
                "403 Forbidden",
                &[("Content-Type", "text/plain"), ("X-Rate-Limit-Remaining", "-1.5")],
                "403 Forbidden (Rate Limit Exceeded)",
            )
        }))
        .await;
        assert_eq!(a.verdict.cause, crate::model::Cause::RateLimited);
        assert_eq!(a.verdict.error_class, Some(ErrorClass::Transient));
        assert_eq!(
            a.verdict.retry_after,
            Some(crate::http::BUDGET_THROTTLE_DEFAULT_WAIT)
        );
        assert_eq!(a.budget.remaining, Some(-1.5));
        let a = post_one(Box::new(|_| {
            crate::http::test_server::response(
                "422 Unprocessable Entity",
                &[("Content-Type", "application/json")],
                r#"{"status":422,"error":"Unprocessable Entity","details":{"bodyReceived":{"errors":{"type":"unprocessable_entity","message":"User not found in course or is not a student"}},"externalError":true}}"#,
            )
        }))
        .await;
        assert_eq!(a.verdict.cause, crate::model::Cause::NotAStudent);
        assert_eq!(a.budget, RateBudget::default(), "no budget headers, no budget");
    }

    #[test]
    fn timestamps_have_milliseconds() {
        assert_eq!(format_timestamp_ms(1_000), "1970-01-01T00:00:01.000Z");
        assert_eq!(format_timestamp_ms(1_767_225_600_007), "2026-01-01T00:00:00.007Z");
    }
}
