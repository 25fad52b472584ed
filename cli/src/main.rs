//! `synod`: the command-line front of a synod node. Each subcommand lives in its own module under
//! `commands/`; this file only parses arguments and turns errors into one clear line and a
//! non-zero exit.

mod cluster;
mod commands;
mod load;
mod procs;
mod scratch;
mod table;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = commands::Cli::parse();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}` prints the whole context chain on one line.
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
