fn main() -> std::process::ExitCode {
    passback::cli::main()
}
