//! The desktop shell: opens the workspace, manages it, and hands every call from the
//! window to the core (`passback::app::session::Session`, which routes to the
//! command table `passback::app::commands`). One IPC command, `call`, whose
//! allow-list is that table; all logic is in `passback`. The shell adds what only a
//! desktop has: the File menu (Open ledger…), the native file dialog and
//! notifications (Tauri's dialog and notification plugins, called from the window).

use passback::Error;
use passback::app::session::{Session, TrustList};
use passback::secrets::Secrets;
use serde_json::Value;
use tauri::menu::{Menu, MenuItem, PredefinedMenuItem, Submenu};
use tauri::{Emitter, Manager, State};

/// The open ledger (swappable from File → Open ledger…).
struct Workspace {
    session: Session,
    /// Keeps the demo workspace's sandbox LMS running while the app is open.
    _demo: Option<passback_sandbox::demo::DemoWorkspace>,
}

/// Run one of the core's commands by name (`overview`, `grades_page`, `open_ledger`, …).
#[tauri::command]
async fn call(ws: State<'_, Workspace>, command: String, args: Option<Value>) -> Result<Value, Error> {
    ws.session.dispatch(&command, args.unwrap_or(Value::Null)).await
}

/// Follow a job the window started (`start_sync`, `start_reconcile`): every event
/// from number `after` on goes to the window over `on_event` as it happens, until
/// the job ends or the window stops listening.
#[tauri::command]
async fn watch_job(
    ws: State<'_, Workspace>,
    job_id: u64,
    after: u64,
    on_event: tauri::ipc::Channel<passback::app::jobs::JobEvent>,
) -> Result<(), Error> {
    let q = passback::app::jobs::JobQuery { job_id, after };
    ws.session
        .current()?
        .watch_job(&q, |e| match on_event.send(e.clone()) {
            Ok(()) => passback::progress::Flow::Continue,
            Err(_) => passback::progress::Flow::Stop,
        })
        .await
}

/// Open the ledger (or the demo workspace) before the window shows. A failure is kept and
/// reported by every command, so the window opens and says what is wrong (and can
/// open another ledger).
fn open_workspace() -> Workspace {
    let secrets = tauri::async_runtime::block_on(Secrets::os());
    let opened =
        tauri::async_runtime::block_on(passback_sandbox::demo::open_desktop_workspace(secrets.clone()));
    let (pb, demo) = match opened {
        Ok((pb, demo)) => (Ok(pb), demo),
        Err(e) => (Err(e), None),
    };
    let trust = TrustList::default_location()
        .unwrap_or_else(|_| TrustList::at(std::env::temp_dir().join("passback-trusted-ledgers.json")));
    Workspace {
        session: Session::new(pb, secrets, trust),
        _demo: demo,
    }
}

/// File → Open ledger… (Ctrl+O), then Quit. A menu choice goes to the window as a
/// `menu` event carrying the item's id; the window runs the same flow as its button.
fn menu(app: &tauri::AppHandle) -> tauri::Result<Menu<tauri::Wry>> {
    let open = MenuItem::with_id(app, "open-ledger", "Open ledger…", true, Some("CmdOrCtrl+O"))?;
    let import = MenuItem::with_id(app, "import", "Import a file…", true, Some("CmdOrCtrl+I"))?;
    let quit = PredefinedMenuItem::quit(app, Some("Quit"))?;
    let file = Submenu::with_items(
        app,
        "File",
        true,
        &[&open, &import, &PredefinedMenuItem::separator(app)?, &quit],
    )?;
    Menu::with_items(app, &[&file])
}

pub fn run() {
    tauri::Builder::default()
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_notification::init())
        .setup(|app| {
            app.manage(open_workspace());
            app.set_menu(menu(app.handle())?)?;
            Ok(())
        })
        .on_menu_event(|app, event| {
            let id = event.id().0.clone();
            if id == "open-ledger" || id == "import" {
                let _ = app.emit_to("main", "menu", id);
            }
        })
        .invoke_handler(tauri::generate_handler![call, watch_job])
        .run(tauri::generate_context!())
        .expect("error while running Passback");
}

#[cfg(test)]
mod tests {
    //! The window's IPC surface is named in three places that must agree:
    //! `generate_handler!` above, the app manifest in build.rs (without it Tauri would
    //! not enforce the capability) and the capability. Which core commands `call`
    //! reaches is the core's command table, tested there.

    /// The quoted names in `src` between `start` and the next `end`.
    fn names_between(src: &str, start: &str, end: &str) -> Vec<String> {
        let from = src.find(start).expect("start marker") + start.len();
        let to = from + src[from..].find(end).expect("end marker");
        src[from..to]
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == ':'))
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn manifest_handler_and_capability_name_exactly_the_ipc_commands() {
        let want = vec!["call".to_string(), "watch_job".to_string()];
        let manifest = names_between(include_str!("../build.rs"), ".commands(&[", "]");
        assert_eq!(manifest, want, "build.rs app manifest");
        let handler = names_between(include_str!("lib.rs"), "generate_handler![", "]");
        assert_eq!(handler, want, "generate_handler!");
        let granted = names_between(
            include_str!("../capabilities/default.json"),
            "\"permissions\": [",
            "]",
        );
        assert_eq!(
            granted,
            [
                "allow-call",
                "allow-watch-job",
                // The native file dialog, to open only (never to save or browse).
                "dialog:allow-open",
                // "A long send finished" while the window is in the background.
                "notification:default",
                // The File menu's choices reach the window as events.
                "core:event:allow-listen",
                "core:event:allow-unlisten",
            ]
            .map(String::from),
            "capabilities/default.json grants our commands and these plugin permissions only"
        );
    }
}
