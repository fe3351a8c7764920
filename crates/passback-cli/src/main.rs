//! The `passback` command line (see `cli`). Exit codes: 0 success, 1 failure, 2 usage.

// The engines allocate many small, short-lived buffers per request (signed
// bodies, excerpts, rows); mimalloc serves them with less CPU than glibc's
// allocator (see BENCHMARKS.md, sync).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cli;
mod ui_server;

fn main() -> std::process::ExitCode {
    cli::main()
}
