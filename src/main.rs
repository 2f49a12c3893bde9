//! The `git-pair` executable: parse, run, report one error chain, exit with
//! a documented status (see `git_pair::exit`).

use std::io::Write;
use std::process::ExitCode;

use git_pair::cli::{self, ParseError};
use git_pair::exit::{self, Exit};

fn main() -> ExitCode {
    let cli = match cli::parse() {
        Ok(cli) => cli,
        Err(ParseError::Clap(e)) if !e.use_stderr() => {
            // --help and --version: to stdout.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let message = e.message();
            let _ = write!(std::io::stderr(), "git pair: {message}");
            git_pair::events::report_usage_error(&message);
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
