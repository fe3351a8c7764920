//! `passback grades`, `passback grade set`, `passback activities`.

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use passback::Result;
use passback::app::ManualGrade;
use passback::model::NewGrade;

use super::open;
use super::output::{JsonFlag, fmt_score, print_json, print_table};

#[derive(Debug, Subcommand)]
pub enum GradeCmd {
    /// Record a local grade by hand (creates the context, activity and learner if needed).
    Set {
        #[arg(long)]
        platform: String,
        /// LTI context_id of the course.
        #[arg(long)]
        context: String,
        /// LTI resource_link_id of the activity.
        #[arg(long)]
        resource_link: String,
        /// LTI user_id of the learner.
        #[arg(long)]
        user: String,
        #[arg(long)]
        score: f64,
        #[arg(long)]
        max: f64,
        #[arg(long)]
        title: Option<String>,
        #[arg(long)]
        points: Option<f64>,
        #[arg(long = "learner-name")]
        learner_name: Option<String>,
        #[arg(long)]
        comment: Option<String>,
    },
}

pub async fn list_grades(db: Option<&Path>, f: JsonFlag) -> Result<ExitCode> {
    let pb = open(db).await?;
    let gs = pb.list_grades().await?;
    if f.json {
        print_json(&gs)?;
    } else if gs.is_empty() {
        println!("No grades in the ledger yet.");
    } else {
        let rows = gs
            .iter()
            .map(|g| {
                vec![
                    g.platform.clone(),
                    g.context_id.clone(),
                    g.activity_title
                        .clone()
                        .unwrap_or_else(|| g.resource_link_id.clone()),
                    g.learner_name.clone().unwrap_or_else(|| g.lti_user_id.clone()),
                    format!("{}/{}", fmt_score(g.score_given), fmt_score(g.score_maximum)),
                    format!("v{}", g.version),
                    g.status.as_str().into(),
                    g.status_detail.clone().unwrap_or_default(),
                ]
            })
            .collect::<Vec<_>>();
        print_table(
            &[
                "PLATFORM", "CONTEXT", "ACTIVITY", "LEARNER", "SCORE", "VER", "STATUS", "DETAIL",
            ],
            &rows,
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn run(db: Option<&Path>, cmd: GradeCmd) -> Result<ExitCode> {
    let GradeCmd::Set {
        platform,
        context,
        resource_link,
        user,
        score,
        max,
        title,
        points,
        learner_name,
        comment,
    } = cmd;
    let pb = open(db).await?;
    let (g, created) = pb
        .record_manual_grade(ManualGrade {
            platform,
            context_id: context,
            resource_link_id: resource_link,
            activity_title: title,
            points_possible: points,
            lti_user_id: user,
            learner_name,
            grade: NewGrade {
                score_given: score,
                score_maximum: max,
                comment,
                result_text: None,
                result_url: None,
                submitted_at: None,
                source: "cli".into(),
            },
        })
        .await?;
    if created {
        println!(
            "Recorded grade {}/{} as version {}.",
            fmt_score(g.score_given),
            fmt_score(g.score_maximum),
            g.version
        );
    } else {
        println!("Unchanged: version {} already holds this grade.", g.version);
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn list_activities(db: Option<&Path>, f: JsonFlag) -> Result<ExitCode> {
    let pb = open(db).await?;
    let acts = pb.list_activities().await?;
    if f.json {
        print_json(&acts)?;
    } else if acts.is_empty() {
        println!("No activities in the ledger yet.");
    } else {
        let rows = acts
            .iter()
            .map(|a| {
                vec![
                    a.platform.clone(),
                    a.context_id.clone(),
                    a.resource_link_id.clone(),
                    a.title.clone().unwrap_or_default(),
                    a.points_possible.map(fmt_score).unwrap_or_default(),
                    a.grades.to_string(),
                ]
            })
            .collect::<Vec<_>>();
        print_table(
            &[
                "PLATFORM",
                "CONTEXT",
                "RESOURCE LINK",
                "TITLE",
                "POINTS",
                "GRADES",
            ],
            &rows,
        );
    }
    Ok(ExitCode::SUCCESS)
}
