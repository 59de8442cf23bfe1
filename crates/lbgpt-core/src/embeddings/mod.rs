//! The embeddings wire format (`POST /v1/embeddings`), typed where users need it.
//!
//! As for chat, every struct keeps unknown fields in an [`Extra`](crate::Extra) map. A request
//! with several inputs can be [split](EmbeddingRequest::split) into one request per input
//! (for balancing and per-input caching) and the answers [merged](EmbeddingResponse::merge)
//! back in input order.

mod request;
mod response;

pub use request::{EmbeddingInput, EmbeddingRequest, MAX_EMBEDDING_INPUTS};
pub use response::{Embedding, EmbeddingResponse, EmbeddingUsage, EmbeddingVector};
