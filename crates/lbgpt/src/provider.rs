//! [`Provider`]: one member of a balanced client, with its weight and limits.

use crate::caching::{without_cache, KIND_AZURE, KIND_CUSTOM, KIND_OPENAI};
use crate::semantic_caching::without_semantic;
use crate::{AzureGpt, ChatGpt};
use lbgpt_azure::{AzureConfig, AzureService};
use lbgpt_balance::Member;
use lbgpt_core::{ChatRequest, ChatResponse, CompletionRequest, EmbeddingRequest, Error};
use lbgpt_openai::{OpenAiConfig, OpenAiService};
use std::fmt;
use tower::util::BoxCloneService;
use tower::Service;

/// One provider of a balanced client: an OpenAI key (or compatible server), an Azure OpenAI
/// deployment, or any tower service, with its share of the traffic (`weight`) and its quota
/// (`rpm`, `tpm`).
///
/// ```no_run
/// # fn run() -> Result<(), lbgpt::Error> {
/// use lbgpt::azure::AzureConfig;
/// use lbgpt::openai::OpenAiConfig;
/// use lbgpt::Provider;
///
/// let openai = Provider::openai(OpenAiConfig::new().api_key("sk-...").name("openai-1"))
///     .rpm(500)
///     .tpm(200_000);
/// let azure = Provider::azure(
///     AzureConfig::new("https://my-resource.openai.azure.com")
///         .api_key("...")
///         .deployment("gpt-4o-mini", "mini-prod")
///         .name("azure-eu"),
/// )
/// .limit_tpm(1_000_000) // the Python lbgpt's spelling works too
/// .weight(3.0);
/// # let _ = (openai, azure); Ok(()) }
/// ```
///
/// A [`ChatGpt`] or [`AzureGpt`] converts into a provider too (`Provider::from(gpt)`, or pass
/// it where `impl Into<Provider>` is taken): its HTTP service is used, while its own retry and
/// concurrency settings give way to the balanced client's.
///
/// The name shown in statistics and in each answer's `meta.member` is the configuration's
/// `name` (default `"openai"` / `"azure"`); names must be unique within one client.
#[derive(Clone)]
#[must_use = "add the provider to a balanced client's builder"]
pub struct Provider {
    source: Source,
    weight: f64,
    rpm: Option<u64>,
    tpm: Option<u64>,
}

#[derive(Clone)]
enum Source {
    OpenAi(Box<OpenAiConfig>),
    Azure(Box<AzureConfig>),
    /// The service of a [`ChatGpt`]: every endpoint.
    OpenAiService(OpenAiService),
    /// The service of an [`AzureGpt`]: every endpoint.
    AzureService(AzureService),
    /// A service of the user's: chat only.
    Built {
        name: String,
        kind: &'static str,
        service: BoxCloneService<ChatRequest, ChatResponse, Error>,
    },
}

impl Provider {
    /// OpenAI, or an OpenAI-compatible server, from its configuration.
    pub fn openai(config: OpenAiConfig) -> Self {
        Provider::new(Source::OpenAi(Box::new(config)))
    }

    /// An Azure OpenAI resource from its configuration.
    pub fn azure(config: AzureConfig) -> Self {
        Provider::new(Source::Azure(Box::new(config)))
    }

    /// Any service answering chat requests (your own stack, a provider of another crate), under
    /// `name`.
    pub fn service<S>(name: impl Into<String>, service: S) -> Self
    where
        S: Service<ChatRequest, Response = ChatResponse, Error = Error> + Clone + Send + 'static,
        S::Future: Send + 'static,
    {
        Provider::built(name.into(), KIND_CUSTOM, service)
    }

    fn built<S>(name: String, kind: &'static str, service: S) -> Self
    where
        S: Service<ChatRequest, Response = ChatResponse, Error = Error> + Clone + Send + 'static,
        S::Future: Send + 'static,
    {
        Provider::new(Source::Built {
            name,
            kind,
            service: BoxCloneService::new(service),
        })
    }

    fn new(source: Source) -> Self {
        Provider {
            source,
            weight: 1.0,
            rpm: None,
            tpm: None,
        }
    }

    /// Its share of the traffic under the weighted strategies (default 1; finite, >= 0). A
    /// provider of weight 0 is a standby: it only gets requests when no other can take them.
    pub fn weight(mut self, weight: f64) -> Self {
        self.weight = weight;
        self
    }

    /// Its request limit per minute: the balancer never sends more, spreading requests evenly
    /// (0 is refused; leave it unset for no limit).
    pub fn rpm(mut self, rpm: u64) -> Self {
        self.rpm = Some(rpm);
        self
    }

    /// Its token limit per minute (prompt tokens plus `max_tokens`, counted as the provider
    /// counts them when the request arrives).
    pub fn tpm(mut self, tpm: u64) -> Self {
        self.tpm = Some(tpm);
        self
    }

    /// Same as [`rpm`](Self::rpm), under the Python lbgpt's name.
    pub fn limit_rpm(self, rpm: u64) -> Self {
        self.rpm(rpm)
    }

    /// Same as [`tpm`](Self::tpm), under the Python lbgpt's name.
    pub fn limit_tpm(self, tpm: u64) -> Self {
        self.tpm(tpm)
    }

    /// The provider's name: the configuration's `name`, or the name given to
    /// [`Provider::service`].
    pub fn name(&self) -> &str {
        match &self.source {
            Source::OpenAi(config) => config.get_name(),
            Source::Azure(config) => config.get_name(),
            Source::OpenAiService(service) => service.name(),
            Source::AzureService(service) => service.name(),
            Source::Built { name, .. } => name,
        }
    }

    /// The kind of provider: `"openai"` (OpenAI or an OpenAI-compatible server, also from a
    /// [`ChatGpt`]), `"azure"` (also from an [`AzureGpt`]) or `"custom"` ([`Provider::service`]).
    /// A balanced client's cache keys name the kinds of its providers (see the crate docs,
    /// "Caching").
    pub fn kind(&self) -> &'static str {
        match &self.source {
            Source::OpenAi(_) | Source::OpenAiService(_) => KIND_OPENAI,
            Source::Azure(_) | Source::AzureService(_) => KIND_AZURE,
            Source::Built { kind, .. } => kind,
        }
    }

    /// Whether it has an `rpm` or a `tpm` limit.
    pub fn has_limits(&self) -> bool {
        self.rpm.is_some() || self.tpm.is_some()
    }

    /// Builds the provider's service once and wraps it as a balancer member of every
    /// endpoint it serves: chat always; embeddings and legacy completions for OpenAI and Azure
    /// providers (a [`Provider::service`] of your own serves chat only).
    ///
    /// Fails with [`Error::Config`] naming the provider when its configuration is invalid (the
    /// balancer checks weights and limits).
    pub(crate) fn into_members(self) -> Result<ProviderMembers, Error> {
        let name = self.name().to_owned();
        let context = |err: Error| match err {
            Error::Config(text) => Error::Config(format!("provider \"{name}\": {text}")),
            other => other,
        };
        let share = Share {
            weight: self.weight,
            rpm: self.rpm,
            tpm: self.tpm,
        };
        Ok(match self.source {
            Source::OpenAi(config) => {
                every_endpoint(&name, OpenAiService::new(*config).map_err(context)?, share)
            }
            Source::OpenAiService(service) => every_endpoint(&name, service, share),
            Source::Azure(config) => {
                every_endpoint(&name, AzureService::new(*config).map_err(context)?, share)
            }
            Source::AzureService(service) => every_endpoint(&name, service, share),
            Source::Built { service, .. } => ProviderMembers {
                chat: share.apply(Member::new(name.clone(), service)),
                embeddings: None,
                completions: None,
            },
        })
    }
}

/// A provider as a member of each endpoint's balancer (`None`: it does not serve that endpoint).
pub(crate) struct ProviderMembers {
    pub(crate) chat: Member<ChatRequest>,
    pub(crate) embeddings: Option<Member<EmbeddingRequest>>,
    pub(crate) completions: Option<Member<CompletionRequest>>,
}

/// A provider's weight and limits, the same on every endpoint's balancer.
#[derive(Clone, Copy)]
struct Share {
    weight: f64,
    rpm: Option<u64>,
    tpm: Option<u64>,
}

impl Share {
    /// `member` with this weight and these limits.
    fn apply<R: lbgpt_balance::BalancedRequest>(self, member: Member<R>) -> Member<R> {
        let member = member.weight(self.weight);
        let member = match self.rpm {
            Some(rpm) => member.rpm(rpm),
            None => member,
        };
        match self.tpm {
            Some(tpm) => member.tpm(tpm),
            None => member,
        }
    }
}

/// The members of a provider service that serves every endpoint.
fn every_endpoint<S>(name: &str, service: S, share: Share) -> ProviderMembers
where
    S: Service<ChatRequest, Response = ChatResponse, Error = Error>
        + Service<EmbeddingRequest, Response = lbgpt_core::EmbeddingResponse, Error = Error>
        + Service<CompletionRequest, Response = lbgpt_core::CompletionResponse, Error = Error>
        + Clone
        + Send
        + 'static,
    <S as Service<ChatRequest>>::Future: Send + 'static,
    <S as Service<EmbeddingRequest>>::Future: Send + 'static,
    <S as Service<CompletionRequest>>::Future: Send + 'static,
{
    ProviderMembers {
        chat: share.apply(Member::<ChatRequest>::new(name.to_owned(), service.clone())),
        embeddings: Some(share.apply(Member::<EmbeddingRequest>::new(
            name.to_owned(),
            service.clone(),
        ))),
        completions: Some(share.apply(Member::<CompletionRequest>::new(name.to_owned(), service))),
    }
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.name())
            .field("kind", &self.kind())
            .field("weight", &self.weight)
            .field("rpm", &self.rpm)
            .field("tpm", &self.tpm)
            .finish()
    }
}

impl From<OpenAiConfig> for Provider {
    fn from(config: OpenAiConfig) -> Self {
        Provider::openai(config)
    }
}

impl From<AzureConfig> for Provider {
    fn from(config: AzureConfig) -> Self {
        Provider::azure(config)
    }
}

impl From<ChatGpt> for Provider {
    /// The client's OpenAI service; its retry, concurrency and cache settings (exact and
    /// semantic) are not used (give the balanced client its own caches).
    fn from(gpt: ChatGpt) -> Self {
        let service = without_semantic(without_cache(gpt.into_lbgpt().into_service())).into_inner();
        Provider::new(Source::OpenAiService(service))
    }
}

impl From<AzureGpt> for Provider {
    /// The client's Azure service; its retry, concurrency and cache settings (exact and
    /// semantic) are not used (give the balanced client its own caches).
    fn from(gpt: AzureGpt) -> Self {
        let service = without_semantic(without_cache(gpt.into_lbgpt().into_service())).into_inner();
        Provider::new(Source::AzureService(service))
    }
}
