//! Terminal output: the pairing-code banner, the status line on stderr, and short
//! human-readable durations.
//!
//! Text shown here passes through [`for_terminal`] (see [`crate::sanitize`]), so that nothing a
//! peer sent can drive the terminal or hide what it says.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use crate::sanitize::for_terminal;

const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";
/// The banner is laid out for an 80-column terminal.
const SCREEN_WIDTH: usize = 80;
const MARGIN: &str = "  ";
/// What the banner tells the other side to run.
pub const JOIN: &str = "git pair join";

/// Shows the pairing code large and easy to read: the words spaced out in a box, then what to
/// do on the other machine: `git pair join`, which prompts for the code (so that it never lands
/// in that machine's process list or shell history).
///
/// With `color`, the code and the command are bold (ANSI); without it the text is plain. The
/// code is sanitized first. Codes up to about 60 characters fit in 80 columns; longer ones
/// lose the spacing and then the padding but are always shown whole. The result ends with a
/// newline.
///
/// ```text
///   ╭─ pairing code ────────────────────────╮
///   │                                       │
///   │      7 - guitar - orbit - velvet      │
///   │                                       │
///   ╰───────────────────────────────────────╯
///
///   On the other machine, run:  git pair join
///   and type this code there (Tab completes each word).
/// ```
pub fn code_banner(code: &str, color: bool) -> String {
    let code = for_terminal(code.trim());
    // Two border characters plus the margin must fit on the screen.
    let max_inner = SCREEN_WIDTH - MARGIN.len() - 2;
    let spaced = code.split('-').collect::<Vec<_>>().join(" - ");
    let shown: &str = if spaced.chars().count() + 2 <= max_inner {
        &spaced
    } else {
        &code
    };
    let width = shown.chars().count();
    let pad = (max_inner.saturating_sub(width) / 2).min(6);
    let inner = width + 2 * pad;
    let (bold, reset) = if color { (BOLD, RESET) } else { ("", "") };

    let rule = "─".repeat(inner);
    const TITLE: &str = "─ pairing code ";
    let title_len = TITLE.chars().count();
    let top = if inner >= title_len + 4 {
        format!("{TITLE}{}", "─".repeat(inner - title_len))
    } else {
        rule.clone()
    };
    let blank = " ".repeat(inner);
    let pad = " ".repeat(pad);
    let mut out = String::new();
    // `write!` into a String cannot fail.
    let _ = writeln!(out, "{MARGIN}╭{top}╮");
    let _ = writeln!(out, "{MARGIN}│{blank}│");
    let _ = writeln!(out, "{MARGIN}│{pad}{bold}{shown}{reset}{pad}│");
    let _ = writeln!(out, "{MARGIN}│{blank}│");
    let _ = writeln!(out, "{MARGIN}╰{rule}╯");
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{MARGIN}On the other machine, run:  {bold}{JOIN}{reset}"
    );
    let _ = writeln!(
        out,
        "{MARGIN}and type this code there (Tab completes each word)."
    );
    out
}

const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
/// At most 10 redraws a second, however often `tick` is called.
const FRAME_INTERVAL: Duration = Duration::from_millis(100);
const CLEAR_LINE: &str = "\r\x1b[K";

/// Status output for people watching a terminal, normally on stderr.
///
/// On a terminal it keeps one status line, with a spinner, rewritten in place; permanent
/// lines printed with [`Progress::line`] appear above it. On anything else (a pipe, a log
/// file, `TERM=dumb`) it prints plain lines: each `line` and each change of status, with no
/// spinner and no `\r`. [`Progress::hidden`] prints nothing at all (for `--json`).
///
/// Text given to `set_status` and `line` is passed through [`for_terminal`], so it is always shown
/// on one line and may contain strings from the peer. Write errors (a closed stderr, EPIPE)
/// are ignored and switch the output off: progress output never makes the program fail.
///
/// The status line is cleared by [`Progress::finish`] or when the value is dropped.
pub struct Progress {
    out: Option<Box<dyn Write + Send>>,
    tty: bool,
    /// Terminal width in columns, so a long status never wraps (a wrapped line cannot be
    /// erased with `\r`).
    columns: usize,
    status: String,
    frame: usize,
    last_draw: Option<Instant>,
    on_screen: bool,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("enabled", &self.out.is_some())
            .field("tty", &self.tty)
            // The status text is left out: callers may show things there (a pairing code)
            // that must not end up in a debug log.
            .finish_non_exhaustive()
    }
}

impl Progress {
    /// Progress on stderr; a spinner and status line only when stderr is a terminal and
    /// `TERM` is not `dumb`.
    pub fn stderr() -> Self {
        let stderr = std::io::stderr();
        let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
        let tty = stderr.is_terminal() && !dumb;
        let mut progress = Self::with_writer(Box::new(stderr), tty);
        progress.columns = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse::<usize>().ok())
            .filter(|&c| c >= 20)
            .unwrap_or(SCREEN_WIDTH);
        progress
    }

    /// Progress that prints nothing.
    pub fn hidden() -> Self {
        Self::new(None, false)
    }

    /// Progress on any writer; `is_tty` chooses the in-place status line or plain lines.
    pub fn with_writer(out: Box<dyn Write + Send>, is_tty: bool) -> Self {
        Self::new(Some(out), is_tty)
    }

    fn new(out: Option<Box<dyn Write + Send>>, tty: bool) -> Self {
        Self {
            out,
            tty,
            columns: SCREEN_WIDTH,
            status: String::new(),
            frame: 0,
            last_draw: None,
            on_screen: false,
        }
    }

    /// Whether anything is printed at all.
    pub fn is_enabled(&self) -> bool {
        self.out.is_some()
    }

    /// Whether output goes to a terminal (and may use styling).
    pub fn is_tty(&self) -> bool {
        self.out.is_some() && self.tty
    }

    /// Advances the spinner. Cheap enough to call on every turn of an event loop: it redraws
    /// at most every 100 ms, and only on a terminal with a status set.
    pub fn tick(&mut self) {
        if !self.tty || self.out.is_none() || self.status.is_empty() {
            return;
        }
        self.tick_at(Instant::now());
    }

    fn tick_at(&mut self, now: Instant) {
        if !self.tty || self.out.is_none() || self.status.is_empty() {
            return;
        }
        if self
            .last_draw
            .is_some_and(|t| now.duration_since(t) < FRAME_INTERVAL)
        {
            return;
        }
        self.frame = (self.frame + 1) % SPINNER.len();
        let mut buf = String::from(CLEAR_LINE);
        self.push_status(&mut buf);
        self.last_draw = Some(now);
        self.emit(&buf);
    }

    /// Changes the status text (an empty text removes the status line). On a terminal it is
    /// redrawn at once; elsewhere it is printed as a line if it differs from the last one.
    pub fn set_status(&mut self, text: &str) {
        let text = for_terminal(text);
        if *text == self.status || self.out.is_none() {
            return;
        }
        self.status = text.into_owned();
        let mut buf = String::new();
        if self.tty {
            if self.on_screen {
                buf.push_str(CLEAR_LINE);
            }
            self.push_status(&mut buf);
            self.last_draw = Some(Instant::now());
        } else if !self.status.is_empty() {
            buf.push_str(&self.status);
            buf.push('\n');
        }
        self.emit(&buf);
    }

    /// Prints a permanent line (sanitized, so one line) above the status line.
    pub fn line(&mut self, text: &str) {
        self.print_trusted(&format!("{}\n", for_terminal(text)));
    }

    /// Prints text as it is, e.g. a [`code_banner`], above the status line. It may hold
    /// several lines and ANSI styling, so it must not contain anything from the peer; it should
    /// end with a newline.
    pub fn print_trusted(&mut self, text: &str) {
        if self.out.is_none() {
            return;
        }
        let mut buf = String::new();
        if self.tty && self.on_screen {
            buf.push_str(CLEAR_LINE);
        }
        buf.push_str(text);
        self.on_screen = false;
        if self.tty {
            self.push_status(&mut buf);
        }
        self.emit(&buf);
    }

    /// Removes the status line. Later calls to `set_status` start a new one.
    pub fn finish(&mut self) {
        self.status.clear();
        if self.tty && self.on_screen {
            self.emit(CLEAR_LINE);
        }
        self.on_screen = false;
    }

    /// Appends the spinner and the status, cut to the terminal width, to `buf`.
    fn push_status(&mut self, buf: &mut String) {
        if self.status.is_empty() {
            self.on_screen = false;
            return;
        }
        buf.push_str(SPINNER[self.frame % SPINNER.len()]);
        buf.push(' ');
        // Spinner, space and one spare column so the terminal never auto-wraps.
        let room = self.columns.saturating_sub(3).max(1);
        if self.status.chars().count() > room {
            buf.extend(self.status.chars().take(room.saturating_sub(1)));
            buf.push('…');
        } else {
            buf.push_str(&self.status);
        }
        self.on_screen = true;
    }

    fn emit(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        if let Some(out) = self.out.as_mut() {
            if out
                .write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .is_err()
            {
                // Most likely EPIPE: nobody is reading any more, stop trying.
                self.out = None;
            }
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::{Arc, Mutex};

    proptest! {
        #[test]
        fn banner_never_panics_and_shows_the_whole_code(code in "[!-~]([ -~]{0,118}[!-~])?") {
            let banner = code_banner(&code, false);
            let spaced = code.split('-').collect::<Vec<_>>().join(" - ");
            prop_assert!(banner.contains(&code) || banner.contains(&spaced));
            prop_assert!(banner.contains(JOIN));
        }
    }

    #[test]
    fn banner_snapshot_plain() {
        let expected = concat!(
            "  ╭─ pairing code ────────────────────────╮\n",
            "  │                                       │\n",
            "  │      7 - guitar - orbit - velvet      │\n",
            "  │                                       │\n",
            "  ╰───────────────────────────────────────╯\n",
            "\n",
            "  On the other machine, run:  git pair join\n",
            "  and type this code there (Tab completes each word).\n",
        );
        assert_eq!(code_banner("7-guitar-orbit-velvet", false), expected);
        assert_eq!(code_banner("  7-guitar-orbit-velvet\n", false), expected);
    }

    #[test]
    fn banner_snapshot_color() {
        let banner = code_banner("7-guitar-orbit-velvet", true);
        let lines: Vec<&str> = banner.lines().collect();
        assert_eq!(
            lines[2],
            "  │      \x1b[1m7 - guitar - orbit - velvet\x1b[0m      │"
        );
        assert_eq!(
            lines[6],
            "  On the other machine, run:  \x1b[1mgit pair join\x1b[0m"
        );
    }

    fn display_width(line: &str) -> usize {
        line.replace(BOLD, "").replace(RESET, "").chars().count()
    }

    #[test]
    fn banner_fits_80_columns_for_40_char_codes() {
        let code = "1234-elephant-calendar-dumpling-kangaroo";
        assert_eq!(code.len(), 40);
        for color in [false, true] {
            let banner = code_banner(code, color);
            for line in banner.lines() {
                assert!(display_width(line) <= 80, "{line:?}");
            }
            assert!(banner.contains("1234 - elephant - calendar - dumpling - kangaroo"));
            // The box rows are all the same width.
            let widths: Vec<usize> = banner.lines().take(5).map(display_width).collect();
            assert!(widths.iter().all(|&w| w == widths[0]), "{widths:?}");
        }
    }

    #[test]
    fn banner_degrades_for_very_long_codes() {
        let code = "x".repeat(100);
        let banner = code_banner(&code, false);
        assert!(banner.contains(&code));
        assert!(banner.contains(&format!("│{code}│")), "{banner}");
    }

    #[test]
    fn banner_sanitizes_the_code() {
        let banner = code_banner("7-a\u{1b}[2J-b", true);
        assert!(banner.contains("\\u{1b}[2J"));
        assert_eq!(banner.matches('\x1b').count(), 4, "only our own bold/reset");
    }

    /// A writer the test can read back while `Progress` owns the other handle.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    #[test]
    fn non_tty_prints_plain_lines_for_lines_and_status_changes() {
        let out = Shared::default();
        let mut p = Progress::with_writer(Box::new(out.clone()), false);
        p.set_status("looking for the peer");
        p.tick();
        p.set_status("looking for the peer");
        p.line("found bob's laptop\x1b[2J");
        p.set_status("verifying");
        p.tick();
        p.finish();
        drop(p);
        assert_eq!(
            out.text(),
            "looking for the peer\nfound bob's laptop\\u{1b}[2J\nverifying\n"
        );
        assert!(!out.text().contains('\r'));
    }

    #[test]
    fn tty_rewrites_one_status_line_in_place() {
        let out = Shared::default();
        let mut p = Progress::with_writer(Box::new(out.clone()), true);
        p.set_status("waiting");
        assert_eq!(out.text(), "⠋ waiting");
        p.line("hello");
        assert_eq!(out.text(), "⠋ waiting\r\x1b[Khello\n⠋ waiting");
        p.set_status("next\nline");
        assert!(out.text().ends_with("\r\x1b[K⠋ next\\nline"));
        p.finish();
        assert!(out.text().ends_with("\r\x1b[K"));
        let len = out.text().len();
        p.tick();
        p.finish();
        drop(p);
        assert_eq!(out.text().len(), len, "nothing after finish");
    }

    #[test]
    fn tty_tick_redraws_at_most_every_100ms() {
        let out = Shared::default();
        let mut p = Progress::with_writer(Box::new(out.clone()), true);
        p.set_status("working");
        let drawn = p.last_draw.unwrap();
        let before = out.text();
        for ms in [0, 1, 50, 99] {
            p.tick_at(drawn + Duration::from_millis(ms));
        }
        assert_eq!(
            out.text(),
            before,
            "no redraw within 100 ms of the last one"
        );
        p.tick_at(drawn + FRAME_INTERVAL);
        assert_eq!(out.text(), format!("{before}\r\x1b[K⠙ working"));
        p.tick_at(drawn + FRAME_INTERVAL + Duration::from_millis(50));
        assert!(out.text().ends_with("⠙ working"), "still one redraw");
        p.tick_at(drawn + 2 * FRAME_INTERVAL);
        assert!(out.text().ends_with("⠹ working"));
        // The real clock path works too.
        p.tick();
    }

    #[test]
    fn tty_status_is_cut_to_the_terminal_width() {
        let out = Shared::default();
        let mut p = Progress::with_writer(Box::new(out.clone()), true);
        p.set_status(&"x".repeat(200));
        let text = out.text();
        assert_eq!(text.chars().count(), 2 + 77);
        assert!(text.ends_with('…'));
    }

    #[test]
    fn drop_clears_the_status_line() {
        let out = Shared::default();
        let mut p = Progress::with_writer(Box::new(out.clone()), true);
        p.set_status("busy");
        drop(p);
        assert!(out.text().ends_with("\r\x1b[K"));
    }

    #[test]
    fn print_trusted_keeps_ansi_and_newlines() {
        let out = Shared::default();
        let mut p = Progress::with_writer(Box::new(out.clone()), false);
        let banner = code_banner("7-a-b-c", true);
        p.print_trusted(&banner);
        assert_eq!(out.text(), banner);
    }

    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
        }
    }

    #[test]
    fn write_errors_are_ignored_and_switch_output_off() {
        for tty in [false, true] {
            let mut p = Progress::with_writer(Box::new(Broken), tty);
            p.set_status("a");
            assert!(!p.is_enabled());
            p.line("b");
            p.tick();
            p.finish();
        }
    }

    #[test]
    fn hidden_prints_nothing() {
        let mut p = Progress::hidden();
        assert!(!p.is_enabled());
        p.set_status("a");
        p.line("b");
        p.tick();
        p.finish();
    }
}
