//! An LTI 1.1 launch's parameters → a launch seen (with the outcome target it
//! carried), for captured launches and Caliper events alike. The OAuth signature
//! is verified when the platform's secret and the signed URL are known, with the
//! timestamp window taken from the capture time, never the import time. Nothing
//! of the signature or the nonce is kept.

use std::collections::{BTreeMap, HashMap};

use url::Url;

use super::Ctx;
use crate::error::Result;
use crate::intake::{ActivityOwned, ContextOwned, Fact, LaunchInfo, PersonOwned, PlaceOwned};
use crate::lti::roles::normalize_roles;
use crate::lti11::oauth::{NonceCache, VerifyError, verify_form_request};
use crate::model::OutcomeTarget;

/// Keys a capture adds beside the launch parameters (not signed by the LMS).
pub const CAPTURE_KEYS: [&str; 3] = ["launch_url", "captured_at", "received_at"];

/// What the launches of one file have shown so far: nonces (for the timestamp
/// window and replays) and each signed launch's first line.
#[derive(Default)]
pub struct Seen {
    nonces: NonceCache,
    signed: HashMap<(String, String, String), u64>,
}

/// Why a launch whose signature was checked stays unverified.
const MISMATCH: &str = "signature mismatch";

/// What became of one launch.
pub enum Launch {
    Facts(Vec<Fact>),
    Reject {
        column: Option<&'static str>,
        reason: String,
    },
    Skip(String),
}

fn get<'m>(p: &'m BTreeMap<String, String>, k: &str) -> Option<&'m str> {
    p.get(k).map(|s| s.trim()).filter(|s| !s.is_empty())
}

fn owned(p: &BTreeMap<String, String>, k: &str) -> Option<String> {
    get(p, k).map(str::to_string)
}

fn flag(p: &BTreeMap<String, String>, k: &str) -> bool {
    get(p, k).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// Verify a launch's signature; `Ok(())` or the reason it stays unverified.
async fn verify(
    ctx: &mut Ctx<'_>,
    params: &BTreeMap<String, String>,
    url: Option<&str>,
    captured_at: Option<&str>,
    platform: &crate::model::Platform,
    nonces: &mut NonceCache,
) -> std::result::Result<(), String> {
    let url = url.ok_or_else(|| "URL unknown".to_string())?;
    let url = Url::parse(url).map_err(|_| "URL unknown (not a valid URL)".to_string())?;
    let secret = ctx
        .platform_secret(platform)
        .await
        .ok_or_else(|| "secret unknown".to_string())?;
    let mut auth = Vec::new();
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        if CAPTURE_KEYS.contains(&k.as_str()) {
            continue;
        }
        if k.starts_with("oauth_") {
            auth.push((k.clone(), v.clone()));
        } else {
            form.append_pair(k, v);
        }
    }
    let body = form.finish();
    let key = platform.consumer_key.clone().unwrap_or_default();
    let verified = verify_form_request("POST", &url, &auth, body.as_bytes(), |k| {
        (k == key).then(|| secret.clone())
    })
    .map_err(|e| match e {
        VerifyError::SignatureMismatch => MISMATCH.to_string(),
        other => format!("signature not checked ({other})"),
    })?;
    if let Some(at) = captured_at.and_then(super::text::unix_seconds) {
        nonces
            .check_and_insert(
                &verified.consumer_key,
                &verified.nonce,
                verified.timestamp,
                at.max(0) as u64,
            )
            .map_err(|e| match e {
                VerifyError::NonceReplayed => "nonce seen before (a replayed launch)".to_string(),
                VerifyError::TimestampOutOfWindow { .. } => {
                    "timestamp outside the 90-minute window of the capture time".to_string()
                }
                other => other.to_string(),
            })?;
    }
    Ok(())
}

/// Turn one launch's parameters into facts. `launch_url` and `captured_at` come
/// from the capture (a `launch_url` key, `--launch-url`, Caliper's `launchUrl`;
/// a `captured_at` key or Caliper's `eventTime`).
pub async fn facts(
    ctx: &mut Ctx<'_>,
    line: u64,
    params: &BTreeMap<String, String>,
    launch_url: Option<&str>,
    captured_at: Option<&str>,
    seen: &mut Seen,
) -> Result<Launch> {
    let Some(user_id) = owned(params, "user_id") else {
        return Ok(Launch::Reject {
            column: Some("user_id"),
            reason: "the launch has no user_id".into(),
        });
    };
    let Some(context_id) = owned(params, "context_id") else {
        return Ok(Launch::Skip(
            "a launch outside a course (no context_id): nothing to record".into(),
        ));
    };
    // The same signed launch captured twice (a replay, or a capture logged twice)
    // is one launch.
    if let (Some(nonce), Some(ts)) = (get(params, "oauth_nonce"), get(params, "oauth_timestamp")) {
        let key = (
            get(params, "oauth_consumer_key").unwrap_or_default().to_string(),
            nonce.to_string(),
            ts.to_string(),
        );
        if let Some(first) = seen.signed.get(&key) {
            return Ok(Launch::Skip(format!(
                "the same signed launch as line {first} (same nonce and timestamp), captured again"
            )));
        }
        seen.signed.insert(key, line);
    }
    let platform = match get(params, "oauth_consumer_key") {
        Some(key) => ctx.platform_for_consumer_key(key),
        None => ctx.require_platform("the launch has no oauth_consumer_key and"),
    };
    let platform = match platform {
        Ok(p) => p,
        Err(reason) => {
            ctx.note(reason.clone());
            return Ok(Launch::Reject {
                column: Some("oauth_consumer_key"),
                reason,
            });
        }
    };
    let at = captured_at
        .and_then(super::text::normalize_time)
        .or_else(|| get(params, "oauth_timestamp").and_then(super::text::normalize_time))
        .unwrap_or_else(crate::store::now_rfc3339);
    let (verified, note) =
        match verify(ctx, params, launch_url, captured_at, &platform, &mut seen.nonces).await {
            Ok(()) => (true, None),
            Err(why) => (false, Some(why)),
        };
    // A launch whose signature was checked and does not match was altered after
    // signing (or signed with another secret): it is recorded, but the outcome
    // target it carries is not trusted.
    let tampered = note.as_deref() == Some(MISMATCH);
    match &note {
        Some(why) if tampered => ctx.note(format!(
            "launches left unverified: {why} (the outcome targets they carried were not used)"
        )),
        Some(why) => ctx.note(format!("launches left unverified: {why}")),
        None => {}
    }
    let roles: Vec<String> = get(params, "roles")
        .or_else(|| get(params, "ext_roles"))
        .map(|r| r.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    let role = normalize_roles(&roles);
    let name = owned(params, "lis_person_name_full").or_else(|| {
        let given = get(params, "lis_person_name_given");
        let family = get(params, "lis_person_name_family");
        match (given, family) {
            (Some(g), Some(f)) => Some(format!("{g} {f}")),
            (Some(n), None) | (None, Some(n)) => Some(n.to_string()),
            _ => None,
        }
    });
    let activity = owned(params, "resource_link_id").map(|rl| ActivityOwned {
        resource_link_id: rl,
        title: owned(params, "resource_link_title"),
        points_possible: get(params, "custom_canvas_assignment_points_possible")
            .and_then(super::text::parse_number)
            .filter(|p| *p > 0.0),
        line_item_id: None,
        canvas_assignment_id: owned(params, "custom_canvas_assignment_id"),
    });
    let place = PlaceOwned {
        platform_id: platform.id,
        context: Some(ContextOwned {
            context_id,
            title: owned(params, "context_title"),
            label: owned(params, "context_label"),
        }),
        activity,
        person: Some(PersonOwned {
            lti_user_id: user_id,
            name,
            email: owned(params, "lis_person_contact_email_primary"),
            person_sourcedid: owned(params, "lis_person_sourcedid"),
            canvas_user_id: owned(params, "custom_canvas_user_id"),
            role: Some(role),
        }),
    };
    let sourcedid = owned(params, "lis_result_sourcedid");
    let outcome_url = owned(params, "lis_outcome_service_url");
    let target = (!tampered && place.activity.is_some() && (sourcedid.is_some() || outcome_url.is_some()))
        .then(|| {
            let unavailable_reason = match (&sourcedid, &outcome_url) {
                (Some(_), None) => {
                    Some("the launch carried a sourcedid but no lis_outcome_service_url".to_string())
                }
                (None, Some(_)) => {
                    Some("the launch carried an outcome URL but no lis_result_sourcedid".to_string())
                }
                _ => None,
            };
            OutcomeTarget {
                lis_result_sourcedid: sourcedid,
                lis_outcome_service_url: outcome_url,
                ext_outcome_data_values_accepted: owned(params, "ext_outcome_data_values_accepted"),
                ext_result_total_score_accepted: flag(params, "ext_outcome_result_total_score_accepted"),
                ext_submitted_at_accepted: flag(params, "ext_outcome_submission_submitted_at_accepted"),
                ext_prioritize_non_tool_grade_accepted: flag(
                    params,
                    "ext_outcome_submission_prioritize_non_tool_grade_accepted",
                ),
                ext_needs_additional_review_accepted: flag(
                    params,
                    "ext_outcome_submission_needs_additional_review_accepted",
                ),
                service_key_ref: None,
                learned_at: at.clone(),
                learned_from: format!("launch:{}:{line}", ctx.file()),
                unavailable_reason,
            }
        });
    Ok(Launch::Facts(vec![Fact::Launch {
        place,
        launch: LaunchInfo {
            at,
            consumer_key: owned(params, "oauth_consumer_key"),
            verified,
            note,
            locale: owned(params, "launch_presentation_locale"),
            direction: None,
            source: format!("{}:{line}", ctx.file()),
        },
        target,
    }]))
}

/// Apply what [`facts`] decided to the import.
pub async fn apply(ctx: &mut Ctx<'_>, line: u64, launch: Launch) -> Result<bool> {
    match launch {
        Launch::Facts(f) => ctx.row(line, f).await,
        Launch::Reject { column, reason } => ctx.reject(line, column, reason).await,
        Launch::Skip(reason) => ctx.skip(line, None, reason).await,
    }
}
