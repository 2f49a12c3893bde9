//! `sync::hooks::plan_install` / `plan_uninstall` lose nothing and undo each other.
//! See `git_pair_fuzz::sync::hooks` for the exact properties.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    git_pair_fuzz::sync::hooks(data);
});
