//! Cache keys: a versioned SHA-256 of a canonical form of everything that can change the answer.
//!
//! # Key format, version 1
//!
//! The key of a request is the SHA-256 digest of this canonical JSON document
//! (rules in "Canonical JSON" below), written `v1:` followed by the 64 lower-case hex digits
//! of the digest:
//!
//! ```text
//! {"family":F,"namespace":N,"request":R,"v":1}
//! ```
//!
//! - `F`: the provider family of [`CacheConfig::family`](crate::CacheConfig::family) (default
//!   `""`), for stacks whose providers answer the same request differently;
//! - `N`: the namespace of [`CacheConfig::namespace`](crate::CacheConfig::namespace) (default
//!   `""`), to keep projects apart in a shared store;
//! - `R`: the request as its wire JSON (every typed field, every message field — role, content
//!   text or parts, name, tool calls, tool_call_id, refusal, unknown message fields —, tools,
//!   tool_choice, response_format, sampling parameters, stop, seed, n, max_tokens,
//!   max_completion_tokens, logprobs, top_logprobs, logit_bias, parallel_tool_calls, and every
//!   unknown field), with two changes:
//!   - `model` is replaced by its alias when [`CacheConfig::model_alias`](crate::CacheConfig::model_alias)
//!     names one, so two deployments of one model share entries;
//!   - `user`, `stream` and `stream_options` are removed: they do not change the answer (the
//!     cache never serves streamed requests; `user` only identifies the end user to the
//!     provider's abuse monitoring).
//!
//! The API key is never part of a key: it is not part of the request (services hold it).
//! Nor are [`ChatRequest::options`] (lbgpt's per-request settings, such as the cache mode).
//!
//! ## Canonical JSON
//!
//! - object members sorted by the UTF-8 bytes of their names, at every depth;
//! - numbers: an integral value of magnitude below 2^53 as an integer (`1`, `1.0`, `1e0` → `1`);
//!   other integers that fit `i64`/`u64` exactly; any other number as the shortest decimal that
//!   reads back to the same `f64`, without exponent (`0.7`, `0.70`, `7e-1` → `0.7`);
//! - strings with serde_json's escaping; no whitespace; arrays in their order; `null` kept
//!   (`{"x": null}` and `{}` are different keys for unknown fields; typed fields that are
//!   `None` are absent either way).
//!
//! A change of any of these rules, or of what `R` holds, gets a new version prefix, so entries
//! written by another version are never read as this version's.
//!
//! # Embedding keys, version 1
//!
//! The [embedding cache](crate::EmbeddingCacheLayer) keys each input of a request on its own,
//! so a text embedded once is found again whatever request it comes in. The key of one input
//! is the SHA-256 of
//!
//! ```text
//! {"endpoint":"embeddings","family":F,"namespace":N,"request":R,"v":1}
//! ```
//!
//! with `F` and `N` as above and `R` the wire JSON of the request cut down to that one input
//! (what [`EmbeddingRequest::split`] gives): `model` (or its alias), `input` as one text
//! (`"some text"`) or one token-id array (`[1, 2, 3]`), `encoding_format`, `dimensions`, and
//! every unknown field (a vendor's truncation setting, ...), in canonical JSON. The rule:
//! every field of the request is part of the key except
//!
//! - the other inputs (a text has the same vector whichever list it comes in, and at whichever
//!   position), and
//! - `user`, which only identifies the end user to the provider's abuse monitoring and does
//!   not change the vector.
//!
//! So `"float"` and `"base64"` answers are kept apart (they are stored as the provider sent
//! them), as are a missing `encoding_format` and an explicit `"float"`, and a text and token
//! ids for it. The `endpoint` member keeps embedding keys apart from chat keys, which never
//! have it. Credentials, URLs and [`EmbeddingRequest::options`] are never part of a key.
//!
//! # Completion keys, version 1
//!
//! The exact cache serves legacy completions (`/v1/completions`) by the chat rules, one key
//! per request. The key of a [`CompletionRequest`] is the SHA-256 of
//!
//! ```text
//! {"endpoint":"completions","family":F,"namespace":N,"request":R,"v":1}
//! ```
//!
//! with `F` and `N` as above and `R` the request's wire JSON in canonical JSON: `model` (or
//! its alias), `prompt`, `max_tokens`, `temperature`, `top_p`, `n`, `stop`, `echo`,
//! `logprobs`, `suffix`, `seed`, `best_of` and every unknown field (penalties, `logit_bias`,
//! ...), except `user`, `stream` and `stream_options` (as for chat). The `endpoint` member
//! keeps completion keys apart from chat keys (which have none) and embedding keys.
//!
//! `prompt` is the whole prompt list: a request with several prompts is cached as a whole,
//! and its entry serves only a request with the same prompts in the same order (the facade
//! sends one request per prompt, so each prompt gets an entry of its own there). A list of
//! one prompt is keyed as that prompt alone (`["text"]` as `"text"`, `[[1, 2]]` as
//! `[1, 2]`): both ask the provider the same thing and get the same answer.
//! Credentials, URLs and [`CompletionRequest::options`] are never part of a key.

use crate::canonical::{members_of, write_string, Members};
use lbgpt_core::{ChatRequest, CompletionRequest, EmbeddingRequest, TextInput};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fmt;
use std::io::{self, Write};

/// The version of the key format, the `v1` of `v1:<hex>`.
pub const KEY_VERSION: u32 = 1;

/// Request fields left out of the key because they do not change the answer.
const IGNORED_FIELDS: [&str; 3] = ["user", "stream", "stream_options"];

/// Embedding request fields left out of the request object of an input's key: `user`, which
/// does not change the vector, and `input`, which the one input the key is for replaces.
const IGNORED_EMBEDDING_FIELDS: [&str; 2] = ["user", "input"];

/// The `endpoint` member of embedding key documents.
const EMBEDDINGS_ENDPOINT: &str = "embeddings";

/// The `endpoint` member of legacy completion key documents.
const COMPLETIONS_ENDPOINT: &str = "completions";

/// The key of a cached answer: a SHA-256 digest, shown as `v1:<64 hex digits>`.
///
/// See the [module documentation](self) for what is hashed. Stores may use
/// [`CacheKey::digest`] (32 bytes) or the text form ([`fmt::Display`]); the text is safe in
/// file names and Redis keys.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey {
    digest: [u8; 32],
}

impl CacheKey {
    /// A key with this digest (for stores and tests; requests get theirs from
    /// [`CacheConfig::key_for`](crate::CacheConfig::key_for)).
    pub fn from_digest(digest: [u8; 32]) -> Self {
        CacheKey { digest }
    }

    /// The 32-byte SHA-256 digest.
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// The digest as 64 lower-case hex digits (without the version prefix).
    pub fn hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut text = String::with_capacity(64);
        for byte in self.digest {
            text.push(char::from(DIGITS[usize::from(byte >> 4)]));
            text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
        }
        text
    }

    /// The key of `request` under a namespace and provider family, with `model` standing for
    /// the request's model (its alias, or the model itself).
    ///
    /// Fails only if the request cannot be turned into JSON (which the types make impossible
    /// in practice); the cache layer then passes the request through uncached.
    pub(crate) fn derive(
        request: &ChatRequest,
        namespace: &str,
        family: &str,
        model: &str,
    ) -> Result<CacheKey, serde_json::Error> {
        let members = request_members(request)?;
        let model = model_json(model)?;
        let request = with_model(&members, &IGNORED_FIELDS, &model);
        hash_document(None, family, namespace, members.byte_len(), &request)
    }

    /// The key of a legacy completions `request` (see "Completion keys" in the
    /// [module documentation](self)), with `model` standing for the request's model.
    ///
    /// Fails only if the request cannot be turned into JSON.
    pub(crate) fn derive_completion(
        request: &CompletionRequest,
        namespace: &str,
        family: &str,
        model: &str,
    ) -> Result<CacheKey, serde_json::Error> {
        let members = request_members(request)?;
        let model = model_json(model)?;
        let mut fields = with_model(&members, &IGNORED_FIELDS, &model);
        // A list of one prompt is keyed as that prompt alone (a token list of one id is not
        // a list of prompts, so the typed variant decides, not the JSON array's length).
        let one_of_a_list = match &request.prompt {
            TextInput::Texts(texts) => texts.len() == 1,
            TextInput::TokenLists(lists) => lists.len() == 1,
            TextInput::Text(_) | TextInput::Tokens(_) => false,
        };
        if one_of_a_list {
            for (name, value) in &mut fields {
                if *name == "prompt" {
                    // The canonical form of a one-element array is `[` + element + `]`.
                    if let Some(element) = value
                        .strip_prefix(b"[")
                        .and_then(|inner| inner.strip_suffix(b"]"))
                    {
                        *value = element;
                    }
                }
            }
        }
        hash_document(
            Some(COMPLETIONS_ENDPOINT),
            family,
            namespace,
            members.byte_len(),
            &fields,
        )
    }

    /// The keys of every input of `request`, in input order (see "Embedding keys" in the
    /// [module documentation](self)), with `model` standing for the request's model.
    ///
    /// The documents of a request's inputs differ only in `input`: the part before it is
    /// hashed once and the hasher's state copied for each input, the part after it written
    /// once and hashed after each input.
    ///
    /// Fails only if the request cannot be turned into JSON.
    pub(crate) fn derive_embeddings(
        request: &EmbeddingRequest,
        namespace: &str,
        family: &str,
        model: &str,
    ) -> Result<Vec<CacheKey>, serde_json::Error> {
        let members = request_members(request)?;
        let model = model_json(model)?;
        let fields = with_model(&members, &IGNORED_EMBEDDING_FIELDS, &model);
        let input_at = fields.partition_point(|(name, _)| name.as_bytes() < b"input".as_slice());
        let (before, after) = fields.split_at(input_at);

        let mut head = Vec::with_capacity(members.byte_len() + 96);
        write_document_head(&mut head, Some(EMBEDDINGS_ENDPOINT), family, namespace)
            .map_err(serde_json::Error::io)?;
        let mut tail = Vec::new();
        write_around_input(&mut head, &mut tail, before, after).map_err(serde_json::Error::io)?;
        let mut hashed_head = Sha256::new();
        hashed_head.update(&head);

        let mut keys = Vec::with_capacity(request.input.len());
        let mut input = Vec::new();
        let mut key_of = |one: OneInput<'_>| -> io::Result<()> {
            input.clear();
            match one {
                OneInput::Text(text) => write_string(&mut input, text)?,
                OneInput::Tokens(ids) => write_token_ids(&mut input, ids)?,
            }
            let mut hasher = hashed_head.clone();
            hasher.update(&input);
            hasher.update(&tail);
            keys.push(CacheKey {
                digest: hasher.finalize().into(),
            });
            Ok(())
        };
        let written = match &request.input {
            TextInput::Text(text) => key_of(OneInput::Text(text)),
            TextInput::Texts(texts) => texts.iter().try_for_each(|t| key_of(OneInput::Text(t))),
            TextInput::Tokens(ids) => key_of(OneInput::Tokens(ids)),
            TextInput::TokenLists(lists) => lists
                .iter()
                .try_for_each(|ids| key_of(OneInput::Tokens(ids))),
        };
        written.map_err(serde_json::Error::io)?;
        Ok(keys)
    }
}

/// A request's top-level members in canonical JSON: straight from its `Serialize` (the fast
/// way), or through a [`serde_json::Value`] when the fast way declines (see
/// [`members_of`]); both give the same bytes.
fn request_members<T: Serialize>(request: &T) -> Result<Members, serde_json::Error> {
    if let Ok(members) = members_of(request) {
        return Ok(members);
    }
    let value = serde_json::to_value(request)?;
    Members::of_value(&value)
        .ok_or_else(|| serde_json::Error::io(io::Error::other("the request is not a JSON object")))
}

/// `model` as a JSON string.
fn model_json(model: &str) -> Result<Vec<u8>, serde_json::Error> {
    let mut json = Vec::with_capacity(model.len() + 2);
    write_string(&mut json, model).map_err(serde_json::Error::io)?;
    Ok(json)
}

/// The members of a key's request object, in name order: `members` without the `skipped`
/// names, and `model` (JSON) as the `model` member, whatever the request's own was.
fn with_model<'a>(
    members: &'a Members,
    skipped: &[&str],
    model: &'a [u8],
) -> Vec<(&'a str, &'a [u8])> {
    let mut fields: Vec<(&str, &[u8])> = members
        .iter()
        .filter(|(name, _)| *name != "model" && !skipped.contains(name))
        .collect();
    let at = fields.partition_point(|(name, _)| name.as_bytes() < b"model".as_slice());
    fields.insert(at, ("model", model));
    fields
}

/// Writes `"name":value` for each member, separated by commas (values already canonical).
fn write_members<W: Write>(out: &mut W, members: &[(&str, &[u8])]) -> io::Result<()> {
    for (index, (name, value)) in members.iter().enumerate() {
        if index > 0 {
            out.write_all(b",")?;
        }
        write_string(out, name)?;
        out.write_all(b":")?;
        out.write_all(value)?;
    }
    Ok(())
}

/// The request object of an embedding key document around its `input` value: the members
/// sorted `before` it and `"input":` to `head`, the members `after` it, the request's end and
/// the document's end to `tail`.
fn write_around_input(
    head: &mut impl Write,
    tail: &mut impl Write,
    before: &[(&str, &[u8])],
    after: &[(&str, &[u8])],
) -> io::Result<()> {
    head.write_all(b"{")?;
    write_members(head, before)?;
    if !before.is_empty() {
        head.write_all(b",")?;
    }
    head.write_all(b"\"input\":")?;
    if !after.is_empty() {
        tail.write_all(b",")?;
    }
    write_members(tail, after)?;
    tail.write_all(b"}")?;
    write_document_tail(tail)
}

/// One input of an embedding request, borrowed.
#[derive(Clone, Copy)]
enum OneInput<'a> {
    Text(&'a str),
    Tokens(&'a [u32]),
}

/// Token ids as canonical JSON: `[1,2,3]` (integers below 2^53 are written as they are).
fn write_token_ids<W: Write>(out: &mut W, ids: &[u32]) -> io::Result<()> {
    out.write_all(b"[")?;
    for (at, id) in ids.iter().enumerate() {
        if at > 0 {
            out.write_all(b",")?;
        }
        write!(out, "{id}")?;
    }
    out.write_all(b"]")
}

/// The key of the document `{["endpoint":E,]"family":F,"namespace":N,"request":R,"v":1}`, with
/// `R` the object of `request`'s members (in order, values canonical). The document is
/// written whole, then hashed at once. `size`: about how many bytes the members take.
fn hash_document(
    endpoint: Option<&str>,
    family: &str,
    namespace: &str,
    size: usize,
    request: &[(&str, &[u8])],
) -> Result<CacheKey, serde_json::Error> {
    let mut document = Vec::with_capacity(size + family.len() + namespace.len() + 96);
    let written: io::Result<()> = (|| {
        write_document_head(&mut document, endpoint, family, namespace)?;
        document.write_all(b"{")?;
        write_members(&mut document, request)?;
        document.write_all(b"}")?;
        write_document_tail(&mut document)
    })();
    written.map_err(serde_json::Error::io)?;
    Ok(CacheKey {
        digest: Sha256::digest(&document).into(),
    })
}

/// A key document up to its request: `{["endpoint":E,]"family":F,"namespace":N,"request":`.
fn write_document_head<W: Write>(
    out: &mut W,
    endpoint: Option<&str>,
    family: &str,
    namespace: &str,
) -> io::Result<()> {
    out.write_all(b"{")?;
    if let Some(endpoint) = endpoint {
        out.write_all(b"\"endpoint\":")?;
        write_string(out, endpoint)?;
        out.write_all(b",")?;
    }
    out.write_all(b"\"family\":")?;
    write_string(out, family)?;
    out.write_all(b",\"namespace\":")?;
    write_string(out, namespace)?;
    out.write_all(b",\"request\":")
}

/// A key document after its request: `,"v":1}`.
fn write_document_tail<W: Write>(out: &mut W) -> io::Result<()> {
    write!(out, ",\"v\":{KEY_VERSION}}}")
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{KEY_VERSION}:{}", self.hex())
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CacheKey({self})")
    }
}
