//! What each fuzz target does with its input, in one place.
//!
//! The libFuzzer binaries in `fuzz_targets/` call these functions, and so does
//! `core/tests/fuzz_targets.rs`, which replays the seeds and regression inputs
//! and a fixed set of mutations of them on every `cargo test` — the targets
//! cannot rot, and a crash once found stays fixed.
//!
//! Every function takes arbitrary bytes. Each must return normally: a panic
//! (including a failed `assert!` on a property), a hang or an allocation
//! blow-up is a finding.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use agentriage::anomaly::IsolationForest;
use agentriage::audit::{VerifyOptions, verify_contents};
use agentriage::intent::{
    Algorithm, Expected, IntentClaims, IntentConfig, IntentVerifier, SigningKey as IntentKey,
    TrustedKeys as IntentKeys,
};
use agentriage::signing::{SigningKey, TrustedKeys, sign_bundle};
use agentriage::{Bundle, Engine, Outcome, Timestamp};

/// The repository's root (this file is one level below it, in `fuzz/` or
/// included from `core/`).
fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn read(rel: &str) -> String {
    let path = root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A request the reference pack decides: the first line of `testdata/requests.jsonl`.
fn sample_request() -> String {
    read("testdata/requests.jsonl")
        .lines()
        .next()
        .expect("testdata/requests.jsonl has a request")
        .to_owned()
}

/// A decision that does not execute always says why.
fn check_decision(engine: &Engine, request: &str) {
    if let Ok(decision) = engine.decide_json(request)
        && decision.outcome != Outcome::Execute
    {
        assert!(!decision.reasons.is_empty(), "{decision:?}");
    }
}

// --- request ---------------------------------------------------------------

/// `request`: arbitrary bytes to the request parser, then `decide` against the
/// reference pack.
pub fn request(data: &[u8]) {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    let engine = ENGINE.get_or_init(|| {
        Engine::from_dir(root().join("policies/a2a-supply-chain"))
            .expect("the reference pack loads")
    });
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    check_decision(engine, text);
}

// --- bundle ----------------------------------------------------------------

/// The files of the reference pack the `bundle` target may replace, and the
/// signature over them.
pub const BUNDLE_FILES: &[&str] = &[
    "bundle.toml",
    "rego/identity.rego",
    "rego/runtime.rego",
    "rego/thresholds.rego",
    "rego/intents.rego",
    "data/pack.json",
    "data/intent-keys.json",
    "data/approver-keys.json",
    "cedar/pack.cedar",
    "cedar/pack.cedarschema",
    agentriage::signing::SIGNATURE_FILE,
];

/// A signed copy of the reference pack in a private temporary directory,
/// removed on drop. [`BundleTarget::run`] replaces one of its files with the
/// input, loads the bundle and puts the file back.
pub struct BundleTarget {
    dir: PathBuf,
    originals: Vec<Vec<u8>>,
    trusted: TrustedKeys,
    request: String,
}

impl BundleTarget {
    /// Copies and signs the reference pack.
    pub fn new() -> BundleTarget {
        static N: AtomicU64 = AtomicU64::new(0);
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!(
            "agentriage-fuzz-bundle-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let pack = root().join("policies/a2a-supply-chain");
        for rel in BUNDLE_FILES.iter().filter(|f| !f.starts_with('.')) {
            let to = dir.join(rel);
            std::fs::create_dir_all(to.parent().expect("a parent")).expect("temporary directory");
            std::fs::copy(pack.join(rel), &to).expect("copy the pack");
        }
        let (key, _) = SigningKey::generate().expect("a signing key");
        sign_bundle(&dir, &key).expect("the copy signs");
        let mut trusted = TrustedKeys::new();
        trusted.add(key.public_key());
        let originals = BUNDLE_FILES
            .iter()
            .map(|rel| std::fs::read(dir.join(rel)).expect("read back"))
            .collect();
        BundleTarget {
            dir,
            originals,
            trusted,
            request: sample_request(),
        }
    }

    /// The input is a file name from [`BUNDLE_FILES`], a newline, and the
    /// file's new content. A bundle that loads must decide without failing
    /// open; a signed load must refuse any content but the signed one.
    pub fn run(&self, data: &[u8]) {
        let Some(at) = data.iter().position(|&b| b == b'\n') else {
            return;
        };
        let Some(index) = BUNDLE_FILES
            .iter()
            .position(|f| f.as_bytes() == &data[..at])
        else {
            return;
        };
        let content = &data[at + 1..];
        let path = self.dir.join(BUNDLE_FILES[index]);
        std::fs::write(&path, content).expect("write the bundle file");

        let verified = Bundle::load_verified(&self.dir, &self.trusted);
        if !BUNDLE_FILES[index].starts_with('.') {
            let unchanged = content == self.originals[index].as_slice();
            assert_eq!(
                verified.is_ok(),
                unchanged,
                "`{}` {} and the signed load says {:?}",
                BUNDLE_FILES[index],
                if unchanged { "unchanged" } else { "changed" },
                verified.err()
            );
        }
        if let Ok(bundle) = Bundle::load(&self.dir) {
            check_decision(&Engine::new(bundle), &self.request);
        }

        std::fs::write(&path, &self.originals[index]).expect("restore the bundle file");
    }
}

impl Default for BundleTarget {
    fn default() -> BundleTarget {
        BundleTarget::new()
    }
}

impl Drop for BundleTarget {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// --- intent ----------------------------------------------------------------

const PAYMENTS: &str = "spiffe://acme.example/ns/finance/sa/payments";
const AUDIENCE: &str = "spiffe://acme.example/ns/platform/sa/agentriage";
/// 2026-11-21T14:05:00Z, inside the fixture token's window.
const INTENT_NOW: i128 = 1_795_269_900 * 1_000_000_000;

struct IntentFixture {
    verifier: IntentVerifier,
    token: String,
}

fn intent_fixture() -> &'static IntentFixture {
    static F: OnceLock<IntentFixture> = OnceLock::new();
    F.get_or_init(|| {
        let keys = read("policies/a2a-supply-chain/data/intent-keys.json");
        let pem = read("testdata/intents/keys/payments.pem");
        let key = IntentKey::from_pem(Algorithm::EdDsa, "payments-2026-11", PAYMENTS, &pem)
            .expect("key loads");
        let claims = IntentClaims::new(
            PAYMENTS,
            AUDIENCE,
            "payment.release",
            "invoice:INV-88",
            "fuzz",
            1_795_269_840,
            Duration::from_secs(600),
        );
        IntentFixture {
            verifier: IntentVerifier::new(IntentConfig::new(
                IntentKeys::from_json(&keys).expect("key set parses"),
                AUDIENCE,
            )),
            token: key.sign(&claims).expect("signs"),
        }
    })
}

fn verify_intent(token: &str) -> bool {
    let expected = Expected {
        principal: PAYMENTS,
        action: "payment.release",
        resource: Some(("invoice", "INV-88")),
    };
    let now = Timestamp::from_unix_nanos(INTENT_NOW).expect("time");
    intent_fixture()
        .verifier
        .verify_unrecorded(token, &expected, now)
        .is_ok()
}

/// `intent`: the first byte picks what the rest is:
/// - 0: a token, verified against the reference pack's keys;
/// - 1: edits (2-byte offset, byte) applied to a valid Ed25519 token — any
///   edit that changes it must make verification fail (strict base64url
///   gives every byte string one encoding, and ring refuses non-canonical
///   Ed25519 signatures, so no other text verifies);
/// - 2: a key set (JWKS).
pub fn intent(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            let _ = verify_intent(&String::from_utf8_lossy(rest));
        }
        1 => {
            let original = intent_fixture().token.as_bytes();
            let mut token = original.to_vec();
            for edit in rest.chunks_exact(3) {
                let at = usize::from(u16::from_le_bytes([edit[0], edit[1]]));
                if let Some(b) = token.get_mut(at % original.len()) {
                    *b = edit[2];
                }
            }
            let Ok(text) = std::str::from_utf8(&token) else {
                return;
            };
            assert_eq!(
                verify_intent(text),
                token == original,
                "edited token: {text}"
            );
        }
        _ => {
            let _ = IntentKeys::from_json(&String::from_utf8_lossy(rest));
        }
    }
}

// --- log_verify ------------------------------------------------------------

/// Public half of the key that signed the checkpoints of the seeds in
/// `fuzz/seeds/log_verify/` (the private half is not kept).
pub const LOG_KEY: &str = "22c38f95133e50c4a97052ee171ea966f6e849ef251ce4ab4d62469d359ab59d";

/// `log_verify`: the decision log verifier over arbitrary bytes. The input is
/// split into up to three segment files at `\x00\x00`; with the first byte
/// odd, the checkpoints must be signed by [`LOG_KEY`]. Any input gives a
/// coherent report.
pub fn log_verify(data: &[u8]) {
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
        VerifyOptions::with_key(LOG_KEY).expect("a valid key")
    } else {
        VerifyOptions::new()
    };
    let report = verify_contents(&named, &options);
    assert!(report.files == named.len() || report.problem.is_some());
    // Without the key nothing is proven, so nothing is intact.
    assert!(keyed || !report.is_intact());
    let _ = report.to_string();
}

// --- anomaly_model ---------------------------------------------------------

/// `anomaly_model`: arbitrary bytes to the anomaly model loader. A model that
/// loads scores finite input in (0, 1] and survives a JSON round trip.
pub fn anomaly_model(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(model) = IsolationForest::from_json(text) else {
        return;
    };
    let n = model.features().len();
    for value in [0.0, -1.0e30, 1.0e30, 0.5] {
        let row = vec![value; n];
        let score = model
            .score(&row)
            .expect("a loaded model scores finite input");
        assert!(score > 0.0 && score <= 1.0, "score {score} outside (0, 1]");
    }
    let again = IsolationForest::from_json(&model.to_json()).expect("round trip");
    let row = vec![0.25; n];
    assert_eq!(model.score(&row).ok(), again.score(&row).ok());
}

// --- policy_text -----------------------------------------------------------

/// Longest a `policy_text` load may take before the target reports a hang:
/// a watchdog far above the slowest load the limits allow, not a speed test.
pub const POLICY_TEXT_WATCHDOG: Duration = Duration::from_secs(60);

/// Stack of the thread a `policy_text` bundle loads and decides on: an
/// ordinary thread's, as a host's worker thread would have.
pub const POLICY_TEXT_STACK: usize = 2 << 20;

/// A private temporary directory that [`PolicyTextTarget::run`] writes a
/// bundle of the input's Rego and Cedar text into, removed on drop.
pub struct PolicyTextTarget {
    dir: PathBuf,
    request: String,
}

impl PolicyTextTarget {
    /// Makes the directory.
    pub fn new() -> PolicyTextTarget {
        static N: AtomicU64 = AtomicU64::new(0);
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!(
            "agentriage-fuzz-policy-text-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temporary directory");
        PolicyTextTarget {
            dir,
            request: sample_request(),
        }
    }

    /// The input is a byte `k`, then a Rego module, a NUL byte and Cedar
    /// policies (either may be empty; the bundle has what is not). With bit
    /// 0x40 of `k` set, the first `1` of the module becomes `k & 0x3f`
    /// nested arrays around it and the first `true` of the Cedar text as
    /// many nested parentheses, so that nesting is one byte away for the
    /// fuzzer. The bundle loads on a thread with [`POLICY_TEXT_STACK`] and
    /// must return (a bundle or a typed error) within
    /// [`POLICY_TEXT_WATCHDOG`]; a bundle that loads decides a request
    /// without panicking, and a decision that does not execute has a reason.
    pub fn run(&self, data: &[u8]) {
        let Some((&k, rest)) = data.split_first() else {
            return;
        };
        let (rego, cedar) = match rest.iter().position(|&b| b == 0) {
            Some(at) => (&rest[..at], &rest[at + 1..]),
            None => (rest, &[][..]),
        };
        if rego.is_empty() && cedar.is_empty() {
            return;
        }
        let (mut rego, mut cedar) = (rego.to_vec(), cedar.to_vec());
        if k & 0x40 != 0 {
            let d = usize::from(k & 0x3f);
            let deep = format!("{}1{}", "[".repeat(d), "]".repeat(d));
            replace_first(&mut rego, b"1", deep.as_bytes());
            let deep = format!("{}true{}", "(".repeat(d), ")".repeat(d));
            replace_first(&mut cedar, b"true", deep.as_bytes());
        }
        let mut manifest = String::from("name = \"fuzz\"\nrevision = \"1\"\n");
        for (rel, text, section) in [
            ("p.rego", &rego, "[rego]\nmodules = [\"p.rego\"]\n"),
            ("p.cedar", &cedar, "[cedar]\npolicies = [\"p.cedar\"]\n"),
        ] {
            let path = self.dir.join(rel);
            if text.is_empty() {
                let _ = std::fs::remove_file(&path);
            } else {
                std::fs::write(&path, text).expect("write the policy");
                manifest.push_str(section);
            }
        }
        std::fs::write(self.dir.join("bundle.toml"), manifest).expect("write the manifest");

        let (tx, rx) = std::sync::mpsc::channel();
        let dir = self.dir.clone();
        let request = self.request.clone();
        let worker = std::thread::Builder::new()
            .stack_size(POLICY_TEXT_STACK)
            .spawn(move || {
                if let Ok(bundle) = Bundle::load(&dir) {
                    check_decision(&Engine::new(bundle), &request);
                }
                let _ = tx.send(());
            })
            .expect("spawn the loader");
        match rx.recv_timeout(POLICY_TEXT_WATCHDOG) {
            // The worker finished, or panicked (its sender dropped): join
            // re-raises a panic here.
            Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                if let Err(panic) = worker.join() {
                    std::panic::resume_unwind(panic);
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                panic!("loading did not return within {POLICY_TEXT_WATCHDOG:?}")
            }
        }
    }
}

impl Default for PolicyTextTarget {
    fn default() -> PolicyTextTarget {
        PolicyTextTarget::new()
    }
}

impl Drop for PolicyTextTarget {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn replace_first(text: &mut Vec<u8>, from: &[u8], to: &[u8]) {
    if let Some(at) = text.windows(from.len()).position(|w| w == from) {
        text.splice(at..at + from.len(), to.iter().copied());
    }
}
