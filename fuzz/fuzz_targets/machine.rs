//! A LAN attacker without the code against the protocol machine: never panics, every datagram
//! it sends decodes and fits, it never decrypts a payload or verifies, and it gets at most
//! `MAX_FAILURES` guesses per run (threat model, point 2).
//! See `git_pair_fuzz::machine` for the input format.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    git_pair_fuzz::machine::machine(data);
});
