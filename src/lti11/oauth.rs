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
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn url(s: &str) -> Url {
        Url::parse(s).expect("test URL parses")
    }

    /// The exact 590-byte body of reference §1.8 vector 5 (appendix).
    const VECTOR5_BODY: &str = concat!(
        r#"<?xml version="1.0" encoding="UTF-8"?><imsx_POXEnvelopeRequest xmlns="http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0">"#,
        "<imsx_POXHeader><imsx_POXRequestHeaderInfo><imsx_version>V1.0</imsx_version>",
        "<imsx_messageIdentifier>999999123</imsx_messageIdentifier></imsx_POXRequestHeaderInfo></imsx_POXHeader>",
        "<imsx_POXBody><replaceResultRequest><resultRecord><sourcedGUID><sourcedId>3124567</sourcedId></sourcedGUID>",
        "<result><resultScore><language>en</language><textString>0.92</textString></resultScore></result>",
        "</resultRecord></replaceResultRequest></imsx_POXBody></imsx_POXEnvelopeRequest>"
    );

    // ---- Known-answer tests: reference §1.8 ------------------------------------------

    #[test]
    fn vector1_oauth_core_a5() {
        let params = owned(&[
            ("file", "vacation.jpg"),
            ("size", "original"),
            ("oauth_consumer_key", "dpf43f3p2l4k3l03"),
            ("oauth_token", "nnch734d00sl2jdk"),
            ("oauth_nonce", "kllo9940pd9333jh"),
            ("oauth_timestamp", "1191242096"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_version", "1.0"),
        ]);
        let uri = normalize_base_uri("http://photos.example.net/photos").unwrap();
        let base = base_string("GET", &uri, &params);
        assert_eq!(
            base,
            "GET&http%3A%2F%2Fphotos.example.net%2Fphotos&file%3Dvacation.jpg%26oauth_consumer_key%3Ddpf43f3p2l4k3l03%26oauth_nonce%3Dkllo9940pd9333jh%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D1191242096%26oauth_token%3Dnnch734d00sl2jdk%26oauth_version%3D1.0%26size%3Doriginal"
        );
        let sig = sign(
            SignatureMethod::HmacSha1,
            "kd94hf93k423kf44",
            "pfkkdhi9sl3r4s00",
            &base,
        );
        assert_eq!(sig, "tR3+Ty81lMeYAr/Fid0kMTYa/WM=");
    }

    #[test]
    fn vector2_rfc5849_example_with_erratum_2550() {
        let u = url("http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b");
        let mut params = query_params(&u);
        params.extend(form_params(b"c2&a3=2+q"));
        params.extend(owned(&[
            ("oauth_consumer_key", "9djdj82h48djs9d2"),
            ("oauth_token", "kkk9d7dh3k39sjv7"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "137131201"),
            ("oauth_nonce", "7d8f3e4a"),
        ]));
        let base = base_string("POST", &base_uri(&u).unwrap(), &params);
        assert_eq!(
            base,
            "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk9d7dh3k39sjv7"
        );
        let sig = sign(SignatureMethod::HmacSha1, "j49sk3j29djd", "dh893hdasih9", &base);
        assert_eq!(sig, "r6/TJjbCOr97/+UU0NsvSne7s5g=");
        assert_ne!(
            sig, "bYT5CMsGcbgUdFHObYMEfcx6bsw=",
            "the RFC's printed value is wrong (erratum 2550)"
        );
        // The same base string from the raw-string path.
        let raw_uri =
            normalize_base_uri("http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b").unwrap();
        assert_eq!(base_string("POST", &raw_uri, &params), base);
    }

    #[test]
    fn vector3_ims_lti_launch_with_duplicate_query_keys() {
        let u = url("http://www.imsglobal.org/developers/LTI/test/v1p1/tool.php?foo=123&foo=bar");
        let mut params = query_params(&u);
        assert_eq!(params, owned(&[("foo", "123"), ("foo", "bar")]));
        params.extend(owned(&[
            ("resource_link_id", "rsc1"),
            ("oauth_callback", "about:blank"),
            (
                "lis_outcome_service_url",
                "http://www.imsglobal.org/developers/LTI/test/v1p1/common/tool_consumer_outcome.php?b64=MTIzNDU6OjpzZWNyZXQ=",
            ),
            ("lis_result_sourcedid", "feb-123-456-2929::28883"),
            ("launch_presentation_return_url", "http://www.imsglobal.org/developers/LTI/test/v1p1/lms_return.php"),
            ("lti_version", "LTI-1p0"),
            ("lti_message_type", "basic-lti-launch-request"),
            ("oauth_version", "1.0"),
            ("oauth_nonce", "7ee33f6dc94117e792ff529898ce3953"),
            ("oauth_timestamp", "1397708483"),
            ("oauth_consumer_key", "12345"),
            ("oauth_signature_method", "HMAC-SHA1"),
        ]));
        let base = base_string("POST", &base_uri(&u).unwrap(), &params);
        assert!(
            base.contains("foo%3D123%26foo%3Dbar"),
            "duplicate keys sorted by value: {base}"
        );
        assert_eq!(
            sign(SignatureMethod::HmacSha1, "secret", "", &base),
            "dHORwwJqwh5hQQAlvaA9csSIOhc="
        );
    }

    #[test]
    fn vector4_body_hashes() {
        assert_eq!(
            body_hash(SignatureMethod::HmacSha1, b"Hello World!"),
            "Lve95gjOVATpfV8EL5X4nxwjKHE="
        );
        assert_eq!(
            body_hash(SignatureMethod::HmacSha1, b""),
            "2jmj7l5rSw0yVb/vlWAYkK/YBwk="
        );
        // SHA-256 of the empty string, base64.
        assert_eq!(
            body_hash(SignatureMethod::HmacSha256, b""),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }

    #[test]
    fn vector5_pox_replace_result() {
        assert_eq!(VECTOR5_BODY.len(), 590);
        let u = url("https://lms.example.com:443/api/lti/v1/tools/1/grade_passback?x=1&a=b%20c");
        let signer = OAuthSigner::new("key", "secret", SignatureMethod::HmacSha1);
        let signed = signer
            .sign_request("POST", &u, VECTOR5_BODY.as_bytes(), "nonce123", 1_700_000_000)
            .unwrap();
        assert_eq!(signed.body_hash, "T4+NuWGBvKwDMzCJE00B3/XnWYk=");
        assert_eq!(
            signed.base_string,
            "POST&https%3A%2F%2Flms.example.com%2Fapi%2Flti%2Fv1%2Ftools%2F1%2Fgrade_passback&a%3Db%2520c%26oauth_body_hash%3DT4%252BNuWGBvKwDMzCJE00B3%252FXnWYk%253D%26oauth_consumer_key%3Dkey%26oauth_nonce%3Dnonce123%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D1700000000%26oauth_version%3D1.0%26x%3D1"
        );
        let sig = signed
            .params
            .iter()
            .find(|(k, _)| k == "oauth_signature")
            .map(|(_, v)| v.as_str());
        assert_eq!(sig, Some("Wqzvi7xiAX8WglnexGrRipGr2fc="));
        assert_eq!(
            signed.authorization,
            "OAuth realm=\"\",oauth_body_hash=\"T4%2BNuWGBvKwDMzCJE00B3%2FXnWYk%3D\",oauth_consumer_key=\"key\",\
             oauth_nonce=\"nonce123\",oauth_signature=\"Wqzvi7xiAX8WglnexGrRipGr2fc%3D\",\
             oauth_signature_method=\"HMAC-SHA1\",oauth_timestamp=\"1700000000\",oauth_version=\"1.0\""
        );
        // The low-level path and the raw-string URI normalization agree with the signer.
        let raw_uri =
            normalize_base_uri("https://lms.example.com:443/api/lti/v1/tools/1/grade_passback?x=1&a=b%20c")
                .unwrap();
        assert_eq!(
            raw_uri,
            "https://lms.example.com/api/lti/v1/tools/1/grade_passback"
        );
    }

    // ---- Building blocks ---------------------------------------------------------------

    #[test]
    fn percent_encode_uses_unreserved_set_only() {
        assert_eq!(percent_encode("AZaz09-._~"), "AZaz09-._~");
        assert_eq!(
            percent_encode(" !*'()+=&/:%"),
            "%20%21%2A%27%28%29%2B%3D%26%2F%3A%25"
        );
        assert_eq!(percent_encode("é日"), "%C3%A9%E6%97%A5");
        assert_eq!(percent_encode(""), "");
    }

    #[test]
    fn normalize_base_uri_rules() {
        let cases = [
            (
                "HTTP://Example.COM:80/r%20v/X?id=123",
                "http://example.com/r%20v/X",
            ),
            ("https://EXAMPLE.com:443", "https://example.com/"),
            (
                "https://example.com:8443/a/b/?q#frag",
                "https://example.com:8443/a/b/",
            ),
            ("http://example.com:443/", "http://example.com:443/"),
            ("https://example.com:80/", "https://example.com:80/"),
            ("http://user:pw@Example.com/p", "http://example.com/p"),
            ("http://[::1]:8080/x", "http://[::1]:8080/x"),
            ("http://[::1]:80/x", "http://[::1]/x"),
            ("http://example.com:/x", "http://example.com/x"),
            ("http://example.com#frag", "http://example.com/"),
            (
                "http://example.com/A/./b/../%7e",
                "http://example.com/A/./b/../%7e",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(normalize_base_uri(input).as_deref(), Ok(expected), "{input}");
        }
        assert!(matches!(
            normalize_base_uri("ftp://example.com/"),
            Err(OAuthError::UnsupportedScheme(_))
        ));
        assert!(matches!(
            normalize_base_uri("example.com/path"),
            Err(OAuthError::InvalidUrl(_))
        ));
        assert!(matches!(
            normalize_base_uri("http:///path"),
            Err(OAuthError::InvalidUrl(_))
        ));
        assert!(matches!(
            normalize_base_uri("http://h:99999/"),
            Err(OAuthError::InvalidUrl(_))
        ));
        assert!(matches!(
            normalize_base_uri("http://h:8x/"),
            Err(OAuthError::InvalidUrl(_))
        ));
        assert!(matches!(
            normalize_base_uri("http://[::1/"),
            Err(OAuthError::InvalidUrl(_))
        ));
    }

    #[test]
    fn base_uri_from_url_matches_wire_form() {
        let u = url("HTTPS://Lms.Example.COM:443/caf\u{e9} x/%7e?q=1");
        assert_eq!(u.as_str(), "https://lms.example.com/caf%C3%A9%20x/%7e?q=1");
        assert_eq!(base_uri(&u).unwrap(), "https://lms.example.com/caf%C3%A9%20x/%7e");
        assert_eq!(
            base_uri(&url("http://h.example:8080")).unwrap(),
            "http://h.example:8080/"
        );
        assert!(matches!(
            base_uri(&url("mailto:a@b.c")),
            Err(OAuthError::UnsupportedScheme(_))
        ));
        assert!(matches!(
            base_uri(&url("file:///etc/passwd")),
            Err(OAuthError::UnsupportedScheme(_))
        ));
    }

    #[test]
    fn base_string_excludes_signature_and_realm_and_uppercases_method() {
        let params = owned(&[("b", "2"), ("oauth_signature", "x"), ("realm", "r"), ("a", "1")]);
        assert_eq!(
            base_string("post", "http://h/", &params),
            "POST&http%3A%2F%2Fh%2F&a%3D1%26b%3D2"
        );
    }

    #[test]
    fn base_string_sorts_by_encoded_name_then_value() {
        // Names compare as encoded strings ("a" < "a%20b" < "ab"); encoded values break ties.
        let params = owned(&[
            ("ab", "1"),
            ("a b", "2"),
            ("a", "z"),
            ("a", "Z"),
            ("a", "10"),
            ("a", "9"),
        ]);
        assert_eq!(
            base_string("GET", "http://h/", &params),
            format!(
                "GET&http%3A%2F%2Fh%2F&{}",
                percent_encode("a=10&a=9&a=Z&a=z&a%20b=2&ab=1")
            )
        );
    }

    #[test]
    fn hmac_sha256_variant_differs_and_verifies() {
        let u = url("https://lms.example.com/outcomes");
        let signer = OAuthSigner::new("key", "secret", SignatureMethod::HmacSha256);
        let signed = signer.sign_request("POST", &u, b"<x/>", "n", 1).unwrap();
        assert_eq!(signed.body_hash, body_hash(SignatureMethod::HmacSha256, b"<x/>"));
        assert!(
            signed
                .authorization
                .contains("oauth_signature_method=\"HMAC-SHA256\"")
        );
        let sig = &signed
            .params
            .iter()
            .find(|(k, _)| k == "oauth_signature")
            .unwrap()
            .1;
        assert_eq!(BASE64.decode(sig).unwrap().len(), 32);
        let params = parse_authorization_header(&signed.authorization).unwrap();
        let verified = verify_request("POST", &u, &params, b"<x/>", |_| Some("secret".into())).unwrap();
        assert_eq!(verified.signature_method, SignatureMethod::HmacSha256);
    }

    #[test]
    fn signer_debug_hides_secret() {
        let signer = OAuthSigner::new("my-key", "top-secret-value", SignatureMethod::HmacSha1);
        let debug = format!("{signer:?}");
        assert!(debug.contains("my-key"));
        assert!(debug.contains("***"));
        assert!(!debug.contains("top-secret-value"));
    }

    #[test]
    fn sign_now_uses_fresh_nonce_and_current_time() {
        let u = url("https://lms.example.com/outcomes");
        let signer = OAuthSigner::new("key", "secret", SignatureMethod::HmacSha1);
        let before = unix_now();
        let a = signer.sign_now("POST", &u, b"body").unwrap();
        let b = signer.sign_now("POST", &u, b"body").unwrap();
        let after = unix_now();
        let get = |s: &SignedRequest, k: &str| s.params.iter().find(|(n, _)| n == k).unwrap().1.clone();
        let nonce = get(&a, "oauth_nonce");
        assert_eq!(nonce.len(), 32);
        assert!(nonce.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(nonce, get(&b, "oauth_nonce"));
        assert_ne!(get(&a, "oauth_signature"), get(&b, "oauth_signature"));
        let ts: u64 = get(&a, "oauth_timestamp").parse().unwrap();
        assert!((before..=after).contains(&ts));
    }

    #[test]
    fn signer_rejects_non_http_url() {
        let signer = OAuthSigner::new("key", "secret", SignatureMethod::HmacSha1);
        assert!(
            signer
                .sign_request("POST", &url("data:text/plain,x"), b"", "n", 1)
                .is_err()
        );
    }

    #[test]
    fn secrets_and_keys_with_reserved_characters() {
        let u = url("https://lms.example.com/outcomes?realm=q");
        let signer = OAuthSigner::new("k&y =\"x\"", "s&c+r%t é", SignatureMethod::HmacSha1);
        let signed = signer.sign_request("POST", &u, b"b", "n,o\"nce", 5).unwrap();
        // A query parameter named realm is signed (only the header realm is excluded).
        assert!(signed.base_string.contains("realm%3Dq"), "{}", signed.base_string);
        let params = parse_authorization_header(&signed.authorization).unwrap();
        assert!(params.contains(&("oauth_consumer_key".to_owned(), "k&y =\"x\"".to_owned())));
        let lookup = |k: &str| (k == "k&y =\"x\"").then(|| "s&c+r%t é".to_owned());
        verify_request("POST", &u, &params, b"b", lookup).unwrap();
    }

    // ---- Authorization header parsing ----------------------------------------------------

    #[test]
    fn parse_header_variants() {
        let expected = owned(&[("realm", ""), ("oauth_nonce", "a b+c"), ("oauth_version", "1.0")]);
        for h in [
            "OAuth realm=\"\",oauth_nonce=\"a%20b%2Bc\",oauth_version=\"1.0\"",
            "oauth realm=\"\", oauth_nonce=\"a%20b%2Bc\", oauth_version=\"1.0\"",
            "  OAUTH   realm = \"\" ,\t oauth_nonce=\"a%20b%2Bc\",,oauth_version=1.0 ",
            "OAuth realm=\"\"\r\n oauth_nonce=\"a%20b%2bc\" oauth_version=\"1.0\"",
        ] {
            assert_eq!(parse_authorization_header(h).unwrap(), expected, "{h}");
        }
        assert_eq!(parse_authorization_header("OAuth").unwrap(), vec![]);
        assert_eq!(parse_authorization_header("OAuth   ").unwrap(), vec![]);
    }

    #[test]
    fn parse_header_rejects_malformed() {
        for h in [
            "",
            "Bearer abc",
            "OAuthrealm=\"\"",
            "Basic dXNlcjpwYXNz",
            "OAuth =\"x\"",
            "OAuth oauth_nonce",
            "OAuth oauth_nonce=\"abc",
            "OAuth oauth_nonce=\"a\"b\"",
            "OAuth oauth_nonce=\"%zz\"",
            "OAuth oauth_nonce=\"%4\"",
            "OAuth oauth_nonce=\"%FF%FE\"",
            "OAuth oauth_nonce=a\"b",
        ] {
            assert!(
                matches!(parse_authorization_header(h), Err(OAuthError::MalformedHeader(_))),
                "should reject {h:?}"
            );
        }
    }

    // ---- Verifier ------------------------------------------------------------------------

    fn signed_fixture() -> (Url, Vec<u8>, Vec<(String, String)>) {
        let u = url("https://lms.example.com/api/lti/v1/tools/1/grade_passback?x=1&a=b%20c");
        let body = VECTOR5_BODY.as_bytes().to_vec();
        let signer = OAuthSigner::new("key", "secret", SignatureMethod::HmacSha1);
        let signed = signer
            .sign_request("POST", &u, &body, "nonce123", 1_700_000_000)
            .unwrap();
        (
            u,
            body,
            parse_authorization_header(&signed.authorization).unwrap(),
        )
    }

    fn secret_lookup(key: &str) -> Option<String> {
        (key == "key").then(|| "secret".to_owned())
    }

    fn with_param(params: &[(String, String)], name: &str, value: Option<&str>) -> Vec<(String, String)> {
        let mut out: Vec<_> = params.iter().filter(|(k, _)| k != name).cloned().collect();
        if let Some(v) = value {
            out.push((name.to_owned(), v.to_owned()));
        }
        out
    }

    #[test]
    fn verify_accepts_valid_request() {
        let (u, body, params) = signed_fixture();
        let v = verify_request("POST", &u, &params, &body, secret_lookup).unwrap();
        assert_eq!(
            v,
            VerifiedRequest {
                consumer_key: "key".into(),
                nonce: "nonce123".into(),
                timestamp: 1_700_000_000,
                signature_method: SignatureMethod::HmacSha1,
                body_hash: Some("T4+NuWGBvKwDMzCJE00B3/XnWYk=".into()),
            }
        );
        // Method case does not matter; URL with the explicit default port is equivalent.
        verify_request("post", &u, &params, &body, secret_lookup).unwrap();
        verify_request_raw(
            "POST",
            "https://LMS.example.com:443/api/lti/v1/tools/1/grade_passback?a=b+c&x=1",
            &params,
            &body,
            secret_lookup,
        )
        .unwrap();
    }

    #[test]
    fn verify_reports_each_failure_kind() {
        let (u, body, params) = signed_fixture();
        let run = |p: &[(String, String)], b: &[u8]| verify_request("POST", &u, p, b, secret_lookup);
        for name in [
            "oauth_consumer_key",
            "oauth_signature_method",
            "oauth_timestamp",
            "oauth_nonce",
            "oauth_signature",
            "oauth_body_hash",
        ] {
            assert_eq!(
                run(&with_param(&params, name, None), &body),
                Err(VerifyError::MissingParameter(name.to_owned()))
            );
        }
        let mut dup = params.clone();
        dup.push(("oauth_nonce".into(), "other".into()));
        assert_eq!(
            run(&dup, &body),
            Err(VerifyError::DuplicateParameter("oauth_nonce".into()))
        );
        assert_eq!(
            run(&with_param(&params, "oauth_version", Some("2.0")), &body),
            Err(VerifyError::BadVersion("2.0".into()))
        );
        assert_eq!(
            run(
                &with_param(&params, "oauth_signature_method", Some("PLAINTEXT")),
                &body
            ),
            Err(VerifyError::UnsupportedSignatureMethod("PLAINTEXT".into()))
        );
        assert!(matches!(
            run(&with_param(&params, "oauth_timestamp", Some("-5")), &body),
            Err(VerifyError::MalformedParameter { .. })
        ));
        assert!(matches!(
            run(
                &with_param(&params, "oauth_timestamp", Some("99999999999999999999999")),
                &body
            ),
            Err(VerifyError::MalformedParameter { .. })
        ));
        assert_eq!(
            run(&with_param(&params, "oauth_consumer_key", Some("nobody")), &body),
            Err(VerifyError::UnknownConsumer("nobody".into()))
        );
        let mut tampered = body.clone();
        tampered[300] ^= 1;
        assert_eq!(run(&params, &tampered), Err(VerifyError::BodyHashMismatch));
        assert_eq!(
            run(
                &with_param(&params, "oauth_signature", Some("not base64!")),
                &body
            ),
            Err(VerifyError::SignatureMismatch)
        );
        assert_eq!(
            verify_request("POST", &u, &params, &body, |_| Some("wrong".into())),
            Err(VerifyError::SignatureMismatch)
        );
        assert_eq!(
            verify_request("PUT", &u, &params, &body, secret_lookup),
            Err(VerifyError::SignatureMismatch)
        );
        // Dropping a signed oauth_version changes the base string.
        assert_eq!(
            run(&with_param(&params, "oauth_version", None), &body),
            Err(VerifyError::SignatureMismatch)
        );
        assert!(matches!(
            verify_request("POST", &url("ftp://h/x"), &params, &body, secret_lookup),
            Err(VerifyError::BadRequestUrl(_))
        ));
    }

    #[test]
    fn verify_accepts_request_without_version_or_realm() {
        let u = url("https://lms.example.com/o");
        let body = b"<x/>";
        let mut params = owned(&[
            ("oauth_body_hash", &body_hash(SignatureMethod::HmacSha1, body)),
            ("oauth_consumer_key", "key"),
            ("oauth_nonce", "n"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "10"),
        ]);
        let base = base_string("POST", &base_uri(&u).unwrap(), &params);
        params.push((
            "oauth_signature".into(),
            sign(SignatureMethod::HmacSha1, "secret", "", &base),
        ));
        verify_request("POST", &u, &params, body, secret_lookup).unwrap();
    }

    #[test]
    fn verify_form_request_vector3() {
        // Vector 3 again, this time through the verifier: the form body is signed.
        let u = url("http://www.imsglobal.org/developers/LTI/test/v1p1/tool.php?foo=123&foo=bar");
        let form = "resource_link_id=rsc1&oauth_callback=about%3Ablank&lis_outcome_service_url=http%3A%2F%2Fwww.imsglobal.org%2Fdevelopers%2FLTI%2Ftest%2Fv1p1%2Fcommon%2Ftool_consumer_outcome.php%3Fb64%3DMTIzNDU6OjpzZWNyZXQ%3D&lis_result_sourcedid=feb-123-456-2929%3A%3A28883&launch_presentation_return_url=http%3A%2F%2Fwww.imsglobal.org%2Fdevelopers%2FLTI%2Ftest%2Fv1p1%2Flms_return.php&lti_version=LTI-1p0&lti_message_type=basic-lti-launch-request";
        let header = "OAuth oauth_version=\"1.0\",oauth_nonce=\"7ee33f6dc94117e792ff529898ce3953\",oauth_timestamp=\"1397708483\",oauth_consumer_key=\"12345\",oauth_signature_method=\"HMAC-SHA1\",oauth_signature=\"dHORwwJqwh5hQQAlvaA9csSIOhc%3D\"";
        let params = parse_authorization_header(header).unwrap();
        let lookup = |k: &str| (k == "12345").then(|| "secret".to_owned());
        let v = verify_form_request("POST", &u, &params, form.as_bytes(), lookup).unwrap();
        assert_eq!(v.body_hash, None);
        // Without the form parameters (opaque body) the signature cannot match.
        assert_eq!(
            verify_request("POST", &u, &params, form.as_bytes(), lookup),
            Err(VerifyError::MissingParameter("oauth_body_hash".into()))
        );
        let tampered = form.replace("rsc1", "rsc2");
        assert_eq!(
            verify_form_request("POST", &u, &params, tampered.as_bytes(), lookup),
            Err(VerifyError::SignatureMismatch)
        );
    }

    // ---- Nonce cache ---------------------------------------------------------------------

    #[test]
    fn nonce_cache_window_and_replay() {
        let mut cache = NonceCache::default();
        assert_eq!(cache.window(), Duration::from_secs(5400));
        let now = 1_700_000_000;
        cache.check_and_insert("key", "n1", now, now).unwrap();
        assert_eq!(
            cache.check_and_insert("key", "n1", now, now + 10),
            Err(VerifyError::NonceReplayed)
        );
        // Same nonce for a different consumer is fine.
        cache.check_and_insert("other", "n1", now, now).unwrap();
        // Window edges are inclusive.
        cache.check_and_insert("key", "n2", now - 5400, now).unwrap();
        cache.check_and_insert("key", "n3", now + 5400, now).unwrap();
        assert_eq!(
            cache.check_and_insert("key", "n4", now - 5401, now),
            Err(VerifyError::TimestampOutOfWindow {
                skew_secs: -5401,
                window_secs: 5400
            })
        );
        assert_eq!(
            cache.check_and_insert("key", "n5", now + 7200, now),
            Err(VerifyError::TimestampOutOfWindow {
                skew_secs: 7200,
                window_secs: 5400
            })
        );
        assert_eq!(cache.len(), 4);
        // Once the original timestamp leaves the window, the replay is a window error and
        // the entry is purged.
        let later = now + 5401;
        assert!(matches!(
            cache.check_and_insert("key", "n1", now, later),
            Err(VerifyError::TimestampOutOfWindow { .. })
        ));
        cache.check_and_insert("key", "fresh", later, later).unwrap();
        assert_eq!(cache.len(), 2, "expired entries purged");
        assert!(!cache.is_empty());
    }

    #[test]
    fn nonce_cache_extreme_values_do_not_overflow() {
        let mut cache = NonceCache::new(Duration::from_secs(60));
        assert!(matches!(
            cache.check_and_insert("k", "n", u64::MAX, 0),
            Err(VerifyError::TimestampOutOfWindow {
                skew_secs: i64::MAX,
                ..
            })
        ));
        assert!(matches!(
            cache.check_and_insert("k", "n", 0, u64::MAX),
            Err(VerifyError::TimestampOutOfWindow {
                skew_secs: i64::MIN,
                ..
            })
        ));
        cache.check_and_insert("k", "n", u64::MAX, u64::MAX).unwrap();
        assert_eq!(
            cache.check_and_insert("k", "n", u64::MAX, u64::MAX),
            Err(VerifyError::NonceReplayed)
        );
    }

    #[test]
    fn verify_error_messages_are_human_readable() {
        assert_eq!(
            VerifyError::TimestampOutOfWindow {
                skew_secs: -6000,
                window_secs: 5400
            }
            .to_string(),
            "oauth_timestamp is 6000 seconds behind the server clock (allowed: 5400 seconds either way)"
        );
        assert_eq!(
            VerifyError::TimestampOutOfWindow {
                skew_secs: 6000,
                window_secs: 5400
            }
            .to_string(),
            "oauth_timestamp is 6000 seconds ahead of the server clock (allowed: 5400 seconds either way)"
        );
        assert_eq!(
            VerifyError::MissingParameter("oauth_nonce".into()).to_string(),
            "missing OAuth parameter oauth_nonce"
        );
        assert_eq!(
            VerifyError::SignatureMismatch.to_string(),
            "OAuth signature does not match"
        );
        assert_eq!(
            VerifyError::BodyHashMismatch.to_string(),
            "oauth_body_hash does not match the request body"
        );
        assert_eq!(
            VerifyError::UnknownConsumer("k".into()).to_string(),
            "unknown oauth_consumer_key \"k\""
        );
    }

    // ---- Property tests ------------------------------------------------------------------

    /// A URL built from random parts, kept alongside its decoded query so it can be mutated.
    #[derive(Debug, Clone)]
    struct UrlParts {
        https: bool,
        host_labels: Vec<String>,
        port: Option<u16>,
        segments: Vec<String>,
        query: Vec<(String, String)>,
        space_as_plus: bool,
    }

    impl UrlParts {
        fn render(&self) -> String {
            let scheme = if self.https { "https" } else { "http" };
            let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
            let path: String = self.segments.iter().map(|s| format!("/{s}")).collect();
            let mut s = format!("{scheme}://{}{port}{path}", self.host_labels.join("."));
            if !self.query.is_empty() {
                let enc = |x: &str| {
                    if self.space_as_plus {
                        form_urlencoded::byte_serialize(x.as_bytes()).collect::<String>()
                    } else {
                        percent_encode(x)
                    }
                };
                let q: Vec<String> = self
                    .query
                    .iter()
                    .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
                    .collect();
                s.push('?');
                s.push_str(&q.join("&"));
            }
            s
        }

        fn url(&self) -> Url {
            Url::parse(&self.render()).expect("generated URL parses")
        }
    }

    fn meaning(u: &Url) -> (String, Vec<(String, String)>) {
        let mut q = query_params(u);
        q.sort();
        (base_uri(u).expect("http(s) URL"), q)
    }

    fn text_strategy() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z0-9]{0,6}",
            "[ -~]{0,8}",
            proptest::collection::vec(
                prop_oneof![
                    Just('é'),
                    Just('日'),
                    Just('🎓'),
                    Just(' '),
                    Just('&'),
                    Just('='),
                    Just('+'),
                    Just('%')
                ],
                0..4
            )
            .prop_map(|v| v.into_iter().collect()),
        ]
    }

    fn segment_strategy() -> impl Strategy<Value = String> {
        // Path segments: letters, digits, unicode, spaces and reserved characters that the
        // url crate keeps or percent-encodes. '/', '?', '#', '\\' and '%' are left out so
        // that a segment is one segment; "." and ".." are avoided (they are dot-normalized).
        proptest::collection::vec(
            prop_oneof![
                4 => proptest::char::range('a', 'z'),
                1 => proptest::char::range('A', 'Z'),
                1 => prop_oneof![
                    Just('é'), Just('ü'), Just('日'), Just('🎓'), Just(' '), Just(';'), Just('='), Just('@'),
                    Just('~'), Just('!'), Just('$'), Just('\''), Just('('), Just('*'), Just('+'), Just(',')
                ],
            ],
            1..6,
        )
        .prop_map(|v| v.into_iter().collect())
    }

    fn url_strategy() -> impl Strategy<Value = UrlParts> {
        let key = prop_oneof![
            Just("a".to_owned()),
            Just("b".to_owned()),
            Just("x y".to_owned()),
            text_strategy()
        ];
        (
            any::<bool>(),
            // Labels start with a letter (no all-numeric IPv4-like label, no "xn--" punycode).
            proptest::collection::vec("[a-zA-Z][a-zA-Z0-9]{0,6}(-[a-zA-Z0-9]{1,3})?", 1..4),
            prop_oneof![
                Just(None),
                Just(Some(80u16)),
                Just(Some(443u16)),
                (1u16..=65535).prop_map(Some)
            ],
            proptest::collection::vec(segment_strategy(), 0..4),
            proptest::collection::vec((key, text_strategy()), 0..5),
            any::<bool>(),
        )
            .prop_map(
                |(https, host_labels, port, segments, query, space_as_plus)| UrlParts {
                    https,
                    host_labels,
                    port,
                    segments,
                    query,
                    space_as_plus,
                },
            )
    }

    fn check(
        parts: &UrlParts,
        body: &[u8],
        params: &[(String, String)],
    ) -> Result<VerifiedRequest, VerifyError> {
        let lookup = |k: &str| (k == "prop-key").then(|| "prop secret &+".to_owned());
        verify_request("POST", &parts.url(), params, body, lookup)
    }

    fn sign_parts(parts: &UrlParts, body: &[u8], nonce: &str, ts: u64, sha256: bool) -> SignedRequest {
        let method = if sha256 {
            SignatureMethod::HmacSha256
        } else {
            SignatureMethod::HmacSha1
        };
        OAuthSigner::new("prop-key", "prop secret &+", method)
            .sign_request("POST", &parts.url(), body, nonce, ts)
            .expect("signable URL")
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// The hand-written encoder agrees with the `percent-encoding` crate's RFC 3986 set.
        #[test]
        fn fast_percent_encoder_matches_the_crate(s in "\\PC{0,40}") {
            const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
                .remove(b'-')
                .remove(b'.')
                .remove(b'_')
                .remove(b'~');
            prop_assert_eq!(percent_encode(&s), percent_encoding::utf8_percent_encode(&s, SET).to_string());
        }

        #[test]
        fn signed_requests_verify(
            parts in url_strategy(),
            body in proptest::collection::vec(any::<u8>(), 0..256),
            nonce in "[A-Za-z0-9 +/=&%é]{1,24}",
            ts in any::<u64>(),
            sha256 in any::<bool>(),
        ) {
            let signed = sign_parts(&parts, &body, &nonce, ts, sha256);
            let params = parse_authorization_header(&signed.authorization).unwrap();
            let verified = check(&parts, &body, &params).unwrap();
            prop_assert_eq!(&verified.nonce, &nonce);
            prop_assert_eq!(verified.timestamp, ts);
            // The serialized URL (what goes on the wire) verifies through both entry points.
            let wire = parts.url();
            let reparsed = Url::parse(wire.as_str()).unwrap();
            let lookup = |k: &str| (k == "prop-key").then(|| "prop secret &+".to_owned());
            verify_request("POST", &reparsed, &params, &body, lookup).unwrap();
            verify_request_raw("POST", wire.as_str(), &params, &body, lookup).unwrap();
            // Host case and an explicit default port do not change the meaning.
            let mut equivalent = parts.clone();
            equivalent.host_labels = parts.host_labels.iter().map(|l| l.to_ascii_uppercase()).collect();
            if equivalent.port.is_none() {
                equivalent.port = Some(if parts.https { 443 } else { 80 });
            }
            check(&equivalent, &body, &params).unwrap();
        }

        #[test]
        fn any_body_byte_flip_fails(
            parts in url_strategy(),
            body in proptest::collection::vec(any::<u8>(), 1..256),
            index in any::<proptest::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let signed = sign_parts(&parts, &body, "n", 1_700_000_000, false);
            let params = parse_authorization_header(&signed.authorization).unwrap();
            let mut tampered = body.clone();
            tampered[index.index(body.len())] ^= flip;
            prop_assert_eq!(check(&parts, &tampered, &params), Err(VerifyError::BodyHashMismatch));
        }

        #[test]
        fn any_url_change_fails(
            parts in url_strategy(),
            body in proptest::collection::vec(any::<u8>(), 0..64),
            which in 0usize..4,
            index in any::<proptest::sample::Index>(),
            ch in prop_oneof![proptest::char::range('a', 'z'), Just('é'), Just(' '), Just('&')],
        ) {
            let signed = sign_parts(&parts, &body, "n", 1_700_000_000, false);
            let params = parse_authorization_header(&signed.authorization).unwrap();
            let mut mutated = parts.clone();
            match which {
                // Change (or insert) one character of a path segment.
                0 => {
                    if mutated.segments.is_empty() {
                        mutated.segments.push(ch.to_string());
                    } else {
                        let i = index.index(mutated.segments.len());
                        let mut chars: Vec<char> = mutated.segments[i].chars().collect();
                        let j = index.index(chars.len());
                        chars[j] = ch;
                        mutated.segments[i] = chars.into_iter().collect();
                    }
                }
                // Change one character of a query value, or add a parameter.
                1 => {
                    if mutated.query.is_empty() {
                        mutated.query.push(("q".into(), ch.to_string()));
                    } else {
                        let i = index.index(mutated.query.len());
                        let mut chars: Vec<char> = mutated.query[i].1.chars().collect();
                        if chars.is_empty() {
                            chars.push(ch);
                        } else {
                            let j = index.index(chars.len());
                            chars[j] = ch;
                        }
                        mutated.query[i].1 = chars.into_iter().collect();
                    }
                }
                // Change one character of a query key.
                2 => {
                    if mutated.query.is_empty() {
                        mutated.query.push((ch.to_string(), String::new()));
                    } else {
                        let i = index.index(mutated.query.len());
                        mutated.query[i].0.push(ch);
                    }
                }
                // Change the scheme or the port.
                _ => {
                    if index.index(2) == 0 {
                        mutated.https = !mutated.https;
                    } else {
                        mutated.port = Some(match mutated.port { Some(8081) => 8082, _ => 8081 });
                    }
                }
            }
            prop_assume!(meaning(&mutated.url()) != meaning(&parts.url()));
            prop_assert_eq!(check(&mutated, &body, &params), Err(VerifyError::SignatureMismatch));
        }

        #[test]
        fn any_param_change_fails(
            parts in url_strategy(),
            body in proptest::collection::vec(any::<u8>(), 0..64),
            index in any::<proptest::sample::Index>(),
            suffix in "[a-z0-9]{1,3}",
        ) {
            let signed = sign_parts(&parts, &body, "n", 1_700_000_000, false);
            let params = parse_authorization_header(&signed.authorization).unwrap();
            let oauth: Vec<usize> = (0..params.len()).filter(|&i| params[i].0 != "realm").collect();
            let target = oauth[index.index(oauth.len())];
            let mut mutated = params.clone();
            mutated[target].1.push_str(&suffix);
            prop_assert!(check(&parts, &body, &mutated).is_err(), "changing {} was accepted", params[target].0);
        }

        #[test]
        fn percent_encode_round_trips(s in "\\PC{0,32}") {
            let enc = percent_encode(&s);
            prop_assert!(enc.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)));
            prop_assert_eq!(percent_decode_strict(&enc, "test").unwrap(), s);
        }
    }
}
