//! Rego and Cedar policy text loaded as a bundle, within a time and stack
//! budget (see `agentriage_fuzz::PolicyTextTarget`).
#![no_main]

use std::sync::OnceLock;

use agentriage_fuzz::PolicyTextTarget;

fn target() -> &'static PolicyTextTarget {
    static TARGET: OnceLock<PolicyTextTarget> = OnceLock::new();
    TARGET.get_or_init(PolicyTextTarget::new)
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| target().run(data));
