//! Signed-intent parser and verifier on arbitrary bytes (see
//! `agentriage_fuzz::intent`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| agentriage_fuzz::intent(data));
