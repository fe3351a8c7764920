//! `cargo run -p passback-bindgen`: write the UI's TypeScript bindings from the
//! core's command table (`passback::app::commands`). `./dev` runs it before every
//! UI build; the test below fails when the committed file is out of date.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Where the UI imports its generated types from.
fn bindings_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui/src/lib/bindings.ts")
}

fn main() -> ExitCode {
    let path = bindings_path();
    let want = passback::app::commands::typescript();
    if std::fs::read_to_string(&path).ok().as_deref() == Some(want.as_str()) {
        return ExitCode::SUCCESS;
    }
    match std::fs::write(&path, want) {
        Ok(()) => {
            eprintln!("wrote {}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot write {}: {e}", path.display());
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_committed_bindings_are_up_to_date() {
        let committed = std::fs::read_to_string(super::bindings_path()).unwrap_or_default();
        assert!(
            committed == passback::app::commands::typescript(),
            "ui/src/lib/bindings.ts is out of date: run `cargo run -p passback-bindgen` and commit it"
        );
    }
}
