fn main() {
    // Declaring the app's commands makes Tauri enforce the capability files for them:
    // the window may call exactly the commands granted in capabilities/default.json.
    tauri_build::try_build(tauri_build::Attributes::new().app_manifest(
        tauri_build::AppManifest::new().commands(&[
            "overview",
            "list_platforms",
            "list_activities",
            "list_grades",
            "doctor",
        ]),
    ))
    .expect("tauri-build failed");
}
