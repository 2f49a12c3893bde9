//! `PeerInfo::parse` never panics; what it accepts passed every documented check.
//! See `git_pair_fuzz::planners::payload` for the exact properties.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    git_pair_fuzz::planners::payload(data);
});
