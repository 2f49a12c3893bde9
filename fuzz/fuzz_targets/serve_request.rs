//! `serve::parse_request` never panics and accepts only a service with a safe path.
//! See `git_pair_fuzz::planners::serve_request` for the exact properties.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    git_pair_fuzz::planners::serve_request(data);
});
