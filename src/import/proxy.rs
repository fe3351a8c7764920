//! Blackboard proxy-tool requests (one form-encoded request per line, or a JSON
//! array of maps), MAC-verified: the MAC covers every parameter but `mac`, values
//! in the order of their sorted names, concatenated, the shared secret appended,
//! digested with MD5 (or SHA-1) and base64-encoded. Forged, stale (more than five
//! minutes from the capture time) and replayed requests are rejected with the
//! reason. A verified request records a launch seen: the learner by `userid`,
//! the course (`course_id`), the role (`role`, `COURSE:STUDENT`…, or `tcrole`),
//! the locale and the direction. It carries no outcome target.

use std::collections::{BTreeMap, HashSet};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use md5::Md5;
use sha1::{Digest, Sha1};

use super::launches::param_records;
use super::text::Input;
use super::{Ctx, MacDigest};
use crate::error::{Error, Result};
use crate::intake::{ContextOwned, Fact, LaunchInfo, PersonOwned, PlaceOwned};
use crate::lti::roles::normalize_roles;

/// How far a request's timestamp may be from its capture time.
pub const WINDOW_SECS: i64 = 5 * 60;

/// The MAC Blackboard computes for `params` with `secret`.
pub fn mac(params: &BTreeMap<String, String>, secret: &str, digest: MacDigest) -> String {
    let mut data = Vec::with_capacity(256);
    // BTreeMap iterates in sorted name order.
    for (k, v) in params {
        if k == "mac" || super::launch::CAPTURE_KEYS.contains(&k.as_str()) {
            continue;
        }
        data.extend_from_slice(v.as_bytes());
    }
    data.extend_from_slice(secret.as_bytes());
    let raw: Vec<u8> = match digest {
        MacDigest::Md5 => Md5::digest(&data).to_vec(),
        MacDigest::Sha1 => Sha1::digest(&data).to_vec(),
    };
    BASE64.encode(raw)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What checking a request's MAC found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacCheck {
    /// The MAC `secret` gives with the digest asked for.
    Valid,
    /// The MAC `secret` gives with the other digest (the wrong `--mac`).
    OtherDigest,
    /// Not a MAC `secret` gives: forged, altered, or made with another secret.
    Forged,
}

/// A MAC as captured, without the line breaks and surrounding space captures may add.
fn normalized(given: &str) -> String {
    given.trim().replace(['\r', '\n'], "")
}

/// Check the `given` MAC of `params` (compared in constant time; line breaks and
/// surrounding space, which captures may add, are ignored).
pub fn check_mac(
    params: &BTreeMap<String, String>,
    given: &str,
    secret: &str,
    digest: MacDigest,
) -> MacCheck {
    let given = normalized(given);
    if constant_time_eq(mac(params, secret, digest).as_bytes(), given.as_bytes()) {
        MacCheck::Valid
    } else if constant_time_eq(mac(params, secret, digest.other()).as_bytes(), given.as_bytes()) {
        MacCheck::OtherDigest
    } else {
        MacCheck::Forged
    }
}

/// Seconds since 1970 of a proxy `timestamp` (seconds or milliseconds).
fn timestamp_secs(v: &str) -> Option<i64> {
    let n: i64 = v.trim().parse().ok()?;
    Some(if n > 100_000_000_000 { n / 1000 } else { n })
}

/// Import a file of proxy-tool requests.
pub async fn run(ctx: &mut Ctx<'_>, input: Input) -> Result<()> {
    let platform = ctx
        .require_platform("a proxy-tool request")
        .map_err(Error::invalid)?;
    let secret = match ctx.options().proxy_secret.clone() {
        Some(s) => s,
        None => ctx.platform_secret(&platform).await.ok_or_else(|| {
            Error::new(
                crate::error::ErrorKind::SecretMissing,
                format!(
                    "the shared secret of platform {:?} is not in this computer's keyring: store it (remove and \
                     re-add the platform) or give it with --proxy-secret-env VAR",
                    platform.name
                ),
            )
        })?,
    };
    let digest = ctx.options().mac;
    let mut seen_macs: HashSet<String> = HashSet::new();
    let mut unchecked_times = false;
    let mut records = param_records(input);
    while let Some(rec) = ctx.next_of(&mut *records).await? {
        let line = rec.line;
        let p = &rec.params;
        let Some(given) = p.get("mac") else {
            if !ctx.reject(line, Some("mac"), "the request has no mac").await? {
                break;
            }
            continue;
        };
        let reason = match check_mac(p, given, &secret, digest) {
            MacCheck::Valid => None,
            MacCheck::OtherDigest => {
                let other = digest.other();
                Some(format!(
                    "the MAC is {}, not {}: import again with --mac {}",
                    other.as_str(),
                    digest.as_str(),
                    other.as_str()
                ))
            }
            MacCheck::Forged => Some(
                "forged or altered: the MAC does not match (check the shared secret and --mac md5|sha1)"
                    .to_string(),
            ),
        };
        if let Some(reason) = reason {
            if !ctx.reject(line, Some("mac"), reason).await? {
                break;
            }
            continue;
        }
        if !seen_macs.insert(normalized(given)) {
            if !ctx
                .reject(
                    line,
                    Some("mac"),
                    "replayed: the same request appears earlier in the file",
                )
                .await?
            {
                break;
            }
            continue;
        }
        let Some(ts) = p.get("timestamp").and_then(|t| timestamp_secs(t)) else {
            if !ctx
                .reject(line, Some("timestamp"), "the request has no usable timestamp")
                .await?
            {
                break;
            }
            continue;
        };
        let captured = p
            .get("captured_at")
            .or_else(|| p.get("received_at"))
            .and_then(|t| super::text::normalize_time(t))
            .or(rec.line_time.clone());
        match captured.as_deref().and_then(super::text::unix_seconds) {
            Some(at) if (at - ts).abs() > WINDOW_SECS => {
                if !ctx
                    .reject(
                        line,
                        Some("timestamp"),
                        format!(
                            "stale: the request's timestamp is {} minutes from its capture time (more than 5)",
                            (at - ts).abs() / 60
                        ),
                    )
                    .await?
                {
                    break;
                }
                continue;
            }
            Some(_) => {}
            None => unchecked_times = true,
        }
        let Some(userid) = p.get("userid").map(|u| u.trim()).filter(|u| !u.is_empty()) else {
            if !ctx
                .reject(line, Some("userid"), "the request has no userid")
                .await?
            {
                break;
            }
            continue;
        };
        let role = p
            .get("role")
            .or_else(|| p.get("tcrole"))
            .map(|r| normalize_roles(&[r.as_str()]));
        let at = captured
            .clone()
            .or_else(|| super::text::normalize_time(&ts.to_string()))
            .unwrap_or_else(crate::store::now_rfc3339);
        let direction = p
            .get("direction")
            .map(|d| d.trim().to_ascii_lowercase())
            .filter(|d| d == "ltr" || d == "rtl");
        let place = PlaceOwned {
            platform_id: platform.id,
            context: p
                .get("course_id")
                .map(|c| c.trim())
                .filter(|c| !c.is_empty())
                .map(|c| ContextOwned {
                    context_id: c.to_string(),
                    ..ContextOwned::default()
                }),
            activity: None,
            person: Some(PersonOwned {
                lti_user_id: userid.to_string(),
                role,
                ..PersonOwned::default()
            }),
        };
        let facts = vec![Fact::Launch {
            place,
            launch: LaunchInfo {
                at,
                consumer_key: None,
                verified: true,
                note: Some(format!("proxy-tool MAC ({})", digest.as_str())),
                locale: p
                    .get("locale")
                    .map(|l| l.trim().to_string())
                    .filter(|l| !l.is_empty()),
                direction,
                source: format!("{}:{line}", ctx.file()),
            },
            target: None,
        }];
        if !ctx.row(line, facts).await? {
            break;
        }
    }
    if unchecked_times {
        ctx.note(
            "some requests carry no capture time, so their timestamps could not be checked for staleness",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mac_sorts_by_name_appends_the_secret_and_skips_mac() {
        let p: BTreeMap<String, String> = [("timestamp", "1235"), ("returnurl", "xxx"), ("mac", "ignored")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        // "xxx" (returnurl) + "1235" (timestamp) + "secret", as the reference's illustration.
        assert_eq!(mac(&p, "secret", MacDigest::Md5), "UYoQHl/CvzZCsWoNhRQISw==");
        assert_ne!(
            mac(&p, "secret", MacDigest::Sha1),
            mac(&p, "secret", MacDigest::Md5)
        );
        assert_ne!(
            mac(&p, "other", MacDigest::Md5),
            mac(&p, "secret", MacDigest::Md5)
        );
        assert_eq!(timestamp_secs("1608831491592"), Some(1_608_831_491));
        assert_eq!(timestamp_secs("1608831491"), Some(1_608_831_491));
        assert_eq!(timestamp_secs("soon"), None);
    }

    #[test]
    fn a_mac_verifies_only_for_its_secret_digest_and_values() {
        let p: BTreeMap<String, String> = [
            ("userid", "_1_1"),
            ("timestamp", "1608831491"),
            ("course_id", "bio-101"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let good = mac(&p, "secret", MacDigest::Md5);
        assert_eq!(check_mac(&p, &good, "secret", MacDigest::Md5), MacCheck::Valid);
        assert_eq!(
            check_mac(&p, &format!(" {good}\r\n"), "secret", MacDigest::Md5),
            MacCheck::Valid,
            "as a capture may wrap it"
        );
        assert_eq!(
            check_mac(&p, &good, "secret", MacDigest::Sha1),
            MacCheck::OtherDigest
        );
        assert_eq!(check_mac(&p, &good, "other", MacDigest::Md5), MacCheck::Forged);
        let mut altered = p.clone();
        altered.insert("course_id".into(), "bio-102".into());
        assert_eq!(
            check_mac(&altered, &good, "secret", MacDigest::Md5),
            MacCheck::Forged
        );
    }
}
