//! LMS gradebook exports, read as what the LMS holds (for reconciling without
//! reading the LMS): each matched cell is an LMS observation of one grade, at the
//! time of the export, never a local grade.
//!
//! * Canvas: the header `Student, ID, SIS User ID, SIS Login ID, …, Section`, then
//!   one column per assignment, `Name (id)`, and a `Points Possible` row. Rows join
//!   learners on `ID`, `SIS User ID` or `SIS Login ID` against the
//!   `custom_canvas_user_id` and `lis_person_sourcedid` seen at launch; columns join
//!   on the `(id)` against `custom_canvas_assignment_id`.
//! * Moodle: `First name, Last name, ID number, Institution, Department, Email
//!   address`, then `Type: Name (Real)` columns. Rows join on the e-mail address or
//!   the ID number; columns on the activity's title; points come from the
//!   activity's points possible.
//!
//! The course is `--context` on `--platform`. Unmatched rows, and blank, `-` or
//! `EX` (excused) cells, are listed in the report and never compared.

use std::collections::HashMap;
use std::path::Path;

use super::Ctx;
use super::text::{CsvRecords, Input, csv_records, header_key, normalize_time, parse_number};
use crate::error::{Error, Result};
use crate::intake::{ActivityOwned, ContextOwned, Fact, PersonOwned, PlaceOwned};
use crate::model::{Platform, RowIssue, RowIssueKind};
use crate::store::{CourseActivity, Store};

/// A course activity, as gradebook columns join to it.
type Activity = CourseActivity;

/// A learner, as gradebook rows join to them.
struct Learner {
    lti_user_id: String,
}

struct Course {
    platform: Platform,
    context_id: String,
    activities: Vec<Activity>,
    /// lower-cased identifier → learner index, by what it is.
    by_canvas_id: HashMap<String, usize>,
    by_sourcedid: HashMap<String, usize>,
    by_email: HashMap<String, usize>,
    learners: Vec<Learner>,
}

async fn course(ctx: &mut Ctx<'_>) -> Result<Course> {
    let platform = ctx
        .require_platform("a gradebook export")
        .map_err(|m| Error::invalid(format!("{}: {m}", ctx.file())))?;
    let context_id = ctx.options().context.clone().ok_or_else(|| {
        Error::invalid(format!(
            "{}: a gradebook export does not name its course: give --context CONTEXT_ID (the LTI context_id of the \
             course on platform {:?})",
            ctx.file(),
            platform.name
        ))
    })?;
    let pid = platform.id;
    let course_id = context_id.clone();
    let activities = ctx
        .batch()
        .read(move |c| Box::pin(async move { Store::course_activities(c, pid, &course_id).await }))
        .await?;
    if activities.is_empty() {
        return Err(Error::not_found(format!(
            "{}: the ledger has no activity in course {context_id:?} on platform {:?}: import the tool's grades or \
             launches first, so the export's columns have something to join",
            ctx.file(),
            platform.name
        )));
    }
    let learners = ctx
        .batch()
        .read(move |c| Box::pin(Store::learner_ids(c, pid)))
        .await?;
    let mut c = Course {
        platform,
        context_id,
        activities,
        by_canvas_id: HashMap::new(),
        by_sourcedid: HashMap::new(),
        by_email: HashMap::new(),
        learners: Vec::with_capacity(learners.len()),
    };
    for l in learners {
        let i = c.learners.len();
        let key = |v: Option<String>| v.map(|s| s.trim().to_lowercase()).filter(|s| !s.is_empty());
        if let Some(k) = key(l.canvas_user_id) {
            c.by_canvas_id.insert(k, i);
        }
        if let Some(k) = key(l.person_sourcedid) {
            c.by_sourcedid.insert(k, i);
        }
        if let Some(k) = key(l.email) {
            c.by_email.insert(k, i);
        }
        c.learners.push(Learner {
            lti_user_id: l.lti_user_id,
        });
    }
    Ok(c)
}

impl Course {
    fn place(&self, a: &Activity, l: &Learner) -> PlaceOwned {
        PlaceOwned {
            platform_id: self.platform.id,
            context: Some(ContextOwned {
                context_id: self.context_id.clone(),
                ..ContextOwned::default()
            }),
            activity: Some(ActivityOwned {
                resource_link_id: a.resource_link_id.clone(),
                ..ActivityOwned::default()
            }),
            person: Some(PersonOwned {
                lti_user_id: l.lti_user_id.clone(),
                ..PersonOwned::default()
            }),
        }
    }
}

/// When the export was made: `--exported-at`, else the time in a Canvas file name
/// (`2026-11-20T1010_Grades-….csv`), else the file's modification time.
fn export_time(ctx: &mut Ctx<'_>, path: &Path) -> Result<String> {
    if let Some(t) = &ctx.options().exported_at {
        let at = normalize_time(t).ok_or_else(|| {
            Error::invalid(format!(
                "--exported-at {t:?} is not a date and time (use ISO 8601)"
            ))
        })?;
        ctx.note(format!("export time {at} (from --exported-at)"));
        return Ok(at);
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name.len() >= 15 {
        let stamp = &name[..15];
        let (date, clock) = stamp.split_at(10);
        if let Some(hhmm) = clock.strip_prefix('T')
            && hhmm.len() == 4
            && let Some(at) = normalize_time(&format!("{date}T{}:{}:00Z", &hhmm[..2], &hhmm[2..]))
        {
            ctx.note(format!(
                "export time {at} (from the file name; Canvas names exports by their UTC time)"
            ));
            return Ok(at);
        }
    }
    let modified = std::fs::metadata(path)?.modified()?;
    let at = time::OffsetDateTime::from(modified);
    let at = normalize_time(&at.unix_timestamp().to_string()).unwrap_or_else(crate::store::now_rfc3339);
    ctx.note(format!(
        "export time {at} (the file's modification time; give --exported-at if the export was made earlier)"
    ));
    Ok(at)
}

/// A cell listed in the report (not a row count).
fn list(ctx: &mut Ctx<'_>, line: u64, column: &str, reason: String) -> Result<bool> {
    ctx.issue(RowIssue {
        line,
        column: Some(column.to_string()),
        kind: RowIssueKind::Skipped,
        reason,
    })
}

/// What both exports start with: the course they join against, when they were
/// made, the source their observations name, and the header.
struct Export {
    course: Course,
    at: String,
    source: String,
    records: CsvRecords,
    header: csv::StringRecord,
    /// The header's names, trimmed and lower-cased.
    keys: Vec<String>,
}

/// Open a gradebook export (`None` for an empty file, which is noted).
async fn open_export(ctx: &mut Ctx<'_>, input: Input, path: &Path) -> Result<Option<Export>> {
    let course = course(ctx).await?;
    let at = export_time(ctx, path)?;
    let source = format!(
        "export:{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("gradebook")
    );
    let mut records = csv_records(input.into_reader())?;
    let Some(Ok(header)) = records.next() else {
        ctx.note("the file is empty");
        return Ok(None);
    };
    let keys = header.iter().map(header_key).collect();
    Ok(Some(Export {
        course,
        at,
        source,
        records,
        header,
        keys,
    }))
}

/// A cell's number, or `None` once it is listed as not compared (blank, `-`,
/// `EX` for excused) or rejected (not a number). A `%` sign is allowed.
fn cell_number(ctx: &mut Ctx<'_>, line: u64, column: &str, cell: &str) -> Result<Option<f64>> {
    let cell = cell.trim();
    if cell.is_empty() || cell == "-" {
        list(ctx, line, column, "blank: not compared".into())?;
        return Ok(None);
    }
    if cell.eq_ignore_ascii_case("EX") {
        list(ctx, line, column, "EX (excused): not compared".into())?;
        return Ok(None);
    }
    match parse_number(cell.trim_end_matches('%').trim()) {
        Some(v) => Ok(Some(v)),
        None => {
            ctx.issue(RowIssue {
                line,
                column: Some(column.to_string()),
                kind: RowIssueKind::Rejected,
                reason: "not a number".into(),
            })?;
            Ok(None)
        }
    }
}

/// A row's LMS values, or why none of its cells could be compared.
async fn values(ctx: &mut Ctx<'_>, line: u64, facts: Vec<Fact>) -> Result<bool> {
    if facts.is_empty() {
        ctx.skip(line, None, "no cell of this row could be compared")
            .await
    } else {
        ctx.row(line, facts).await
    }
}

/// `Quiz 1 (1234)` → `1234`.
fn canvas_column_id(h: &str) -> Option<&str> {
    let inner = h.trim().strip_suffix(')')?;
    let open = inner.rfind('(')?;
    let id = &inner[open + 1..];
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())).then_some(id)
}

/// Import a Canvas gradebook export.
pub async fn run_canvas(ctx: &mut Ctx<'_>, input: Input, path: &Path) -> Result<()> {
    let Some(Export {
        course,
        at,
        source,
        mut records,
        header,
        keys,
    }) = open_export(ctx, input, path).await?
    else {
        return Ok(());
    };
    let col = |name: &str| keys.iter().position(|k| k == name);
    let (Some(student), Some(id_col)) = (col("student"), col("id")) else {
        return Err(Error::invalid(format!(
            "{}: not a Canvas gradebook (no Student and ID columns)",
            ctx.file()
        )));
    };
    let sis_user = col("sis user id");
    let sis_login = col("sis login id");
    // Assignment columns → activities by their Canvas id.
    let mut columns: Vec<(usize, String, usize)> = Vec::new();
    for (i, h) in header.iter().enumerate() {
        let Some(cid) = canvas_column_id(h) else { continue };
        match course
            .activities
            .iter()
            .position(|a| a.canvas_assignment_id.as_deref() == Some(cid))
        {
            Some(a) => columns.push((i, h.trim().to_string(), a)),
            None => ctx.note(format!(
                "column {:?} matches no activity of the course (no launch carried custom_canvas_assignment_id {cid}): not compared",
                h.trim()
            )),
        }
    }
    let mut points: HashMap<usize, f64> = HashMap::new();
    while let Some((line, rec)) = ctx.next_record(&mut records).await? {
        let name = rec.get(student).unwrap_or("").trim();
        if name.eq_ignore_ascii_case("points possible") {
            for (i, _, _) in &columns {
                if let Some(p) = rec.get(*i).and_then(parse_number) {
                    points.insert(*i, p);
                }
            }
            continue;
        }
        if name.is_empty() || name.eq_ignore_ascii_case("student, test") {
            // Canvas's "Manual Posting"/"Muted" rows, and its test student.
            continue;
        }
        let get = |c: Option<usize>| {
            c.and_then(|c| rec.get(c))
                .map(|s| s.trim().to_lowercase())
                .filter(|s| !s.is_empty())
        };
        let learner = get(Some(id_col))
            .and_then(|id| course.by_canvas_id.get(&id))
            .or_else(|| {
                [get(sis_user), get(sis_login)]
                    .into_iter()
                    .flatten()
                    .find_map(|k| {
                        course
                            .by_sourcedid
                            .get(&k)
                            .or_else(|| course.by_canvas_id.get(&k))
                    })
            })
            .copied();
        let Some(learner) = learner else {
            if !ctx
                .skip(
                    line,
                    Some("ID"),
                    "no learner in the ledger with this ID, SIS User ID or SIS Login ID (no launch of theirs was \
                     imported): not compared",
                )
                .await?
            {
                break;
            }
            continue;
        };
        let mut facts = Vec::new();
        for (i, header, a) in &columns {
            let Some(value) = cell_number(ctx, line, header, rec.get(*i).unwrap_or(""))? else {
                continue;
            };
            let max = points.get(i).copied().or(course.activities[*a].points_possible);
            let Some(max) = max.filter(|m| *m > 0.0) else {
                list(
                    ctx,
                    line,
                    header,
                    "the column has no points possible: not compared".into(),
                )?;
                continue;
            };
            facts.push(Fact::LmsValue {
                place: course.place(&course.activities[*a], &course.learners[learner]),
                score: Some(value / max),
                at: at.clone(),
                source: source.clone(),
            });
        }
        if !values(ctx, line, facts).await? {
            break;
        }
    }
    Ok(())
}

/// `Assignment: Essay 1 (Real)` → (`Essay 1`, `Real`).
fn moodle_column(h: &str) -> Option<(&str, &str)> {
    let h = h.trim();
    let inner = h.strip_suffix(')')?;
    let open = inner.rfind(" (")?;
    let kind = &inner[open + 2..];
    let name = &inner[..open];
    let name = name.split_once(": ").map_or(name, |(_, n)| n);
    Some((name.trim(), kind))
}

/// Import a Moodle grade export.
pub async fn run_moodle(ctx: &mut Ctx<'_>, input: Input, path: &Path) -> Result<()> {
    let Some(Export {
        course,
        at,
        source,
        mut records,
        header,
        keys,
    }) = open_export(ctx, input, path).await?
    else {
        return Ok(());
    };
    let col = |name: &str| keys.iter().position(|k| k == name);
    let email = col("email address");
    let idnumber = col("id number");
    let mut columns: Vec<(usize, String, usize, bool)> = Vec::new();
    for (i, h) in header.iter().enumerate() {
        let Some((name, kind)) = moodle_column(h) else {
            continue;
        };
        if name.eq_ignore_ascii_case("course total") {
            continue;
        }
        let percent = match kind {
            "Real" => false,
            "Percentage" => true,
            other => {
                ctx.note(format!("column {:?} is a {other} grade: not compared", h.trim()));
                continue;
            }
        };
        match course.activities.iter().position(|a| {
            a.title
                .as_deref()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case(name))
        }) {
            Some(a) => columns.push((i, h.trim().to_string(), a, percent)),
            None => ctx.note(format!(
                "column {:?} matches no activity title of the course: not compared",
                h.trim()
            )),
        }
    }
    // One column per activity: a Percentage column is exact; a Real column needs
    // the activity's points possible in Moodle.
    let has_percent: Vec<usize> = columns.iter().filter(|c| c.3).map(|c| c.2).collect();
    columns.retain(|(_, header, a, percent)| {
        if *percent {
            return true;
        }
        if has_percent.contains(a) {
            return false;
        }
        if course.activities[*a].points_possible.is_some_and(|p| p > 0.0) {
            return true;
        }
        ctx.note(format!(
            "column {header:?}: the activity's points possible are unknown, so its points cannot be compared; \
             export with the Percentage grade display type (or import launches carrying \
             custom_canvas_assignment_points_possible)"
        ));
        false
    });
    while let Some((line, rec)) = ctx.next_record(&mut records).await? {
        let get = |c: Option<usize>| {
            c.and_then(|c| rec.get(c))
                .map(|s| s.trim().to_lowercase())
                .filter(|s| !s.is_empty())
        };
        let learner = get(email)
            .and_then(|e| course.by_email.get(&e))
            .or_else(|| get(idnumber).and_then(|n| course.by_sourcedid.get(&n)))
            .copied();
        let Some(learner) = learner else {
            if !ctx
                .skip(
                    line,
                    Some("Email address"),
                    "no learner in the ledger with this e-mail address or ID number: not compared",
                )
                .await?
            {
                break;
            }
            continue;
        };
        let mut facts = Vec::new();
        for (i, header, a, percent) in &columns {
            let Some(value) = cell_number(ctx, line, header, rec.get(*i).unwrap_or(""))? else {
                continue;
            };
            let score = match (*percent, course.activities[*a].points_possible) {
                (true, _) => value / 100.0,
                (false, Some(max)) => value / max,
                (false, None) => continue,
            };
            facts.push(Fact::LmsValue {
                place: course.place(&course.activities[*a], &course.learners[learner]),
                score: Some(score),
                at: at.clone(),
                source: source.clone(),
            });
        }
        if !values(ctx, line, facts).await? {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_names() {
        assert_eq!(canvas_column_id("Quiz 1 (1234)"), Some("1234"));
        assert_eq!(canvas_column_id("Quiz (draft) (77)"), Some("77"));
        assert_eq!(canvas_column_id("Current Score"), None);
        assert_eq!(canvas_column_id("Notes (x)"), None);
        assert_eq!(
            moodle_column("Assignment: Essay 1 (Real)"),
            Some(("Essay 1", "Real"))
        );
        assert_eq!(
            moodle_column("Quiz: Cells: part 2 (Percentage)"),
            Some(("Cells: part 2", "Percentage"))
        );
        assert_eq!(moodle_column("Email address"), None);
    }
}
