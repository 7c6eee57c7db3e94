//! A whole message as received, parsed by ingest under the default limits.
//! The work and the checked invariants live in `mxdesk::fuzzing::ingest_message`, shared
//! with the stable replay test `tests/fuzz_corpus.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mxdesk::fuzzing::ingest_message(data);
});
