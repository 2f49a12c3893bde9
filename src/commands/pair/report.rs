//! Where a pairing reports: human progress on stderr, JSON events on stdout.

use std::io;

use crate::events::{Event as JsonEvent, EventWriter};
use crate::term::Progress;
use crate::transport::Sockets;

/// Human progress on stderr, JSON events on stdout.
pub(crate) struct Reporter {
    pub(crate) progress: Progress,
    pub(crate) json: Option<EventWriter<io::Stdout>>,
}

impl Reporter {
    pub(crate) fn new(json: bool) -> Self {
        Reporter {
            // Programs reading --json get plain lines on stderr, no spinner.
            progress: if json {
                Progress::with_writer(Box::new(io::stderr()), false)
            } else {
                Progress::stderr()
            },
            json: json.then(|| EventWriter::new(io::stdout())),
        }
    }

    pub(crate) fn event(&mut self, event: JsonEvent) {
        if let Some(w) = &mut self.json {
            w.emit(&event);
        }
    }

    pub(crate) fn status(&mut self, text: &str) {
        self.progress.set_status(text);
    }

    pub(crate) fn line(&mut self, text: &str) {
        self.progress.line(text);
    }

    /// Turns the spinner and reports what the sockets found wrong.
    pub(crate) fn idle(&mut self, sockets: &mut Sockets) {
        for w in sockets.take_warnings() {
            self.line(&format!("warning: {w}"));
        }
        self.progress.tick();
    }
}
