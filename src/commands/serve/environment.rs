//! The environment git and git-annex-shell run with.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

/// Environment variables removed before running git: a peer must not be able to point git at
/// another repository or inject configuration (`GIT_DIR`, `GIT_CONFIG_*`, ...) through an
/// sshd `AcceptEnv`. `GIT_PROTOCOL` (protocol v2) is the one git variable that passes.
pub(super) fn is_scrubbed_env(name: &OsStr) -> bool {
    let name = name.as_bytes();
    name.starts_with(b"GIT_") && name != b"GIT_PROTOCOL"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_git_protocol_survives_the_environment_scrub() {
        assert!(!is_scrubbed_env(OsStr::new("GIT_PROTOCOL")));
        assert!(!is_scrubbed_env(OsStr::new("HOME")));
        assert!(!is_scrubbed_env(OsStr::new("PATH")));
        assert!(!is_scrubbed_env(OsStr::new("LANG")));
        for name in [
            "GIT_DIR",
            "GIT_CONFIG_PARAMETERS",
            "GIT_CONFIG_COUNT",
            "GIT_EXEC_PATH",
        ] {
            assert!(is_scrubbed_env(OsStr::new(name)), "{name}");
        }
    }
}
