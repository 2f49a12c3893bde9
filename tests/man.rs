//! The checked-in man page must be what the clap definition renders, so
//! that `git help pair` never lags behind `git pair --help`. Regenerate it
//! with `GIT_PAIR_BLESS=1 cargo test --test man`.

use std::path::Path;

#[test]
fn man_page_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("man/git-pair.1");
    let rendered = git_pair::man::render();
    if std::env::var_os("GIT_PAIR_BLESS").is_some() {
        std::fs::write(&path, &rendered).unwrap();
        return;
    }
    let checked_in = std::fs::read(&path).unwrap_or_default();
    assert!(
        checked_in == rendered,
        "man/git-pair.1 is stale: run `GIT_PAIR_BLESS=1 cargo test --test man` and commit it"
    );
}

#[test]
fn man_page_documents_what_it_must() {
    let page = String::from_utf8(git_pair::man::render()).unwrap();
    for needle in [
        "EXIT STATUS",
        "JSON EVENTS",
        "PROTOCOL",
        "FILES",
        "28620",
        "224.0.0.88",
        "ff02::7061:6972",
        "authorized_keys",
        "\\-\\-interface",
        "serve",
        "28621",
        "git\\-pair\\-watch.service",
        "FINDING A PEER AGAIN",
        "git pair refresh",
        "git pair watch",
        "git pair join",
        "process list",
    ] {
        assert!(page.contains(needle), "the man page lacks {needle:?}");
    }
}

#[test]
fn the_synopsis_shows_option_values_and_every_command() {
    let page = String::from_utf8(git_pair::man::render()).unwrap();
    let start = page.find(".SH SYNOPSIS").unwrap();
    let end = start + page[start..].find(".SH DESCRIPTION").unwrap();
    let synopsis = &page[start..end];
    assert!(!synopsis.contains("subcommands"), "{synopsis}");
    for needle in [
        "\\-\\-interface\\fR \\fIIFACE",
        "\\-\\-timeout\\fR \\fISECONDS",
        "git pair join",
        "\\fICODE",
        "\\-\\-code\\-file\\fR \\fIFILE",
        "git pair list",
        "git pair remove\\fR \\fINAME",
    ] {
        assert!(
            synopsis.contains(needle),
            "SYNOPSIS lacks {needle:?}: {synopsis}"
        );
    }
}
