//! Check behind the `journal` target: git pair's crash journal (`ssh_files::journal`), its
//! parser and its recovery planner.
//!
//! The input is read twice. As a journal file: `decode` never panics, and whatever it accepts
//! encodes back to exactly the same bytes (so nothing unchecked is ever acted upon), and the
//! planner never panics on it. As a recipe (the first bytes say how many files, which states,
//! which bytes): a journal built from it round-trips through `encode`/`decode`, any one flipped
//! bit or any truncation of its encoding is refused, and the planner restores a file exactly when
//! it holds something the transaction wrote (its previous bytes: nothing to do; anything else:
//! changed since, left alone).

use std::path::PathBuf;

use git_pair::ssh_files::journal::{digest, plan, Action, Journal, Saved, Written};
use zeroize::Zeroizing;

pub fn journal(data: &[u8]) {
    if let Ok(parsed) = Journal::decode(data) {
        assert_eq!(
            parsed.encode().as_slice(),
            data,
            "decode accepted a non-canonical journal"
        );
        for entry in &parsed.entries {
            let before = entry.before.as_ref().map(|s| s.bytes.as_slice());
            assert_eq!(plan(entry, before), Action::Nothing);
            let _ = plan(entry, Some(data));
            let _ = plan(entry, None);
        }
    }
    let (built, contents) = recipe(data);
    let bytes = built.encode();
    assert_eq!(Journal::decode(&bytes).as_ref(), Ok(&built));
    if let Some(&pick) = data.first() {
        let at = usize::from(pick) * bytes.len() / 256;
        let mut flipped = bytes.to_vec();
        flipped[at] ^= 1 << (pick % 8);
        assert!(
            Journal::decode(&flipped).is_err(),
            "a flipped bit at {at} was accepted"
        );
        assert!(
            Journal::decode(&bytes[..at]).is_err(),
            "a cut at {at} was accepted"
        );
    }
    for (entry, written) in built.entries.iter().zip(&contents) {
        let before = entry.before.as_ref().map(|s| s.bytes.as_slice());
        for now in written
            .iter()
            .map(|c| Some(c.as_slice()))
            .chain([None, Some(&b"other"[..])])
        {
            let action = plan(entry, now);
            let ours = match now {
                None => entry.written.contains(&Written::Removed),
                Some(bytes) => {
                    entry.written.contains(&Written::Anything)
                        || entry.written.contains(&Written::Bytes(digest(bytes)))
                }
            };
            let expected = if now == before {
                Action::Nothing
            } else if !ours {
                Action::ChangedSince
            } else {
                match &entry.before {
                    Some(saved) => Action::Restore(saved),
                    None => Action::Remove,
                }
            };
            assert_eq!(action, expected, "{entry:?} holding {now:?}");
        }
    }
}

/// A journal made from `data`, and per entry the contents whose digests it records.
fn recipe(data: &[u8]) -> (Journal, Vec<Vec<Vec<u8>>>) {
    let mut chunks = data.split(|&b| b == 0xff);
    let head = chunks.next().unwrap_or_default();
    let mut journal = Journal::new(
        head.iter()
            .fold(0u64, |n, &b| n.wrapping_mul(31).wrapping_add(u64::from(b))),
        head.len() as u32,
        String::from_utf8_lossy(head).into_owned(),
    );
    let mut contents = Vec::new();
    for (i, chunk) in chunks.take(16).enumerate() {
        let (flags, rest) = chunk.split_first().unwrap_or((&0, &[]));
        let path = PathBuf::from(format!("/f/{i}-{:02x}", flags));
        let before = (flags & 1 != 0).then(|| Saved {
            mode: u32::from(*flags) * 7 % 0o777,
            bytes: Zeroizing::new(rest.to_vec()),
        });
        let mut written = Vec::new();
        let mut states = Vec::new();
        if flags & 2 != 0 {
            states.push(Written::Removed);
        }
        if flags & 4 != 0 {
            states.push(Written::Anything);
        }
        for (j, piece) in rest.chunks(7).take(3).enumerate() {
            if flags & (8 << j) != 0 {
                states.push(Written::Bytes(digest(piece)));
                written.push(piece.to_vec());
            }
        }
        if states.is_empty() {
            states.push(Written::Bytes(digest(rest)));
            written.push(rest.to_vec());
        }
        for state in states {
            journal.record(&path, before.clone(), state);
        }
        contents.push(written);
    }
    (journal, contents)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn seeds_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds/journal")
    }

    /// Real journals as git pair writes them, and recipes.
    fn seed_inputs() -> Vec<(&'static str, Vec<u8>)> {
        let mut pairing = Journal::new(
            1_795_687_322,
            4242,
            "pairing /home/a/notes (ssh alias git-pair-laptop-1a2b3c4d)",
        );
        pairing.record(
            Path::new("/home/a/.ssh/git-pair/id_git-pair-laptop-1a2b3c4d"),
            None,
            Written::Bytes(digest(b"-----BEGIN OPENSSH PRIVATE KEY-----\n")),
        );
        pairing.record(
            Path::new("/home/a/.ssh/authorized_keys"),
            Some(Saved {
                mode: 0o600,
                bytes: Zeroizing::new(b"# mine\r\nssh-ed25519 AAAA me\n".to_vec()),
            }),
            Written::Bytes(digest(b"# mine\r\nssh-ed25519 AAAA me\nrestrict ...\n")),
        );
        pairing.record(
            Path::new("/home/a/notes/.git/config.lock"),
            None,
            Written::Anything,
        );
        pairing.record(
            Path::new("/home/a/.ssh/git-pair/id_git-pair-laptop-00000000"),
            Some(Saved {
                mode: 0o600,
                bytes: Zeroizing::new(b"OLD KEY".to_vec()),
            }),
            Written::Removed,
        );
        vec![
            ("pairing", pairing.encode().to_vec()),
            ("empty", Journal::new(0, 0, "").encode().to_vec()),
            (
                "recipe",
                b"label\xff\x0fbefore-bytes-and-more\xff\x02\xff\x35abcdefghijklmnopq".to_vec(),
            ),
            ("not-a-journal", b"git-pair journal 2\n".to_vec()),
        ]
    }

    #[test]
    fn seeds_pass_the_check() {
        for (name, data) in seed_inputs() {
            journal(&data);
            let path = seeds_dir().join(name);
            let committed = std::fs::read(&path).unwrap_or_else(|e| {
                panic!(
                    "{}: {e}; run `cargo test -- --ignored write_journal_seeds`",
                    path.display()
                )
            });
            assert_eq!(
                committed, data,
                "{name} is stale: run `cargo test -- --ignored write_journal_seeds`"
            );
        }
    }

    #[test]
    fn the_check_sees_real_journals() {
        let (_, data) = &seed_inputs()[0];
        assert_eq!(Journal::decode(data).unwrap().entries.len(), 4);
        let (built, contents) = recipe(b"x\xff\x0fbefore\xff\x02");
        assert_eq!(built.entries.len(), 2);
        assert_eq!(contents[0].len(), 1);
    }

    #[test]
    #[ignore = "writes seeds/journal"]
    fn write_journal_seeds() {
        std::fs::create_dir_all(seeds_dir()).unwrap();
        for (name, data) in seed_inputs() {
            std::fs::write(seeds_dir().join(name), data).unwrap();
        }
    }
}
