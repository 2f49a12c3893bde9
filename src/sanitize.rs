//! Making untrusted text inert: one home for the one concept.
//!
//! Everything a peer sends us (user, host and path names, error strings, sshd requests) is
//! untrusted. Before it reaches a terminal it goes through [`for_terminal`]: escape sequences,
//! bidi overrides and invisible characters could otherwise rewrite what the user sees
//! ("Trojan Source"-style spoofing) or drive the terminal. Before it goes into a file comment a
//! human reads later (the label of an `authorized_keys` line) it goes through [`for_comment`],
//! which keeps the line one line. Both use the same set of unsafe characters, [`is_unsafe`].

use std::borrow::Cow;

/// Characters that must never reach a terminal as they are: they control the terminal, change
/// the order text is displayed in, or are invisible.
pub fn is_unsafe(c: char) -> bool {
    matches!(
        c,
        // C0 controls (ESC, \r, \n, \t, ...), DEL, C1 controls (CSI U+009B, ...).
        '\u{0}'..='\u{1f}'
            | '\u{7f}'..='\u{9f}'
            // Soft hyphen, combining grapheme joiner, Arabic letter mark.
            | '\u{ad}'
            | '\u{34f}'
            | '\u{61c}'
            // Hangul fillers and Khmer inherent vowels: render as nothing.
            | '\u{115f}'
            | '\u{1160}'
            | '\u{17b4}'
            | '\u{17b5}'
            | '\u{3164}'
            | '\u{ffa0}'
            // Mongolian free variation selectors and vowel separator (U+180E).
            | '\u{180b}'..='\u{180f}'
            // Zero-width space/non-joiner/joiner, LRM, RLM.
            | '\u{200b}'..='\u{200f}'
            // Line and paragraph separators, bidi embeddings and overrides (U+202A..U+202E).
            | '\u{2028}'..='\u{202e}'
            // Word joiner, invisible operators, bidi isolates (U+2066..U+2069), deprecated
            // format characters.
            | '\u{2060}'..='\u{206f}'
            // Byte order mark / zero-width no-break space, interlinear annotation controls.
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
            // Tag characters: invisible, used to smuggle hidden ASCII.
            | '\u{e0000}'..='\u{e007f}'
    )
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        // `escape_unicode` gives the Rust-style `\u{1b}` form.
        _ => out.extend(c.escape_unicode()),
    }
}

/// Makes an untrusted string safe to print on a terminal.
///
/// Control characters (C0 including ESC, `\r`, `\n`, `\t`; DEL; C1), bidi controls, zero-width
/// and other invisible characters and the line/paragraph separators are replaced by visible
/// escapes (`\n`, `\r`, `\t`, otherwise `\u{1b}` style). Everything else, including
/// backslashes and ordinary non-ASCII text, is kept, so the result is borrowed when nothing
/// needs escaping. The result is always a single line.
pub fn for_terminal(s: &str) -> Cow<'_, str> {
    let Some(first) = s.find(is_unsafe) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len() + 16);
    out.push_str(&s[..first]);
    for c in s[first..].chars() {
        if is_unsafe(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// [`for_terminal`], cut to at most `max_chars` characters of escaped text, with `…` when cut:
/// for echoing a peer's long string back in one short line.
pub fn for_terminal_within(s: &str, max_chars: usize) -> String {
    let safe = for_terminal(s);
    let mut out: String = safe.chars().take(max_chars).collect();
    if safe.chars().nth(max_chars).is_some() {
        out.push('…');
    }
    out
}

/// A peer's text for a comment in a file that people read (an `authorized_keys` label): every
/// unsafe character becomes `?`, so that the comment can neither break the line nor show a
/// human something other than what it holds.
pub fn for_comment(s: &str) -> String {
    s.chars()
        .map(|c| if is_unsafe(c) { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MUST_ESCAPE: &[char] = &[
        '\u{0}',
        '\u{7}',
        '\u{8}',
        '\t',
        '\n',
        '\u{b}',
        '\u{c}',
        '\r',
        '\u{1b}',
        '\u{7f}',
        '\u{80}',
        '\u{85}',
        '\u{9b}',
        '\u{9f}',
        '\u{ad}',
        '\u{61c}',
        '\u{180e}',
        '\u{200b}',
        '\u{200c}',
        '\u{200d}',
        '\u{200e}',
        '\u{200f}',
        '\u{2028}',
        '\u{2029}',
        '\u{202a}',
        '\u{202b}',
        '\u{202c}',
        '\u{202d}',
        '\u{202e}',
        '\u{2060}',
        '\u{2066}',
        '\u{2067}',
        '\u{2068}',
        '\u{2069}',
        '\u{feff}',
        '\u{e0041}',
    ];

    #[test]
    fn every_listed_character_is_escaped() {
        for &c in MUST_ESCAPE {
            let s = format!("a{c}b");
            let out = for_terminal(&s);
            assert!(!out.contains(c), "{c:?} survived: {out:?}");
            assert!(out.starts_with('a') && out.ends_with('b'));
        }
    }

    #[test]
    fn escapes_are_visible_and_rust_style() {
        assert_eq!(for_terminal("\u{1b}[31mred"), "\\u{1b}[31mred");
        assert_eq!(for_terminal("a\nb\rc\td"), "a\\nb\\rc\\td");
        assert_eq!(for_terminal("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(for_terminal("\u{7f}"), "\\u{7f}");
    }

    #[test]
    fn clean_text_is_borrowed_and_dirty_text_owned() {
        assert!(matches!(
            for_terminal("bob's laptop — ünïcödé 🎸"),
            Cow::Borrowed(_)
        ));
        assert!(matches!(for_terminal(""), Cow::Borrowed(_)));
        assert!(matches!(for_terminal("a\u{1b}"), Cow::Owned(_)));
    }

    proptest! {
        #[test]
        fn output_never_contains_unsafe_chars(s in any::<String>()) {
            let out = for_terminal(&s);
            prop_assert!(!out.chars().any(is_unsafe), "{:?}", out);
            for &c in MUST_ESCAPE {
                prop_assert!(!out.contains(c));
            }
        }

        #[test]
        fn unsafe_heavy_strings_are_cleaned(
            parts in proptest::collection::vec(
                prop_oneof![
                    proptest::sample::select(MUST_ESCAPE).prop_map(|c| c.to_string()),
                    "[a-z\\\\{}]{0,3}",
                ],
                0..20,
            )
        ) {
            let s: String = parts.concat();
            let out = for_terminal(&s);
            prop_assert!(!out.chars().any(is_unsafe), "{:?}", out);
        }

        #[test]
        fn identity_on_printable_text(s in "[ -~\u{a0}-\u{ac}\u{ae}-\u{2ff}\u{4e00}-\u{4fff}\u{1f300}-\u{1f5ff}]*") {
            let out = for_terminal(&s);
            prop_assert!(matches!(out, Cow::Borrowed(_)));
            prop_assert_eq!(out.as_ref(), s.as_str());
        }

        #[test]
        fn for_terminal_is_idempotent(s in any::<String>()) {
            let once = for_terminal(&s).into_owned();
            let twice = for_terminal(&once);
            prop_assert_eq!(twice.as_ref(), once.as_str());
        }
    }

    #[test]
    fn within_cuts_after_escaping() {
        assert_eq!(for_terminal_within("abcdef", 3), "abc…");
        assert_eq!(for_terminal_within("abc", 3), "abc");
        assert_eq!(for_terminal_within("\u{1b}x", 4), "\\u{1…");
    }

    #[test]
    fn comments_keep_one_line_and_show_what_they_hold() {
        assert_eq!(for_comment("bob@laptop:/r"), "bob@laptop:/r");
        assert_eq!(for_comment("a\nb\u{202e}c\u{200b}d\u{1b}"), "a?b?c?d?");
        for &c in MUST_ESCAPE {
            assert!(!for_comment(&format!("x{c}y")).contains(c));
        }
    }
}
