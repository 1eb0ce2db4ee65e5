//! The `ckptconv` binary: everything it does is the library's command line.

fn main() -> std::process::ExitCode {
    ckptconv::run_cli()
}
