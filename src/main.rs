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
            if !e.use_stderr() {
                return ExitCode::SUCCESS;
            }
            git_pair::events::report_usage_error(&e.to_string());
            return ExitCode::from(Exit::Usage.code());
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
