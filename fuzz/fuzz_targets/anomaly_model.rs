//! The anomaly model loader on arbitrary bytes (see
//! `agentriage_fuzz::anomaly_model`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| agentriage_fuzz::anomaly_model(data));
