fn main() {
    // Declaring the app's commands makes Tauri enforce the capability files for them:
    // the window may call exactly the commands granted in capabilities/default.json.
    // `call` routes to the core's command table; `watch_job` streams a job's progress.
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(&["call", "watch_job"])),
    )
    .expect("tauri-build failed");
}
