//! The environment git and git-annex-shell run with: an allowlist, nothing else.
//!
//! sshd passes the client's variables on wherever its `AcceptEnv` lets them through (Debian's
//! default `sshd_config` accepts `LANG LC_*`; admins add more). git and the programs it starts
//! read far more from the environment than a peer should choose: `GIT_DIR` and `GIT_CONFIG_*`
//! point git elsewhere, `XDG_CONFIG_HOME` names a global config that may set
//! `uploadpack.packObjectsHook` (a command git runs), `LD_PRELOAD` loads code into every
//! program, `GCONV_PATH`, `PAGER`, `EDITOR`, `SSH_ASKPASS`... So the child starts from an empty
//! environment and gets only [`ALLOWED`] from ours, with values of the forms those variables
//! take, and `GIT_PROTOCOL` only as `version=N`; serve then sets its own
//! (`GIT_ANNEX_SHELL_*`).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

/// The variables passed on, besides `LC_*` and `GIT_PROTOCOL`: what sshd itself sets for a
/// session (`HOME`, `PATH`, `USER`, `LOGNAME`, `SHELL`), the locale and the time zone.
pub(super) const ALLOWED: [&str; 7] = ["HOME", "PATH", "USER", "LOGNAME", "SHELL", "LANG", "TZ"];

/// The variables of `vars` that the child may see, in their order; everything else is dropped.
pub(super) fn allowed(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
) -> Vec<(OsString, OsString)> {
    vars.into_iter()
        .filter(|(name, value)| is_allowed(name, value))
        .collect()
}

fn is_allowed(name: &OsStr, value: &OsStr) -> bool {
    let (name, value) = (name.as_bytes(), value.as_bytes());
    match name {
        b"GIT_PROTOCOL" => is_protocol_version(value),
        b"LANG" => is_locale_name(value),
        b"TZ" => is_time_zone(value),
        _ if is_locale_variable(name) => is_locale_name(value),
        _ => ALLOWED.iter().any(|a| a.as_bytes() == name),
    }
}

/// `version=N`, N digits: what git sends for protocol v1 and v2. git also defines other
/// `key=value` pairs here, but sends none today; they are dropped rather than trusted.
fn is_protocol_version(value: &[u8]) -> bool {
    value
        .strip_prefix(b"version=")
        .is_some_and(|n| !n.is_empty() && n.len() <= 3 && n.iter().all(u8::is_ascii_digit))
}

/// `LC_ALL`, `LC_CTYPE`, ...
fn is_locale_variable(name: &[u8]) -> bool {
    name.strip_prefix(b"LC_").is_some_and(|rest| {
        !rest.is_empty() && rest.iter().all(|b| b.is_ascii_uppercase() || *b == b'_')
    })
}

/// A locale name like `C.UTF-8`, `en_US.utf8` or `sr_RS@latin`: no `/`, which would make the C
/// library read a locale from a path (and the peer may write files in a work tree).
fn is_locale_name(value: &[u8]) -> bool {
    value.len() <= 64
        && value
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@+=,".contains(b))
}

/// A time zone like `UTC`, `Europe/Paris`, `:Europe/Paris` or `CET-1CEST,M3.5.0,M10.5.0/3`: a
/// name under the system's zoneinfo, never an absolute path or one with `..` (a time zone file
/// the peer wrote into a work tree).
fn is_time_zone(value: &[u8]) -> bool {
    let name = value.strip_prefix(b":").unwrap_or(value);
    value.len() <= 64
        && !name.starts_with(b"/")
        && !name.split(|b| *b == b'/').any(|part| part == b"..")
        && name
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"/_-+,.:<>".contains(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(vars: &[(&str, &str)]) -> Vec<(String, String)> {
        allowed(
            vars.iter()
                .map(|(n, v)| (OsString::from(n), OsString::from(v))),
        )
        .into_iter()
        .map(|(n, v)| (n.into_string().unwrap(), v.into_string().unwrap()))
        .collect()
    }

    #[test]
    fn only_the_allowlist_passes() {
        let session = [
            ("HOME", "/home/bob"),
            ("PATH", "/usr/local/bin:/usr/bin:/bin"),
            ("USER", "bob"),
            ("LOGNAME", "bob"),
            ("SHELL", "/bin/sh"),
            ("LANG", "C.UTF-8"),
            ("LC_ALL", "en_US.utf8"),
            ("LC_MESSAGES", "sr_RS@latin"),
            ("TZ", "Europe/Paris"),
            ("GIT_PROTOCOL", "version=2"),
        ];
        assert_eq!(
            kept(&session),
            session
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        );
        for name in [
            "GIT_DIR",
            "GIT_CONFIG_PARAMETERS",
            "GIT_CONFIG_COUNT",
            "GIT_CONFIG_GLOBAL",
            "GIT_EXEC_PATH",
            "GIT_ANNEX_SHELL_DIRECTORY",
            "GIT_ANNEX_SHELL_READONLY",
            "XDG_CONFIG_HOME",
            "LD_PRELOAD",
            "LD_LIBRARY_PATH",
            "GCONV_PATH",
            "LOCPATH",
            "LANGUAGE",
            "PAGER",
            "EDITOR",
            "SSH_ORIGINAL_COMMAND",
            "SSH_ASKPASS",
            "TMPDIR",
            "ENV",
            "BASH_ENV",
            "IFS",
            "home",
            "LC_",
            "LC_all",
            "",
        ] {
            assert!(kept(&[(name, "x")]).is_empty(), "{name}");
        }
    }

    #[test]
    fn values_must_have_their_usual_form() {
        for (name, value) in [
            ("GIT_PROTOCOL", "version=1"),
            ("GIT_PROTOCOL", "version=2"),
            ("LANG", "C"),
            ("LC_CTYPE", "de_DE.ISO-8859-1"),
            ("TZ", "UTC"),
            ("TZ", ":America/Argentina/Buenos_Aires"),
            ("TZ", "CET-1CEST,M3.5.0,M10.5.0/3"),
            ("TZ", "<+0330>-3:30"),
        ] {
            assert_eq!(kept(&[(name, value)]).len(), 1, "{name}={value}");
        }
        for (name, value) in [
            ("GIT_PROTOCOL", "version=2:object-format=sha256"),
            ("GIT_PROTOCOL", "version="),
            ("GIT_PROTOCOL", "version=2 "),
            ("GIT_PROTOCOL", "version=x"),
            ("GIT_PROTOCOL", "version=12345"),
            ("GIT_PROTOCOL", "Version=2"),
            ("LANG", "/home/bob/notes/evil"),
            ("LANG", "../../../tmp/x"),
            ("LC_ALL", "C.UTF-8\n"),
            ("LC_ALL", &"x".repeat(65)),
            ("TZ", "/home/bob/notes/zone"),
            ("TZ", ":/home/bob/notes/zone"),
            ("TZ", "../../home/bob/notes/zone"),
            ("TZ", "Europe/../../../tmp/zone"),
            ("TZ", "UTC\u{1b}"),
        ] {
            assert!(kept(&[(name, value)]).is_empty(), "{name}={value:?}");
        }
    }

    #[test]
    fn values_that_are_not_utf8_are_judged_by_their_bytes() {
        let odd = OsStr::from_bytes(b"C.\xff").to_owned();
        assert!(allowed([(OsString::from("LANG"), odd.clone())]).is_empty());
        // HOME and PATH come from sshd and are passed as they are.
        assert_eq!(allowed([(OsString::from("HOME"), odd)]).len(), 1);
    }
}
