//! `ssh_files::journal`: the crash journal's parser never panics and accepts only canonical
//! journals; built journals round-trip; the recovery planner restores exactly what the
//! transaction wrote. See `git_pair_fuzz::journal::journal`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    git_pair_fuzz::journal::journal(data);
});
