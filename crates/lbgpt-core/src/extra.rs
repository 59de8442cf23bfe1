/// Fields of a wire object that lbgpt has no typed field for.
///
/// Every request and response struct flattens one of these so that new API fields and
/// provider extras (for example a local server's `timings` object) survive a round trip.
pub type Extra = serde_json::Map<String, serde_json::Value>;
