//! The grade listing: filtered in SQL on the stored status and the names, in
//! order of platform, course and activity names and then of learners as the
//! ledger first saw them, and read a page at a time so a ledger of any size
//! lists in bounded memory.

use sqlx::Row;

use super::sql::Sql;

use super::{Engine, Store};
use crate::error::{Error, Result};
use crate::model::{GradeRow, GradeStatus};

/// Which current grades to list. Empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, ts_rs::TS)]
#[serde(default)]
pub struct GradeFilter {
    /// Any of these statuses.
    pub status: Vec<GradeStatus>,
    /// A platform's name.
    pub platform: Option<String>,
    /// A course's LTI `context_id`.
    pub context: Option<String>,
    /// An activity's `resource_link_id` (or its title).
    pub activity: Option<String>,
    /// A learner's LTI `user_id`.
    pub learner: Option<String>,
    /// Only these grades (by id).
    pub grades: Vec<i64>,
    /// Grades whose latest answered attempt ended with one of these causes
    /// (the window's "Retry this group").
    pub cause: Vec<crate::model::Cause>,
}

/// Where a page of the listing ends: the next page starts after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, ts_rs::TS)]
pub struct GradeCursor {
    pub activity: i64,
    pub learner: i64,
}

/// One page of the listing for a window.
#[derive(Debug, Clone, PartialEq, serde::Serialize, ts_rs::TS)]
pub struct GradesPage {
    pub rows: Vec<GradeRow>,
    /// Where the next page starts (`null`: this was the last).
    pub next: Option<GradeCursor>,
    /// Where the next page of a sorted listing starts (`null`: the last, or not sorted).
    pub next_sorted: Option<SortedCursor>,
    /// How many grades match in all (first page only).
    pub total: Option<u64>,
}

/// A column the window sorts the listing by (the default order needs none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    /// The learner's name (or LTI user id), ignoring case.
    Learner,
    /// The activity's title (or resource link id), ignoring case.
    Activity,
    /// The score on the 0–1 scale.
    Score,
    /// Most urgent first: failed, cannot send, unknown, missing in the LMS,
    /// differs, not sent yet, in the gradebook.
    Status,
}

/// How to sort the listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, ts_rs::TS)]
pub struct GradeSort {
    pub by: SortKey,
    #[serde(default)]
    pub descending: bool,
}

/// Where a page of a sorted listing ends: the sort value of its last grade and
/// that grade's id (ties are broken by id), so the next page starts after it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, ts_rs::TS)]
pub struct SortedCursor {
    /// The last value, for text sorts.
    pub text: Option<String>,
    /// The last value, for number sorts.
    pub number: Option<f64>,
    pub grade: i64,
}

impl SortKey {
    /// The SQL value sorted by, on `g`, `l`, `a` and `cg`; and whether it is text.
    fn expr(self) -> (&'static str, bool) {
        match self {
            // lower() folds ASCII only (SQLite; PostgreSQL under the "C" collation
            // every text column has), as SQLite's NOCASE does: one spelling for both.
            SortKey::Learner => ("lower(COALESCE(l.name, l.lti_user_id))", true),
            SortKey::Activity => ("lower(COALESCE(a.title, a.resource_link_id))", true),
            SortKey::Score => ("(g.score_given / g.score_maximum)", false),
            SortKey::Status => (
                "CAST(CASE cg.status WHEN 'failed' THEN 0 WHEN 'cannot_send' THEN 1 WHEN 'unknown' THEN 2
                  WHEN 'lms_missing' THEN 3 WHEN 'differs' THEN 4 WHEN 'pending' THEN 5 ELSE 6 END AS DOUBLE PRECISION)",
                false,
            ),
        }
    }
}

/// One page of the listing sorted by `sort`, after `after`: keyset paging on
/// (sort value, grade id). SQLite sorts the matching grades for each page (a
/// temporary B-tree); the default order (see [`activities_query`]) needs none.
fn sorted_page_query(
    prefix: &str,
    f: &GradeFilter,
    text: Option<&str>,
    sort: GradeSort,
    after: Option<&SortedCursor>,
    limit: i64,
) -> Sql {
    let (key, _) = sort.by.expr();
    let mut q: Sql = Sql::new(format!(
        "{prefix}SELECT g.id, g.version, g.score_given, g.score_maximum, l.lti_user_id, l.name AS learner_name,
                g.recorded_at, cg.status, cg.status_detail, o.score AS lms, o.observed_at AS seen, o.source AS src,
                p.name AS platform, c.context_id, a.resource_link_id, a.title, {key} AS k
         FROM current_grades cg
         JOIN grades g ON g.id = cg.grade_ref
         JOIN learners l ON l.id = cg.learner_ref
         JOIN activities a ON a.id = cg.activity_ref
         JOIN contexts c ON c.id = a.context_ref
         JOIN platforms p ON p.id = c.platform_id
         LEFT JOIN lms_observations o ON o.id = (
             SELECT o2.id FROM lms_observations o2
             WHERE o2.activity_ref = cg.activity_ref AND o2.learner_ref = cg.learner_ref
             ORDER BY o2.observed_at DESC, o2.id DESC LIMIT 1)
         WHERE 1 = 1"
    ));
    push_filter(&mut q, f);
    if let Some(pat) = text {
        push_text(&mut q, pat, true);
    }
    if let Some(c) = after {
        let cmp = if sort.descending { "<" } else { ">" };
        let bind_key = |q: &mut Sql| match (&c.text, c.number) {
            (Some(t), _) => {
                q.push_bind(t.clone());
            }
            (None, Some(n)) => {
                q.push_bind(n);
            }
            (None, None) => {
                q.push("NULL");
            }
        };
        q.push(format!(" AND ({key} {cmp} "));
        bind_key(&mut q);
        q.push(format!(" OR ({key} = "));
        bind_key(&mut q);
        q.push(format!(" AND g.id {cmp} ")).push_bind(c.grade).push("))");
    }
    let dir = if sort.descending { "DESC" } else { "ASC" };
    q.push(format!(" ORDER BY k {dir}, g.id {dir} LIMIT "))
        .push_bind(limit);
    q
}

/// A `LIKE` pattern for "contains `t`" (with `\` escaping `%`, `_` and itself).
fn like_pattern(t: &str) -> String {
    let mut p = String::with_capacity(t.len() + 2);
    p.push('%');
    for ch in t.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(ch);
    }
    p.push('%');
    p
}

/// The `WHERE` terms of a grade filter, on `cg`, `g`, `a`, `c`, `p`, `l`.
pub(super) fn push_filter(q: &mut Sql, f: &GradeFilter) {
    push_row_filters(q, f);
    push_place_filters(q, f);
}

/// The terms on the grade itself (status, ids, learner), on `cg`, `g` and `l`.
fn push_row_filters(q: &mut Sql, f: &GradeFilter) {
    if !f.status.is_empty() {
        q.push(" AND cg.status IN (");
        let mut sep = q.separated(", ");
        for s in &f.status {
            sep.push_bind(s.as_str());
        }
        q.push(")");
    }
    if !f.grades.is_empty() {
        q.push(" AND g.id IN (");
        let mut sep = q.separated(", ");
        for id in &f.grades {
            sep.push_bind(*id);
        }
        q.push(")");
    }
    if let Some(l) = &f.learner {
        q.push(" AND l.lti_user_id = ").push_bind(l.clone());
    }
    if !f.cause.is_empty() {
        q.push(
            " AND (SELECT x.cause FROM attempts x WHERE x.grade_ref = g.id AND x.finished_at IS NOT NULL
                   ORDER BY x.id DESC LIMIT 1) IN (",
        );
        let mut sep = q.separated(", ");
        for c in &f.cause {
            sep.push_bind(c.as_str());
        }
        q.push(")");
    }
}

/// The terms on where the grade is (platform, course, activity), on `p`, `c` and `a`.
fn push_place_filters(q: &mut Sql, f: &GradeFilter) {
    if let Some(p) = &f.platform {
        q.push(" AND p.name = ").push_bind(p.clone());
    }
    if let Some(c) = &f.context {
        q.push(" AND c.context_id = ").push_bind(c.clone());
    }
    if let Some(a) = &f.activity {
        q.push(" AND (a.resource_link_id = ")
            .push_bind(a.clone())
            .push(" OR a.title = ")
            .push_bind(a.clone())
            .push(")");
    }
}

/// "The learner's id or name (and, with `activity`, the activity's resource link
/// or title) matches the `LIKE` pattern", on `l` (and `a`).
fn push_text(q: &mut Sql, pattern: &str, activity: bool) {
    let mut columns = vec!["l.lti_user_id", "l.name"];
    if activity {
        columns.extend(["a.resource_link_id", "a.title"]);
    }
    q.push(" AND (");
    for (i, col) in columns.iter().enumerate() {
        if i > 0 {
            q.push(" OR ");
        }
        // Case-insensitive for ASCII on both engines (SQLite's LIKE already is).
        q.push("lower(")
            .push(*col)
            .push(") LIKE lower(")
            .push_bind(pattern.to_string())
            .push(") ESCAPE '\\'");
    }
    q.push(")");
}

/// How a text search narrows grades: a `LIKE` on every row's names, or — when the
/// names that contain the text are few — the ids of those learners (and
/// activities), so grades are found through the indexes on ids.
#[derive(Debug, Clone, Copy)]
pub(super) enum TextTerm<'a> {
    Like(&'a str),
    Ids {
        learners: &'a [i64],
        activities: &'a [i64],
    },
}

/// At most this many matching learners (or activities) are looked up by id.
const FEW: i64 = 500;

fn push_text_term(q: &mut Sql, term: TextTerm<'_>, activity: bool) {
    match term {
        TextTerm::Like(pattern) => push_text(q, pattern, activity),
        TextTerm::Ids { learners, activities } => {
            // `IN ()` is SQLite's; an empty list is `IN (NULL)` (matches nothing) on both.
            let push_ids = |q: &mut Sql, ids: &[i64]| {
                q.push("(");
                if ids.is_empty() {
                    q.push("NULL");
                }
                let mut sep = q.separated(", ");
                for id in ids {
                    sep.push_bind(*id);
                }
                q.push(")");
            };
            q.push(" AND (cg.learner_ref IN ");
            push_ids(q, learners);
            if activity {
                q.push(" OR cg.activity_ref IN ");
                push_ids(q, activities);
            }
            q.push(")");
        }
    }
}

/// The listing's activities in listing order, through the unique indexes on
/// the names (CROSS JOIN fixes that order in SQLite). `prefix` is "" (tests
/// prefix `EXPLAIN QUERY PLAN`).
fn activities_query(engine: Engine, prefix: &str, f: &GradeFilter) -> Sql {
    let join = engine.ordered_join();
    let mut q: Sql = Sql::new(format!(
        "{prefix}SELECT a.id, p.name AS platform, c.context_id, a.resource_link_id, a.title
         FROM platforms p
         {join} contexts c ON c.platform_id = p.id
         {join} activities a ON a.context_ref = c.id
         WHERE 1 = 1"
    ));
    push_place_filters(&mut q, f);
    q.push(" ORDER BY p.name, c.context_id, a.resource_link_id");
    q
}

/// One page of one activity's grades after learner `after`, packed as one JSON
/// array (see [`PAGE`]), read in learner order through the primary key. The
/// array's order is not promised (an `ORDER BY` in the aggregate would sort the
/// page again in a temporary B-tree): the reader sorts the page by learner.
fn activity_page_query(
    engine: Engine,
    prefix: &str,
    f: &GradeFilter,
    activity: i64,
    after: i64,
    text: Option<TextTerm<'_>>,
) -> Sql {
    // Scores travel as exact text: SQLite's `%!.17g`; PostgreSQL's float text is
    // the shortest exact form already. SQLite's CROSS JOIN keeps the join order
    // (walk the activity's current grades by primary key); PostgreSQL has no
    // `CROSS JOIN … ON` and plans the order itself.
    let (pack, exact) = match engine {
        Engine::Sqlite => ("json_group_array(json_array", "printf('%!.17g', {})"),
        Engine::Postgres => ("json_agg(json_build_array", "CAST({} AS TEXT)"),
    };
    let join = engine.ordered_join();
    let exact = |col: &str| exact.replace("{}", col);
    let (sg, sm, lms) = (exact("g.score_given"), exact("g.score_maximum"), exact("o.score"));
    let cast = if engine == Engine::Postgres { "::text" } else { "" };
    let mut q: Sql = Sql::new(format!(
        "{prefix}SELECT {pack}(id, version, sg, sm, uid, name, rec, status, detail,
                                            lms, seen, src, k)){cast} AS page,
                MAX(k) AS last, COUNT(*) AS n
         FROM (SELECT cg.learner_ref AS k, g.id, g.version,
                      {sg} AS sg, {sm} AS sm,
                      l.lti_user_id AS uid, l.name, g.recorded_at AS rec, cg.status,
                      cg.status_detail AS detail,
                      CASE WHEN o.score IS NOT NULL THEN {lms} END AS lms, o.observed_at AS seen, o.source AS src
               FROM current_grades cg
               {join} learners l ON l.id = cg.learner_ref
               {join} grades g ON g.id = cg.grade_ref
               LEFT JOIN lms_observations o ON o.id = (
                   SELECT o2.id FROM lms_observations o2
                   WHERE o2.activity_ref = cg.activity_ref AND o2.learner_ref = cg.learner_ref
                   ORDER BY o2.observed_at DESC, o2.id DESC LIMIT 1)
               WHERE cg.activity_ref = "
    ));
    q.push_bind(activity)
        .push(" AND cg.learner_ref > ")
        .push_bind(after);
    push_row_filters(&mut q, f);
    if let Some(term) = text {
        push_text_term(&mut q, term, false);
    }
    q.push(" ORDER BY cg.learner_ref LIMIT ")
        .push_bind(PAGE)
        .push(") AS page_rows");
    q
}

/// The query plans of the listing's queries for `f` (tests: no temporary
/// B-tree for the default order).
#[cfg(test)]
pub(super) async fn listing_plans(store: &Store, f: &GradeFilter, text: Option<&str>) -> Result<Vec<String>> {
    let mut plans = Vec::new();
    let pattern = text.map(like_pattern);
    for mut q in [
        activities_query(store.engine, "EXPLAIN QUERY PLAN ", f),
        activity_page_query(
            store.engine,
            "EXPLAIN QUERY PLAN ",
            f,
            1,
            0,
            pattern.as_deref().map(TextTerm::Like),
        ),
    ] {
        for r in q.build().fetch_all(&store.pool).await? {
            plans.push(r.try_get::<String, _>("detail")?);
        }
    }
    Ok(plans)
}

/// Grades per page: one SQL row carries a page of grades as a JSON array, since
/// every value a row carries out of SQLite costs a copy, an allocation and, per
/// row, a wake-up of the reading task.
const PAGE: i64 = 512;

/// One listed grade as a page carries it (scores as `%!.17g` text, exact).
type Packed = (
    i64,
    i64,
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
);

/// An activity the listing walks, with its names.
struct Walked {
    id: i64,
    platform: String,
    context_id: String,
    resource_link_id: String,
    title: Option<String>,
}

fn score(s: &str) -> Result<f64> {
    s.parse()
        .map_err(|_| Error::internal(format!("a listed score {s:?} is not a number")))
}

impl Store {
    /// Call `each` with every current grade the filter matches, in listing order
    /// (platform, course and activity by name, then learners in the order the
    /// ledger first saw them), a page at a time: a ledger of any size lists in
    /// bounded memory and nothing is sorted. Returns how many there were.
    pub async fn for_each_grade_row(
        &self,
        f: &GradeFilter,
        mut each: impl FnMut(GradeRow) -> Result<()>,
    ) -> Result<u64> {
        self.walk_grade_rows(f, None, None, |row, _| each(row).map(|()| true))
            .await
    }

    /// One page of the listing for a window: the grades after `after` (a cursor
    /// from the previous page) in listing order, at most `limit`, optionally only
    /// those whose learner (id or name) or activity (resource link or title)
    /// contains `text`. Keyset paging: a page costs the same at the end of a
    /// ledger of 100,000 grades as at its start. With no cursor, also counts every
    /// grade that matches.
    pub async fn grade_rows_page(
        &self,
        f: &GradeFilter,
        text: Option<&str>,
        after: Option<GradeCursor>,
        limit: usize,
    ) -> Result<GradesPage> {
        self.grade_rows_page_with(f, text, after, limit, true).await
    }

    /// [`Store::grade_rows_page`]; without `total` the first page leaves the
    /// count out (a window paints the rows first and asks
    /// [`Store::count_grade_rows`] beside it).
    pub async fn grade_rows_page_with(
        &self,
        f: &GradeFilter,
        text: Option<&str>,
        after: Option<GradeCursor>,
        limit: usize,
        total: bool,
    ) -> Result<GradesPage> {
        let limit = limit.clamp(1, 2000);
        let text = text.map(str::trim).filter(|t| !t.is_empty());
        let total = match after {
            None if total => Some(self.count_grade_rows(f, text).await?),
            _ => None,
        };
        let mut rows = Vec::with_capacity(limit);
        let mut last = None;
        self.walk_grade_rows(f, text, after, |row, cursor| {
            rows.push(row);
            last = Some(cursor);
            Ok(rows.len() < limit)
        })
        .await?;
        let next = if rows.len() == limit { last } else { None };
        Ok(GradesPage {
            rows,
            next,
            next_sorted: None,
            total,
        })
    }

    /// One page of the listing sorted by a column (see [`SortKey`]), after `after`,
    /// at most `limit`; with no cursor and `total`, also counts every match.
    pub async fn sorted_grade_rows_page(
        &self,
        f: &GradeFilter,
        text: Option<&str>,
        sort: GradeSort,
        after: Option<&SortedCursor>,
        limit: usize,
        total: bool,
    ) -> Result<GradesPage> {
        let limit = limit.clamp(1, 2000);
        let text = text.map(str::trim).filter(|t| !t.is_empty());
        let total = match after {
            None if total => Some(self.count_grade_rows(f, text).await?),
            _ => None,
        };
        let pattern = text.map(like_pattern);
        let mut q = sorted_page_query("", f, pattern.as_deref(), sort, after, limit as i64);
        let found = q.build().fetch_all(&self.pool).await?;
        let (_, is_text) = sort.by.expr();
        let mut rows = Vec::with_capacity(found.len());
        let mut next = None;
        for r in &found {
            let status: String = r.try_get("status")?;
            let source: Option<String> = r.try_get("src")?;
            let row = GradeRow {
                grade_id: r.try_get("id")?,
                platform: r.try_get("platform")?,
                context_id: r.try_get("context_id")?,
                resource_link_id: r.try_get("resource_link_id")?,
                activity_title: r.try_get("title")?,
                lti_user_id: r.try_get("lti_user_id")?,
                learner_name: r.try_get("learner_name")?,
                version: r.try_get("version")?,
                score_given: r.try_get("score_given")?,
                score_maximum: r.try_get("score_maximum")?,
                recorded_at: r.try_get("recorded_at")?,
                status: GradeStatus::parse(&status).ok_or_else(|| {
                    Error::internal(format!("unknown grade status {status:?} in the ledger"))
                })?,
                status_detail: r.try_get("status_detail")?,
                lms_score: r.try_get("lms")?,
                lms_seen_at: r.try_get("seen")?,
                lms_source: source.map(|s| s.trim_start_matches("export:").to_string()),
            };
            next = Some(SortedCursor {
                text: if is_text { r.try_get("k")? } else { None },
                number: if is_text { None } else { r.try_get("k")? },
                grade: row.grade_id,
            });
            rows.push(row);
        }
        let next_sorted = if rows.len() == limit { next } else { None };
        Ok(GradesPage {
            rows,
            next: None,
            next_sorted,
            total,
        })
    }

    /// How many current grades the filter and the text match.
    pub async fn count_grade_rows(&self, f: &GradeFilter, text: Option<&str>) -> Result<u64> {
        let text = text.map(str::trim).filter(|t| !t.is_empty());
        let mut q: Sql = Sql::new(
            "SELECT COUNT(*) FROM current_grades cg
             JOIN grades g ON g.id = cg.grade_ref
             JOIN learners l ON l.id = cg.learner_ref
             JOIN activities a ON a.id = cg.activity_ref
             JOIN contexts c ON c.id = a.context_ref
             JOIN platforms p ON p.id = c.platform_id
             WHERE 1 = 1",
        );
        push_filter(&mut q, f);
        let pattern = text.map(like_pattern);
        let ids = match &pattern {
            Some(p) => self.text_ids(p).await?,
            None => None,
        };
        match (&pattern, &ids) {
            (Some(_), Some((learners, activities))) => {
                push_text_term(&mut q, TextTerm::Ids { learners, activities }, true)
            }
            (Some(p), None) => push_text(&mut q, p, true),
            _ => {}
        }
        let n: i64 = q.build_query_scalar().fetch_one(&self.pool).await?;
        Ok(n as u64)
    }

    /// The learners and the activities whose names contain the `LIKE` pattern,
    /// when both are few (at most [`FEW`] each): the listing then finds their grades
    /// by id instead of matching the text against every grade's names.
    async fn text_ids(&self, pattern: &str) -> Result<Option<(Vec<i64>, Vec<i64>)>> {
        let learners = self
            .ids_like(
                "SELECT id FROM learners WHERE lower(lti_user_id) LIKE lower($1) ESCAPE '\\'
                 OR lower(name) LIKE lower($1) ESCAPE '\\' LIMIT $2",
                pattern,
            )
            .await?;
        let Some(learners) = learners else { return Ok(None) };
        let activities = self
            .ids_like(
                "SELECT id FROM activities WHERE lower(resource_link_id) LIKE lower($1) ESCAPE '\\'
                 OR lower(title) LIKE lower($1) ESCAPE '\\' LIMIT $2",
                pattern,
            )
            .await?;
        Ok(activities.map(|activities| (learners, activities)))
    }

    /// The ids `sql` selects for the pattern (`$1`), unless there are more than [`FEW`] (`$2` caps it).
    async fn ids_like(&self, sql: &'static str, pattern: &str) -> Result<Option<Vec<i64>>> {
        let ids: Vec<i64> = sqlx::query_scalar(sql)
            .bind(pattern)
            .bind(FEW + 1)
            .fetch_all(&self.pool)
            .await?;
        Ok((ids.len() as i64 <= FEW).then_some(ids))
    }

    /// Walk the listing from `after`, calling `each` with every row and its
    /// cursor until it returns `false`.
    async fn walk_grade_rows(
        &self,
        f: &GradeFilter,
        text: Option<&str>,
        after: Option<GradeCursor>,
        mut each: impl FnMut(GradeRow, GradeCursor) -> Result<bool>,
    ) -> Result<u64> {
        let q = activities_query(self.engine, "", f);
        let mut q = q;
        let activities = q
            .build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(Walked {
                    id: r.try_get("id")?,
                    platform: r.try_get("platform")?,
                    context_id: r.try_get("context_id")?,
                    resource_link_id: r.try_get("resource_link_id")?,
                    title: r.try_get("title")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;

        let mut n = 0;
        let start = match after {
            // The cursor's activity, or (if it is gone) nothing: start over is
            // worse than an empty page the window can refresh from.
            Some(c) => match activities.iter().position(|a| a.id == c.activity) {
                Some(i) => i,
                None => return Ok(0),
            },
            None => 0,
        };
        let pattern = text.map(like_pattern);
        let ids = match &pattern {
            Some(p) => self.text_ids(p).await?,
            None => None,
        };
        let term = match (&pattern, &ids) {
            (Some(_), Some((learners, activities))) => Some(TextTerm::Ids { learners, activities }),
            (Some(p), None) => Some(TextTerm::Like(p)),
            _ => None,
        };
        for (i, a) in activities.iter().enumerate().skip(start) {
            let mut after = match after {
                Some(c) if i == start => c.learner,
                _ => 0i64,
            };
            // A text that names the activity lists all its grades.
            let whole_activity = text.is_some_and(|t| {
                let t = t.to_lowercase();
                a.resource_link_id.to_lowercase().contains(&t)
                    || a.title.as_deref().is_some_and(|x| x.to_lowercase().contains(&t))
            });
            loop {
                let text = term.filter(|_| !whole_activity);
                if let Some(TextTerm::Ids { learners, .. }) = text
                    && learners.is_empty()
                {
                    // No learner's name contains the text: none of this activity's grades do.
                    break;
                }
                let mut q = activity_page_query(self.engine, "", f, a.id, after, text);
                let r = q.build().fetch_one(&self.pool).await?;
                let count: i64 = r.try_get("n")?;
                if count == 0 {
                    break;
                }
                let page: &str = r.try_get("page")?;
                let mut rows: Vec<Packed> = serde_json::from_str(page)
                    .map_err(|e| Error::internal(format!("a page of the listing did not decode: {e}")))?;
                rows.sort_unstable_by_key(|r| r.12);
                for (
                    grade_id,
                    version,
                    sg,
                    sm,
                    lti_user_id,
                    learner_name,
                    recorded_at,
                    status,
                    detail,
                    lms,
                    lms_seen_at,
                    lms_source,
                    learner_ref,
                ) in rows
                {
                    let go_on = each(
                        GradeRow {
                            grade_id,
                            platform: a.platform.clone(),
                            context_id: a.context_id.clone(),
                            resource_link_id: a.resource_link_id.clone(),
                            activity_title: a.title.clone(),
                            lti_user_id,
                            learner_name,
                            version,
                            score_given: score(&sg)?,
                            score_maximum: score(&sm)?,
                            recorded_at,
                            status: GradeStatus::parse(&status).ok_or_else(|| {
                                Error::internal(format!("unknown grade status {status:?} in the ledger"))
                            })?,
                            status_detail: detail,
                            lms_score: lms.as_deref().map(score).transpose()?,
                            lms_seen_at,
                            lms_source: lms_source.map(|s| s.trim_start_matches("export:").to_string()),
                        },
                        GradeCursor {
                            activity: a.id,
                            learner: learner_ref,
                        },
                    )?;
                    n += 1;
                    if !go_on {
                        return Ok(n);
                    }
                }
                if count < PAGE {
                    break;
                }
                after = r.try_get("last")?;
            }
        }
        Ok(n)
    }

    /// The current version of every grade the filter matches, with names and its stored status.
    pub async fn list_grade_rows_where(&self, f: &GradeFilter) -> Result<Vec<GradeRow>> {
        let mut out = Vec::new();
        self.for_each_grade_row(f, |r| {
            out.push(r);
            Ok(())
        })
        .await?;
        Ok(out)
    }
}
