//! Placeholder, replaced by the semantic-cache benchmark.
fn main() {}
