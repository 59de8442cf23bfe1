//! The stored form of one input's embedding: a compact binary entry (format version 2) that
//! keeps the vector as the bytes it is made of, so a hit decodes without parsing numbers.
//!
//! The [`EmbeddingCacheLayer`](crate::EmbeddingCacheLayer) stores each input's answer with
//! [`encode`] and reads it back with [`decode`]; they are public so that tools can read and
//! write entries, and so that the decoding cost can be measured on its own.
//!
//! ```text
//! offset  size  field
//!      0     8  magic "LBGPTEMB"
//!      8     1  format version: 2
//!      9     1  vector kind: 1 = floats (little-endian f32s), 2 = base64 text as sent
//!     10     4  vector length in bytes (floats: 4 per dimension)      \
//!     14     4  length of the answer's `object` ("list")               |
//!     18     4  length of the answer's `model`                         | u32,
//!     22     4  length of the embedding's `object` ("embedding")       | little-endian
//!     26     4  length of the answer's unknown fields (JSON; 0: none)  |
//!     30     4  length of the embedding's unknown fields (JSON; 0: none) /
//!     34     …  the six fields, in this order, back to back
//! ```
//!
//! - Floats keep their exact bits (`-0.0`, subnormals such as `1e-45`, even NaN payloads):
//!   they are copied, never printed and parsed. The entry of 1536 floats is 6144 bytes of
//!   vector plus about 80 bytes, against about 19 KB of JSON numbers.
//! - A base64 answer (`encoding_format: "base64"`) is kept as the provider's text, byte for
//!   byte, and served as that same text.
//! - The entry must be exactly as long as its header says; the texts must be UTF-8 and the
//!   unknown fields JSON objects. Anything else is an [`EntryError`], never a wrong answer.
//!
//! Format version 1 was the answer's JSON (an embeddings answer holding one embedding at
//! index 0). [`decode`] still reads it (a stored value starting with `{`), with serde_json,
//! so entries written by earlier versions stay hits until they expire or are replaced; a
//! value that is neither, or a binary entry of another version, is an [`EntryError`] (the
//! layer then counts an error, deletes the value and treats the input as a miss).
//!
//! ```
//! use lbgpt_cache::embedding_entry;
//! use lbgpt_core::{EmbeddingResponse, EmbeddingVector};
//!
//! let answer: EmbeddingResponse = serde_json::from_str(
//!     r#"{"object": "list", "model": "m", "data": [{"index": 0, "embedding": [0.5, -0.0, 1e-45]}]}"#,
//! )?;
//! let entry = embedding_entry::encode(&answer)?;
//! assert!(entry.starts_with(b"LBGPTEMB\x02"));
//! let back = embedding_entry::decode(&entry)?;
//! let bits = |v: &EmbeddingVector| v.as_floats().map(|f| f.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
//! assert_eq!(bits(&back.data[0].embedding), bits(&answer.data[0].embedding));
//! assert_eq!(back.model, "m");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use bytes::{BufMut, Bytes, BytesMut};
use lbgpt_core::{Embedding, EmbeddingResponse, EmbeddingVector, Extra, ResponseMeta};

/// The first bytes of every binary embedding entry.
pub const MAGIC: &[u8; 8] = b"LBGPTEMB";

/// The format version [`encode`] writes.
pub const VERSION: u8 = 2;

/// Bytes before the fields: magic, version, vector kind and six lengths.
const HEADER_LEN: usize = MAGIC.len() + 2 + 6 * 4;

/// Vector kind: little-endian `f32`s.
const KIND_FLOATS: u8 = 1;
/// Vector kind: base64 text, as the provider sent it.
const KIND_BASE64: u8 = 2;

/// Why a stored value is not a readable embedding entry, or an answer cannot be stored as one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// An entry holds exactly one embedding; this answer or value holds another number.
    #[error("an embedding entry holds exactly 1 embedding, this one {0}")]
    NotOneEmbedding(usize),
    /// Neither a binary entry (magic `LBGPTEMB`) nor a format version 1 JSON answer.
    #[error("not an embedding entry (no LBGPTEMB magic, not a JSON object)")]
    UnknownFormat,
    /// A binary entry of a format version this version of lbgpt does not know.
    #[error("embedding entry format version {0} is unknown (this version reads 1 and 2)")]
    UnknownVersion(u8),
    /// A binary entry whose vector kind byte is neither floats (1) nor base64 (2).
    #[error("embedding entry vector kind {0} is unknown (1: floats, 2: base64)")]
    UnknownVectorKind(u8),
    /// A binary entry whose length is not the one its header announces (torn or extended).
    #[error("embedding entry is {actual} bytes long, its header announces {expected}")]
    WrongLength {
        /// The length the header announces (at least the header's own).
        expected: u64,
        /// The value's length.
        actual: usize,
    },
    /// A float vector whose length is not a multiple of 4 bytes.
    #[error("embedding entry float vector is {0} bytes, not a whole number of f32s")]
    PartialFloat(usize),
    /// A text field that is not UTF-8 (names the field).
    #[error("embedding entry field {0} is not UTF-8")]
    NotUtf8(&'static str),
    /// Unknown fields that are not a JSON object (names the field), or a format version 1
    /// value that is not an embeddings answer.
    #[error("embedding entry field {field} is not valid JSON: {message}")]
    Json {
        /// The field (`"extra"`, `"embedding extra"`, or `"answer"` for a version 1 value).
        field: &'static str,
        /// serde_json's message.
        message: String,
    },
    /// A field too long for the entry's 32-bit lengths (names the field); only [`encode`].
    #[error("embedding answer field {0} is longer than 4 GiB")]
    TooLong(&'static str),
}

/// The entry of `answer`, an embeddings answer holding exactly one embedding (its `index`
/// is not kept: a decoded entry has index 0). Keeps `object`, `model`, the embedding's
/// `object`, both sets of unknown fields and the vector (floats as their bits, base64 as its
/// text); not `usage`, nor the metadata.
///
/// Fails with [`EntryError::NotOneEmbedding`] for any other number of embeddings, and
/// [`EntryError::TooLong`] for a field of 4 GiB or more.
pub fn encode(answer: &EmbeddingResponse) -> Result<Bytes, EntryError> {
    let [embedding] = answer.data.as_slice() else {
        return Err(EntryError::NotOneEmbedding(answer.data.len()));
    };
    let (kind, vector_len) = match &embedding.embedding {
        EmbeddingVector::Float(values) => (KIND_FLOATS, values.len().saturating_mul(4)),
        EmbeddingVector::Base64(text) => (KIND_BASE64, text.len()),
    };
    let extra = extra_json(&answer.extra, "extra")?;
    let embedding_extra = extra_json(&embedding.extra, "embedding extra")?;
    let lengths = [
        length(vector_len, "embedding")?,
        length(answer.object.len(), "object")?,
        length(answer.model.len(), "model")?,
        length(embedding.object.len(), "embedding object")?,
        length(extra.len(), "extra")?,
        length(embedding_extra.len(), "embedding extra")?,
    ];
    let total = lengths
        .iter()
        .try_fold(HEADER_LEN, |sum, &len| sum.checked_add(len as usize))
        .ok_or(EntryError::TooLong("entry"))?;

    let mut entry = BytesMut::with_capacity(total);
    entry.put_slice(MAGIC);
    entry.put_u8(VERSION);
    entry.put_u8(kind);
    for len in lengths {
        entry.put_u32_le(len);
    }
    match &embedding.embedding {
        EmbeddingVector::Float(values) => {
            for value in values {
                entry.put_f32_le(*value);
            }
        }
        EmbeddingVector::Base64(text) => entry.put_slice(text.as_bytes()),
    }
    entry.put_slice(answer.object.as_bytes());
    entry.put_slice(answer.model.as_bytes());
    entry.put_slice(embedding.object.as_bytes());
    entry.put_slice(&extra);
    entry.put_slice(&embedding_extra);
    Ok(entry.freeze())
}

/// The answer stored in `value`: an embeddings answer holding one embedding at index 0, no
/// usage, default metadata. Reads format version 2 ([`encode`]) and version 1 (the answer's
/// JSON, from earlier versions of lbgpt).
///
/// Fails with an [`EntryError`] naming what is wrong for anything else: another format or
/// version, a length that does not match, a float vector that is not whole `f32`s, a text
/// that is not UTF-8, unknown fields that are not a JSON object, a JSON answer that does not
/// hold exactly one embedding.
pub fn decode(value: &[u8]) -> Result<EmbeddingResponse, EntryError> {
    if value.starts_with(MAGIC) {
        return decode_binary(value);
    }
    match value.iter().find(|byte| !byte.is_ascii_whitespace()) {
        Some(b'{') => decode_json(value),
        _ => Err(EntryError::UnknownFormat),
    }
}

fn decode_binary(value: &[u8]) -> Result<EmbeddingResponse, EntryError> {
    let Some(header) = value.get(..HEADER_LEN) else {
        return Err(EntryError::WrongLength {
            expected: HEADER_LEN as u64,
            actual: value.len(),
        });
    };
    let version = header[MAGIC.len()];
    if version != VERSION {
        return Err(EntryError::UnknownVersion(version));
    }
    let kind = header[MAGIC.len() + 1];
    if kind != KIND_FLOATS && kind != KIND_BASE64 {
        return Err(EntryError::UnknownVectorKind(kind));
    }
    let mut lengths = [0usize; 6];
    for (at, len) in lengths.iter_mut().enumerate() {
        let start = MAGIC.len() + 2 + 4 * at;
        let bytes = [
            header[start],
            header[start + 1],
            header[start + 2],
            header[start + 3],
        ];
        *len = u32::from_le_bytes(bytes) as usize;
    }
    let expected = lengths
        .iter()
        .fold(HEADER_LEN as u64, |sum, &len| sum + len as u64);
    if expected != value.len() as u64 {
        return Err(EntryError::WrongLength {
            expected,
            actual: value.len(),
        });
    }

    let mut fields = Fields {
        rest: &value[HEADER_LEN..],
    };
    let [vector_len, object_len, model_len, embedding_object_len, extra_len, embedding_extra_len] =
        lengths;
    let vector = fields.take(vector_len);
    let embedding = if kind == KIND_FLOATS {
        EmbeddingVector::Float(floats(vector)?)
    } else {
        EmbeddingVector::Base64(text(vector, "embedding")?)
    };
    let object = text(fields.take(object_len), "object")?;
    let model = text(fields.take(model_len), "model")?;
    let embedding_object = text(fields.take(embedding_object_len), "embedding object")?;
    let extra = extra_from(fields.take(extra_len), "extra")?;
    let embedding_extra = extra_from(fields.take(embedding_extra_len), "embedding extra")?;

    Ok(EmbeddingResponse {
        object,
        data: vec![Embedding {
            index: 0,
            embedding,
            object: embedding_object,
            extra: embedding_extra,
        }],
        model,
        usage: None,
        extra,
        meta: ResponseMeta::default(),
    })
}

/// Format version 1: the answer's JSON.
fn decode_json(value: &[u8]) -> Result<EmbeddingResponse, EntryError> {
    let mut answer: EmbeddingResponse =
        serde_json::from_slice(value).map_err(|err| EntryError::Json {
            field: "answer",
            message: err.to_string(),
        })?;
    if answer.data.len() != 1 {
        return Err(EntryError::NotOneEmbedding(answer.data.len()));
    }
    answer.data[0].index = 0;
    Ok(answer)
}

/// The fields after the header, taken in order (lengths already checked against the total).
struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    fn take(&mut self, len: usize) -> &'a [u8] {
        let (field, rest) = self.rest.split_at(len.min(self.rest.len()));
        self.rest = rest;
        field
    }
}

/// Little-endian `f32`s, bit for bit.
fn floats(bytes: &[u8]) -> Result<Vec<f32>, EntryError> {
    if !bytes.len().is_multiple_of(4) {
        return Err(EntryError::PartialFloat(bytes.len()));
    }
    // Written so that the compiler turns it into a plain copy (on little-endian machines):
    // indexing each byte instead keeps it a loop of single loads, four times slower.
    let mut values = Vec::with_capacity(bytes.len() / 4);
    values.extend(bytes.chunks_exact(4).map(|word| {
        let word: [u8; 4] = word.try_into().unwrap_or_default();
        f32::from_le_bytes(word)
    }));
    Ok(values)
}

fn text(bytes: &[u8], field: &'static str) -> Result<String, EntryError> {
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| EntryError::NotUtf8(field))
}

/// Unknown fields as stored: nothing for none, else a JSON object.
fn extra_json(extra: &Extra, field: &'static str) -> Result<Vec<u8>, EntryError> {
    if extra.is_empty() {
        return Ok(Vec::new());
    }
    serde_json::to_vec(extra).map_err(|err| EntryError::Json {
        field,
        message: err.to_string(),
    })
}

fn extra_from(bytes: &[u8], field: &'static str) -> Result<Extra, EntryError> {
    if bytes.is_empty() {
        return Ok(Extra::new());
    }
    serde_json::from_slice(bytes).map_err(|err| EntryError::Json {
        field,
        message: err.to_string(),
    })
}

fn length(len: usize, field: &'static str) -> Result<u32, EntryError> {
    u32::try_from(len).map_err(|_| EntryError::TooLong(field))
}
