//! `client_config::plan_host` / `plan_include`: never panic, keep the old bytes.
//! See `git_pair_fuzz::planners::client_config` for the exact properties.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    git_pair_fuzz::planners::client_config(data);
});
