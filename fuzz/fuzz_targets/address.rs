//! Text run through the address parser, header sanitiser and trace header.
//! The work and the checked invariants live in `mxdesk::fuzzing::address`, shared
//! with the stable replay test `tests/fuzz_corpus.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mxdesk::fuzzing::address(data);
});
