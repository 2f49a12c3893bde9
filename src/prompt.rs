//! The code prompt of `git pair join`: the code is typed on the terminal, with Tab completing
//! each word from the code word list, the way magic-wormhole's `receive` reads its code.
//!
//! The code is a secret that must not leak to other users of the machine: it never appears in
//! argv (the process list), the environment, the shell's history, a file or a log. So the prompt
//! reads and echoes on the controlling terminal itself (`/dev/tty`), never on stdout or stderr,
//! which may be redirected to a file; and the typed text lives only in zeroized buffers of a
//! fixed capacity, so that no copy is left behind by a reallocation.
//!
//! [`Editor`] is the pure part (keys in, screen actions out), unit-tested without a terminal;
//! [`Decoder`] turns terminal bytes into keys; [`ask`] is the small raw-mode I/O loop around them.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsFd;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::termios::{self, InputFlags, LocalFlags, SetArg, SpecialCharacterIndices, Termios};
use zeroize::{Zeroize, Zeroizing};

use crate::interrupt::Interrupts;
use crate::protocol::words;

/// What the prompt says before the typed text.
pub const PROMPT: &str = "Code from the other machine (Tab completes words): ";

/// The longest code accepted (as [`crate::protocol::Code::parse`]); the buffer never grows past
/// it, so it is never reallocated.
pub const MAX_LEN: usize = 256;

/// How many candidate words a double Tab lists at most.
const LIST_MAX: usize = 24;

/// One key press, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Backspace,
    /// Ctrl-U: erase the whole line.
    KillLine,
    /// Ctrl-W: erase the word before the cursor.
    KillWord,
    Tab,
    Enter,
    /// Ctrl-C.
    Interrupt,
    /// Ctrl-D.
    Eof,
    /// Anything else (arrows, function keys, other control keys): ignored.
    Other,
}

/// What the screen must show after a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Redraw the prompt line.
    Redraw,
    /// Nothing changes.
    Nothing,
    /// Ring the bell: nothing completes, or the code is full.
    Bell,
    /// Show these words that fit (Tab twice), then redraw; `more` says how many were left out.
    List {
        words: Vec<&'static str>,
        more: usize,
    },
    /// The line is done.
    Submit,
    /// Ctrl-C.
    Interrupt,
    /// Ctrl-D on an empty line.
    Eof,
}

/// The line being typed, and what each key does to it.
pub struct Editor {
    line: Zeroizing<String>,
    /// The previous key was a Tab that completed nothing more.
    tabbed: bool,
}

impl Default for Editor {
    fn default() -> Self {
        Editor {
            line: Zeroizing::new(String::with_capacity(MAX_LEN)),
            tabbed: false,
        }
    }
}

impl Editor {
    /// The text typed so far.
    pub fn line(&self) -> &str {
        &self.line
    }

    /// Takes the typed text, leaving the editor empty.
    pub fn take(&mut self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::with_capacity(MAX_LEN));
        out.push_str(&self.line);
        self.line.zeroize();
        out
    }

    pub fn handle(&mut self, key: Key) -> Action {
        let tabbed = std::mem::take(&mut self.tabbed);
        match key {
            Key::Char(c) if c.is_control() => Action::Nothing,
            Key::Char(c) => {
                if self.line.len() + c.len_utf8() > MAX_LEN {
                    return Action::Bell;
                }
                self.line.push(c);
                Action::Redraw
            }
            Key::Backspace => match self.line.pop() {
                Some(_) => Action::Redraw,
                None => Action::Bell,
            },
            Key::KillLine => {
                self.line.zeroize();
                Action::Redraw
            }
            Key::KillWord => {
                let trimmed = self.line.trim_end_matches(is_separator).len();
                let start = self.line[..trimmed]
                    .rfind(is_separator)
                    .map_or(0, |i| i + 1);
                self.line.truncate(start);
                Action::Redraw
            }
            Key::Tab => self.complete(tabbed),
            Key::Enter => Action::Submit,
            Key::Interrupt => Action::Interrupt,
            Key::Eof if self.line.is_empty() => Action::Eof,
            Key::Eof | Key::Other => Action::Nothing,
        }
    }

    /// Tab: after the channel number, a dash; in a word, the word itself if only one fits, or
    /// the letters all fitting words share. A second Tab that adds nothing lists the words.
    fn complete(&mut self, tabbed: bool) -> Action {
        let start = self.line.rfind(is_separator).map_or(0, |i| i + 1);
        let current = &self.line[start..];
        if current.is_empty() {
            return Action::Bell;
        }
        let first = !self.line[..start].chars().any(|c| !is_separator(c));
        if first && current.bytes().all(|b| b.is_ascii_digit()) {
            return self.append("-");
        }
        let prefix = Zeroizing::new(current.to_lowercase());
        let fitting: Vec<&'static str> = words::WORDS
            .iter()
            .copied()
            .filter(|w| w.starts_with(prefix.as_str()))
            .collect();
        match fitting.as_slice() {
            [] => Action::Bell,
            [word] => {
                self.line.truncate(start);
                let rest = Zeroizing::new(format!("{word}-"));
                self.append(&rest)
            }
            [head, ..] => {
                let shared = fitting
                    .iter()
                    .map(|w| common_prefix_len(head, w))
                    .min()
                    .unwrap_or(0);
                if shared > prefix.len() {
                    self.line.truncate(start);
                    let head = *head;
                    return self.append(&head[..shared]);
                }
                if tabbed {
                    let more = fitting.len().saturating_sub(LIST_MAX);
                    let mut words = fitting;
                    words.truncate(LIST_MAX);
                    Action::List { words, more }
                } else {
                    self.tabbed = true;
                    Action::Bell
                }
            }
        }
    }

    fn append(&mut self, text: &str) -> Action {
        if self.line.len() + text.len() > MAX_LEN {
            return Action::Bell;
        }
        self.line.push_str(text);
        Action::Redraw
    }
}

fn is_separator(c: char) -> bool {
    c == '-' || c.is_whitespace()
}

fn common_prefix_len(a: &str, b: &str) -> usize {
    a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count()
}

/// Turns the bytes a terminal sends into [`Key`]s: UTF-8 characters, control keys, and escape
/// sequences (arrows and the like), which are skipped whole.
#[derive(Default)]
pub struct Decoder {
    utf8: Vec<u8>,
    escape: Escape,
}

#[derive(Default, PartialEq, Eq)]
enum Escape {
    #[default]
    None,
    /// After ESC.
    Start,
    /// Inside `ESC [` or `ESC O`, until a final byte.
    Sequence,
}

impl Decoder {
    /// The keys in `bytes`; a character split across two reads is completed by the next call.
    pub fn keys(&mut self, bytes: &[u8]) -> Vec<Key> {
        let mut out = Vec::new();
        for &b in bytes {
            match self.escape {
                Escape::Start => {
                    self.escape = if b == b'[' || b == b'O' {
                        Escape::Sequence
                    } else {
                        Escape::None
                    };
                    continue;
                }
                Escape::Sequence => {
                    if (0x40..=0x7e).contains(&b) {
                        self.escape = Escape::None;
                    }
                    continue;
                }
                Escape::None => {}
            }
            if !self.utf8.is_empty() || b >= 0x80 {
                self.utf8.push(b);
                match std::str::from_utf8(&self.utf8) {
                    Ok(s) => {
                        out.extend(s.chars().map(Key::Char));
                        self.utf8.zeroize();
                        self.utf8.clear();
                    }
                    Err(e) if e.error_len().is_some() || self.utf8.len() >= 4 => {
                        self.utf8.zeroize();
                        self.utf8.clear();
                        out.push(Key::Other);
                    }
                    Err(_) => {}
                }
                continue;
            }
            out.push(match b {
                b'\r' | b'\n' => Key::Enter,
                b'\t' => Key::Tab,
                0x7f | 0x08 => Key::Backspace,
                0x15 => Key::KillLine,
                0x17 => Key::KillWord,
                0x03 => Key::Interrupt,
                0x04 => Key::Eof,
                0x1b => {
                    self.escape = Escape::Start;
                    continue;
                }
                b if b < 0x20 => Key::Other,
                b => Key::Char(char::from(b)),
            });
        }
        out
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        self.utf8.zeroize();
    }
}

/// Why no code came from the prompt.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PromptError {
    /// There is no controlling terminal to prompt on.
    #[error("no terminal to type the code on")]
    NoTerminal(#[source] io::Error),
    #[error("interrupted")]
    Interrupted,
    #[error("no code was typed")]
    Eof,
    #[error("cannot use the terminal")]
    Io(#[from] io::Error),
}

impl From<nix::Error> for PromptError {
    fn from(e: nix::Error) -> Self {
        PromptError::Io(e.into())
    }
}

/// Restores the terminal's settings when dropped, however the prompt ends.
struct RawMode<'a> {
    tty: &'a File,
    saved: Termios,
}

impl<'a> RawMode<'a> {
    fn enter(tty: &'a File) -> Result<Self, PromptError> {
        let saved = termios::tcgetattr(tty.as_fd())?;
        let mut raw = saved.clone();
        // No echo by the terminal (the prompt echoes itself), keys one at a time, and Ctrl-C as
        // a key: the prompt ends itself cleanly instead of dying with the terminal raw.
        raw.local_flags
            .remove(LocalFlags::ICANON | LocalFlags::ECHO | LocalFlags::ISIG | LocalFlags::IEXTEN);
        raw.input_flags.remove(InputFlags::IXON | InputFlags::ICRNL);
        raw.control_chars[SpecialCharacterIndices::VMIN as usize] = 1;
        raw.control_chars[SpecialCharacterIndices::VTIME as usize] = 0;
        // TCSADRAIN, not TCSAFLUSH: what was typed before the prompt appeared is kept.
        termios::tcsetattr(tty.as_fd(), SetArg::TCSADRAIN, &raw)?;
        Ok(RawMode { tty, saved })
    }
}

impl Drop for RawMode<'_> {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(self.tty.as_fd(), SetArg::TCSADRAIN, &self.saved);
    }
}

/// Asks for the code on the controlling terminal; [`PromptError::NoTerminal`] without one.
/// SIGINT, SIGTERM and SIGHUP arrive through `interrupts` and end the prompt too.
pub fn ask(interrupts: &mut Interrupts) -> Result<Zeroizing<String>, PromptError> {
    let tty = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(PromptError::NoTerminal)?;
    let raw = RawMode::enter(&tty)?;
    let result = edit(&tty, interrupts);
    drop(raw);
    // Leave the cursor on a fresh line whatever happened.
    let _ = (&tty).write_all(b"\r\n");
    result
}

fn edit(mut tty: &File, interrupts: &mut Interrupts) -> Result<Zeroizing<String>, PromptError> {
    let mut editor = Editor::default();
    let mut decoder = Decoder::default();
    draw(tty, &editor)?;
    loop {
        let ready = {
            let mut fds = [
                PollFd::new(tty.as_fd(), PollFlags::POLLIN),
                PollFd::new(interrupts.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Err(nix::Error::EINTR) => continue,
                r => r?,
            };
            fds[0].revents().unwrap_or(PollFlags::empty())
        };
        if interrupts.check().is_some() {
            return Err(PromptError::Interrupted);
        }
        if ready.is_empty() {
            continue;
        }
        let mut bytes = Zeroizing::new([0u8; 64]);
        let n = match tty.read(&mut bytes[..]) {
            Ok(0) => return Err(PromptError::Eof),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        for key in decoder.keys(&bytes[..n]) {
            match editor.handle(key) {
                Action::Redraw => draw(tty, &editor)?,
                Action::Nothing => {}
                Action::Bell => tty.write_all(b"\x07")?,
                Action::List { words, more } => {
                    let mut text = format!("\r\n{}", words.join("  "));
                    if more > 0 {
                        text.push_str(&format!("  (and {more} more)"));
                    }
                    text.push_str("\r\n");
                    tty.write_all(text.as_bytes())?;
                    draw(tty, &editor)?;
                }
                Action::Submit => return Ok(editor.take()),
                Action::Interrupt => return Err(PromptError::Interrupted),
                Action::Eof => return Err(PromptError::Eof),
            }
        }
    }
}

/// Rewrites the prompt line: the prompt and what was typed, on the terminal only.
fn draw(mut tty: &File, editor: &Editor) -> io::Result<()> {
    let mut text = Zeroizing::new(String::with_capacity(PROMPT.len() + MAX_LEN + 8));
    text.push_str("\r\x1b[K");
    text.push_str(PROMPT);
    // What was typed is shown as typed, minus anything that could drive the terminal.
    text.extend(editor.line().chars().filter(|c| !c.is_control()));
    tty.write_all(text.as_bytes())?;
    tty.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(keys: &str) -> (Editor, Vec<Action>) {
        let mut e = Editor::default();
        let mut d = Decoder::default();
        let actions = d
            .keys(keys.as_bytes())
            .into_iter()
            .map(|k| e.handle(k))
            .collect();
        (e, actions)
    }

    #[test]
    fn tab_completes_a_word_from_three_letters() {
        let (e, _) = typed("535\tbul\tfog\tbab\t");
        assert_eq!(e.line(), "535-bulb-fog-baby-");
        let code = crate::protocol::Code::parse(e.line()).unwrap();
        assert_eq!(
            code,
            crate::protocol::Code::parse("535-bulb-fog-baby").unwrap()
        );
    }

    #[test]
    fn tab_extends_to_the_shared_letters_then_lists_the_words() {
        let (e, actions) = typed("7-gu\t");
        // guard, guest, guitar, gull, gum, guppy, guru, gutter: nothing more is shared.
        assert_eq!(e.line(), "7-gu");
        assert_eq!(actions.last(), Some(&Action::Bell));
        let (e, actions) = typed("7-gu\t\t");
        assert_eq!(e.line(), "7-gu");
        match actions.last() {
            Some(Action::List { words, more: 0 }) => {
                assert!(
                    words.contains(&"guitar") && words.contains(&"gull"),
                    "{words:?}"
                )
            }
            other => panic!("{other:?}"),
        }
        // Shared letters are added: "bub" is only bubble, "bu" + "n" -> bundle.
        let (e, _) = typed("7 kan\t");
        assert_eq!(e.line(), "7 kangaroo-");
        let (e, actions) = typed("7-xq\t");
        assert_eq!(e.line(), "7-xq");
        assert_eq!(actions.last(), Some(&Action::Bell));
    }

    #[test]
    fn tab_completes_in_any_case_and_after_spaces() {
        let (e, _) = typed("12 GUI\t");
        assert_eq!(e.line(), "12 guitar-");
    }

    #[test]
    fn editing_keys() {
        let (e, _) = typed("535-bulb-fox\x7f\x7fg");
        assert_eq!(e.line(), "535-bulb-fg");
        let (e, _) = typed("535-bulb-fog\x17");
        assert_eq!(e.line(), "535-bulb-");
        let (e, _) = typed("535-bulb-fog-\x17");
        assert_eq!(e.line(), "535-bulb-");
        let (e, _) = typed("535-bulb\x15");
        assert_eq!(e.line(), "");
        let (_, actions) = typed("\x04");
        assert_eq!(actions, [Action::Eof]);
        let (_, actions) = typed("53\x03");
        assert_eq!(actions.last(), Some(&Action::Interrupt));
        let (e, actions) = typed("53\r");
        assert_eq!(e.line(), "53");
        assert_eq!(actions.last(), Some(&Action::Submit));
    }

    #[test]
    fn escape_sequences_are_skipped_and_utf8_is_kept() {
        let (e, _) = typed("5\x1b[D3\x1b[1;5C5\x1bOA-é");
        assert_eq!(e.line(), "535-é");
        // A character split across two reads.
        let mut d = Decoder::default();
        assert!(d.keys(&[0xc3]).is_empty());
        assert_eq!(d.keys(&[0xa9]), [Key::Char('é')]);
        assert_eq!(d.keys(&[0xff]), [Key::Other]);
    }

    #[test]
    fn the_line_never_outgrows_its_buffer() {
        let mut e = Editor::default();
        let capacity = e.line.capacity();
        for _ in 0..MAX_LEN + 10 {
            e.handle(Key::Char('a'));
        }
        assert_eq!(e.line().len(), MAX_LEN);
        assert_eq!(e.handle(Key::Char('a')), Action::Bell);
        assert_eq!(e.line.capacity(), capacity, "reallocated");
        let taken = e.take();
        assert_eq!(taken.len(), MAX_LEN);
        assert_eq!(e.line(), "");
    }
}
