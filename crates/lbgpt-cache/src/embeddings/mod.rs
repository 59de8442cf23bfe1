//! The per-input embedding cache: [`EmbeddingCacheLayer`] and its service [`EmbeddingCache`].
//!
//! A request is planned ([`plan`]: one key per input, distinct inputs once), looked up
//! ([`store_io`]), the missing inputs fetched in one upstream call ([`upstream`]), shared with
//! concurrent requests through per-input flights ([`batch`]), and the answer put back together
//! in input order ([`assemble`]); what each input took is counted ([`tally`]). Each input's
//! answer is stored in the binary format of [`entry`].

mod assemble;
mod batch;
pub mod entry;
mod layer;
mod plan;
mod service;
mod store_io;
mod tally;
mod upstream;

pub use layer::EmbeddingCacheLayer;
pub use service::EmbeddingCache;
