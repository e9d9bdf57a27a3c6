//! Signed-intent parser and verifier on arbitrary bytes.
//!
//! The first byte picks what the rest is:
//! - 0: a token, verified against the reference pack's keys;
//! - 1: edits (offset, byte) applied to a valid Ed25519 token — any edit
//!   that changes it must make verification fail (strict base64url gives
//!   every byte string one encoding, and ring refuses non-canonical Ed25519
//!   signatures, so no other text verifies);
//! - 2: a key set (JWKS).
//!
//! Every input must yield a typed error or a result; a panic, a hang or an
//! allocation blow-up is a finding.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use agentriage::Timestamp;
use agentriage::intent::{
    Algorithm, Expected, IntentClaims, IntentConfig, IntentVerifier, SigningKey, TrustedKeys,
};
use libfuzzer_sys::fuzz_target;

const PAYMENTS: &str = "spiffe://acme.example/ns/finance/sa/payments";
const AUDIENCE: &str = "spiffe://acme.example/ns/platform/sa/agentriage";
const NOW: i128 = 1_795_269_900 * 1_000_000_000;

struct Fixture {
    verifier: IntentVerifier,
    token: String,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let keys = std::fs::read_to_string(format!(
            "{root}/policies/a2a-supply-chain/data/intent-keys.json"
        ))
        .expect("key set");
        let pem = std::fs::read_to_string(format!("{root}/testdata/intents/keys/payments.pem"))
            .expect("test key");
        let key = SigningKey::from_pem(Algorithm::EdDsa, "payments-2026-11", PAYMENTS, &pem)
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
        Fixture {
            verifier: IntentVerifier::new(IntentConfig::new(
                TrustedKeys::from_json(&keys).expect("key set parses"),
                AUDIENCE,
            )),
            token: key.sign(&claims).expect("signs"),
        }
    })
}

fn verify(token: &str) -> bool {
    let expected = Expected {
        principal: PAYMENTS,
        action: "payment.release",
        resource: Some(("invoice", "INV-88")),
    };
    let now = Timestamp::from_unix_nanos(NOW).expect("time");
    fixture()
        .verifier
        .verify_unrecorded(token, &expected, now)
        .is_ok()
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            let _ = verify(&String::from_utf8_lossy(rest));
        }
        1 => {
            let original = fixture().token.as_bytes();
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
            if token != original {
                assert!(!verify(text), "an edited token verified: {text}");
            } else {
                assert!(verify(text));
            }
        }
        _ => {
            let _ = TrustedKeys::from_json(&String::from_utf8_lossy(rest));
        }
    }
});
