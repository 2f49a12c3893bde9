//! `codec::decode` never panics on any datagram; whatever decodes re-encodes within the size
//! limit and decodes back to the same message (git-pair's own `codec::fuzz_roundtrip`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    git_pair::protocol::codec::fuzz_roundtrip(data);
});
