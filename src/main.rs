//! The `ckptconv` binary: parse arguments, run, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = ckptconv::cli::Cli::parse();
    match ckptconv::cli::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("ckptconv: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
