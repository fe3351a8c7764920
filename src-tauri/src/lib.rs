//! The desktop shell: opens the workspace, manages it, and hands every call from the
//! window to the core's command table (`passback::app::commands`). One IPC command,
//! `call`, whose allow-list is that table; all logic is in `passback`.

use passback::{Error, Passback};
use serde_json::Value;
use tauri::{Manager, State};

/// The opened workspace, or why it could not be opened (shown in the window).
struct Workspace {
    passback: Result<Passback, Error>,
    /// Keeps the demo workspace's sandbox LMS running while the app is open.
    _demo: Option<passback_sandbox::demo::DemoWorkspace>,
}

impl Workspace {
    fn get(&self) -> Result<&Passback, Error> {
        self.passback.as_ref().map_err(Clone::clone)
    }
}

/// Run one of the core's commands by name (`overview`, `list_grades`, …).
#[tauri::command]
async fn call(ws: State<'_, Workspace>, command: String, args: Option<Value>) -> Result<Value, Error> {
    passback::app::commands::dispatch(ws.get()?, &command, args.unwrap_or(Value::Null)).await
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
    ws.get()?
        .watch_job(&q, |e| match on_event.send(e.clone()) {
            Ok(()) => passback::progress::Flow::Continue,
            Err(_) => passback::progress::Flow::Stop,
        })
        .await
}

/// Open the ledger (or the demo workspace) before the window shows. A failure is kept and
/// reported by every command, so the window opens and says what is wrong.
fn open_workspace() -> Workspace {
    let opened = tauri::async_runtime::block_on(passback_sandbox::demo::open_desktop_workspace());
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
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
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
            vec!["allow-call".to_string(), "allow-watch-job".to_string()],
            "capabilities/default.json grants only our command"
        );
    }
}
