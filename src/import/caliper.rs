//! Blackboard Caliper `LTIEvent`s (one object, an array, NDJSON, or an envelope
//! with `data[]`): each launch event (`LoggedIn`, or the older `LTILaunch`) is a
//! launch seen, its `object.launchParameters` read as an LTI 1.1 launch signed for
//! `object.launchUrl` at `eventTime`. Returns from a link are skipped.

use std::collections::BTreeMap;

use serde_json::Value;

use super::Ctx;
use super::json::JsonRecords;
use super::launch;
use super::text::Input;
use crate::error::Result;

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Import a file of Caliper events.
pub async fn run(ctx: &mut Ctx<'_>, input: Input) -> Result<()> {
    let mut seen = launch::Seen::default();
    let mut records = JsonRecords::new(input.into_reader());
    while let Some((line, event)) = ctx.next_of(&mut records).await? {
        let kind = text(event.get("type").or_else(|| event.get("@type"))).unwrap_or_default();
        if !kind.ends_with("LTIEvent") {
            if !ctx.skip(line, Some("type"), "not an LTIEvent").await? {
                break;
            }
            continue;
        }
        let action = text(event.get("action")).unwrap_or_default();
        if action.ends_with("LoggedOut") || action.ends_with("LTILaunchReturn") {
            if !ctx
                .skip(line, Some("action"), "a return from an LTI link, not a launch")
                .await?
            {
                break;
            }
            continue;
        }
        if !(action.ends_with("LoggedIn") || action.ends_with("LTILaunch")) {
            if !ctx
                .skip(line, Some("action"), format!("action {action:?} is not a launch"))
                .await?
            {
                break;
            }
            continue;
        }
        let object = event.get("object");
        let Some(Value::Object(launch_params)) = object.and_then(|o| o.get("launchParameters")) else {
            if !ctx
                .reject(
                    line,
                    Some("object.launchParameters"),
                    "the launch event carries no launch parameters",
                )
                .await?
            {
                break;
            }
            continue;
        };
        let mut params: BTreeMap<String, String> = launch_params
            .iter()
            .filter_map(|(k, v)| text(Some(v)).map(|v| (k.clone(), v)))
            .collect();
        // Blackboard's own user id, when the launch names no person sourcedid.
        if !params.contains_key("lis_person_sourcedid")
            && let Some(ext) = text(
                event
                    .get("actor")
                    .and_then(|a| a.get("extensions"))
                    .and_then(|e| e.get("bb:user.externalId")),
            )
        {
            params.insert("lis_person_sourcedid".into(), ext);
        }
        let url = text(object.and_then(|o| o.get("launchUrl"))).or_else(|| ctx.options().launch_url.clone());
        let at = text(event.get("eventTime"));
        let outcome = launch::facts(ctx, line, &params, url.as_deref(), at.as_deref(), &mut seen).await?;
        if !launch::apply(ctx, line, outcome).await? {
            break;
        }
    }
    Ok(())
}
