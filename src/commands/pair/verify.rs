//! `--verify`: before anything is written, the person says whether the check strings match on
//! both machines. With a person at a terminal, the question goes to standard error and the
//! answer is a line on standard input (`y` or `yes`). With `--json`, the `sas` event says
//! `"verify": true` and the answer is one JSON line on standard input, `{"verify": true}` or
//! `{"verify": false}`. Anything but a clear yes (no, an empty line, the end of the input, a line
//! that does not parse, no answer within [`ANSWER_WITHIN`]) is a no, and nothing is written.
//!
//! The answer is read on a thread, so that the protocol keeps running while the person looks:
//! the peer keeps hearing from this side and waits for its answer.

use std::io::{self, BufRead};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::thread;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// How long the person has to answer.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(120);
// --help and the man page's JSON EVENTS say so in words.
const _: () = assert!(ANSWER_WITHIN.as_secs() == 120);

/// What the person said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Answer {
    Yes,
    /// No, and why it counts as no.
    No(String),
}

/// A question being asked.
pub(super) struct Question {
    answer: Receiver<Answer>,
    deadline: Instant,
}

impl Question {
    /// Starts reading the answer from standard input (the caller has asked the question).
    pub(super) fn ask(json: bool) -> Question {
        let (tx, rx) = mpsc::channel();
        // The thread is left blocked on standard input if the run ends before an answer; the
        // process exits anyway.
        thread::spawn(move || {
            let mut line = String::new();
            let answer = match io::stdin().lock().read_line(&mut line) {
                Ok(0) => Answer::No("no answer: standard input ended".into()),
                Ok(_) => parse(json, &line),
                Err(e) => Answer::No(format!("no answer: standard input cannot be read ({e})")),
            };
            let _ = tx.send(answer);
        });
        Question {
            answer: rx,
            deadline: Instant::now() + ANSWER_WITHIN,
        }
    }

    /// The answer, once there is one.
    pub(super) fn poll(&self) -> Option<Answer> {
        match self.answer.try_recv() {
            Ok(answer) => Some(answer),
            Err(TryRecvError::Disconnected) => Some(Answer::No("no answer".into())),
            Err(TryRecvError::Empty) if Instant::now() >= self.deadline => Some(Answer::No(
                format!("no answer within {} s", ANSWER_WITHIN.as_secs()),
            )),
            Err(TryRecvError::Empty) => None,
        }
    }
}

#[derive(Deserialize)]
struct Reply {
    verify: bool,
}

/// One line of answer.
pub(super) fn parse(json: bool, line: &str) -> Answer {
    let line = line.trim();
    if json {
        return match serde_json::from_str::<Reply>(line) {
            Ok(Reply { verify: true }) => Answer::Yes,
            Ok(Reply { verify: false }) => Answer::No("answered no".into()),
            Err(_) => Answer::No("the answer was not {\"verify\": true} or false".into()),
        };
    }
    match line.to_ascii_lowercase().as_str() {
        "y" | "yes" => Answer::Yes,
        "" => Answer::No("answered nothing".into()),
        _ => Answer::No("answered no".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_clear_yes_is_yes() {
        for yes in ["y\n", "yes", " YES \r\n", "Y"] {
            assert_eq!(parse(false, yes), Answer::Yes, "{yes:?}");
        }
        for no in ["", "\n", "n", "no", "yes please", "ja", "1", "true"] {
            assert!(matches!(parse(false, no), Answer::No(_)), "{no:?}");
        }
        assert_eq!(parse(true, "{\"verify\": true}\n"), Answer::Yes);
        assert_eq!(parse(true, " {\"verify\":true} "), Answer::Yes);
        for no in [
            "{\"verify\": false}",
            "{\"verify\": \"yes\"}",
            "{}",
            "yes",
            "true",
            "",
            "{\"verify\": 1}",
        ] {
            assert!(matches!(parse(true, no), Answer::No(_)), "{no:?}");
        }
    }
}
