//! The `git-pair` executable: parse, run, report one error chain, exit with
//! a documented status (see `git_pair::exit`).

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use git_pair::cli::Cli;
use git_pair::exit::{self, Exit};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version end up here too; they go to stdout.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                Exit::Usage.code()
            } else {
                0
            });
        }
    };
    let prefix = git_pair::error_prefix(&cli);
    match git_pair::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // Never panic on a closed stderr.
            let _ = writeln!(std::io::stderr(), "{prefix}: {err:#}");
            ExitCode::from(exit::of(&err).code())
        }
    }
}
