//! The fuzz targets of `fuzz/`, run as ordinary tests: every seed, every
//! regression input (a crash once found) and a fixed set of mutations of
//! the seeds go through the same function the libFuzzer binary calls. No
//! coverage guidance here — that is `cargo fuzz run` (see `fuzz/README.md`) —
//! but the targets keep compiling, their properties keep holding on the
//! seeds, and past findings stay fixed, on every `cargo test`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod targets;

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `fuzz/<kind>/<target>/`, sorted; none when it does not exist.
fn inputs(kind: &str, target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = fuzz_dir().join(kind).join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Vec<u8>)> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (
                format!("{kind}/{target}/{name}"),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// xorshift64*: a fixed stream of mutations, the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Tokens that tend to matter to JSON, TOML, Rego, Cedar, base64 and JWS
/// parsers.
const TOKENS: &[&[u8]] = &[
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b".",
    b"\\u0000",
    b"null",
    b"true",
    b"-1",
    b"0",
    b"1e309",
    b"-0",
    b"18446744073709551616",
    b"NaN",
    b"\n",
    b"\x00\x00",
    b"=",
    b"==",
    b"if",
    b"not ",
    b"some x in ",
    b"permit(",
    b"forbid(",
    b"when {",
    b"}\n",
    b"[[",
    b"\xff",
    b"\xc3",
];

/// One to four edits: flip a bit, set a byte, insert a token, delete or
/// duplicate a range, or splice in part of another seed.
fn mutate(rng: &mut Rng, seed: &[u8], others: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(6) {
            0 if !out.is_empty() => {
                let i = at.min(out.len() - 1);
                out[i] ^= 1 << rng.below(8);
            }
            1 if !out.is_empty() => {
                let i = at.min(out.len() - 1);
                out[i] = rng.next() as u8;
            }
            2 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                out.splice(at..at, token.iter().copied());
            }
            3 => {
                let end = (at + 1 + rng.below(16)).min(out.len());
                out.drain(at.min(end)..end);
            }
            4 => {
                let end = (at + 1 + rng.below(64)).min(out.len());
                let part = out[at.min(end)..end].to_vec();
                out.splice(at..at, part);
            }
            _ => {
                let (_, other) = &others[rng.below(others.len())];
                let from = rng.below(other.len());
                let end = (from + 1 + rng.below(64)).min(other.len());
                out.splice(at..at, other[from..end].iter().copied());
            }
        }
    }
    out
}

/// Runs `run` over the target's seeds and regression inputs, then over
/// `mutations` mutations of the seeds. Returns how many inputs ran.
fn exercise(target: &str, mutations: usize, run: &dyn Fn(&[u8])) -> usize {
    let seeds = inputs("seeds", target);
    assert!(!seeds.is_empty(), "fuzz/seeds/{target}/ has no seeds");
    let regressions = inputs("regressions", target);
    for (name, data) in seeds.iter().chain(&regressions) {
        eprintln!("{name}");
        run(data);
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ target.len() as u64);
    for i in 0..mutations {
        let (name, seed) = &seeds[i % seeds.len()];
        let input = mutate(&mut rng, seed, &seeds);
        // Printed before the run, so a panic shows which input caused it.
        if std::env::var_os("AGENTRIAGE_FUZZ_VERBOSE").is_some() {
            eprintln!(
                "mutation {i} of {name}: {:?}",
                String::from_utf8_lossy(&input)
            );
        }
        run(&input);
    }
    seeds.len() + regressions.len() + mutations
}

#[test]
fn request_target() {
    assert!(exercise("request", 600, &targets::request) > 600);
}

#[test]
fn intent_target() {
    assert!(exercise("intent", 2000, &targets::intent) > 2000);
}

#[test]
fn log_verify_target() {
    assert!(exercise("log_verify", 300, &targets::log_verify) > 300);
}

#[test]
fn anomaly_model_target() {
    assert!(exercise("anomaly_model", 300, &targets::anomaly_model) > 300);
}

#[test]
fn bundle_target() {
    let target = targets::BundleTarget::new();
    assert!(exercise("bundle", 60, &|data| target.run(data)) > 60);
}

#[test]
fn policy_text_target() {
    let target = targets::PolicyTextTarget::new();
    assert!(exercise("policy_text", 400, &|data| target.run(data)) > 400);
}

/// The seeds reach the targets' interesting paths: a seed that no longer
/// parsed (after a contract change) would leave the fuzzer at the front door.
#[test]
fn seeds_are_accepted_where_they_should_be() {
    let engine = agentriage::Engine::from_dir(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/a2a-supply-chain"),
    )
    .unwrap();
    let requests = inputs("seeds", "request");
    let decided = requests
        .iter()
        .filter(|(_, d)| {
            engine
                .decide_json(std::str::from_utf8(d).unwrap_or(""))
                .is_ok()
        })
        .count();
    let valid = requests
        .iter()
        .filter(|(n, _)| n.starts_with("seeds/request/valid-"))
        .count();
    assert!(valid > 0);
    assert_eq!(decided, valid);

    for (name, data) in inputs("seeds", "log_verify") {
        let keyed = data[0] % 2 == 1;
        let options = if keyed {
            agentriage::audit::VerifyOptions::with_key(targets::LOG_KEY).unwrap()
        } else {
            agentriage::audit::VerifyOptions::new()
        };
        let report =
            agentriage::audit::verify_contents(&[("decisions-000001.jsonl", &data[1..])], &options);
        assert!(report.chain_verifies(), "{name}: {report}");
        assert_eq!(report.is_intact(), keyed, "{name}: {report}");
        assert!(
            report.decisions > 0 && report.checkpoints > 0,
            "{name}: {report}"
        );
        assert_eq!(report.key_checked, keyed);
    }

    for (name, data) in inputs("seeds", "anomaly_model") {
        let text = std::str::from_utf8(&data).unwrap();
        assert!(
            agentriage::anomaly::IsolationForest::from_json(text).is_ok(),
            "{name}"
        );
    }

    // The `policy_text` seeds named `valid-` load, and those named `hostile-`
    // are refused by a load limit.
    let dir = tempfile::tempdir().unwrap();
    for (name, data) in inputs("seeds", "policy_text") {
        let rest = &data[1..];
        let at = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        let (rego, cedar) = (&rest[..at], rest.get(at + 1..).unwrap_or(&[]));
        let mut manifest = String::from("name = \"s\"\nrevision = \"1\"\n");
        for (rel, text, section) in [
            ("p.rego", rego, "[rego]\nmodules = [\"p.rego\"]\n"),
            ("p.cedar", cedar, "[cedar]\npolicies = [\"p.cedar\"]\n"),
        ] {
            let _ = std::fs::remove_file(dir.path().join(rel));
            if !text.is_empty() {
                std::fs::write(dir.path().join(rel), text).unwrap();
                manifest.push_str(section);
            }
        }
        std::fs::write(dir.path().join("bundle.toml"), manifest).unwrap();
        let loaded = std::thread::Builder::new()
            .stack_size(targets::POLICY_TEXT_STACK)
            .spawn({
                let dir = dir.path().to_path_buf();
                move || agentriage::Bundle::load(dir).map(|_| ())
            })
            .unwrap()
            .join()
            .unwrap();
        if name.starts_with("seeds/policy_text/valid-") {
            assert!(loaded.is_ok(), "{name}: {loaded:?}");
        } else if name.starts_with("seeds/policy_text/hostile-") && data[0] & 0x40 == 0 {
            let e = loaded.unwrap_err();
            assert_eq!(e.kind(), agentriage::BundleErrorKind::Limit, "{name}: {e}");
        }
    }

    // Every pack file the bundle target can replace has a seed holding its
    // current content.
    let bundle = inputs("seeds", "bundle");
    for file in targets::BUNDLE_FILES.iter().filter(|f| !f.starts_with('.')) {
        let current = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../policies/a2a-supply-chain")
                .join(file),
        )
        .unwrap();
        let mut expected = file.as_bytes().to_vec();
        expected.push(b'\n');
        expected.extend(current);
        assert!(
            bundle.iter().any(|(_, d)| *d == expected),
            "no up-to-date seed for {file}: run `python3 fuzz/seeds.py`"
        );
    }
}
