//! Request parser and `decide` on arbitrary bytes, against the reference pack.
//!
//! Every input must yield a typed error or a decision; a panic, a hang or an
//! allocation blow-up is a finding.
#![no_main]

use std::sync::OnceLock;

use agentriage::{Engine, Outcome};
use libfuzzer_sys::fuzz_target;

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let pack = concat!(env!("CARGO_MANIFEST_DIR"), "/../policies/a2a-supply-chain");
        Engine::from_dir(pack).expect("the reference pack loads")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(decision) = engine().decide_json(text) {
        // A decision always names at least one reason unless it executes.
        if decision.outcome != Outcome::Execute {
            assert!(!decision.reasons.is_empty(), "{decision:?}");
        }
    }
});
