// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    // PASSBACK_GPU=0 paints the window without WebKitGTK's GPU compositor: about 80 MB
    // less in the web process (BENCHMARKS.md). Not the default: under load the real-
    // window test lost its WebKit connection during a send twice with it, never
    // without. A user's own WEBKIT_DISABLE_COMPOSITING_MODE wins.
    #[cfg(target_os = "linux")]
    if std::env::var_os("PASSBACK_GPU").is_some_and(|v| v == "0")
        && std::env::var_os("WEBKIT_DISABLE_COMPOSITING_MODE").is_none()
    {
        // SAFETY: the first statement of main, before any thread exists: nothing can
        // read the environment concurrently.
        unsafe { std::env::set_var("WEBKIT_DISABLE_COMPOSITING_MODE", "1") };
    }
    passback_desktop::run();
}
