//! `authorized_keys::plan_add` / `plan_remove`: never panic, keep every line they do not own byte for byte.
//! See `git_pair_fuzz::planners::authorized_keys` for the exact properties.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    git_pair_fuzz::planners::authorized_keys(data);
});
