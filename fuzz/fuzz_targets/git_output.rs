//! The readers of git's output in `sync::plan` never panic.
//! See `git_pair_fuzz::sync::git_output` for the exact properties.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    git_pair_fuzz::sync::git_output(data);
});
