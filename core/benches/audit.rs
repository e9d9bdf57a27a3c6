//! Benchmarks of the decision log (filled in below).
fn main() {}
