//! The pairing code: generating it, normalizing what people type, and
//! splitting it into its public channel number and its secret words.
//!
//! A generated code looks like `7-guitar-orbit-velvet`. The number is public:
//! it is sent in clear in every `hello` so that only sessions with the same
//! number try the PAKE with each other. The words are the SPAKE2 password;
//! three words from a 1024-word list carry 30 bits. Like git-annex, any other
//! phrase both people type is accepted too; its leading number, if it has
//! one, becomes the channel.

use std::fmt;

use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use super::words;

/// How many words a generated code has.
pub const GENERATED_WORDS: usize = 3;
/// Generated channel numbers are drawn from `1..=CHANNEL_MAX`.
pub const CHANNEL_MAX: u32 = 999;

/// Why a typed code cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodeError {
    #[error("the code is empty: type the code shown on the other machine, e.g. 535-bulb-fog-baby")]
    Empty,
    #[error(
        "the code has a number but no words after it: type the whole code, e.g. 535-bulb-fog-baby"
    )]
    NoSecret,
    #[error("the code is too long ({0} bytes; at most 256)")]
    TooLong(usize),
}

/// Why a code given on the command line does not have the shape of a code that git pair
/// generates: its channel number, then words from [`words::WORDS`]. The messages never repeat
/// what was typed, which may be the secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShapeError {
    #[error("the code is empty: type the code shown on the other machine, e.g. 535-bulb-fog-baby")]
    Empty,
    #[error("a code starts with its number, e.g. 535-bulb-fog-baby")]
    NoNumber,
    #[error(
        "the code has a number but no words after it: type the whole code, e.g. 535-bulb-fog-baby"
    )]
    NoWords,
    #[error(
        "word {position} of the code is not one that git pair puts in its codes: check the code \
         shown on the other machine (for a phrase of your own, use `git pair join` or --code-file)"
    )]
    NotAWord { position: usize },
    #[error("the code is too long ({0} bytes; at most 256)")]
    TooLong(usize),
}

/// Checks that `typed` has the shape of a generated code: a number, then one or more words of
/// the list, separated by dashes or spaces (in any case). Used for the code given on the command
/// line, where any other word is far more likely a mistyped command than a code; free phrases
/// stay possible at the prompt (`git pair join`) and with `--code-file` (see [`Code::parse`]).
pub fn check_shape(typed: &str) -> Result<(), ShapeError> {
    if typed.len() > 256 {
        return Err(ShapeError::TooLong(typed.len()));
    }
    let lower = Zeroizing::new(typed.to_lowercase());
    let mut parts = lower
        .split(|c: char| c.is_whitespace() || c == '-')
        .filter(|p| !p.is_empty());
    let first = parts.next().ok_or(ShapeError::Empty)?;
    if !first.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ShapeError::NoNumber);
    }
    let mut count = 0;
    for (i, word) in parts.enumerate() {
        if words::index_of(word).is_none() {
            return Err(ShapeError::NotAWord { position: i + 1 });
        }
        count += 1;
    }
    if count == 0 {
        return Err(ShapeError::NoWords);
    }
    Ok(())
}

/// A pairing code. Its secret part is zeroized on drop and never printed by
/// `Debug`; use [`Code::reveal`] to show it to the person who must type it.
#[derive(Clone)]
pub struct Code {
    channel: String,
    secret: Zeroizing<String>,
}

impl Code {
    /// A fresh code: a number in `1..=999` and three words.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Code {
        let channel = (rng.next_u32() % CHANNEL_MAX + 1).to_string();
        let mut secret = Zeroizing::new(String::new());
        for i in 0..GENERATED_WORDS {
            if i > 0 {
                secret.push('-');
            }
            // The list has 1024 words, so masking keeps the draw uniform.
            let index = (rng.next_u32() as usize % words::WORDS.len()) as u16;
            secret.push_str(words::word(index));
        }
        Code { channel, secret }
    }

    /// Normalizes a typed code: case and runs of spaces or dashes do not
    /// matter, so `7 Guitar  orbit-velvet` equals `7-guitar-orbit-velvet`.
    pub fn parse(typed: &str) -> Result<Code, CodeError> {
        if typed.len() > 256 {
            return Err(CodeError::TooLong(typed.len()));
        }
        let lower = Zeroizing::new(typed.to_lowercase());
        let mut parts = lower
            .split(|c: char| c.is_whitespace() || c == '-')
            .filter(|p| !p.is_empty())
            .peekable();
        let first = parts.peek().ok_or(CodeError::Empty)?;
        let channel = match first.parse::<u64>() {
            Ok(n) if first.bytes().all(|b| b.is_ascii_digit()) => {
                parts.next();
                n.to_string()
            }
            _ => String::new(),
        };
        let mut secret = Zeroizing::new(String::new());
        for (i, part) in parts.enumerate() {
            if i > 0 {
                secret.push('-');
            }
            secret.push_str(part);
        }
        if secret.is_empty() {
            return Err(CodeError::NoSecret);
        }
        Ok(Code { channel, secret })
    }

    /// The public channel: the code's leading number, or "" for a phrase
    /// without one.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// The SPAKE2 password: the normalized secret words.
    pub fn password(&self) -> &[u8] {
        self.secret.as_bytes()
    }

    /// The whole code as a person types it. Only for showing it to the user
    /// who generated it; never log it.
    pub fn reveal(&self) -> Zeroizing<String> {
        if self.channel.is_empty() {
            Zeroizing::new(self.secret.to_string())
        } else {
            Zeroizing::new(format!("{}-{}", self.channel, self.secret.as_str()))
        }
    }

    /// Roughly how many bits of secret the words carry, to warn about weak
    /// phrases. Counts 10 bits per listed word and 4 bits per character
    /// otherwise, a deliberate underestimate for free text.
    pub fn estimated_bits(&self) -> u32 {
        self.secret
            .split('-')
            .map(|w| {
                if words::index_of(w).is_some() {
                    10
                } else {
                    4 * w.chars().count() as u32
                }
            })
            .sum()
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Code")
            .field("channel", &self.channel)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl PartialEq for Code {
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        self.channel == other.channel
            && bool::from(self.secret.as_bytes().ct_eq(other.secret.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;

    #[test]
    fn generated_code_has_number_and_three_listed_words() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        for _ in 0..200 {
            let code = Code::generate(&mut rng);
            let shown = code.reveal();
            let parts: Vec<&str> = shown.split('-').collect();
            assert_eq!(parts.len(), 4, "{}", shown.as_str());
            let n: u32 = parts[0].parse().unwrap();
            assert!((1..=CHANNEL_MAX).contains(&n));
            for w in &parts[1..] {
                assert!(words::index_of(w).is_some(), "{w} is not a listed word");
            }
            assert!(code.estimated_bits() >= 24);
            assert_eq!(Code::parse(&shown).unwrap(), code);
        }
    }

    #[test]
    fn typing_variations_normalize_to_the_same_code() {
        let a = Code::parse("7-guitar-orbit-velvet").unwrap();
        for typed in [
            " 7 guitar orbit velvet ",
            "7-Guitar--Orbit-VELVET",
            "07-guitar orbit-velvet",
            "7\tguitar-orbit\nvelvet",
        ] {
            assert_eq!(Code::parse(typed).unwrap(), a, "{typed:?}");
        }
        assert_eq!(a.channel(), "7");
        assert_eq!(a.password(), b"guitar-orbit-velvet");
    }

    #[test]
    fn free_phrases_are_accepted() {
        let c = Code::parse("correct horse battery staple").unwrap();
        assert_eq!(c.channel(), "");
        assert_eq!(c.password(), b"correct-horse-battery-staple");
        assert_eq!(c.reveal().as_str(), "correct-horse-battery-staple");
        let c = Code::parse("42 is the answer").unwrap();
        assert_eq!(c.channel(), "42");
        assert_eq!(c.password(), b"is-the-answer");
    }

    #[test]
    fn bad_codes_are_refused_with_a_reason() {
        assert_eq!(Code::parse("").unwrap_err(), CodeError::Empty);
        assert_eq!(Code::parse(" - -").unwrap_err(), CodeError::Empty);
        assert_eq!(Code::parse("12").unwrap_err(), CodeError::NoSecret);
        assert!(matches!(
            Code::parse(&"a".repeat(300)).unwrap_err(),
            CodeError::TooLong(300)
        ));
    }

    #[test]
    fn the_shape_of_a_code_is_a_number_then_listed_words() {
        assert_eq!(check_shape("535-bulb-fog-baby"), Ok(()));
        assert_eq!(check_shape(" 7 Guitar  orbit-VELVET "), Ok(()));
        assert_eq!(check_shape("0012-abacus"), Ok(()));
        assert_eq!(check_shape(""), Err(ShapeError::Empty));
        assert_eq!(check_shape(" - "), Err(ShapeError::Empty));
        for command_like in ["lst", "ls", "help", "rm", "guitar-orbit", "x7-bulb"] {
            assert_eq!(
                check_shape(command_like),
                Err(ShapeError::NoNumber),
                "{command_like}"
            );
        }
        assert_eq!(check_shape("535"), Err(ShapeError::NoWords));
        assert_eq!(check_shape("-1"), Err(ShapeError::NoWords));
        assert_eq!(
            check_shape("535-bulb-fgo-baby"),
            Err(ShapeError::NotAWord { position: 2 })
        );
        assert_eq!(
            check_shape("42 is the answer"),
            Err(ShapeError::NotAWord { position: 1 })
        );
        assert!(matches!(
            check_shape(&"1-".repeat(200)),
            Err(ShapeError::TooLong(400))
        ));
        // Every generated code has the shape.
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
        for _ in 0..100 {
            assert_eq!(check_shape(&Code::generate(&mut rng).reveal()), Ok(()));
        }
    }

    #[test]
    fn shape_errors_never_repeat_the_code() {
        for typed in ["535-bulb-fgo-baby", "guitar-orbit", "535"] {
            let message = check_shape(typed).unwrap_err().to_string();
            assert!(
                !message.contains("fgo") && !message.contains("guitar"),
                "{message}"
            );
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let c = Code::parse("7-guitar-orbit-velvet").unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("guitar"), "{dbg}");
        assert!(dbg.contains("redacted"));
    }

    #[test]
    fn different_words_differ() {
        assert_ne!(
            Code::parse("7-guitar-orbit-velvet").unwrap(),
            Code::parse("7-guitar-orbit-violin").unwrap()
        );
        assert_ne!(
            Code::parse("7-guitar-orbit-velvet").unwrap(),
            Code::parse("8-guitar-orbit-velvet").unwrap()
        );
    }
}
