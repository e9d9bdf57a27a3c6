//! Nothing to build. The script exists so that its build-dependency (see
//! `Cargo.toml`) takes part in the resolution of host-side features.
fn main() {}
