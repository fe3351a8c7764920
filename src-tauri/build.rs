fn main() {
    // Declaring the app's commands makes Tauri enforce the capability files for them:
    // the window may call exactly the commands granted in capabilities/default.json.
    // There is one: `call`, which routes to the core's command table.
    tauri_build::try_build(
        tauri_build::Attributes::new().app_manifest(tauri_build::AppManifest::new().commands(&["call"])),
    )
    .expect("tauri-build failed");
}
