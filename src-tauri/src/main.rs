// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    // On Linux the window is painted without GPU compositing unless PASSBACK_GPU=1: a
    // page of tables and forms needs none, and WebKitGTK's compositor keeps a GL stack
    // and its buffers in the web process (about 80 MB under Xvfb, see BENCHMARKS.md).
    // A user's own WEBKIT_DISABLE_COMPOSITING_MODE wins.
    #[cfg(target_os = "linux")]
    if std::env::var_os("PASSBACK_GPU").is_none_or(|v| v != "1")
        && std::env::var_os("WEBKIT_DISABLE_COMPOSITING_MODE").is_none()
    {
        // SAFETY: the first statement of main, before any thread exists: nothing can
        // read the environment concurrently.
        unsafe { std::env::set_var("WEBKIT_DISABLE_COMPOSITING_MODE", "1") };
    }
    passback_desktop::run();
}
