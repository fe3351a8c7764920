//! The commands the window may call, listed once. The desktop shell (Tauri IPC)
//! and the browser bridge (`passback ui-server`) both route every call through
//! [`dispatch`]; the UI's TypeScript types are generated from the same list
//! ([`typescript`], written to `ui/src/lib/bindings.ts` by `passback-bindgen`).

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use ts_rs::TS;

use super::Passback;
use super::audit::{AttemptDetail, TimelineQuery};
use super::grades::GradesQuery;
use super::jobs::{ImportPath, ImportUpload, JobFeed, JobQuery, JobStarted};
use super::platforms::{ConnectionResult, ConnectionTest, PlatformForm, RemovePlatform, RemovedPlatform};
use super::sync::{Health, ReconcileRequest, SyncRequest};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{ActivityRow, DoctorReport, GradeRow, Overview, Platform};
use crate::store::GradesPage;
use crate::sync::engine::PlanSummary;

/// The commands that only read the ledger: the ones a ledger opened read-only
/// (not trusted yet) answers. Every other command writes, sends or uses the
/// keyring, and is refused there.
pub const READS: &[&str] = &[
    "overview",
    "list_platforms",
    "list_activities",
    "list_grades",
    "grades_page",
    "grades_count",
    "doctor",
    "grade_timeline",
    "health",
    "plan_sync",
    "job_events",
];

/// The commands the [`Session`](super::session::Session) answers itself.
pub const SESSION_COMMANDS: &[&str] = &["open_ledger", "trust_ledger"];

/// The arguments of a command that takes none.
#[derive(Debug, Clone, Copy, Default, Deserialize, TS)]
pub struct NoArgs {}

/// The error every command rejects with, as the UI sees it.
#[derive(Debug, Clone, TS)]
#[ts(rename = "PassbackError")]
pub struct ErrorShape {
    /// A stable machine-readable kind.
    pub kind: ErrorKind,
    /// What happened and what to do next.
    pub message: String,
}

/// A command's arguments, checked at the boundary: an object of named arguments
/// (`null` for none) of the right types, with no name the command does not know —
/// a window, a page or a script that sends anything else gets `invalid` and
/// nothing runs.
pub(crate) fn parse_args<A: DeserializeOwned>(command: &str, args: Value) -> Result<A> {
    let args = match args {
        Value::Null => Value::Object(Default::default()),
        Value::Object(_) => args,
        other => {
            let got = match other {
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                _ => "a list",
            };
            return Err(Error::invalid(format!(
                "bad arguments for {command}: expected named arguments (an object), got {got}"
            )));
        }
    };
    let mut unknown = Vec::new();
    let mut note = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
    let parsed: std::result::Result<A, _> =
        serde_path_to_error::deserialize(serde_ignored::Deserializer::new(args, &mut note));
    let a = parsed.map_err(|e| {
        let at = e.path().to_string();
        let inner = e.into_inner();
        Error::invalid(if at == "." {
            format!("bad arguments for {command}: {inner}")
        } else {
            format!("bad arguments for {command}: {at}: {inner}")
        })
    })?;
    if !unknown.is_empty() {
        return Err(Error::invalid(format!(
            "bad arguments for {command}: {} {} not an argument of this command; nothing was done",
            unknown.join(", "),
            if unknown.len() == 1 { "is" } else { "are" }
        )));
    }
    Ok(a)
}

pub(crate) fn to_json<T: serde::Serialize>(v: T) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| Error::internal(e.to_string()))
}

/// Declares the command table: the names, [`dispatch`], and the TypeScript map.
macro_rules! commands {
    ($( $(#[doc = $doc:literal])* $name:ident($args:ty) -> $out:ty => |$pb:ident, $a:pat_param| $call:expr; )*) => {
        /// Every command name, in the order of the table.
        pub const COMMANDS: &[&str] = &[$(stringify!($name)),*];

        /// Run one command by name with JSON arguments (`null` means none).
        pub async fn dispatch(pb: &Passback, command: &str, args: Value) -> Result<Value> {
            if pb.is_read_only() && !READS.contains(&command) && COMMANDS.contains(&command) {
                return Err(Error::new(
                    ErrorKind::ReadOnly,
                    format!(
                        "this ledger is open read-only because it is not trusted yet, so `{command}` is refused: \
                         nothing is written or sent and no keyring entry is used. Trust it if you know where it came from."
                    ),
                ));
            }
            match command {
                $(stringify!($name) => {
                    let $a: $args = parse_args(command, args)?;
                    let $pb = pb;
                    let out: $out = $call.await?;
                    to_json(out)
                })*
                other => Err(Error::not_found(format!("unknown command {other:?}"))),
            }
        }

        /// The command map and every type it names, as TypeScript.
        pub fn typescript() -> String {
            let mut b = Bindings::default();
            $(
                b.visit::<$args>();
                b.visit::<$out>();
                b.command(
                    stringify!($name),
                    &[$($doc),*],
                    &<$args as TS>::name(&b.cfg),
                    &<$out as TS>::name(&b.cfg),
                );
            )*
            b.visit::<super::session::OpenLedger>();
            b.visit::<super::session::TrustLedger>();
            b.command(
                "open_ledger",
                &[" Open another ledger (File → Open ledger…): read-only, with no keyring, until this user trusts it."],
                &<super::session::OpenLedger as TS>::name(&b.cfg),
                &<Overview as TS>::name(&b.cfg),
            );
            b.command(
                "trust_ledger",
                &[" Trust the ledger open read-only (or the one at `path`) and reopen it normally."],
                &<super::session::TrustLedger as TS>::name(&b.cfg),
                &<Overview as TS>::name(&b.cfg),
            );
            b.visit::<ErrorShape>();
            b.finish()
        }
    };
}

commands! {
    /// What the main window shows on open.
    overview(NoArgs) -> Overview => |pb, _| pb.overview();
    /// Every platform (never a secret).
    list_platforms(NoArgs) -> Vec<Platform> => |pb, _| pb.list_platforms();
    /// Every activity with its counts.
    list_activities(NoArgs) -> Vec<ActivityRow> => |pb, _| pb.list_activities();
    /// The current version of every grade with its status (small ledgers; windows page with `grades_page`).
    list_grades(NoArgs) -> Vec<GradeRow> => |pb, _| pb.list_grades();
    /// One page of the grade listing: filtered and paged (keyset) in SQL.
    grades_page(GradesQuery) -> GradesPage => |pb, q| pb.grades_page(&q);
    /// How many grades a listing query matches (asked beside a page that leaves its total out).
    grades_count(GradesQuery) -> u64 => |pb, q| pb.grades_count(&q);
    /// The ledger's and the keyring's health.
    doctor(NoArgs) -> DoctorReport => |pb, _| pb.doctor();
    /// Add a platform; its secret goes to the keyring and never comes back.
    add_platform(PlatformForm) -> Platform => |pb, f| pb.add_platform_form(f);
    /// Change a platform's connection (the name stays); a non-empty secret replaces the keyring's.
    edit_platform(PlatformForm) -> Platform => |pb, f| pb.edit_platform(f);
    /// Remove a platform, its grades and history and its keyring entries (`force` once it has grades).
    remove_platform(RemovePlatform) -> RemovedPlatform => |pb, r| pb.remove_platform(&r.name, r.force);
    /// One signed read against a sourcedid the user gives (nothing is written).
    test_connection(ConnectionTest) -> ConnectionResult => |pb, t| pb.test_connection(&t);
    /// One grade's attempts, newest first, with redacted requests and responses.
    grade_timeline(TimelineQuery) -> Vec<AttemptDetail> => |pb, q| pb.grade_timeline(&q);
    /// Grades by status per course, failures by cause, the last run: the overview.
    health(NoArgs) -> Health => |pb, _| pb.health();
    /// What a sync would do (counts by plan), sending nothing: the preview before Send.
    plan_sync(SyncRequest) -> PlanSummary => |pb, r| pb.plan_sync(&r);
    /// Start sending what is missing, in the background (see `job_events`, `cancel_job`).
    start_sync(SyncRequest) -> JobStarted => |pb, r| pb.start_sync(r);
    /// Import a chosen or dropped file in the background (`options.dry_run`: preview only).
    start_import(ImportUpload) -> JobStarted => |pb, u| pb.start_import(u);
    /// Import the file at a path in the background (the desktop's file dialog, a dropped file).
    start_import_path(ImportPath) -> JobStarted => |pb, r| pb.start_import_path(r);
    /// Start reading what the LMS holds (Check LMS), in the background.
    start_reconcile(ReconcileRequest) -> JobStarted => |pb, r| pb.start_reconcile(r);
    /// Ask a running job to stop: requests in flight finish, nothing new starts.
    cancel_job(JobQuery) -> bool => |pb, q| pb.cancel_job(&q);
    /// A job's events from number `after` on (progress, failed grades, the end).
    job_events(JobQuery) -> JobFeed => |pb, q| pb.job_events(&q);
}

/// Collects TypeScript declarations, each type once, in a stable order.
struct Bindings {
    cfg: ts_rs::Config,
    decls: std::collections::BTreeMap<String, String>,
    commands: Vec<String>,
}

impl Default for Bindings {
    fn default() -> Self {
        Self {
            // Ledger ids fit in a JavaScript number.
            cfg: ts_rs::Config::new().with_large_int("number"),
            decls: Default::default(),
            commands: Vec::new(),
        }
    }
}

impl Bindings {
    fn visit<T: TS + 'static + ?Sized>(&mut self) {
        struct Visit<'a>(&'a mut Bindings);
        impl ts_rs::TypeVisitor for Visit<'_> {
            fn visit<U: TS + 'static + ?Sized>(&mut self) {
                self.0.visit::<U>();
            }
        }
        if T::output_path().is_some() {
            let name = T::ident(&self.cfg);
            if self.decls.contains_key(&name) {
                return;
            }
            let mut decl = String::new();
            if let Some(docs) = T::docs() {
                decl.push_str(&docs);
            }
            decl.push_str("export ");
            decl.push_str(&T::decl(&self.cfg));
            self.decls.insert(name, decl);
        }
        T::visit_dependencies(&mut Visit(self));
        T::visit_generics(&mut Visit(self));
    }

    fn command(&mut self, name: &str, docs: &[&str], args: &str, result: &str) {
        let mut s = String::new();
        if !docs.is_empty() {
            s.push_str("  /**");
            for d in docs {
                s.push_str(d);
            }
            s.push_str(" */\n");
        }
        s.push_str(&format!("  {name}: {{ args: {args}; result: {result} }};\n"));
        self.commands.push(s);
    }

    fn finish(self) -> String {
        let mut out = String::from(
            "// Generated by `cargo run -p passback-bindgen` from the command table in\n\
             // src/app/commands.rs and the types it names. Do not edit by hand.\n\n",
        );
        for decl in self.decls.values() {
            out.push_str(decl.trim_end());
            out.push_str("\n\n");
        }
        out.push_str("/** Every command the window may call: its arguments and its result. */\n");
        out.push_str("export interface Commands {\n");
        for c in &self.commands {
            out.push_str(c);
        }
        out.push_str("}\n\nexport type CommandName = keyof Commands;\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dispatch_runs_commands_and_refuses_unknown_ones() {
        let pb = Passback::open_in_memory().await.unwrap();
        let v = dispatch(&pb, "list_grades", Value::Null).await.unwrap();
        assert_eq!(v, serde_json::json!([]));
        let v = dispatch(&pb, "overview", serde_json::json!({})).await.unwrap();
        assert_eq!(v["workspace"], "ledger");
        let e = dispatch(&pb, "drop_tables", Value::Null).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
        let e = dispatch(&pb, "overview", serde_json::json!([1, 2]))
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid, "arguments are checked: {}", e.message);
        for name in COMMANDS {
            if name.starts_with("start_") {
                continue; // they start background work: src/app/jobs.rs tests them
            }
            let got = dispatch(&pb, name, Value::Null).await;
            if name.contains("job") {
                // Job commands name a job; there is none in a fresh ledger.
                assert_eq!(got.unwrap_err().kind, ErrorKind::NotFound, "{name}");
            } else if ["edit_platform", "remove_platform"].contains(name) {
                // They name a platform; there is none in a fresh ledger.
                assert_eq!(got.unwrap_err().kind, ErrorKind::NotFound, "{name}");
            } else if ["add_platform", "test_connection"].contains(name) {
                // They need what a person types: without it, the core says what is missing.
                assert_eq!(got.unwrap_err().kind, ErrorKind::Invalid, "{name}");
            } else {
                got.unwrap();
            }
        }
    }

    #[tokio::test]
    async fn every_command_checks_its_arguments_before_anything_runs() {
        let pb = Passback::open_in_memory().await.unwrap();
        for name in COMMANDS {
            for (args, why) in [
                (
                    serde_json::json!({ "surprise": 1 }),
                    "surprise is not an argument",
                ),
                (serde_json::json!([]), "got a list"),
                (serde_json::json!("overview"), "got a string"),
                (serde_json::json!(7), "got a number"),
            ] {
                let e = dispatch(&pb, name, args.clone()).await.unwrap_err();
                assert_eq!(e.kind, ErrorKind::Invalid, "{name} {args}: {}", e.message);
                // A command with a required argument may name that one first.
                assert!(
                    e.message.contains(why) || e.message.contains("missing field"),
                    "{name} {args}: {}",
                    e.message
                );
            }
        }
        // Wrong types and nested names are refused with where they are.
        for (name, args, why) in [
            (
                "grades_page",
                serde_json::json!({ "limit": "ten" }),
                "limit: invalid type",
            ),
            (
                "grades_page",
                serde_json::json!({ "filter": { "status": ["nope"] } }),
                "filter",
            ),
            (
                "remove_platform",
                serde_json::json!({ "name": "x", "force": "yes" }),
                "force: invalid type",
            ),
            ("cancel_job", serde_json::json!({ "job_id": -1 }), "job_id"),
            (
                "start_sync",
                serde_json::json!({ "filter": { "grades": [1] }, "sql": "DROP TABLE grades" }),
                "sql is not",
            ),
        ] {
            let e = dispatch(&pb, name, args.clone()).await.unwrap_err();
            assert_eq!(e.kind, ErrorKind::Invalid, "{name} {args}: {}", e.message);
            assert!(e.message.contains(why), "{name} {args}: {}", e.message);
        }
        // Nothing ran: no job started, no platform appeared.
        assert!(pb.list_platforms().await.unwrap().is_empty());
        let e = dispatch(&pb, "job_events", serde_json::json!({ "job_id": 1, "after": 0 }))
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound, "{}", e.message);
    }

    #[test]
    fn typescript_names_every_command_and_type_once() {
        let ts = typescript();
        for name in COMMANDS {
            assert!(ts.contains(&format!("  {name}: {{ args: ")), "{name}");
        }
        for ty in ["Overview", "GradeRow", "GradeStatus", "Platform", "PassbackError"] {
            assert_eq!(
                ts.matches(&format!("export type {ty} = ")).count(),
                1,
                "{ty} declared once:\n{ts}"
            );
        }
        assert!(ts.contains("grade_id: number"), "ids are numbers:\n{ts}");
    }
}
