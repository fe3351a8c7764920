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
