//! Bytes a client sends, fed into one real SMTP session (real Desk and Store).
//! The work and the checked invariants live in `mxdesk::fuzzing::smtp_session`, shared
//! with the stable replay test `tests/fuzz_corpus.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mxdesk::fuzzing::smtp_session(data);
});
