//! `passback grades`, `passback grade set`, `passback activities`.

use std::path::Path;
use std::process::ExitCode;

use std::io::Write;

use clap::{Args, Subcommand, ValueEnum};
use passback::app::ManualGrade;
use passback::model::{GradeRow, GradeStatus, NewGrade};
use passback::store::GradeFilter;
use passback::{Error, Result};

use super::open;
use super::output::{JsonFlag, fmt_score, print_json, print_table, table_widths, write_row};

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

/// `passback grades`: filters on the stored status and names, in SQL.
#[derive(Debug, Args)]
pub struct GradesArgs {
    /// Only grades with this status (repeatable, or comma-separated): pending, in_sync,
    /// lms_missing, differs, failed, cannot_send, unknown.
    #[arg(long, value_name = "STATUS", value_delimiter = ',')]
    pub status: Vec<StatusArg>,
    #[command(flatten)]
    pub which: super::sync::Which,
    /// Print JSON (an array, streamed) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// A grade status, as the command line spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum StatusArg {
    Pending,
    InSync,
    LmsMissing,
    Differs,
    Failed,
    CannotSend,
    Unknown,
}

impl From<StatusArg> for GradeStatus {
    fn from(s: StatusArg) -> Self {
        match s {
            StatusArg::Pending => GradeStatus::Pending,
            StatusArg::InSync => GradeStatus::InSync,
            StatusArg::LmsMissing => GradeStatus::LmsMissing,
            StatusArg::Differs => GradeStatus::Differs,
            StatusArg::Failed => GradeStatus::Failed,
            StatusArg::CannotSend => GradeStatus::CannotSend,
            StatusArg::Unknown => GradeStatus::Unknown,
        }
    }
}

/// What the LMS was seen to hold: a percentage, `none` (seen empty) or blank (never seen).
fn lms_cell(g: &GradeRow) -> String {
    match (g.lms_score, &g.lms_seen_at) {
        (Some(v), _) => format!("{}%", fmt_score(v * 100.0)),
        (None, Some(_)) => "none".into(),
        (None, None) => String::new(),
    }
}

/// Rows a table measures its column widths on before it streams the rest.
const TABLE_SAMPLE: usize = 1000;

fn grade_cells(g: &GradeRow) -> Vec<String> {
    vec![
        g.platform.clone(),
        g.context_id.clone(),
        g.activity_title
            .clone()
            .unwrap_or_else(|| g.resource_link_id.clone()),
        g.learner_name.clone().unwrap_or_else(|| g.lti_user_id.clone()),
        format!("{}/{}", fmt_score(g.score_given), fmt_score(g.score_maximum)),
        format!("v{}", g.version),
        lms_cell(g),
        g.status.as_str().into(),
        g.status_detail.clone().unwrap_or_default(),
    ]
}

pub async fn list_grades(db: Option<&Path>, a: GradesArgs) -> Result<ExitCode> {
    let pb = open(db).await?;
    let filter = GradeFilter {
        status: a.status.iter().copied().map(GradeStatus::from).collect(),
        ..a.which.filter()
    };
    let filtered = filter != GradeFilter::default();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let write_err =
        |e: std::io::Error| Error::new(passback::ErrorKind::Io, format!("cannot write the listing: {e}"));
    if a.json {
        // The same layout as a pretty-printed array, one element at a time.
        let mut n = 0u64;
        let mut item = Vec::with_capacity(512);
        pb.for_each_grade(&filter, |g| {
            item.clear();
            serde_json::to_writer_pretty(&mut item, &g).map_err(|e| Error::internal(e.to_string()))?;
            out.write_all(if n == 0 { b"[\n  " } else { b",\n  " })
                .map_err(write_err)?;
            // Indent the element's lines by two more spaces.
            for (i, line) in item.split(|b| *b == b'\n').enumerate() {
                if i > 0 {
                    out.write_all(b"\n  ").map_err(write_err)?;
                }
                out.write_all(line).map_err(write_err)?;
            }
            n += 1;
            Ok(())
        })
        .await?;
        out.write_all(if n == 0 { b"[]\n" } else { b"\n]\n" })
            .map_err(write_err)?;
        out.flush().map_err(write_err)?;
        return Ok(ExitCode::SUCCESS);
    }
    let headers = [
        "PLATFORM", "CONTEXT", "ACTIVITY", "LEARNER", "SCORE", "VER", "LMS", "STATUS", "DETAIL",
    ];
    let mut sample: Vec<Vec<String>> = Vec::new();
    let mut widths: Option<Vec<usize>> = None;
    let mut n = 0u64;
    pb.for_each_grade(&filter, |g| {
        n += 1;
        let cells = grade_cells(&g);
        match &widths {
            None => {
                sample.push(cells);
                if sample.len() == TABLE_SAMPLE {
                    let w = table_widths(&headers, &sample);
                    write_row(&mut out, &w, headers.iter().map(|h| h.to_string()).collect())
                        .map_err(write_err)?;
                    for row in sample.drain(..) {
                        write_row(&mut out, &w, row).map_err(write_err)?;
                    }
                    widths = Some(w);
                }
            }
            Some(w) => write_row(&mut out, w, cells).map_err(write_err)?,
        }
        Ok(())
    })
    .await?;
    if n == 0 {
        if filtered {
            println!("No grades match.");
        } else {
            println!("No grades in the ledger yet.");
        }
        return Ok(ExitCode::SUCCESS);
    }
    if widths.is_none() {
        let w = table_widths(&headers, &sample);
        write_row(&mut out, &w, headers.iter().map(|h| h.to_string()).collect()).map_err(write_err)?;
        for row in sample.drain(..) {
            write_row(&mut out, &w, row).map_err(write_err)?;
        }
    }
    out.flush().map_err(write_err)?;
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
