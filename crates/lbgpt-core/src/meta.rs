use bytes::Bytes;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// How lbgpt obtained a response: not part of the wire format.
///
/// Provider services fill in `member`, `latency`, `rate_limit` and `request_id`; the retry
/// layer sets `attempts`; cache layers set `cache`.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ResponseMeta {
    /// The name of the provider or balancer member that served the answer.
    pub member: Option<Arc<str>>,
    /// How many upstream calls were made for this answer, the answering one included, over
    /// every layer (a balancer's failovers and the retry layer's retries add up): 1 when the
    /// first call succeeded; 0 when no call was made, e.g. a cache hit.
    pub attempts: u32,
    /// Time from the first attempt's start to the answer, waits between attempts included.
    pub latency: Duration,
    /// The rate-limit headers of the answering response.
    pub rate_limit: Option<RateLimitInfo>,
    /// Whether the answer came from a cache.
    pub cache: CacheStatus,
    /// The provider's request id (`x-request-id` or `apim-request-id`), for support tickets.
    pub request_id: Option<String>,
    /// For an answer from the semantic cache: the exact-cache key (`v1:<hex>`) of the cached
    /// request whose answer was served.
    pub cache_match: Option<Arc<str>>,
    /// The answer's body as the provider sent it, when the request asked for it
    /// ([`RequestOptions::keep_body`](crate::RequestOptions::keep_body)); `None` otherwise.
    pub body: Option<RawBody>,
}

/// The bytes of a provider's answer as they came off the wire: its JSON, not re-serialised.
/// Cheap to clone (shared). Its `Debug` shows only its length.
#[derive(Clone, PartialEq, Eq)]
pub struct RawBody(Bytes);

impl RawBody {
    /// The body `bytes`.
    pub fn new(bytes: Bytes) -> Self {
        RawBody(bytes)
    }

    /// The bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.0
    }

    /// The bytes, consuming the body.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl fmt::Debug for RawBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RawBody({} bytes)", self.0.len())
    }
}

/// Rate-limit state a provider reported in `x-ratelimit-*` headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimitInfo {
    /// `x-ratelimit-limit-requests`
    pub limit_requests: Option<u64>,
    /// `x-ratelimit-limit-tokens`
    pub limit_tokens: Option<u64>,
    /// `x-ratelimit-remaining-requests`
    pub remaining_requests: Option<u64>,
    /// `x-ratelimit-remaining-tokens`
    pub remaining_tokens: Option<u64>,
    /// `x-ratelimit-reset-requests`: time until the request budget is full again.
    pub reset_requests: Option<Duration>,
    /// `x-ratelimit-reset-tokens`: time until the token budget is full again.
    pub reset_tokens: Option<Duration>,
}

impl RateLimitInfo {
    /// True when no header was present.
    pub fn is_empty(&self) -> bool {
        *self == RateLimitInfo::default()
    }
}

/// Whether an answer came from a cache.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub enum CacheStatus {
    /// Answered by a provider.
    #[default]
    Miss,
    /// Answered from the exact cache.
    Exact,
    /// Answered from the semantic cache with this similarity.
    Semantic {
        /// Cosine similarity of the cached request to this one.
        score: f32,
    },
    /// A request with several inputs (embeddings) answered partly from the exact cache:
    /// `hits` inputs came from the cache, `misses` from a provider. `hits + misses` is the
    /// number of inputs. A request whose inputs all hit is [`CacheStatus::Exact`]; one whose
    /// inputs all missed is [`CacheStatus::Miss`].
    Partial {
        /// Inputs answered from the cache.
        hits: u32,
        /// Inputs answered by a provider.
        misses: u32,
    },
}
