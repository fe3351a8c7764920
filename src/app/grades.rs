//! Local grades and activities.

use super::Passback;
use crate::error::Result;
use crate::intake::{ActivitySeen, ContextSeen, PersonSeen, Place};
use crate::model::{ActivityRow, Grade, GradeRow, NewGrade, Role};
use crate::store::{GradeCursor, GradeFilter, GradesPage};

/// Which page of the grade listing a window wants.
#[derive(Debug, Clone, Default, serde::Deserialize, ts_rs::TS)]
#[serde(default)]
pub struct GradesQuery {
    pub filter: GradeFilter,
    /// Only grades whose learner (id or name) or activity (resource link or title) contains this.
    pub text: Option<String>,
    /// The `next` of the previous page (`null`: the first page).
    pub after: Option<GradeCursor>,
    /// Rows per page (default 200, at most 2,000).
    pub limit: Option<usize>,
    /// Leave the first page's total out: a window paints the rows first and
    /// asks `grades_count` beside them (counting every match takes longer).
    pub without_total: bool,
    /// Sort by a column instead of the listing's order (platform, course,
    /// activity, then learners as first seen).
    #[serde(default)]
    #[ts(optional)]
    pub sort: Option<crate::store::GradeSort>,
    /// The `next_sorted` of the previous page of a sorted listing.
    #[serde(default)]
    #[ts(optional)]
    pub after_sorted: Option<crate::store::SortedCursor>,
}

/// A grade recorded by hand (support corrections, demos).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ManualGrade {
    pub platform: String,
    pub context_id: String,
    pub resource_link_id: String,
    pub activity_title: Option<String>,
    pub points_possible: Option<f64>,
    pub lti_user_id: String,
    pub learner_name: Option<String>,
    pub grade: NewGrade,
}

impl Passback {
    /// Record a grade by hand, creating the context, activity and learner as needed.
    /// The second value says whether a new version was recorded.
    pub async fn record_manual_grade(&self, m: ManualGrade) -> Result<(Grade, bool)> {
        let p = self.store().platform_by_name(&m.platform).await?;
        let place = Place {
            platform_id: p.id,
            context: ContextSeen {
                context_id: &m.context_id,
                ..ContextSeen::default()
            },
            activity: ActivitySeen {
                resource_link_id: &m.resource_link_id,
                title: m.activity_title.as_deref(),
                points_possible: m.points_possible,
                line_item_id: None,
            },
            person: Some(PersonSeen {
                lti_user_id: &m.lti_user_id,
                name: m.learner_name.as_deref(),
                role: Some(Role::Learner),
                ..PersonSeen::default()
            }),
        };
        let (_, grade, added) = self.intake().grade_observed(&place, &m.grade).await?;
        Ok((grade, added))
    }

    /// The current version of every grade, with its status.
    pub async fn list_grades(&self) -> Result<Vec<GradeRow>> {
        self.store().list_grade_rows().await
    }

    /// Every current grade the filter matches, in listing order, one at a time
    /// (filtered and sorted in SQL; the listing is never held in memory).
    pub async fn for_each_grade(
        &self,
        filter: &GradeFilter,
        each: impl FnMut(GradeRow) -> Result<()>,
    ) -> Result<u64> {
        self.store().for_each_grade_row(filter, each).await
    }

    /// One page of the grade listing for the window (see [`crate::store::Store::grade_rows_page`]).
    pub async fn grades_page(&self, q: &GradesQuery) -> Result<GradesPage> {
        if let Some(sort) = q.sort {
            return self
                .store()
                .sorted_grade_rows_page(
                    &q.filter,
                    q.text.as_deref(),
                    sort,
                    q.after_sorted.as_ref(),
                    q.limit.unwrap_or(200),
                    !q.without_total,
                )
                .await;
        }
        self.store()
            .grade_rows_page_with(
                &q.filter,
                q.text.as_deref(),
                q.after,
                q.limit.unwrap_or(200),
                !q.without_total,
            )
            .await
    }

    /// How many grades the query's filter and text match.
    pub async fn grades_count(&self, q: &GradesQuery) -> Result<u64> {
        self.store().count_grade_rows(&q.filter, q.text.as_deref()).await
    }

    pub async fn list_activities(&self) -> Result<Vec<ActivityRow>> {
        self.store().list_activity_rows().await
    }
}
