//! [`Scope`]: which cached requests a request may be compared with.

use crate::method::without_embedded_text;
use lbgpt_cache::CacheConfig;
use lbgpt_core::{ChatRequest, EmbedMethod};
use std::fmt;

/// The field under which the method and the embedder's id join the hashed request. A dotted
/// name, so it can never be a real API parameter.
const SCOPE_FIELD: &str = "lbgpt.semantic_scope";

/// The scope of a request: a SHA-256 of everything but the embedded text.
///
/// It is the exact cache's key ([`lbgpt_cache::key`], same canonical JSON, namespace, provider
/// family and model aliases) of the request with the embedded text blanked, plus the embedding
/// method and the embedder's id. Two requests can share an answer only if their scopes are
/// equal: different models, sampling parameters, tools, response formats, system prompts
/// (unless embedded), embedders or methods never do.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope([u8; 32]);

impl Scope {
    /// The scope of `request` embedded with `method` by the embedder `embedder_id`, under the
    /// exact cache's `config` (namespace, family, aliases). `None` only if the request cannot
    /// be serialised, which its types make impossible in practice.
    pub fn of(
        request: &ChatRequest,
        method: EmbedMethod,
        embedder_id: &str,
        config: &CacheConfig,
    ) -> Option<Scope> {
        let mut scoped = without_embedded_text(request, method);
        scoped.extra.insert(
            SCOPE_FIELD.to_owned(),
            serde_json::json!({ "embedder": embedder_id, "method": method.as_str() }),
        );
        config.key_for(&scoped).map(|key| Scope(*key.digest()))
    }

    /// A scope from its digest (for loading saved indexes and for tests).
    pub fn from_digest(digest: [u8; 32]) -> Scope {
        Scope(digest)
    }

    /// The 32-byte digest.
    pub fn digest(&self) -> &[u8; 32] {
        &self.0
    }

    /// The digest as 64 lower-case hex digits.
    pub fn hex(&self) -> String {
        lbgpt_cache::CacheKey::from_digest(self.0).hex()
    }

    /// The scope written as [`Scope::hex`].
    pub fn from_hex(text: &str) -> Option<Scope> {
        if text.len() != 64 || !text.is_ascii() {
            return None;
        }
        let mut digest = [0u8; 32];
        for (index, byte) in digest.iter_mut().enumerate() {
            *byte = u8::from_str_radix(text.get(2 * index..2 * index + 2)?, 16).ok()?;
        }
        Some(Scope(digest))
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scope({})", &self.hex()[..16])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lbgpt_core::ChatMessage;

    fn scope(request: &ChatRequest) -> Scope {
        Scope::of(request, EmbedMethod::LastUser, "e", &CacheConfig::new()).expect("scope")
    }

    #[test]
    fn only_the_embedded_text_may_differ() {
        let a = ChatRequest::new(
            "gpt-4o",
            vec![ChatMessage::system("S"), ChatMessage::user("a")],
        );
        let b = ChatRequest::new(
            "gpt-4o",
            vec![ChatMessage::system("S"), ChatMessage::user("b")],
        );
        assert_eq!(scope(&a), scope(&b));
        assert_ne!(scope(&a), scope(&a.clone().temperature(0.5)));
        let mut other_model = a.clone();
        other_model.model = "gpt-4o-mini".into();
        assert_ne!(scope(&a), scope(&other_model));
        let other_system = ChatRequest::new(
            "gpt-4o",
            vec![ChatMessage::system("T"), ChatMessage::user("a")],
        );
        assert_ne!(scope(&a), scope(&other_system));
        // The embedder and the method are part of the scope.
        let config = CacheConfig::new();
        assert_ne!(
            Scope::of(&a, EmbedMethod::LastUser, "e", &config),
            Scope::of(&a, EmbedMethod::LastUser, "f", &config)
        );
        assert_ne!(
            Scope::of(&a, EmbedMethod::LastUser, "e", &config),
            Scope::of(&a, EmbedMethod::UserOnly, "e", &config)
        );
    }

    #[test]
    fn hex_round_trips() {
        let a = scope(&ChatRequest::new("m", vec![ChatMessage::user("x")]));
        assert_eq!(Scope::from_hex(&a.hex()), Some(a));
        assert_eq!(Scope::from_hex("zz"), None);
    }
}
