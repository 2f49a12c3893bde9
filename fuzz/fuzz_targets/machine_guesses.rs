//! The same attacker as `machine`, checking the threat model's guess budget: at most
//! `MAX_FAILURES` sessions of one run get anything derived from a PAKE key.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    git_pair_fuzz::machine::machine_guesses(data);
});
