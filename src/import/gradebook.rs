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
//! `EX` (excused) cells, are listed in the report and never compared. A cell that
//! is not a number (a `%` counts only in a Percentage column) rejects its row.

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

/// The time a Canvas export's file name starts with (`2026-11-20T1010_Grades-….csv`).
fn time_in_file_name(name: &str) -> Option<String> {
    // Only ASCII can be a time, and cutting elsewhere could split a character.
    let stamp = name.get(..15).filter(|s| s.is_ascii())?;
    let (date, clock) = stamp.split_at(10);
    let hhmm = clock.strip_prefix('T')?;
    normalize_time(&format!("{date}T{}:{}:00Z", &hhmm[..2], &hhmm[2..]))
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
    if let Some(at) = time_in_file_name(name) {
        ctx.note(format!(
            "export time {at} (from the file name; Canvas names exports by their UTC time)"
        ));
        return Ok(at);
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
    /// The line of the header.
    header_line: u64,
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
    let (header_line, header) = match records.next() {
        Some(Ok(h)) => h,
        Some(Err(e)) => {
            return Err(Error::invalid(format!(
                "{}:{}: the header row cannot be read ({})",
                ctx.file(),
                e.line,
                e.reason
            )));
        }
        None => {
            ctx.note("the file is empty");
            return Ok(None);
        }
    };
    let keys = header.iter().map(header_key).collect();
    Ok(Some(Export {
        course,
        at,
        source,
        records,
        header_line,
        header,
        keys,
    }))
}

/// What a gradebook cell holds.
#[derive(Debug, PartialEq)]
enum Cell {
    Value(f64),
    /// Blank or `-`.
    Blank,
    /// `EX`: excused.
    Excused,
    /// Not a number, or a percentage in a column of points: the row is rejected.
    NotANumber,
}

/// Read a cell. A `%` sign is allowed in a `percent` column only: in a column of
/// points, `85%` would be read as 85 points.
fn read_cell(cell: &str, percent: bool) -> Cell {
    let cell = cell.trim();
    if cell.is_empty() || cell == "-" {
        return Cell::Blank;
    }
    if cell.eq_ignore_ascii_case("EX") {
        return Cell::Excused;
    }
    let number = if percent {
        cell.strip_suffix('%').map_or(cell, str::trim_end)
    } else {
        cell
    };
    parse_number(number).map_or(Cell::NotANumber, Cell::Value)
}

/// What a cell holds; a blank, `-` or `EX` cell is listed as not compared, and is
/// `None`.
fn cell_number(
    ctx: &mut Ctx<'_>,
    line: u64,
    column: &str,
    cell: &str,
    percent: bool,
) -> Result<Option<Cell>> {
    match read_cell(cell, percent) {
        Cell::Blank => list(ctx, line, column, "blank: not compared".into()).map(|_| None),
        Cell::Excused => list(ctx, line, column, "EX (excused): not compared".into()).map(|_| None),
        other => Ok(Some(other)),
    }
}

/// A row with a cell that is not a number: rejected as a whole (`--strict` rejects
/// the file), its other cells not compared. Returns whether to go on.
async fn not_a_number(ctx: &mut Ctx<'_>, line: u64, column: &str) -> Result<bool> {
    ctx.reject(line, Some(column), "not a number").await
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
        header_line,
        header,
        keys,
    }) = open_export(ctx, input, path).await?
    else {
        return Ok(());
    };
    let col = |name: &str| keys.iter().position(|k| k == name);
    let (Some(student), Some(id_col)) = (col("student"), col("id")) else {
        return Err(Error::invalid(format!(
            "{}:{header_line}: not a Canvas gradebook (no Student and ID columns)",
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
        let mut bad = None;
        for (i, header, a) in &columns {
            let value = match cell_number(ctx, line, header, rec.get(*i).unwrap_or(""), false)? {
                Some(Cell::Value(v)) => v,
                None | Some(Cell::Blank | Cell::Excused) => continue,
                Some(Cell::NotANumber) => {
                    bad = Some(header);
                    break;
                }
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
        let go_on = match bad {
            Some(column) => not_a_number(ctx, line, column).await?,
            None => values(ctx, line, facts).await?,
        };
        if !go_on {
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
        ..
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
        let mut bad = None;
        for (i, header, a, percent) in &columns {
            let value = match cell_number(ctx, line, header, rec.get(*i).unwrap_or(""), *percent)? {
                Some(Cell::Value(v)) => v,
                None | Some(Cell::Blank | Cell::Excused) => continue,
                Some(Cell::NotANumber) => {
                    bad = Some(header);
                    break;
                }
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
        let go_on = match bad {
            Some(column) => not_a_number(ctx, line, column).await?,
            None => values(ctx, line, facts).await?,
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

    /// Found with the `import_gradebook` fuzz target (its corpus keeps
    /// `regress-file-name-cut-inside-a-character`): the name was cut at byte 15 wherever
    /// that fell, and a cut inside a character panicked.
    #[test]
    fn a_file_name_tells_the_export_time_and_any_other_name_is_no_time() {
        assert_eq!(
            time_in_file_name("2026-11-20T1010_Grades-BIO_101.csv").as_deref(),
            Some("2026-11-20T10:10:00.000Z")
        );
        assert_eq!(time_in_file_name("2026-11-20T101é Grades.csv"), None);
        assert_eq!(time_in_file_name("Notenübersicht Biologie.csv"), None);
        assert_eq!(time_in_file_name("grades.csv"), None);
        assert_eq!(time_in_file_name("2026-11-20T9999_Grades.csv"), None);
    }

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

    #[test]
    fn cells_are_numbers_blank_excused_or_not_numbers() {
        assert_eq!(read_cell(" 9 ", false), Cell::Value(9.0));
        assert_eq!(read_cell("18,5", false), Cell::Value(18.5));
        assert_eq!(read_cell("90.00 %", true), Cell::Value(90.0));
        assert_eq!(read_cell("", false), Cell::Blank);
        assert_eq!(read_cell("-", true), Cell::Blank);
        assert_eq!(read_cell("ex", false), Cell::Excused);
        // A percentage in a column of points is not 85 points.
        assert_eq!(read_cell("85%", false), Cell::NotANumber);
        assert_eq!(read_cell("90.00 %", false), Cell::NotANumber);
        for bad in ["nine", "NaN", "1e999", "18 pts", "ninety %"] {
            assert_eq!(read_cell(bad, true), Cell::NotANumber, "{bad}");
        }
    }
}
