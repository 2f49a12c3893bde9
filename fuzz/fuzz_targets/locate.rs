//! A LAN attacker without the pair secret against the locate protocol: the codec never panics
//! and accepts nothing forged; the watcher's responder answers nothing and stays within its
//! token bucket. See `git_pair_fuzz::locate` for the input format.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    git_pair_fuzz::locate::locate(data);
});
