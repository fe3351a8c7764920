//! Open edX `lti_provider` records — `LtiConsumer`, `OutcomeService`,
//! `GradedAssignment`, `LtiUser` — as Django `dumpdata` JSON (`[{"model":
//! "lti_provider.gradedassignment", "pk": 1, "fields": {…}}, …]`) or as CSV (one
//! model per file, the model told by its columns). Together they map an Open edX
//! user, course and usage to the LMS's sourcedid and outcome URL, and the user to
//! the LTI user id; after the file is read every graded assignment whose consumer
//! and user are known becomes an outcome target (and a learner kept under a
//! stand-in id from an earlier failure log gets its real id).
//!
//! A `consumer_secret` never reaches the ledger: it is dropped, unless
//! `--store-secrets` stores it in the keyring entry of the platform with the same
//! consumer key.

use std::collections::HashMap;
use std::io::BufRead;

use serde_json::Value;

use super::Ctx;
use super::edx_log::stand_in_user;
use super::json::JsonRecords;
use super::text::{Input, csv_records, header_key};
use crate::error::{Error, Result};
use crate::intake::{ActivityOwned, ContextOwned, Fact, PersonOwned, PlaceOwned};
use crate::model::OutcomeTarget;
use crate::secrets::SecretRef;
use crate::store::EdxRecord;

/// A field of a record, as text (numbers too).
fn field(fields: &HashMap<String, String>, names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| fields.get(*n))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s != "None" && s != "null")
}

fn int(fields: &HashMap<String, String>, names: &[&str]) -> Option<i64> {
    field(fields, names)?.parse().ok()
}

/// One record of a model, from its fields. `Err` names the missing field.
fn record(
    model: &str,
    pk: Option<i64>,
    f: &HashMap<String, String>,
) -> std::result::Result<Option<EdxRecord>, String> {
    let pk = pk.ok_or_else(|| "the record has no primary key (pk or id)".to_string())?;
    let need = |v: Option<String>, name: &str| v.ok_or_else(|| format!("the record has no {name}"));
    let need_int = |v: Option<i64>, name: &str| v.ok_or_else(|| format!("{name} is missing or not a number"));
    Ok(Some(match model {
        "lticonsumer" => EdxRecord::Consumer {
            pk,
            consumer_key: need(field(f, &["consumer_key"]), "consumer_key")?,
            name: field(f, &["consumer_name"]),
            instance_guid: field(f, &["instance_guid"]),
        },
        "outcomeservice" => EdxRecord::OutcomeService {
            pk,
            url: need(field(f, &["lis_outcome_service_url"]), "lis_outcome_service_url")?,
            consumer_pk: need_int(int(f, &["lti_consumer", "lti_consumer_id"]), "lti_consumer")?,
        },
        "ltiuser" => EdxRecord::LtiUser {
            pk,
            consumer_pk: need_int(int(f, &["lti_consumer", "lti_consumer_id"]), "lti_consumer")?,
            lti_user_id: need(field(f, &["lti_user_id"]), "lti_user_id")?,
            edx_user: need_int(int(f, &["edx_user", "edx_user_id"]), "edx_user")?,
        },
        "gradedassignment" => EdxRecord::GradedAssignment {
            pk,
            edx_user: need_int(int(f, &["user", "user_id"]), "user")?,
            course_key: need(field(f, &["course_key"]), "course_key")?,
            usage_key: need(field(f, &["usage_key"]), "usage_key")?,
            outcome_service_pk: need_int(
                int(f, &["outcome_service", "outcome_service_id"]),
                "outcome_service",
            )?,
            sourcedid: need(field(f, &["lis_result_sourcedid"]), "lis_result_sourcedid")?,
            version_number: int(f, &["version_number"]).unwrap_or(0),
        },
        _ => return Ok(None),
    }))
}

/// The model a CSV holds, by its columns.
fn csv_model(cols: &[String]) -> Option<&'static str> {
    let has = |k: &str| cols.iter().any(|c| c == k);
    if has("lis_result_sourcedid") && has("course_key") {
        Some("gradedassignment")
    } else if has("lti_user_id") {
        Some("ltiuser")
    } else if has("consumer_key") {
        Some("lticonsumer")
    } else if has("lis_outcome_service_url") {
        Some("outcomeservice")
    } else {
        None
    }
}

struct Secrets {
    found: Vec<(String, String)>,
}

async fn handle(
    ctx: &mut Ctx<'_>,
    secrets: &mut Secrets,
    line: u64,
    model: &str,
    pk: Option<i64>,
    fields: HashMap<String, String>,
) -> Result<bool> {
    if let (Some(secret), Some(key)) = (
        field(&fields, &["consumer_secret"]),
        field(&fields, &["consumer_key"]),
    ) {
        secrets.found.push((key, secret));
    }
    match record(model, pk, &fields) {
        Ok(Some(rec)) => ctx.row(line, vec![Fact::Edx(rec)]).await,
        Ok(None) => {
            ctx.skip(
                line,
                Some("model"),
                format!("not an lti_provider model Passback uses ({model})"),
            )
            .await
        }
        Err(reason) => ctx.reject(line, None, reason).await,
    }
}

/// Import Open edX `lti_provider` records.
pub async fn run(ctx: &mut Ctx<'_>, input: Input) -> Result<()> {
    let mut reader = input.into_reader();
    let first = reader
        .fill_buf()
        .map_err(Error::from)?
        .iter()
        .copied()
        .find(|c| !c.is_ascii_whitespace());
    let mut secrets = Secrets { found: Vec::new() };
    if matches!(first, Some(b'[') | Some(b'{')) {
        let mut records = JsonRecords::new(reader);
        while let Some((line, v)) = ctx.next_of(&mut records).await? {
            let model = v.get("model").and_then(Value::as_str).unwrap_or("");
            let Some(model) = model.strip_prefix("lti_provider.") else {
                if !ctx
                    .skip(line, Some("model"), "not an lti_provider record")
                    .await?
                {
                    break;
                }
                continue;
            };
            let fields: HashMap<String, String> = v
                .get("fields")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| {
                            let t = match v {
                                Value::String(s) => s.clone(),
                                Value::Number(n) => n.to_string(),
                                _ => return None,
                            };
                            Some((k.clone(), t))
                        })
                        .collect()
                })
                .unwrap_or_default();
            let pk = v.get("pk").and_then(Value::as_i64);
            let model = model.to_string();
            if !handle(ctx, &mut secrets, line, &model, pk, fields).await? {
                break;
            }
        }
    } else {
        let mut records = csv_records(reader)?;
        let Some((header_line, header)) = ctx.header_record(&mut records).await? else {
            return Ok(());
        };
        let header: Vec<String> = header.iter().map(header_key).collect();
        let Some(model) = csv_model(&header) else {
            return Err(Error::invalid(format!(
                "{}:{header_line}: the columns are not those of an lti_provider model (LtiConsumer, \
                 OutcomeService, GradedAssignment or LtiUser)",
                ctx.file()
            )));
        };
        while let Some((line, rec)) = ctx.next_record(&mut records).await? {
            let fields: HashMap<String, String> = header
                .iter()
                .cloned()
                .zip(rec.iter().map(str::to_string))
                .collect();
            let pk = int(&fields, &["pk", "id"]);
            if !handle(ctx, &mut secrets, line, model, pk, fields).await? {
                break;
            }
        }
    }
    keep_or_drop_secrets(ctx, secrets.found).await?;
    resolve(ctx).await
}

/// Consumer secrets go to the keyring only when asked (and never in a dry run).
async fn keep_or_drop_secrets(ctx: &mut Ctx<'_>, found: Vec<(String, String)>) -> Result<()> {
    for (key, secret) in found {
        if !ctx.options().store_secrets {
            ctx.note(format!(
                "the consumer secret of {key:?} in the dump was dropped; --store-secrets stores it in the keyring of \
                 its platform"
            ));
            continue;
        }
        let platform = match ctx.platform_for_consumer_key(&key) {
            Ok(p) => p,
            Err(reason) => {
                ctx.note(format!("the consumer secret of {key:?} was dropped: {reason}"));
                continue;
            }
        };
        if ctx.options().dry_run {
            ctx.note(format!(
                "dry run: the consumer secret of {key:?} would be stored in the keyring for platform {:?}",
                platform.name
            ));
            continue;
        }
        let r = SecretRef::parse_owned(&platform.secret_ref, ctx.ledger_id())?;
        // Bound to the hosts the person allowed for the platform: it signs for those only.
        ctx.secrets()
            .set_bound(&r, &secret, &platform.allowed_hosts)
            .await?;
        ctx.note(format!(
            "stored the consumer secret of {key:?} in the keyring for platform {:?}",
            platform.name
        ));
    }
    Ok(())
}

/// Every graded assignment whose consumer and user are known becomes a target;
/// learners kept under a stand-in id get their real one.
pub async fn resolve(ctx: &mut Ctx<'_>) -> Result<()> {
    let (assignments, written) = ctx.batch().edx_assignments(true).await?;
    ctx.report_results(written);
    let learned_at = crate::store::now_rfc3339();
    let file = ctx.file().to_string();
    let mut targets = 0;
    for a in assignments {
        let (Some(key), Some(lti_user)) = (&a.consumer_key, &a.lti_user_id) else {
            continue;
        };
        let platform = match ctx.platform_for_consumer_key(key) {
            Ok(p) => p,
            Err(reason) => {
                ctx.note(reason);
                continue;
            }
        };
        if ctx
            .batch()
            .rename_learner(platform.id, &stand_in_user(a.edx_user), lti_user)
            .await?
        {
            ctx.note(format!(
                "grades of Open edX user {} (kept from a failure log) now belong to LTI user {lti_user:?}",
                a.edx_user
            ));
        }
        let place = PlaceOwned {
            platform_id: platform.id,
            context: Some(ContextOwned {
                context_id: a.course_key.clone(),
                ..ContextOwned::default()
            }),
            activity: Some(ActivityOwned {
                resource_link_id: a.usage_key.clone(),
                ..ActivityOwned::default()
            }),
            person: Some(PersonOwned {
                lti_user_id: lti_user.clone(),
                ..PersonOwned::default()
            }),
        };
        ctx.derived(vec![Fact::Target {
            place,
            target: OutcomeTarget {
                lis_result_sourcedid: Some(a.sourcedid.clone()),
                lis_outcome_service_url: a.outcome_url.clone(),
                unavailable_reason: a.outcome_url.is_none().then(|| {
                    "the OutcomeService record of this graded assignment has not been imported".into()
                }),
                learned_at: learned_at.clone(),
                learned_from: format!("edx-dump:{file}"),
                ..OutcomeTarget::default()
            },
        }])
        .await?;
        targets += 1;
    }
    if targets > 0 {
        ctx.note(format!("{targets} graded assignments map to outcome targets"));
    }
    Ok(())
}
