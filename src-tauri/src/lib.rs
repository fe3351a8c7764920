//! The desktop shell: opens the workspace, manages it, and exposes the core's API
//! as Tauri commands. Every command is a one-line adapter; all logic is in `passback`.

use passback::model::{ActivityRow, DoctorReport, GradeRow, Overview, Platform};
use passback::{Error, Passback};
use tauri::{Manager, State};

/// The opened workspace, or why it could not be opened (shown in the window).
struct Workspace {
    passback: Result<Passback, Error>,
    /// Keeps the demo workspace's sandbox LMS running while the app is open.
    _demo: Option<passback::demo::DemoWorkspace>,
}

impl Workspace {
    fn get(&self) -> Result<&Passback, Error> {
        self.passback.as_ref().map_err(Clone::clone)
    }
}

#[tauri::command]
async fn overview(ws: State<'_, Workspace>) -> Result<Overview, Error> {
    ws.get()?.overview().await
}

#[tauri::command]
async fn list_platforms(ws: State<'_, Workspace>) -> Result<Vec<Platform>, Error> {
    ws.get()?.list_platforms().await
}

#[tauri::command]
async fn list_activities(ws: State<'_, Workspace>) -> Result<Vec<ActivityRow>, Error> {
    ws.get()?.list_activities().await
}

#[tauri::command]
async fn list_grades(ws: State<'_, Workspace>) -> Result<Vec<GradeRow>, Error> {
    ws.get()?.list_grades().await
}

#[tauri::command]
async fn doctor(ws: State<'_, Workspace>) -> Result<DoctorReport, Error> {
    ws.get()?.doctor().await
}

/// Open the ledger (or the demo workspace) before the window shows. A failure is kept and
/// reported by every command, so the window opens and says what is wrong.
fn open_workspace() -> Workspace {
    let opened = tauri::async_runtime::block_on(passback::demo::open_desktop_workspace());
    match opened {
        Ok((passback, demo)) => Workspace {
            passback: Ok(passback),
            _demo: demo,
        },
        Err(e) => Workspace {
            passback: Err(e),
            _demo: None,
        },
    }
}

pub fn run() {
    tauri::Builder::default()
        .setup(|app| {
            app.manage(open_workspace());
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            overview,
            list_platforms,
            list_activities,
            list_grades,
            doctor
        ])
        .run(tauri::generate_context!())
        .expect("error while running Passback");
}

#[cfg(test)]
mod tests {
    //! The command list lives in four places that must agree: the core's bridge
    //! (`passback::bridge::COMMANDS`), `generate_handler!` above, the app manifest in
    //! build.rs (without it Tauri would not enforce the capability) and the capability.

    use passback::bridge::COMMANDS;

    /// The quoted names in `src` between `start` and the next `end`.
    fn names_between(src: &str, start: &str, end: &str) -> Vec<String> {
        let from = src.find(start).expect("start marker") + start.len();
        let to = from + src[from..].find(end).expect("end marker");
        src[from..to]
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn manifest_handler_and_capability_name_exactly_the_bridge_commands() {
        let want: Vec<String> = COMMANDS.iter().map(|c| c.to_string()).collect();
        let manifest = names_between(include_str!("../build.rs"), ".commands(&[", "]");
        assert_eq!(manifest, want, "build.rs app manifest");
        let handler = names_between(include_str!("lib.rs"), "generate_handler![", "]");
        assert_eq!(handler, want, "generate_handler!");
        let granted = names_between(
            include_str!("../capabilities/default.json"),
            "\"permissions\": [",
            "]",
        );
        let want_granted: Vec<String> = COMMANDS
            .iter()
            .map(|c| format!("allow-{}", c.replace('_', "-")))
            .collect();
        assert_eq!(
            granted, want_granted,
            "capabilities/default.json grants only our commands"
        );
    }
}
