//! LTIAAS ID tokens (the JSON `GET /api/idtoken` returns), from a file or from
//! `passback ltiaas idtoken`: one code path for both. A token tells the platform,
//! course, resource link, line item, user and role of a launch, and carries the
//! per-context service key, which goes to the keyring (newest capture wins); the
//! ledger keeps only its keyring reference.

use serde::Serialize;

use super::Ctx;
use super::json::JsonRecords;
use super::text::Input;
use crate::error::Result;
use crate::intake::{ActivityOwned, ContextOwned, Fact, LaunchInfo, PersonOwned, PlaceOwned};
use crate::lti::roles::normalize_roles;
use crate::ltiaas::client::IdToken;
use crate::model::{OutcomeTarget, Platform, Role};
use crate::secrets::SecretRef;
use crate::store::{ServiceKeyRecord, Store};

/// Where captured service keys come from in the ledger's `source` column.
pub const IDTOKEN_SOURCE: &str = "ltiaas-idtoken";

/// What happened to the service key of a captured ID token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyChange {
    /// No key was recorded for this (context, resource link) before.
    New,
    /// A key was recorded and this newer capture replaced it.
    Replaced,
    /// A key captured later is already recorded; it was kept.
    KeptNewer,
    /// The ID token carried no service key (no AGS/NRPS in this launch context).
    Missing,
}

/// The launch an ID token described, as recorded in the ledger.
#[derive(Debug, Clone, Serialize)]
pub struct CapturedLaunch {
    /// LTIAAS's id of the LMS registration (`platform.id`).
    pub ltiaas_platform_id: Option<String>,
    pub context_id: String,
    pub context_title: Option<String>,
    pub resource_link_id: String,
    pub resource_link_title: Option<String>,
    pub user_id: String,
    pub user_name: Option<String>,
    /// The normalized role of the launching user.
    pub role: Role,
    pub ags_available: bool,
    /// The line item, when exactly one is tied to the launch.
    pub line_item_id: Option<String>,
    pub service_key: KeyChange,
    /// Keyring reference of the service key (never the key).
    pub service_key_ref: Option<String>,
    pub captured_at: String,
}

/// What recording one ID token takes: the ledger facts, and the service key to put
/// in the keyring first (so the ledger never points at a key that is not there).
pub struct IdTokenPlan {
    pub facts: Vec<Fact>,
    pub store_key: Option<(SecretRef, String)>,
    pub launch: CapturedLaunch,
    pub warnings: Vec<String>,
}

/// Why a token cannot be recorded.
pub enum NotRecorded {
    /// The token lacks what names the course, activity or user.
    MissingIds(String),
}

fn required(v: Option<String>, what: &str) -> std::result::Result<String, NotRecorded> {
    v.map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| NotRecorded::MissingIds(format!("the ID token has no {what}")))
}

/// Plan recording `token`, captured at `captured_at` for `platform`. `previous` is
/// the service key recorded for the same (context, resource link), if any.
pub fn plan(
    platform: &Platform,
    ledger_id: &str,
    token: &IdToken,
    previous: Option<&ServiceKeyRecord>,
    captured_at: &str,
    source: &str,
    verified: bool,
) -> std::result::Result<IdTokenPlan, NotRecorded> {
    let context_id = required(token.launch.context.id.clone(), "launch.context.id")?;
    let resource_link_id = required(token.launch.resource_link.id.clone(), "launch.resourceLink.id")?;
    let user_id = required(token.user.id.clone(), "user.id")?;
    let role = normalize_roles(&token.user.roles);
    let ags = &token.services.assignment_and_grades;
    let place = PlaceOwned {
        platform_id: platform.id,
        context: Some(ContextOwned {
            context_id: context_id.clone(),
            title: token.launch.context.title.clone(),
            label: token.launch.context.label.clone(),
        }),
        activity: Some(ActivityOwned {
            resource_link_id: resource_link_id.clone(),
            title: token.launch.resource_link.title.clone(),
            points_possible: None,
            line_item_id: ags.line_item_id.clone(),
            canvas_assignment_id: None,
        }),
        person: Some(PersonOwned {
            lti_user_id: user_id.clone(),
            name: token.user.name.clone(),
            email: token.user.email.clone(),
            person_sourcedid: None,
            canvas_user_id: None,
            role: Some(role),
        }),
    };
    let mut facts = vec![Fact::Launch {
        place: place.clone(),
        launch: LaunchInfo {
            at: captured_at.to_string(),
            consumer_key: None,
            verified,
            note: Some(if verified {
                "read from LTIAAS with the launch's ltik".into()
            } else {
                "an ID token file carries no signature".into()
            }),
            locale: None,
            direction: None,
            source: source.to_string(),
        },
        target: None,
    }];
    let mut launch = CapturedLaunch {
        ltiaas_platform_id: token.platform.id.clone(),
        context_id: context_id.clone(),
        context_title: token.launch.context.title.clone(),
        resource_link_id: resource_link_id.clone(),
        resource_link_title: token.launch.resource_link.title.clone(),
        user_id,
        user_name: token.user.name.clone(),
        role,
        ags_available: ags.available,
        line_item_id: ags.line_item_id.clone(),
        service_key: KeyChange::Missing,
        service_key_ref: None,
        captured_at: captured_at.to_string(),
    };
    let mut warnings = Vec::new();
    let mut store_key = None;
    if let Some(key) = &token.services.service_key {
        if let (Some(prev), Some(now)) = (
            previous.and_then(|p| p.ltiaas_platform_id.clone()),
            token.platform.id.as_deref(),
        ) && prev != now
        {
            warnings.push(format!(
                "context {context_id:?} / resource link {resource_link_id:?} was captured before from \
                 LTIAAS platform {prev:?} and now from {now:?}; the newer key replaces the older. Use a \
                 separate Passback platform per LMS registration if these are different LMSs."
            ));
        }
        // The target names the (context, resource link)'s slot; each capture's key has
        // its own keyring account under it, so racing captures never overwrite each
        // other, and the service_keys row (newest wins) names the one in use.
        let slot =
            SecretRef::service_key(ledger_id, &platform.name, &context_id, &resource_link_id).to_string();
        let change = match previous {
            Some(p) if p.captured_at.as_str() > captured_at => KeyChange::KeptNewer,
            Some(_) => KeyChange::Replaced,
            None => KeyChange::New,
        };
        let ref_s = if change != KeyChange::KeptNewer {
            let capture =
                SecretRef::service_key_capture(ledger_id, &platform.name, &context_id, &resource_link_id);
            let ref_s = capture.to_string();
            store_key = Some((capture, key.expose().to_string()));
            facts.push(Fact::ServiceKey {
                platform_id: platform.id,
                context_id: context_id.clone(),
                resource_link_id: resource_link_id.clone(),
                ltiaas_platform_id: token.platform.id.clone(),
                secret_ref: ref_s.clone(),
                captured_at: captured_at.to_string(),
                source: IDTOKEN_SOURCE.into(),
            });
            ref_s
        } else {
            previous.map_or_else(|| slot.clone(), |p| p.secret_ref.clone())
        };
        facts.push(Fact::Target {
            place,
            target: OutcomeTarget {
                service_key_ref: Some(slot),
                learned_at: captured_at.to_string(),
                learned_from: IDTOKEN_SOURCE.into(),
                ..OutcomeTarget::default()
            },
        });
        launch.service_key = change;
        launch.service_key_ref = Some(ref_s);
        if !ags.available {
            warnings.push(
                "the launch does not advertise Assignment and Grades; sending scores may be refused".into(),
            );
        }
    }
    Ok(IdTokenPlan {
        facts,
        store_key,
        launch,
        warnings,
    })
}

/// Import a file of ID tokens: each one's service key goes to the keyring (not in
/// a dry run), its launch and target to the ledger.
pub async fn run(ctx: &mut Ctx<'_>, input: Input) -> Result<()> {
    let platform = match ctx.ltiaas_platform() {
        Ok(p) => p,
        Err(reason) => return Err(crate::error::Error::invalid(format!("{}: {reason}", ctx.file()))),
    };
    let captured_at = crate::store::now_rfc3339();
    let mut records = JsonRecords::new(input.into_reader());
    while let Some((line, value)) = ctx.next_of(&mut records).await? {
        let token: IdToken = match serde_json::from_value(value) {
            Ok(t) => t,
            Err(_) => {
                if !ctx.reject(line, None, "not an LTIAAS ID token").await? {
                    break;
                }
                continue;
            }
        };
        let (Some(c), Some(r)) = (&token.launch.context.id, &token.launch.resource_link.id) else {
            if !ctx
                .reject(
                    line,
                    Some("launch"),
                    "the ID token has no launch.context.id or launch.resourceLink.id",
                )
                .await?
            {
                break;
            }
            continue;
        };
        let previous = {
            let (pid, c, r) = (platform.id, c.to_string(), r.to_string());
            ctx.batch()
                .read(move |conn| Box::pin(async move { Store::service_key_in(conn, pid, &c, &r).await }))
                .await?
        };
        let source = format!("{}:{line}", ctx.file());
        let plan = match plan(
            &platform,
            ctx.ledger_id(),
            &token,
            previous.as_ref(),
            &captured_at,
            &source,
            false,
        ) {
            Ok(p) => p,
            Err(NotRecorded::MissingIds(reason)) => {
                if !ctx.reject(line, None, reason).await? {
                    break;
                }
                continue;
            }
        };
        for w in &plan.warnings {
            ctx.note(w.clone());
        }
        if plan.launch.service_key == KeyChange::Missing {
            ctx.note("ID tokens without a service key (the launch context has neither Assignment and Grades nor Names and Roles)");
        }
        if let Some((secret_ref, key)) = &plan.store_key
            && !ctx.options().dry_run
        {
            // Keyring first, ledger second: the ledger never points at a key that is not there.
            ctx.store_service_key(secret_ref, key, &platform.allowed_hosts)
                .await?;
        }
        if !ctx.row(line, plan.facts).await? {
            break;
        }
    }
    ctx.note("service keys learned from ID tokens stay in the keyring if the import is undone");
    Ok(())
}
