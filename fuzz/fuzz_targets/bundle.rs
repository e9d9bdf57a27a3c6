//! The bundle loader, signed and unsigned, with one file of the reference
//! pack replaced by the input (see `agentriage_fuzz::BundleTarget`).
#![no_main]

use std::sync::OnceLock;

use agentriage_fuzz::BundleTarget;

fn target() -> &'static BundleTarget {
    static TARGET: OnceLock<BundleTarget> = OnceLock::new();
    TARGET.get_or_init(BundleTarget::new)
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| target().run(data));
