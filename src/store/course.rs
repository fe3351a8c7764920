//! What a course's gradebook export joins against: its activities and the
//! identifiers its platform's learners were seen with.

use sqlx::{AnyConnection, Row};

use super::Store;
use crate::error::Result;

/// An activity of a course, with what gradebook columns can name it by.
#[derive(Debug, Clone, PartialEq)]
pub struct CourseActivity {
    pub resource_link_id: String,
    pub title: Option<String>,
    pub canvas_assignment_id: Option<String>,
    pub points_possible: Option<f64>,
}

/// A learner of a platform, with what gradebook rows can name them by.
#[derive(Debug, Clone, PartialEq)]
pub struct LearnerIds {
    pub lti_user_id: String,
    pub person_sourcedid: Option<String>,
    pub canvas_user_id: Option<String>,
    pub email: Option<String>,
}

impl Store {
    /// The activities of course `context_id` on a platform.
    pub async fn course_activities(
        conn: &mut AnyConnection,
        platform_id: i64,
        context_id: &str,
    ) -> Result<Vec<CourseActivity>> {
        let rows = sqlx::query(
            "SELECT a.resource_link_id, a.title, a.canvas_assignment_id, a.points_possible
             FROM activities a JOIN contexts c ON c.id = a.context_ref
             WHERE c.platform_id = $1 AND c.context_id = $2
             ORDER BY a.id",
        )
        .bind(platform_id)
        .bind(context_id)
        .fetch_all(&mut *conn)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(CourseActivity {
                    resource_link_id: r.try_get("resource_link_id")?,
                    title: r.try_get("title")?,
                    canvas_assignment_id: r.try_get("canvas_assignment_id")?,
                    points_possible: r.try_get("points_possible")?,
                })
            })
            .collect()
    }

    /// Every learner of a platform, with the identifiers seen at launch.
    pub async fn learner_ids(conn: &mut AnyConnection, platform_id: i64) -> Result<Vec<LearnerIds>> {
        let rows = sqlx::query(
            "SELECT lti_user_id, person_sourcedid, canvas_user_id, email FROM learners
             WHERE platform_id = $1 ORDER BY id",
        )
        .bind(platform_id)
        .fetch_all(&mut *conn)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LearnerIds {
                    lti_user_id: r.try_get("lti_user_id")?,
                    person_sourcedid: r.try_get("person_sourcedid")?,
                    canvas_user_id: r.try_get("canvas_user_id")?,
                    email: r.try_get("email")?,
                })
            })
            .collect()
    }
}
