//! The lbgpt command line.
fn main() {}
