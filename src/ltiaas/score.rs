//! A score to send to one learner, checked before anything is journaled or sent.

use super::client::{ActivityProgress, GradingProgress, ScoreBody};
use crate::error::{Error, Result};

/// A score to send to one learner.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct ScoreToSend {
    pub user_id: String,
    /// 0 is a valid score.
    pub score_given: f64,
    pub score_maximum: f64,
    pub comment: Option<String>,
    pub activity_progress: ActivityProgress,
    pub grading_progress: GradingProgress,
}

impl ScoreToSend {
    /// A final score (`Completed` / `FullyGraded`), the usual re-send.
    pub fn final_score(user_id: &str, score_given: f64, score_maximum: f64) -> Self {
        Self {
            user_id: user_id.to_string(),
            score_given,
            score_maximum,
            comment: None,
            activity_progress: ActivityProgress::Completed,
            grading_progress: GradingProgress::FullyGraded,
        }
    }

    /// Check the values before anything is journaled or sent.
    pub fn validate(&self) -> Result<()> {
        if self.user_id.trim().is_empty() {
            return Err(Error::invalid("the user id is empty"));
        }
        if !self.score_maximum.is_finite() || self.score_maximum <= 0.0 {
            return Err(Error::invalid(format!(
                "the score maximum must be a number above 0, got {}",
                self.score_maximum
            )));
        }
        if !self.score_given.is_finite() || self.score_given < 0.0 {
            return Err(Error::invalid(format!(
                "the score must be a number of 0 or more, got {}",
                self.score_given
            )));
        }
        Ok(())
    }

    /// The request body with `timestamp`.
    pub fn body(&self, timestamp: String) -> ScoreBody {
        ScoreBody {
            user_id: self.user_id.clone(),
            score_given: Some(self.score_given),
            score_maximum: Some(self.score_maximum),
            comment: self.comment.clone(),
            activity_progress: self.activity_progress,
            grading_progress: self.grading_progress,
            timestamp,
        }
    }
}
