//! Request parser and `decide` on arbitrary bytes, against the reference pack
//! (see `agentriage_fuzz::request`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| agentriage_fuzz::request(data));
