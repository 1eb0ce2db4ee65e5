//! The `ckptconv` binary: parse arguments, run, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // The child side of HDF5 isolation (see `formats::h5::set_isolation`).
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.len() >= 3 && args[1] == "__h5probe" {
        let emit = args.len() == 4 && args[2] == "--emit";
        let file = std::path::Path::new(&args[args.len() - 1]);
        return ExitCode::from(ckptconv::formats::h5::probe(file, emit));
    }
    ckptconv::output::set_cli_signal_dispositions();
    if let Ok(exe) = std::env::current_exe() {
        ckptconv::formats::h5::set_isolation(exe);
    }
    let cli = ckptconv::cli::Cli::parse();
    match ckptconv::cli::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("ckptconv: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
