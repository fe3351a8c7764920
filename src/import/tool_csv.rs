//! A learning tool's grade export: a CSV whose header names the columns (in any
//! order) with LTI parameter names. Required: `context_id`, `resource_link_id`,
//! `user_id`, and `score_given` with `score_maximum` (or a 0–1 `score`).
//! Optional: `lis_result_sourcedid` and `lis_outcome_service_url` (LTI 1.1: where
//! the grade goes), `lis_person_name_full`, `lis_person_contact_email_primary`,
//! `lis_person_sourcedid`, `context_title`, `resource_link_title`,
//! `points_possible`, `comment`, `result_text`, `result_url`, `submitted_at`,
//! `graded_at` (when the grade was given), `roles` (learners when absent),
//! `oauth_consumer_key` (names the platform), `custom_canvas_user_id`,
//! `custom_canvas_assignment_id`. A BOM, `;` or tab separators, decimal commas
//! and quoted newlines are fine; a header naming a column twice is not.

use std::collections::HashMap;

use super::Ctx;
use super::text::{Input, csv_records, header_key, normalize_time, parse_number};
use crate::error::{Error, Result};
use crate::intake::{ActivityOwned, ContextOwned, Fact, PersonOwned, PlaceOwned};
use crate::lti::roles::normalize_roles;
use crate::model::{NewGrade, OutcomeTarget, Platform, PlatformKind, Role};

/// A row's problem: the column and why.
struct Bad(&'static str, String);

struct Row<'r> {
    cols: &'r HashMap<String, usize>,
    rec: &'r csv::StringRecord,
}

impl Row<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        let i = *self.cols.get(name)?;
        self.rec.get(i).map(str::trim).filter(|s| !s.is_empty())
    }

    fn owned(&self, name: &str) -> Option<String> {
        self.get(name).map(str::to_string)
    }

    fn required(&self, name: &'static str) -> std::result::Result<String, Bad> {
        self.owned(name)
            .ok_or_else(|| Bad(name, format!("{name} is empty")))
    }

    fn number(&self, name: &'static str) -> std::result::Result<Option<f64>, Bad> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => parse_number(v)
                .map(Some)
                .ok_or_else(|| Bad(name, format!("{name} is not a number"))),
        }
    }

    fn time(&self, name: &'static str) -> std::result::Result<Option<String>, Bad> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => normalize_time(v)
                .map(Some)
                .ok_or_else(|| Bad(name, format!("{name} is not a date and time (use ISO 8601)"))),
        }
    }
}

fn facts(row: &Row<'_>, platform: &Platform, file: &str, line: u64) -> std::result::Result<Vec<Fact>, Bad> {
    let context_id = row.required("context_id")?;
    let resource_link_id = row.required("resource_link_id")?;
    let user_id = row.required("user_id")?;
    let (given, maximum) = match (
        row.number("score_given")?,
        row.number("score_maximum")?,
        row.number("score")?,
    ) {
        (Some(g), Some(m), _) => (g, m),
        (Some(_), None, _) => return Err(Bad("score_maximum", "score_given needs score_maximum".into())),
        (None, Some(m), Some(s)) => {
            // Two finite numbers can multiply past the largest one.
            let given = s * m;
            if !given.is_finite() {
                return Err(Bad(
                    "score",
                    "score times score_maximum is too large a number".into(),
                ));
            }
            (given, m)
        }
        (None, None, Some(s)) => {
            if !(0.0..=1.0).contains(&s) {
                return Err(Bad(
                    "score",
                    "score must be between 0 and 1 (or give score_given and score_maximum)".into(),
                ));
            }
            (s, 1.0)
        }
        (None, _, None) => {
            return Err(Bad(
                "score_given",
                "no score: give score_given and score_maximum, or score".into(),
            ));
        }
    };
    if maximum <= 0.0 {
        return Err(Bad("score_maximum", "score_maximum must be above 0".into()));
    }
    if given < 0.0 {
        return Err(Bad("score_given", "score_given must be 0 or more".into()));
    }
    let result_text = row.owned("result_text");
    let result_url = row.owned("result_url");
    if result_text.is_some() && result_url.is_some() {
        return Err(Bad(
            "result_url",
            "a grade carries result_text or result_url, not both".into(),
        ));
    }
    let submitted_at = row.time("submitted_at")?;
    let graded_at = row.time("graded_at")?;
    let role = match row.get("roles") {
        Some(r) => normalize_roles(&r.split(',').collect::<Vec<_>>()),
        None => Role::Learner,
    };
    let place = PlaceOwned {
        platform_id: platform.id,
        context: Some(ContextOwned {
            context_id,
            title: row.owned("context_title"),
            label: row.owned("context_label"),
        }),
        activity: Some(ActivityOwned {
            resource_link_id,
            title: row.owned("resource_link_title"),
            points_possible: row.number("points_possible")?,
            line_item_id: None,
            canvas_assignment_id: row.owned("custom_canvas_assignment_id"),
        }),
        person: Some(PersonOwned {
            lti_user_id: user_id,
            name: row.owned("lis_person_name_full"),
            email: row.owned("lis_person_contact_email_primary"),
            person_sourcedid: row.owned("lis_person_sourcedid"),
            canvas_user_id: row.owned("custom_canvas_user_id"),
            role: Some(role),
        }),
    };
    let observed_at = graded_at.or(submitted_at.clone());
    let mut out = Vec::with_capacity(2);
    if platform.kind == PlatformKind::Lti11 {
        let sourcedid = row.owned("lis_result_sourcedid");
        let url = row.owned("lis_outcome_service_url");
        if sourcedid.is_some() || url.is_some() {
            out.push(Fact::Target {
                place: place.clone(),
                target: OutcomeTarget {
                    unavailable_reason: match (&sourcedid, &url) {
                        (Some(_), None) => {
                            Some("the export gave a sourcedid but no lis_outcome_service_url".into())
                        }
                        (None, Some(_)) => {
                            Some("the export gave an outcome URL but no lis_result_sourcedid".into())
                        }
                        _ => None,
                    },
                    lis_result_sourcedid: sourcedid,
                    lis_outcome_service_url: url,
                    ext_outcome_data_values_accepted: row.owned("ext_outcome_data_values_accepted"),
                    learned_at: observed_at.clone().unwrap_or_else(crate::store::now_rfc3339),
                    learned_from: format!("csv:{file}:{line}"),
                    ..OutcomeTarget::default()
                },
            });
        }
    }
    out.push(Fact::Grade {
        place,
        grade: NewGrade {
            score_given: given,
            score_maximum: maximum,
            comment: row.owned("comment"),
            result_text,
            result_url,
            submitted_at,
            source: format!("csv:{file}:{line}"),
        },
        observed_at,
    });
    Ok(out)
}

/// Import a tool grade CSV.
pub async fn run(ctx: &mut Ctx<'_>, input: Input) -> Result<()> {
    let mut records = csv_records(input.into_reader())?;
    let Some((header_line, header)) = ctx.header_record(&mut records).await? else {
        return Ok(());
    };
    let mut cols: HashMap<String, usize> = HashMap::new();
    for (i, h) in header.iter().enumerate() {
        let key = header_key(h);
        if !key.is_empty() && cols.insert(key.clone(), i).is_some() {
            // Two columns of one name: which one holds the grade is anyone's guess.
            return Err(Error::invalid(format!(
                "{}:{header_line}: the header names {key} more than once",
                ctx.file()
            )));
        }
    }
    for needed in ["context_id", "resource_link_id", "user_id"] {
        if !cols.contains_key(needed) {
            return Err(Error::invalid(format!(
                "{}:{header_line}: the header has no {needed} column (a tool grade CSV needs context_id, \
                 resource_link_id, user_id and score_given with score_maximum, or score)",
                ctx.file()
            )));
        }
    }
    let key_column = ["oauth_consumer_key", "consumer_key"]
        .into_iter()
        .find(|k| cols.contains_key(*k));
    let fixed = match (&ctx.platform, key_column) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(_)) => None,
        (None, None) => Some(
            ctx.require_platform("a tool grade CSV without an oauth_consumer_key column")
                .map_err(|m| Error::invalid(format!("{}: {m}", ctx.file())))?,
        ),
    };
    if fixed.as_ref().is_some_and(|p| p.kind == PlatformKind::Ltiaas)
        && cols.contains_key("lis_result_sourcedid")
    {
        ctx.note("LTIAAS platform: the sourcedid columns are not used; grades go through the service keys of ID tokens");
    }
    let file = ctx.file().to_string();
    while let Some((line, rec)) = ctx.next_record(&mut records).await? {
        if rec.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let row = Row {
            cols: &cols,
            rec: &rec,
        };
        let platform = match (&fixed, key_column) {
            (Some(p), _) => p.clone(),
            (None, Some(k)) => match row.get(k).map(|key| ctx.platform_for_consumer_key(key)) {
                Some(Ok(p)) => p,
                Some(Err(reason)) => {
                    ctx.note(reason.clone());
                    if !ctx.reject(line, Some(k), reason).await? {
                        break;
                    }
                    continue;
                }
                None => {
                    if !ctx.reject(line, Some(k), format!("{k} is empty")).await? {
                        break;
                    }
                    continue;
                }
            },
            (None, None) => unreachable!("checked above"),
        };
        let go_on = match facts(&row, &platform, &file, line) {
            Ok(f) => ctx.row(line, f).await?,
            Err(Bad(col, reason)) => ctx.reject(line, Some(col), reason).await?,
        };
        if !go_on {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platform() -> Platform {
        Platform {
            id: 1,
            name: "canvas".into(),
            kind: PlatformKind::Lti11,
            consumer_key: Some("canvas-key".into()),
            base_url: None,
            allowed_hosts: vec!["canvas.example.edu".into()],
            allow_http: false,
            secret_ref: String::new(),
            created_at: String::new(),
        }
    }

    fn row_facts(header: &[&str], values: &[&str]) -> std::result::Result<Vec<Fact>, Bad> {
        let cols = header
            .iter()
            .enumerate()
            .map(|(i, h)| (h.to_string(), i))
            .collect();
        let rec = csv::StringRecord::from(values.to_vec());
        facts(
            &Row {
                cols: &cols,
                rec: &rec,
            },
            &platform(),
            "grades.csv",
            2,
        )
    }

    /// Found with the `import_tool_csv` fuzz target (its corpus keeps
    /// `regress-score-times-maximum-overflows`): the product was infinite, the ledger refused
    /// the grade, and that refusal ended the whole import without a line number.
    #[test]
    fn a_score_that_overflows_with_its_maximum_is_that_rows_error() {
        let header = [
            "context_id",
            "resource_link_id",
            "user_id",
            "score",
            "score_maximum",
        ];
        let Err(Bad(column, reason)) = row_facts(&header, &["c", "r", "u", "1e300", "1e300"]) else {
            panic!("an infinite score_given was accepted");
        };
        assert_eq!(column, "score");
        assert!(reason.contains("too large"), "{reason}");
        let facts = row_facts(&header, &["c", "r", "u", "0,5", "10"])
            .ok()
            .expect("a fraction of the maximum");
        assert!(
            matches!(&facts[..], [Fact::Grade { grade, .. }] if grade.score_given == 5.0 && grade.score_maximum == 10.0)
        );
    }
}
