//! The decision log verifier over arbitrary bytes (see
//! `agentriage_fuzz::log_verify`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| agentriage_fuzz::log_verify(data));
