//! Turning text into vectors: the [`Embedder`] trait and its implementations.
//!
//! - [`FastembedEmbedder`]: a local ONNX model (all-MiniLM-L6-v2 int8 by default) run by
//!   fastembed on ONNX Runtime, loaded from files on disk;
//! - [`OpenAiEmbedder`]: any OpenAI-compatible `POST /embeddings` endpoint;
//! - [`BatchingEmbedder`]: wraps either, embedding the texts of concurrent calls together.

mod batching;
mod fastembed;
mod openai;

pub use self::batching::{BatchConfig, BatchStats, BatchingEmbedder};
pub use self::fastembed::{FastembedConfig, FastembedEmbedder};
pub use self::openai::{OpenAiEmbedder, OpenAiEmbedderConfig};

use crate::SemanticError;

/// Turns texts into vectors of a fixed dimension.
///
/// Vectors must be L2-normalised (length 1), so that their dot product is their cosine
/// similarity: the index relies on it. [`normalise`] does it for implementations whose model
/// does not.
#[async_trait::async_trait]
pub trait Embedder: Send + Sync + 'static {
    /// One vector per text, in order. A batch is cheaper per text than single calls.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, SemanticError>;

    /// The vectors' dimension.
    fn dimensions(&self) -> usize;

    /// A stable id of the model (e.g. `fastembed:all-MiniLM-L6-v2-int8`): part of every
    /// scope and of saved indexes, so vectors of different models are never compared.
    fn id(&self) -> &str;

    /// One text's vector.
    async fn embed_one(&self, text: &str) -> Result<Vec<f32>, SemanticError> {
        only_vector(self.embed(&[text.to_owned()]).await?)
    }
}

/// The vector of a one-text call; an error unless there is exactly one.
fn only_vector(mut vectors: Vec<Vec<f32>>) -> Result<Vec<f32>, SemanticError> {
    match (vectors.pop(), vectors.is_empty()) {
        (Some(vector), true) => Ok(vector),
        _ => Err(SemanticError::Embedding(
            "the embedder did not return exactly one vector".into(),
        )),
    }
}

/// A shared embedder embeds like the embedder it points to (so `Arc<dyn Embedder>` can be
/// wrapped, e.g. in a [`BatchingEmbedder`]).
#[async_trait::async_trait]
impl<T: Embedder + ?Sized> Embedder for std::sync::Arc<T> {
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, SemanticError> {
        (**self).embed(texts).await
    }

    fn dimensions(&self) -> usize {
        (**self).dimensions()
    }

    fn id(&self) -> &str {
        (**self).id()
    }

    async fn embed_one(&self, text: &str) -> Result<Vec<f32>, SemanticError> {
        (**self).embed_one(text).await
    }
}

/// Scales `vector` to length 1 in place; a zero vector stays zero.
pub fn normalise(vector: &mut [f32]) {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 && norm.is_finite() {
        for x in vector.iter_mut() {
            *x /= norm;
        }
    }
}

/// The dot product of two vectors of equal length (the cosine similarity of normalised
/// vectors).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight independent sums, which the compiler turns into vector instructions.
    let mut sums = [0.0f32; 8];
    let chunks_a = a.chunks_exact(8);
    let chunks_b = b.chunks_exact(8);
    let tail: f32 = chunks_a
        .remainder()
        .iter()
        .zip(chunks_b.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in chunks_a.zip(chunks_b) {
        for lane in 0..8 {
            sums[lane] += x[lane] * y[lane];
        }
    }
    sums.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_and_normalise() {
        let mut v: Vec<f32> = (0..19).map(|i| i as f32).collect();
        normalise(&mut v);
        assert!((dot(&v, &v) - 1.0).abs() < 1e-5);
        let a = [1.0, 2.0, 3.0];
        let b = [4.0, 5.0, 6.0];
        assert_eq!(dot(&a, &b), 32.0);
        let mut zero = [0.0f32; 4];
        normalise(&mut zero);
        assert_eq!(zero, [0.0; 4]);
    }
}
