//! The `passback` command line (see `cli`). Exit codes: 0 success, 1 failure, 2 usage.

mod cli;
mod ui_server;

fn main() -> std::process::ExitCode {
    cli::main()
}
