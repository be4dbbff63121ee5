use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = dypose::cli::Cli::parse();
    match dypose::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
