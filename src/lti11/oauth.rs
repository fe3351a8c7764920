//! OAuth 1.0a request signing and verification (RFC 5849) with the `oauth_body_hash`
//! extension, as used by LTI 1.1 Basic Outcomes.
//!
//! LTI 1.1 outcome requests are *two-legged*: there is no `oauth_token`, so the HMAC key
//! is `percent_encode(consumer_secret) + "&"`. The XML body itself is not part of the
//! signature base string; instead `oauth_body_hash = base64(SHA-x(body bytes))` is sent as
//! an ordinary `oauth_*` protocol parameter and is therefore covered by the signature.
//!
//! The module has three layers:
//!
//! * low-level RFC 5849 building blocks ([`percent_encode`], [`body_hash`],
//!   [`normalize_base_uri`], [`base_uri`], [`base_string`], [`sign`]) that support token
//!   secrets and arbitrary parameters, so that the published test vectors can be checked;
//! * the tool-side signer, [`OAuthSigner`], which builds the `Authorization` header for a
//!   two-legged LTI request;
//! * the platform-side verifier ([`parse_authorization_header`], [`verify_request`],
//!   [`verify_request_raw`], [`verify_form_request`]) plus a [`NonceCache`] that enforces
//!   the timestamp window and nonce-replay policy.
//!
//! # Which URL is signed
//!
//! The signature covers the URL *as it goes on the wire*. The HTTP client (reqwest) sends
//! the serialization of a [`url::Url`], so the signer takes a `&Url` and signs
//! [`Url::path`] (already percent-encoded by the `url` crate exactly as it is sent) and the
//! decoded [`Url::query_pairs`]. A verifier that receives a raw request target
//! (`/path?query`) should either rebuild a `Url` from `scheme://host[:port]` plus the target
//! and call [`verify_request`] (lossless for senders that serialize with the `url` crate,
//! because its serialization is idempotent), or call [`verify_request_raw`] with the
//! absolute URL string, which keeps the path byte-for-byte as received.
//!
//! Query strings are decoded as `application/x-www-form-urlencoded` (`+` is a space), as
//! RFC 5849 §3.4.1.3.1 requires. Percent-escapes that do not decode to UTF-8 are replaced by
//! U+FFFD before re-encoding; no LTI platform is known to put such bytes in an outcome URL.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use rand::RngCore as _;
use sha1::{Digest as _, Sha1};
use sha2::Sha256;
use url::Url;
use url::form_urlencoded;

/// Message used where HMAC construction cannot fail: HMAC accepts keys of any length
/// (longer keys are hashed, shorter ones padded), so `new_from_slice` never returns `Err`.
const HMAC_ANY_KEY_LENGTH: &str = "HMAC accepts keys of any length";

/// The only `oauth_version` value defined by OAuth 1.0a.
pub const OAUTH_VERSION: &str = "1.0";

/// Errors from building base strings and parsing `Authorization` headers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    /// The URL could not be split into scheme, host, port and path.
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    /// OAuth signing is only defined here for `http` and `https` URLs.
    #[error("unsupported URL scheme {0:?} (expected http or https)")]
    UnsupportedScheme(String),
    /// The `Authorization` header is not a well-formed `OAuth` header.
    #[error("malformed OAuth Authorization header: {0}")]
    MalformedHeader(String),
}

/// Reasons a signed request is rejected by the verifier or the [`NonceCache`].
///
/// The `Display` strings are meant to be shown to a person (for example in the
/// `imsx_description` of a sandbox LMS failure response); they never contain secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A required OAuth parameter is absent.
    #[error("missing OAuth parameter {0}")]
    MissingParameter(String),
    /// An OAuth parameter appears more than once (RFC 5849 §3.5.1 forbids this).
    #[error("OAuth parameter {0} appears more than once")]
    DuplicateParameter(String),
    /// An OAuth parameter is present but its value is not usable.
    #[error("invalid OAuth parameter {name}: {reason}")]
    MalformedParameter {
        /// The parameter name, e.g. `oauth_timestamp`.
        name: String,
        /// What is wrong with the value.
        reason: String,
    },
    /// `oauth_signature_method` is neither `HMAC-SHA1` nor `HMAC-SHA256`.
    #[error("unsupported oauth_signature_method {0:?} (expected HMAC-SHA1 or HMAC-SHA256)")]
    UnsupportedSignatureMethod(String),
    /// `oauth_version` is present and is not `1.0`.
    #[error("unsupported oauth_version {0:?} (expected \"1.0\")")]
    BadVersion(String),
    /// The request URL cannot be used to build the signature base string.
    #[error("request URL cannot be verified: {0}")]
    BadRequestUrl(String),
    /// `oauth_body_hash` does not match the SHA digest of the received body bytes.
    #[error("oauth_body_hash does not match the request body")]
    BodyHashMismatch,
    /// `oauth_signature` does not match the signature computed with the consumer secret.
    #[error("OAuth signature does not match")]
    SignatureMismatch,
    /// `lookup_secret` knows no secret for this `oauth_consumer_key`.
    #[error("unknown oauth_consumer_key {0:?}")]
    UnknownConsumer(String),
    /// `oauth_timestamp` is further from the server clock than the allowed window.
    #[error(
        "oauth_timestamp is {} seconds {} the server clock (allowed: {window_secs} seconds either way)",
        skew_secs.unsigned_abs(),
        if *skew_secs >= 0 { "ahead of" } else { "behind" }
    )]
    TimestampOutOfWindow {
        /// `oauth_timestamp - now`, in seconds (positive: the sender's clock is ahead).
        skew_secs: i64,
        /// The allowed absolute skew, in seconds.
        window_secs: u64,
    },
    /// The `(consumer key, nonce)` pair was already seen within the window.
    #[error("oauth_nonce has already been used (duplicate nonce)")]
    NonceReplayed,
}

/// The OAuth signature methods supported for LTI 1.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SignatureMethod {
    /// `HMAC-SHA1` with a SHA-1 body hash: what LTI 1.1 platforms expect.
    #[default]
    HmacSha1,
    /// `HMAC-SHA256` with a SHA-256 body hash (non-core; as Tsugi implements it).
    HmacSha256,
}

impl SignatureMethod {
    /// The `oauth_signature_method` value.
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureMethod::HmacSha1 => "HMAC-SHA1",
            SignatureMethod::HmacSha256 => "HMAC-SHA256",
        }
    }

    /// Parses an `oauth_signature_method` value (exact, case-sensitive match as in RFC 5849).
    pub fn from_oauth_name(name: &str) -> Option<Self> {
        match name {
            "HMAC-SHA1" => Some(SignatureMethod::HmacSha1),
            "HMAC-SHA256" => Some(SignatureMethod::HmacSha256),
            _ => None,
        }
    }
}

impl fmt::Display for SignatureMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Percent-encodes `s` as RFC 5849 §3.6 requires: UTF-8 bytes, with only the RFC 3986
/// unreserved characters `A-Z a-z 0-9 - . _ ~` left as they are and upper-case hex digits.
pub fn percent_encode(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len() + s.len() / 2);
    encode_bytes(&mut out, s.as_bytes());
    ascii_string(out)
}

/// Which bytes RFC 3986 leaves unencoded (`A-Z a-z 0-9 - . _ ~`).
const UNRESERVED: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || c == b'-' || c == b'.' || c == b'_' || c == b'~';
        b += 1;
    }
    t
};

/// The hot path of signing: encode bytes straight into a byte buffer.
fn encode_bytes(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.reserve(s.len());
    for &b in s {
        if UNRESERVED[usize::from(b)] {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xF)]]);
        }
    }
}

/// Percent-encoded output is ASCII by construction.
fn ascii_string(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// `oauth_body_hash` for `body`: base64 of SHA-1 (for `HMAC-SHA1`) or SHA-256 (for
/// `HMAC-SHA256`) over exactly these bytes.
pub fn body_hash(method: SignatureMethod, body: &[u8]) -> String {
    match method {
        SignatureMethod::HmacSha1 => BASE64.encode(Sha1::digest(body)),
        SignatureMethod::HmacSha256 => BASE64.encode(Sha256::digest(body)),
    }
}

/// Builds the RFC 5849 §3.4.1.2 base string URI from an absolute URL *string*, keeping the
/// path exactly as given.
///
/// Scheme and host are lower-cased, user info is dropped, the default port (`:80` for
/// http, `:443` for https) is dropped and any other port kept, an empty path becomes `/`,
/// and the query and fragment are dropped. The path is not decoded, re-encoded or
/// dot-normalized: pass it as it appeared in the request line. Use [`base_uri`] for a
/// [`Url`] that is about to be sent.
pub fn normalize_base_uri(url: &str) -> Result<String, OAuthError> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| OAuthError::InvalidUrl(format!("no \"://\" in {url:?}")))?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return Err(OAuthError::UnsupportedScheme(scheme)),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, after_authority) = rest.split_at(authority_end);
    let path_end = after_authority.find(['?', '#']).unwrap_or(after_authority.len());
    let path = match &after_authority[..path_end] {
        "" => "/",
        p => p,
    };
    // User info ends at the last '@' of the authority (it may itself contain '@' only when
    // percent-encoded, but be lenient).
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let (host, port) = if host_port.starts_with('[') {
        let close = host_port
            .find(']')
            .ok_or_else(|| OAuthError::InvalidUrl(format!("unterminated IPv6 literal in {url:?}")))?;
        let (host, tail) = host_port.split_at(close + 1);
        match tail {
            "" => (host, None),
            t => match t.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => {
                    return Err(OAuthError::InvalidUrl(format!(
                        "unexpected {t:?} after IPv6 host"
                    )));
                }
            },
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Err(OAuthError::InvalidUrl(format!("no host in {url:?}")));
    }
    let port = match port {
        None | Some("") => None,
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => {
            let n: u16 = p
                .parse()
                .map_err(|_| OAuthError::InvalidUrl(format!("port {p:?} out of range")))?;
            (n != default_port).then_some(n)
        }
        Some(p) => return Err(OAuthError::InvalidUrl(format!("invalid port {p:?}"))),
    };
    Ok(assemble_base_uri(&scheme, &host.to_ascii_lowercase(), port, path))
}

/// Builds the base string URI for a [`Url`] exactly as the HTTP client will send it.
///
/// The `url` crate has already lower-cased the scheme and host, IDNA-encoded non-ASCII
/// host names, removed a default port and percent-encoded the path, so this function only
/// drops the query and fragment. Only `http` and `https` URLs with a host are accepted.
pub fn base_uri(url: &Url) -> Result<String, OAuthError> {
    let scheme = url.scheme();
    let default_port = match scheme {
        "http" => 80,
        "https" => 443,
        other => return Err(OAuthError::UnsupportedScheme(other.to_owned())),
    };
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| OAuthError::InvalidUrl(format!("no host in {:?}", url.as_str())))?;
    let port = url.port().filter(|&p| p != default_port);
    let path = match url.path() {
        "" => "/",
        p => p,
    };
    Ok(assemble_base_uri(scheme, &host.to_ascii_lowercase(), port, path))
}

fn assemble_base_uri(scheme: &str, host: &str, port: Option<u16>, path: &str) -> String {
    match port {
        Some(port) => format!("{scheme}://{host}:{port}{path}"),
        None => format!("{scheme}://{host}{path}"),
    }
}

/// Builds the RFC 5849 §3.4.1 signature base string
/// `UPPER(method) & enc(base_uri) & enc(normalized parameters)`.
///
/// `params` are *decoded* name/value pairs from every source that is signed (query string,
/// form body, `Authorization` header). Each name and value is percent-encoded, the pairs
/// are sorted by encoded name and then by encoded value, and joined as `name=value` with
/// `&`. Parameters named `oauth_signature` or `realm` are left out, so the parameters of an
/// `Authorization` header can be passed as they are.
///
/// Strictly, RFC 5849 only excludes `realm` when it comes from the `Authorization` header;
/// the high-level signer and verifiers in this module follow that rule and do sign a query
/// parameter that happens to be named `realm`.
pub fn base_string(http_method: &str, base_uri: &str, params: &[(String, String)]) -> String {
    base_string_impl(
        http_method,
        base_uri,
        params.iter().filter(|(name, _)| name != "realm"),
    )
}

/// Like [`base_string`], but only `oauth_signature` is excluded.
fn base_string_impl<'p>(
    http_method: &str,
    base_uri: &str,
    params: impl Iterator<Item = &'p (String, String)>,
) -> String {
    let mut encoded: Vec<(String, String)> = params
        .filter(|(name, _)| name != "oauth_signature")
        .map(|(name, value)| (percent_encode(name), percent_encode(value)))
        .collect();
    encoded.sort_unstable();
    // `enc(name=value&name=value...)` written directly: `=` and `&` encode to `%3D` and
    // `%26`, and each already-encoded name and value is encoded a second time.
    let params_len: usize = encoded.iter().map(|(n, v)| n.len() + v.len() + 6).sum();
    let mut out: Vec<u8> = Vec::with_capacity(http_method.len() + 2 + base_uri.len() * 2 + params_len * 2);
    out.extend_from_slice(http_method.to_ascii_uppercase().as_bytes());
    out.push(b'&');
    encode_bytes(&mut out, base_uri.as_bytes());
    out.push(b'&');
    for (i, (name, value)) in encoded.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b"%26");
        }
        encode_bytes(&mut out, name.as_bytes());
        out.extend_from_slice(b"%3D");
        encode_bytes(&mut out, value.as_bytes());
    }
    ascii_string(out)
}

/// The HMAC key of RFC 5849 §3.4.2: `enc(consumer_secret) & enc(token_secret)`.
fn signing_key(consumer_secret: &str, token_secret: &str) -> String {
    format!(
        "{}&{}",
        percent_encode(consumer_secret),
        percent_encode(token_secret)
    )
}

/// Computes `oauth_signature` (base64 of the HMAC of `base_string`). For two-legged LTI
/// requests `token_secret` is the empty string.
pub fn sign(method: SignatureMethod, consumer_secret: &str, token_secret: &str, base_string: &str) -> String {
    let key = signing_key(consumer_secret, token_secret);
    let digest = match method {
        SignatureMethod::HmacSha1 => {
            let mut mac = Hmac::<Sha1>::new_from_slice(key.as_bytes()).expect(HMAC_ANY_KEY_LENGTH);
            mac.update(base_string.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        SignatureMethod::HmacSha256 => {
            let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect(HMAC_ANY_KEY_LENGTH);
            mac.update(base_string.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
    };
    BASE64.encode(digest)
}

/// Checks `signature` (base64) against the HMAC of `base_string` in constant time.
fn signature_matches(
    method: SignatureMethod,
    consumer_secret: &str,
    token_secret: &str,
    base_string: &str,
    signature: &str,
) -> bool {
    let Ok(provided) = BASE64.decode(signature.trim()) else {
        return false;
    };
    let key = signing_key(consumer_secret, token_secret);
    match method {
        SignatureMethod::HmacSha1 => {
            let mut mac = Hmac::<Sha1>::new_from_slice(key.as_bytes()).expect(HMAC_ANY_KEY_LENGTH);
            mac.update(base_string.as_bytes());
            mac.verify_slice(&provided).is_ok()
        }
        SignatureMethod::HmacSha256 => {
            let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect(HMAC_ANY_KEY_LENGTH);
            mac.update(base_string.as_bytes());
            mac.verify_slice(&provided).is_ok()
        }
    }
}

/// Constant-time equality for short ASCII strings such as body hashes.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The decoded query parameters of `url`, in order, duplicates kept.
fn query_params(url: &Url) -> Vec<(String, String)> {
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Decodes an `application/x-www-form-urlencoded` string (a query or a form body).
fn form_params(bytes: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(bytes)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// A fresh nonce: 16 random bytes from the thread-local CSPRNG, as 32 lower-case hex digits.
pub fn generate_nonce() -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let mut out = String::with_capacity(32);
    for b in bytes {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 0xF)] as char);
    }
    out
}

/// The current Unix time in seconds (0 if the system clock is before 1970).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Signs two-legged LTI requests (no `oauth_token`) for one consumer key.
///
/// Every call produces a new signature; never replay a stored signed request, because
/// platforms reject reused nonces and stale timestamps.
#[derive(Clone, Copy)]
pub struct OAuthSigner<'a> {
    /// `oauth_consumer_key`.
    pub consumer_key: &'a str,
    /// The shared secret. Never printed by `Debug`.
    pub consumer_secret: &'a str,
    /// Signature method; the body hash uses the matching digest.
    pub method: SignatureMethod,
}

impl fmt::Debug for OAuthSigner<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthSigner")
            .field("consumer_key", &self.consumer_key)
            .field("consumer_secret", &"***")
            .field("method", &self.method)
            .finish()
    }
}

/// The result of signing one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    /// The complete `Authorization` header value, starting with `OAuth realm=""`.
    pub authorization: String,
    /// The decoded `oauth_*` parameters, sorted by name, including `oauth_body_hash` and
    /// `oauth_signature`.
    pub params: Vec<(String, String)>,
    /// The signature base string that was signed (useful for audit logs and debugging).
    pub base_string: String,
    /// `oauth_body_hash` of the body.
    pub body_hash: String,
}

impl<'a> OAuthSigner<'a> {
    /// A signer for `consumer_key` / `consumer_secret`.
    pub fn new(consumer_key: &'a str, consumer_secret: &'a str, method: SignatureMethod) -> Self {
        OAuthSigner {
            consumer_key,
            consumer_secret,
            method,
        }
    }

    /// Signs a request with an explicit nonce and timestamp (deterministic; for tests and
    /// reproducible audit entries). `url` must be the exact URL the HTTP client sends and
    /// `body` the exact bytes it sends.
    ///
    /// Fails only when `url` is not an `http`/`https` URL with a host.
    pub fn sign_request(
        &self,
        http_method: &str,
        url: &Url,
        body: &[u8],
        nonce: &str,
        timestamp: u64,
    ) -> Result<SignedRequest, OAuthError> {
        let base_uri = base_uri(url)?;
        let body_hash = body_hash(self.method, body);
        let timestamp = timestamp.to_string();
        // The oauth_* parameters, already in name order (the header lists them so).
        let oauth: [(&str, &str); 6] = [
            ("oauth_body_hash", &body_hash),
            ("oauth_consumer_key", self.consumer_key),
            ("oauth_nonce", nonce),
            ("oauth_signature_method", self.method.as_str()),
            ("oauth_timestamp", &timestamp),
            ("oauth_version", OAUTH_VERSION),
        ];
        // Hot path: every signed parameter (oauth_* and the URL's query) is encoded once
        // into one buffer and sorted by (encoded name, encoded value) through ranges.
        let mut buf: Vec<u8> = Vec::with_capacity(256 + url.query().map_or(0, str::len) * 2);
        let mut pairs: Vec<(std::ops::Range<usize>, std::ops::Range<usize>)> = Vec::with_capacity(12);
        let mut add = |buf: &mut Vec<u8>, name: &[u8], value: &[u8]| {
            let a = buf.len();
            encode_bytes(buf, name);
            let b = buf.len();
            encode_bytes(buf, value);
            pairs.push((a..b, b..buf.len()));
        };
        for (name, value) in oauth {
            add(&mut buf, name.as_bytes(), value.as_bytes());
        }
        for (name, value) in url.query_pairs() {
            // RFC 5849 §3.4.1.3.1: `oauth_signature` is never part of what is signed
            // (the verifiers leave it out too), wherever it appears.
            if name == "oauth_signature" {
                continue;
            }
            add(&mut buf, name.as_bytes(), value.as_bytes());
        }
        pairs.sort_unstable_by(|x, y| {
            (&buf[x.0.clone()], &buf[x.1.clone()]).cmp(&(&buf[y.0.clone()], &buf[y.1.clone()]))
        });
        let mut base: Vec<u8> =
            Vec::with_capacity(http_method.len() + base_uri.len() * 2 + buf.len() * 2 + 32);
        base.extend_from_slice(http_method.to_ascii_uppercase().as_bytes());
        base.push(b'&');
        encode_bytes(&mut base, base_uri.as_bytes());
        base.push(b'&');
        for (i, (name, value)) in pairs.iter().enumerate() {
            if i > 0 {
                base.extend_from_slice(b"%26");
            }
            encode_bytes(&mut base, &buf[name.clone()]);
            base.extend_from_slice(b"%3D");
            encode_bytes(&mut base, &buf[value.clone()]);
        }
        let base_string = ascii_string(base);
        let signature = sign(self.method, self.consumer_secret, "", &base_string);

        // Header parameters in name order: oauth_signature sorts between nonce and method.
        let mut header: Vec<u8> = Vec::with_capacity(320);
        header.extend_from_slice(b"OAuth realm=\"\"");
        let mut params: Vec<(String, String)> = Vec::with_capacity(7);
        let signature_pair = ("oauth_signature", signature.as_str());
        for (name, value) in oauth[..3]
            .iter()
            .chain([&signature_pair])
            .chain(oauth[3..].iter())
        {
            header.push(b',');
            encode_bytes(&mut header, name.as_bytes());
            header.extend_from_slice(b"=\"");
            encode_bytes(&mut header, value.as_bytes());
            header.push(b'"');
            params.push(((*name).to_owned(), (*value).to_owned()));
        }
        Ok(SignedRequest {
            authorization: ascii_string(header),
            params,
            base_string,
            body_hash,
        })
    }

    /// Signs a request with a fresh random nonce ([`generate_nonce`]) and the current time.
    pub fn sign_now(&self, http_method: &str, url: &Url, body: &[u8]) -> Result<SignedRequest, OAuthError> {
        self.sign_request(http_method, url, body, &generate_nonce(), unix_now())
    }
}

/// Decodes RFC 3986 percent-escapes strictly: every `%` must start a two-hex-digit escape
/// and the result must be UTF-8. `+` is left as it is (header values are not form-encoded).
fn percent_decode_strict(s: &str, what: &str) -> Result<String, OAuthError> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let valid = bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
            if !valid {
                return Err(OAuthError::MalformedHeader(format!(
                    "bad percent-escape in {what} {s:?}"
                )));
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| OAuthError::MalformedHeader(format!("{what} {s:?} does not decode to UTF-8")))
}

/// Parses an `Authorization: OAuth ...` header value into decoded name/value pairs, in the
/// order they appear (duplicates kept; [`verify_request`] rejects them).
///
/// The `OAuth` scheme name is matched case-insensitively. Parameters are separated by
/// commas with optional whitespace; values should be double-quoted (RFC 5849 §3.5.1) but
/// unquoted tokens are accepted too. Names and values are percent-decoded. `realm` is
/// returned like any other parameter.
pub fn parse_authorization_header(h: &str) -> Result<Vec<(String, String)>, OAuthError> {
    let s = h.trim_start();
    let rest = match s.get(..5) {
        Some(scheme) if scheme.eq_ignore_ascii_case("OAuth") => &s[5..],
        _ => {
            return Err(OAuthError::MalformedHeader(
                "does not start with \"OAuth \"".to_owned(),
            ));
        }
    };
    if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
        return Err(OAuthError::MalformedHeader(
            "does not start with \"OAuth \"".to_owned(),
        ));
    }
    let is_sep = |c: char| c == ',' || c == ' ' || c == '\t' || c == '\r' || c == '\n';
    let mut params = Vec::new();
    let mut rest = rest;
    loop {
        rest = rest.trim_start_matches(is_sep);
        if rest.is_empty() {
            break;
        }
        let name_end = rest
            .find(|c: char| c == '=' || is_sep(c) || c == '"')
            .unwrap_or(rest.len());
        let raw_name = &rest[..name_end];
        rest = rest[name_end..].trim_start_matches([' ', '\t']);
        if raw_name.is_empty() {
            return Err(OAuthError::MalformedHeader("parameter without a name".to_owned()));
        }
        rest = rest
            .strip_prefix('=')
            .ok_or_else(|| OAuthError::MalformedHeader(format!("parameter {raw_name:?} has no value")))?
            .trim_start_matches([' ', '\t']);
        let raw_value = if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"').ok_or_else(|| {
                OAuthError::MalformedHeader(format!("unterminated quoted value for {raw_name:?}"))
            })?;
            rest = &quoted[end + 1..];
            if !(rest.is_empty() || rest.starts_with(is_sep)) {
                return Err(OAuthError::MalformedHeader(format!(
                    "garbage after the value of {raw_name:?}"
                )));
            }
            &quoted[..end]
        } else {
            let end = rest.find(is_sep).unwrap_or(rest.len());
            let value = &rest[..end];
            rest = &rest[end..];
            if value.contains(['"', '=']) {
                return Err(OAuthError::MalformedHeader(format!(
                    "bad unquoted value for {raw_name:?}"
                )));
            }
            value
        };
        let name = percent_decode_strict(raw_name, "parameter name")?;
        let value = percent_decode_strict(raw_value, "value")?;
        params.push((name, value));
    }
    Ok(params)
}

/// What the verifier established about an authentic request. Timestamp-window and
/// nonce-replay checks are policy and left to the caller (see [`NonceCache`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedRequest {
    /// `oauth_consumer_key`.
    pub consumer_key: String,
    /// `oauth_nonce`.
    pub nonce: String,
    /// `oauth_timestamp`, seconds since the Unix epoch.
    pub timestamp: u64,
    /// `oauth_signature_method`.
    pub signature_method: SignatureMethod,
    /// `oauth_body_hash`, when the request carried one.
    pub body_hash: Option<String>,
}

/// How the request body takes part in verification.
enum BodyKind<'b> {
    /// A non-form body (the POX XML): only its hash is signed; `oauth_body_hash` is required.
    Opaque(&'b [u8]),
    /// An `application/x-www-form-urlencoded` body: its parameters are signed;
    /// `oauth_body_hash` is optional and checked against the raw bytes when present.
    Form(&'b [u8]),
}

/// Verifies an OAuth-signed request with a non-form body (the LTI 1.1 outcomes case).
///
/// `url` is the request URL as received (see the module docs for how to build it from a
/// raw request target), `auth_params` the output of [`parse_authorization_header`], `body`
/// the exact received bytes, and `lookup_secret` maps a consumer key to its secret.
///
/// Checks, in order: no duplicate header parameters; `oauth_consumer_key`,
/// `oauth_signature_method`, `oauth_timestamp`, `oauth_nonce`, `oauth_signature` and
/// `oauth_body_hash` present; `oauth_version`, if present, is `1.0`; the signature method
/// is supported; the timestamp is an integer; the consumer is known; the signature matches
/// (constant time); the body hash matches the exact bytes. The signature is checked before
/// the body hash, as Moodle does. The timestamp window and nonce replay are *not* checked
/// here: pass the result to [`NonceCache::check_and_insert`].
pub fn verify_request(
    http_method: &str,
    url: &Url,
    auth_params: &[(String, String)],
    body: &[u8],
    lookup_secret: impl Fn(&str) -> Option<String>,
) -> Result<VerifiedRequest, VerifyError> {
    let base_uri = base_uri(url).map_err(|e| VerifyError::BadRequestUrl(e.to_string()))?;
    verify_impl(
        http_method,
        &base_uri,
        query_params(url),
        auth_params,
        BodyKind::Opaque(body),
        lookup_secret,
    )
}

/// Like [`verify_request`], but takes the absolute request URL as a string and keeps its
/// path byte-for-byte (via [`normalize_base_uri`]) instead of re-serializing it through
/// the `url` crate. Use it when the sender may encode its path differently from the `url`
/// crate: `absolute_url` is `scheme://host[:port]` followed by the raw request target.
pub fn verify_request_raw(
    http_method: &str,
    absolute_url: &str,
    auth_params: &[(String, String)],
    body: &[u8],
    lookup_secret: impl Fn(&str) -> Option<String>,
) -> Result<VerifiedRequest, VerifyError> {
    let base_uri = normalize_base_uri(absolute_url).map_err(|e| VerifyError::BadRequestUrl(e.to_string()))?;
    let without_fragment = absolute_url.split_once('#').map_or(absolute_url, |(u, _)| u);
    let query = without_fragment.split_once('?').map_or("", |(_, q)| q);
    verify_impl(
        http_method,
        &base_uri,
        form_params(query.as_bytes()),
        auth_params,
        BodyKind::Opaque(body),
        lookup_secret,
    )
}

/// Verifies a request whose body is `application/x-www-form-urlencoded` (for example an
/// LTI launch): the form parameters are signed along with the query and header parameters,
/// and `oauth_body_hash` is not required (it is checked against the raw bytes if present).
pub fn verify_form_request(
    http_method: &str,
    url: &Url,
    auth_params: &[(String, String)],
    form_body: &[u8],
    lookup_secret: impl Fn(&str) -> Option<String>,
) -> Result<VerifiedRequest, VerifyError> {
    let base_uri = base_uri(url).map_err(|e| VerifyError::BadRequestUrl(e.to_string()))?;
    verify_impl(
        http_method,
        &base_uri,
        query_params(url),
        auth_params,
        BodyKind::Form(form_body),
        lookup_secret,
    )
}

fn verify_impl(
    http_method: &str,
    base_uri: &str,
    mut request_params: Vec<(String, String)>,
    auth_params: &[(String, String)],
    body: BodyKind<'_>,
    lookup_secret: impl Fn(&str) -> Option<String>,
) -> Result<VerifiedRequest, VerifyError> {
    let mut header: HashMap<&str, &str> = HashMap::with_capacity(auth_params.len());
    for (name, value) in auth_params {
        if header.insert(name.as_str(), value.as_str()).is_some() {
            return Err(VerifyError::DuplicateParameter(name.clone()));
        }
    }
    let required = |name: &str| -> Result<&str, VerifyError> {
        header
            .get(name)
            .copied()
            .ok_or_else(|| VerifyError::MissingParameter(name.to_owned()))
    };
    let consumer_key = required("oauth_consumer_key")?;
    let method_name = required("oauth_signature_method")?;
    let timestamp = required("oauth_timestamp")?;
    let nonce = required("oauth_nonce")?;
    let signature = required("oauth_signature")?;
    let provided_body_hash = match body {
        BodyKind::Opaque(_) => Some(required("oauth_body_hash")?),
        BodyKind::Form(_) => header.get("oauth_body_hash").copied(),
    };
    if let Some(version) = header.get("oauth_version")
        && *version != OAUTH_VERSION
    {
        return Err(VerifyError::BadVersion((*version).to_owned()));
    }
    let method = SignatureMethod::from_oauth_name(method_name)
        .ok_or_else(|| VerifyError::UnsupportedSignatureMethod(method_name.to_owned()))?;
    let timestamp_value = parse_timestamp(timestamp)?;
    let secret =
        lookup_secret(consumer_key).ok_or_else(|| VerifyError::UnknownConsumer(consumer_key.to_owned()))?;

    let body_bytes = match body {
        BodyKind::Opaque(bytes) => bytes,
        BodyKind::Form(bytes) => {
            request_params.extend(form_params(bytes));
            bytes
        }
    };
    // An oauth_* parameter given in the header and again in the query or the form
    // (RFC 5849 §3.5: each protocol parameter in one place only) could make the
    // signed value and the value acted on differ.
    if let Some((name, _)) = request_params
        .iter()
        .find(|(name, _)| name.starts_with("oauth_") && header.contains_key(name.as_str()))
    {
        return Err(VerifyError::DuplicateParameter(name.clone()));
    }
    // RFC 5849 §3.4.1.3.1: every header parameter except `realm` is signed.
    let signed = auth_params
        .iter()
        .filter(|(name, _)| name != "realm")
        .chain(request_params.iter());
    let base = base_string_impl(http_method, base_uri, signed);
    if !signature_matches(method, &secret, "", &base, signature) {
        return Err(VerifyError::SignatureMismatch);
    }
    if let Some(provided) = provided_body_hash {
        let actual = body_hash(method, body_bytes);
        if !constant_time_eq(actual.as_bytes(), provided.as_bytes()) {
            return Err(VerifyError::BodyHashMismatch);
        }
    }
    Ok(VerifiedRequest {
        consumer_key: consumer_key.to_owned(),
        nonce: nonce.to_owned(),
        timestamp: timestamp_value,
        signature_method: method,
        body_hash: provided_body_hash.map(str::to_owned),
    })
}

fn parse_timestamp(value: &str) -> Result<u64, VerifyError> {
    let malformed = |reason: &str| VerifyError::MalformedParameter {
        name: "oauth_timestamp".to_owned(),
        reason: reason.to_owned(),
    };
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed("expected a whole number of seconds since 1970"));
    }
    value.parse().map_err(|_| malformed("number out of range"))
}

/// Enforces the timestamp window and one-time use of nonces, per consumer key.
///
/// Canvas allows ±90 minutes ("90 minutes is suggested by the LTI spec") and caches nonces
/// for that window; that is the default here. A nonce only needs remembering until its
/// timestamp leaves the window, because after that the window check rejects a replay
/// anyway, so entries expire at `timestamp + window`. Expired entries are purged at most
/// once a minute (or whenever the cache grows past a high-water mark), keeping
/// [`check_and_insert`](Self::check_and_insert) amortized O(1).
#[derive(Debug, Clone)]
pub struct NonceCache {
    window_secs: u64,
    /// `(consumer key, nonce)` → Unix time after which the entry may be forgotten.
    seen: HashMap<(String, String), u64>,
    next_purge: u64,
}

impl NonceCache {
    /// The default window: 90 minutes either side of the server clock.
    pub const DEFAULT_WINDOW: Duration = Duration::from_secs(90 * 60);
    /// Purge interval, in seconds.
    const PURGE_INTERVAL_SECS: u64 = 60;
    /// Entry count that triggers a purge regardless of the interval.
    const HIGH_WATER: usize = 100_000;

    /// A cache that accepts timestamps within `window` of the server clock.
    pub fn new(window: Duration) -> Self {
        NonceCache {
            window_secs: window.as_secs(),
            seen: HashMap::new(),
            next_purge: 0,
        }
    }

    /// The allowed clock skew.
    pub fn window(&self) -> Duration {
        Duration::from_secs(self.window_secs)
    }

    /// Number of remembered nonces (including expired ones not yet purged).
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether no nonce is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Accepts `(consumer_key, nonce)` once: fails with
    /// [`VerifyError::TimestampOutOfWindow`] if `|timestamp - now| > window`, and with
    /// [`VerifyError::NonceReplayed`] if the pair was accepted before and is still
    /// remembered. Call it only after the signature has been verified, so that forged
    /// requests cannot fill the cache. `now` is the server's Unix time in seconds.
    pub fn check_and_insert(
        &mut self,
        consumer_key: &str,
        nonce: &str,
        timestamp: u64,
        now: u64,
    ) -> Result<(), VerifyError> {
        let skew = i128::from(timestamp) - i128::from(now);
        if skew.unsigned_abs() > u128::from(self.window_secs) {
            let skew_secs = i64::try_from(skew).unwrap_or(if skew > 0 { i64::MAX } else { i64::MIN });
            return Err(VerifyError::TimestampOutOfWindow {
                skew_secs,
                window_secs: self.window_secs,
            });
        }
        if now >= self.next_purge || self.seen.len() >= Self::HIGH_WATER {
            self.seen.retain(|_, expires| *expires >= now);
            self.next_purge = now.saturating_add(Self::PURGE_INTERVAL_SECS);
        }
        let key = (consumer_key.to_owned(), nonce.to_owned());
        if let Some(expires) = self.seen.get(&key)
            && *expires >= now
        {
            return Err(VerifyError::NonceReplayed);
        }
        self.seen.insert(key, timestamp.saturating_add(self.window_secs));
        Ok(())
    }
}

impl Default for NonceCache {
    fn default() -> Self {
        NonceCache::new(Self::DEFAULT_WINDOW)
    }
}

#[cfg(test)]
mod tests;
