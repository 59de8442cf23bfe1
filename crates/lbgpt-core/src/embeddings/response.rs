use crate::input::{merge_error, merge_meta};
use crate::{Extra, ResponseMeta, Result};
use serde::{Deserialize, Serialize};

/// The body of an embeddings answer, plus lbgpt's [`ResponseMeta`] (not serialised).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingResponse {
    /// `"list"`.
    #[serde(default = "list_object")]
    pub object: String,
    /// One embedding per input. Required: a body without `data` is not an answer.
    pub data: Vec<Embedding>,
    /// The model that answered.
    #[serde(default)]
    pub model: String,
    /// Token usage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<EmbeddingUsage>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
    /// How lbgpt obtained this answer. Not serialised.
    #[serde(skip)]
    pub meta: ResponseMeta,
}

fn list_object() -> String {
    "list".to_owned()
}

fn embedding_object() -> String {
    "embedding".to_owned()
}

/// One input's embedding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Embedding {
    /// The position of the input this embeds.
    #[serde(default)]
    pub index: u32,
    /// The vector.
    pub embedding: EmbeddingVector,
    /// `"embedding"`.
    #[serde(default = "embedding_object")]
    pub object: String,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// An embedding vector: floats, or base64 of little-endian `f32`s when the request asked for
/// `encoding_format: "base64"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EmbeddingVector {
    /// The vector as numbers.
    Float(Vec<f32>),
    /// The vector as base64 text, kept as sent.
    Base64(String),
}

impl EmbeddingVector {
    /// The numbers, when the vector came as numbers.
    pub fn as_floats(&self) -> Option<&[f32]> {
        match self {
            EmbeddingVector::Float(values) => Some(values),
            EmbeddingVector::Base64(_) => None,
        }
    }

    /// The numbers, decoding base64 (little-endian `f32`s) when the vector came as text.
    ///
    /// Fails with [`Error::Decode`](crate::Error::Decode) when the text is not standard
    /// base64 of a whole number of `f32`s.
    pub fn to_floats(&self) -> Result<Vec<f32>> {
        match self {
            EmbeddingVector::Float(values) => Ok(values.clone()),
            EmbeddingVector::Base64(text) => {
                let bytes = decode_base64(text)
                    .ok_or_else(|| merge_error("an embedding is not valid base64"))?;
                if !bytes.len().is_multiple_of(4) {
                    return Err(merge_error(format!(
                        "a base64 embedding holds {} bytes, not a whole number of f32s",
                        bytes.len()
                    )));
                }
                Ok(bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect())
            }
        }
    }
}

/// Standard base64 (padding optional) to bytes; `None` on any other character.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for byte in text.bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Token usage of an embeddings request (no completion tokens).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbeddingUsage {
    /// Tokens in the inputs.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// The same as `prompt_tokens`.
    #[serde(default)]
    pub total_tokens: u64,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

impl EmbeddingResponse {
    /// The vectors as numbers in index order, when every vector came as numbers.
    pub fn vectors(&self) -> Option<Vec<&[f32]>> {
        let mut data: Vec<&Embedding> = self.data.iter().collect();
        data.sort_by_key(|e| e.index);
        data.iter().map(|e| e.embedding.as_floats()).collect()
    }

    /// One answer per embedding, in index order, each holding that one embedding at index 0
    /// (for storing per input in a cache). `model`, `object`, unknown fields and metadata are
    /// copied; `usage` is `None`, as the provider reports it only for the whole request.
    pub fn split(self) -> Vec<EmbeddingResponse> {
        let mut data = self.data;
        data.sort_by_key(|e| e.index);
        data.into_iter()
            .map(|mut embedding| {
                embedding.index = 0;
                EmbeddingResponse {
                    object: self.object.clone(),
                    data: vec![embedding],
                    model: self.model.clone(),
                    usage: None,
                    extra: self.extra.clone(),
                    meta: self.meta.clone(),
                }
            })
            .collect()
    }

    /// Puts the answers to the parts of a [split](crate::EmbeddingRequest::split) request
    /// back together, in the order given (the parts' order): each part's embeddings follow
    /// the previous parts' with indices renumbered from 0, usage is summed, `model`, `object`
    /// and unknown fields come from the first part. The metadata sums attempts, takes the
    /// longest latency, the first part's cache status, and member, request id, rate-limit
    /// headers and cache match from the first part that has one (a cached part has none).
    ///
    /// Fails with [`Error::Decode`](crate::Error::Decode) when there is no part or a part
    /// has no embedding.
    pub fn merge(parts: Vec<EmbeddingResponse>) -> Result<EmbeddingResponse> {
        let meta = merge_meta(parts.iter().map(|p| &p.meta));
        let vectors: usize = parts.iter().map(|p| p.data.len()).sum();
        let mut parts = parts.into_iter();
        let Some(mut first) = parts.next() else {
            return Err(merge_error("no embedding answers to merge"));
        };
        // The first part's vectors and usage move into the loop below; the rest of it
        // (model, object, unknown fields) moves into the merged answer, nothing is copied.
        let first_part = (std::mem::take(&mut first.data), first.usage.take());
        let mut merged = EmbeddingResponse {
            data: Vec::with_capacity(vectors),
            usage: None,
            meta,
            ..first
        };
        let rest = parts.map(|part| (part.data, part.usage));
        let mut usage: Option<EmbeddingUsage> = None;
        for (at, (mut data, part_usage)) in std::iter::once(first_part).chain(rest).enumerate() {
            if data.is_empty() {
                return Err(merge_error(format!(
                    "embedding answer {at} holds no embedding"
                )));
            }
            if let Some(part_usage) = part_usage {
                let sum = usage.get_or_insert_with(EmbeddingUsage::default);
                sum.prompt_tokens += part_usage.prompt_tokens;
                sum.total_tokens += part_usage.total_tokens;
            }
            data.sort_by_key(|e| e.index);
            for mut embedding in data {
                embedding.index = u32::try_from(merged.data.len()).unwrap_or(u32::MAX);
                merged.data.push(embedding);
            }
        }
        merged.usage = usage;
        Ok(merged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(model: &str, vectors: &[f32], tokens: Option<u64>) -> EmbeddingResponse {
        let mut body = serde_json::json!({
            "object": "list",
            "model": model,
            "system_fingerprint": format!("fp-{model}"),
            "data": vectors
                .iter()
                .enumerate()
                .rev()
                .map(|(i, v)| serde_json::json!({"index": i, "embedding": [v]}))
                .collect::<Vec<_>>(),
        });
        if let Some(tokens) = tokens {
            body["usage"] = serde_json::json!({"prompt_tokens": tokens, "total_tokens": tokens});
        }
        serde_json::from_value(body).expect("an embeddings answer")
    }

    #[test]
    fn merge_keeps_the_first_parts_fields_and_moves_every_vector_once() {
        let merged = EmbeddingResponse::merge(vec![
            answer("first", &[1.0, 2.0], Some(3)),
            answer("second", &[3.0], None),
            answer("third", &[4.0, 5.0], Some(4)),
        ])
        .expect("merges");
        assert_eq!(merged.model, "first");
        assert_eq!(merged.extra["system_fingerprint"], "fp-first");
        let firsts: Vec<f32> = merged
            .vectors()
            .expect("floats")
            .iter()
            .map(|v| v[0])
            .collect();
        assert_eq!(firsts, vec![1.0, 2.0, 3.0, 4.0, 5.0]);
        let indices: Vec<u32> = merged.data.iter().map(|e| e.index).collect();
        assert_eq!(indices, vec![0, 1, 2, 3, 4]);
        let usage = merged.usage.expect("two parts reported usage");
        assert_eq!((usage.prompt_tokens, usage.total_tokens), (7, 7));
        assert!(EmbeddingResponse::merge(vec![
            answer("first", &[1.0], None),
            answer("empty", &[], None),
        ])
        .is_err());
    }

    #[test]
    fn base64_vectors_decode_to_little_endian_floats() {
        let vector = EmbeddingVector::Base64("AAAAPwAAgL4=".into());
        assert_eq!(vector.to_floats().expect("decodes"), vec![0.5, -0.25]);
        assert_eq!(
            EmbeddingVector::Base64("AACAPw".into())
                .to_floats()
                .expect("unpadded"),
            vec![1.0]
        );
        assert!(EmbeddingVector::Base64("AAA*".into()).to_floats().is_err());
        assert!(EmbeddingVector::Base64("AAAA".into()).to_floats().is_err());
        assert_eq!(
            EmbeddingVector::Float(vec![2.0])
                .to_floats()
                .expect("floats"),
            vec![2.0]
        );
    }
}
