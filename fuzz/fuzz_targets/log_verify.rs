//! The decision log verifier over arbitrary bytes: any input gives a
//! report (never a panic, never a hang). The input is split into up to
//! three segment files at `\x00\x00`; with the first byte odd, the
//! checkpoints must be signed by a fixed key.
#![no_main]

use agentriage::audit::{VerifyOptions, verify_contents};
use libfuzzer_sys::fuzz_target;

/// 32 bytes of hex: any value will do, the fuzzer cannot sign with it.
const KEY: &str = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";

fuzz_target!(|data: &[u8]| {
    let (keyed, body) = match data.split_first() {
        Some((first, rest)) => (first % 2 == 1, rest),
        None => (false, data),
    };
    let mut segments = Vec::new();
    let mut rest = body;
    while segments.len() < 2 {
        match rest.windows(2).position(|w| w == b"\x00\x00") {
            Some(at) => {
                segments.push(rest[..at].to_vec());
                rest = &rest[at + 2..];
            }
            None => break,
        }
    }
    segments.push(rest.to_vec());
    let named: Vec<(String, Vec<u8>)> = segments
        .into_iter()
        .enumerate()
        .map(|(i, b)| (format!("decisions-{:06}.jsonl", i + 1), b))
        .collect();
    let options = if keyed {
        VerifyOptions::with_key(KEY).expect("a valid key")
    } else {
        VerifyOptions::new()
    };
    let report = verify_contents(&named, &options);
    // A report always says something coherent.
    assert!(report.files == named.len() || report.problem.is_some());
    let _ = report.to_string();
});
