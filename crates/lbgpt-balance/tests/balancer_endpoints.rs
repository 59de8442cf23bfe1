//! The balancer for embeddings and legacy completions, against the real simulator on
//! loopback: batches spread over rate-limited members without a single 429, answers
//! settled with the usage each endpoint reports, a revoked key failing over, and the
//! tiktoken estimate close to the provider's count.

mod balancer_support;

use balancer_support::{arrivals, limit_429s, openai, run, simulator_with, unpaced};
use lbgpt_balance::tokens::{ApproxEstimator, TiktokenEstimator, TokenEstimate, TokenEstimator};
use lbgpt_balance::usage::Limits;
use lbgpt_balance::{BalancedRequest, Balancer, BalancerBuilder, Member, MemberState, Strategy};
use lbgpt_core::{
    ApiResponse, ArrivalCharge, CompletionRequest, CompletionResponse, EmbeddingRequest,
    EmbeddingResponse, Error,
};
use lbgpt_openai::OpenAiService;
use lbgpt_sim::{KeyConfig, Simulator};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tower::{Service, ServiceExt};

const EMBEDDING_MODEL: &str = "text-embedding-3-small";
const COMPLETION_MODEL: &str = "gpt-3.5-turbo-instruct";

/// A member of any endpoint's balancer, sending to `sim` with `key`, with `limits`.
fn member<R>(sim: &Simulator, name: &str, key: &str, limits: Limits) -> Member<R>
where
    R: BalancedRequest,
    OpenAiService: Service<R, Response = R::Response, Error = Error>,
    <OpenAiService as Service<R>>::Future: Send + 'static,
{
    Member::new(name, openai(sim, key)).with_limits(limits)
}

/// A builder with an unpaced tracker and the approximate estimator: what the simulator
/// charges, so the limits here match the simulator's exactly.
fn exact_builder<R>() -> BalancerBuilder<R>
where
    R: BalancedRequest + ArrivalCharge,
{
    Balancer::builder()
        .usage(unpaced())
        .estimator(Arc::new(ApproxEstimator::new()))
}

/// `count` embeddings requests of one to three short inputs each.
fn embedding_requests(tag: &str, count: usize) -> Vec<EmbeddingRequest> {
    (0..count)
        .map(|i| {
            let inputs: Vec<String> = (0..=i % 3)
                .map(|j| format!("{tag} embedding input {i}.{j}"))
                .collect();
            EmbeddingRequest::new(EMBEDDING_MODEL, inputs)
        })
        .collect()
}

/// `count` completions requests of two prompts each, `n` 2 and `max_tokens` 6.
fn completion_requests(tag: &str, count: usize) -> Vec<CompletionRequest> {
    (0..count)
        .map(|i| {
            CompletionRequest::new(
                COMPLETION_MODEL,
                vec![format!("{tag} prompt {i} a"), format!("{tag} prompt {i} b")],
            )
            .max_tokens(6)
            .n(2)
        })
        .collect()
}

/// Checks that `answer` holds the simulator's embedding of each input of `request`, in order.
fn assert_embeds(request: &EmbeddingRequest, answer: &EmbeddingResponse) {
    let inputs = request.input.texts().expect("text inputs");
    let vectors = answer.vectors().expect("float vectors");
    assert_eq!(vectors.len(), inputs.len(), "one vector per input");
    for (vector, input) in vectors.iter().zip(inputs) {
        assert_eq!(
            *vector,
            lbgpt_sim::expected_embedding(input).as_slice(),
            "the embedding of another input"
        );
    }
}

/// Checks that `answer` holds the simulator's `n` completions of each prompt of `request`,
/// prompt after prompt.
fn assert_completes(request: &CompletionRequest, answer: &CompletionResponse) {
    let prompts = request.prompt.texts().expect("text prompts");
    let n = request.choices_per_prompt() as usize;
    let texts = answer.texts();
    assert_eq!(texts.len(), prompts.len() * n, "n choices per prompt");
    for (at, text) in texts.iter().enumerate() {
        let (expected, _) =
            lbgpt_sim::expected_completion_text(prompts[at / n], request.max_tokens, false);
        assert_eq!(*text, expected, "choice {at} completes another prompt");
    }
}

/// The members named in the answers' `meta.member`, checking each answer says it took one
/// upstream call.
fn members_of<T: ApiResponse>(results: &[Result<T, Error>]) -> BTreeSet<String> {
    results
        .iter()
        .map(|result| {
            let answer = result.as_ref().expect("every request is answered");
            assert_eq!(answer.meta().attempts, 1, "no member refused a request");
            answer
                .meta()
                .member
                .as_deref()
                .expect("meta.member is set")
                .to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeddings_spread_over_three_limited_members_without_a_429() {
    let limits = Limits::none().rpm(30).tpm(400);
    let keys = ["sk-emb-a", "sk-emb-b", "sk-emb-c"];
    let sim = simulator_with(
        keys.map(|key| KeyConfig::new(key).rpm(30).tpm(400)),
        Duration::from_millis(2),
    )
    .await;
    let balancer: Balancer<EmbeddingRequest> = exact_builder()
        .members(
            ["a", "b", "c"]
                .iter()
                .zip(keys)
                .map(|(name, key)| member(&sim, name, key, limits)),
        )
        .max_wait(Duration::ZERO)
        .build()
        .expect("a valid balancer");
    let handle = balancer.handle();

    // 75 requests: more than two members may take in a minute, so without waiting every
    // answer needs the balancer to spread them over all three.
    let batch = embedding_requests("spread", 75);
    let charged: u64 = batch.iter().map(|r| r.approx_arrival_charge(0)).sum();
    assert!(
        charged <= 3 * 400 - 3 * 20,
        "the batch fits the three token limits"
    );
    let results = run(balancer, batch.clone(), 12).await;

    for (request, result) in batch.iter().zip(&results) {
        match result {
            Ok(answer) => assert_embeds(request, answer),
            Err(error) => panic!("a request failed: {error}"),
        }
    }
    assert_eq!(members_of(&results).len(), 3, "every member served");
    let mut total = 0;
    for (name, key) in ["a", "b", "c"].iter().zip(keys) {
        let sim_stats = sim.key_stats(key).expect("a known key");
        assert_eq!(limit_429s(&sim, key), 0, "{key} never had to say 429");
        assert!(sim_stats.peak_requests_60s <= 30, "{key}: {sim_stats:?}");
        assert!(sim_stats.tokens_charged <= 400, "{key}: {sim_stats:?}");
        total += arrivals(&sim, key);

        let stats = handle.member_stats(name).expect("a member");
        assert_eq!(stats.succeeded, sim_stats.succeeded);
        // The balancer counted each answer's usage: prompt tokens only.
        assert_eq!(stats.prompt_tokens, sim_stats.prompt_tokens);
        assert_eq!(stats.completion_tokens, 0);
        let usage = handle.headroom(name).expect("tracked");
        assert_eq!(usage.tokens_in_window, sim_stats.tokens_charged);
        assert_eq!(usage.in_flight, 0);
    }
    assert_eq!(total, 75, "each request sent once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_spread_over_two_members_within_their_token_limits() {
    let sim = simulator_with(
        [
            KeyConfig::new("sk-cmp-a").rpm(1_000).tpm(900),
            KeyConfig::new("sk-cmp-b").rpm(1_000).tpm(900),
        ],
        Duration::from_millis(2),
    )
    .await;
    let limits = Limits::none().rpm(1_000).tpm(900);
    let balancer = exact_builder()
        .member(member(&sim, "a", "sk-cmp-a", limits))
        .member(member(&sim, "b", "sk-cmp-b", limits))
        .max_wait(Duration::ZERO)
        .build()
        .expect("a valid balancer");
    let handle = balancer.handle();

    // Each request reserves its prompts plus max_tokens x n x prompts = 24 tokens of budget:
    // together more than one member's limit, within two.
    let batch = completion_requests("budget", 40);
    let estimates: Vec<TokenEstimate> = batch
        .iter()
        .map(|r| ApproxEstimator::new().estimate(r))
        .collect();
    assert!(estimates.iter().all(|e| e.completion_budget == 6 * 2 * 2));
    let charged: u64 = estimates.iter().map(TokenEstimate::total).sum();
    let largest = estimates
        .iter()
        .map(TokenEstimate::total)
        .max()
        .unwrap_or(0);
    assert!(charged > 900 && charged <= 2 * (900 - largest), "{charged}");
    let results = run(balancer, batch.clone(), 8).await;

    for (request, result) in batch.iter().zip(&results) {
        match result {
            Ok(answer) => assert_completes(request, answer),
            Err(error) => panic!("a request failed: {error}"),
        }
    }
    assert_eq!(members_of(&results).len(), 2, "both members served");
    let mut total = 0;
    for (name, key) in [("a", "sk-cmp-a"), ("b", "sk-cmp-b")] {
        let sim_stats = sim.key_stats(key).expect("a known key");
        assert_eq!(limit_429s(&sim, key), 0, "{key} never had to say 429");
        assert!(sim_stats.tokens_charged <= 900, "{key}: {sim_stats:?}");
        total += sim_stats.tokens_charged;

        let stats = handle.member_stats(name).expect("a member");
        assert_eq!(stats.prompt_tokens, sim_stats.prompt_tokens);
        assert_eq!(stats.completion_tokens, sim_stats.completion_tokens);
        assert!(stats.completion_tokens > 0);
        let usage = handle.headroom(name).expect("tracked");
        assert_eq!(usage.tokens_in_window, sim_stats.tokens_charged);
    }
    assert_eq!(total, charged, "each request charged once, as estimated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_too_large_for_the_limits_fails_clearly_instead_of_drawing_429s() {
    let sim = simulator_with(
        [KeyConfig::new("sk-small").rpm(1_000).tpm(100)],
        Duration::from_millis(1),
    )
    .await;
    let balancer = exact_builder()
        .member(member(&sim, "small", "sk-small", Limits::none().tpm(100)))
        .max_wait(Duration::ZERO)
        .build()
        .expect("a valid balancer");

    // One request larger than the whole limit can never be sent.
    let huge = EmbeddingRequest::new(EMBEDDING_MODEL, "word ".repeat(200));
    match balancer.clone().oneshot(huge).await {
        Err(Error::NoMemberAvailable { reason, .. }) => {
            assert!(reason.contains("needs about 250 tokens"), "{reason}");
        }
        other => panic!("expected NoMemberAvailable, got {other:?}"),
    }
    // Requests that fit go through until the limit, then fail without reaching the server.
    let batch = embedding_requests("fill", 10);
    let results = run(balancer, batch, 1).await;
    let answered = results.iter().filter(|r| r.is_ok()).count();
    assert!(answered > 0 && answered < 10, "{answered} answered");
    assert_eq!(arrivals(&sim, "sk-small"), answered as u64);
    assert_eq!(limit_429s(&sim, "sk-small"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_fails_over_for_embeddings_and_completions() {
    let sim = simulator_with(
        [KeyConfig::new("sk-revoked"), KeyConfig::new("sk-good")],
        Duration::from_millis(1),
    )
    .await;
    assert!(sim.revoke_key("sk-revoked"));
    let none = Limits::none();

    let embeddings = exact_builder()
        .strategy(Strategy::RoundRobin)
        .member(member(&sim, "revoked", "sk-revoked", none))
        .member(member(&sim, "good", "sk-good", none))
        .build()
        .expect("a valid balancer");
    let batch = embedding_requests("failover", 6);
    let results = run(embeddings.clone(), batch.clone(), 1).await;
    let mut attempts = Vec::new();
    for (request, result) in batch.iter().zip(&results) {
        let answer = result.as_ref().expect("the good key answers");
        assert_embeds(request, answer);
        assert_eq!(answer.meta.member.as_deref(), Some("good"));
        attempts.push(answer.meta.attempts);
    }
    // The first request tried the revoked key, then the good one; later ones only the good.
    assert_eq!(attempts, [2, 1, 1, 1, 1, 1]);
    let revoked = embeddings
        .handle()
        .member_stats("revoked")
        .expect("a member");
    assert!(
        matches!(revoked.state, MemberState::Dead { .. }),
        "{revoked:?}"
    );
    assert_eq!((revoked.failed, revoked.failovers), (1, 1));

    let completions = exact_builder()
        .strategy(Strategy::RoundRobin)
        .member(member(&sim, "revoked", "sk-revoked", none))
        .member(member(&sim, "good", "sk-good", none))
        .build()
        .expect("a valid balancer");
    let batch = completion_requests("failover", 4);
    let results = run(completions.clone(), batch.clone(), 1).await;
    let mut attempts = Vec::new();
    for (request, result) in batch.iter().zip(&results) {
        let answer = result.as_ref().expect("the good key answers");
        assert_completes(request, answer);
        assert_eq!(answer.meta.member.as_deref(), Some("good"));
        attempts.push(answer.meta.attempts);
    }
    assert_eq!(attempts, [2, 1, 1, 1]);
    let revoked = completions
        .handle()
        .member_stats("revoked")
        .expect("a member");
    assert!(
        matches!(revoked.state, MemberState::Dead { .. }),
        "{revoked:?}"
    );

    let sim_stats = sim.key_stats("sk-revoked").expect("a known key");
    assert_eq!(
        sim_stats.unauthorized, 2,
        "one 401 per balancer, then retired"
    );
    assert_eq!(arrivals(&sim, "sk-good"), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_settle_reservations_with_the_providers_count() {
    // This key counts twice the tokens the estimate does: the balancer's window must hold
    // the provider's count, and the learnt correction must approach 2.
    let sim = simulator_with(
        [KeyConfig::new("sk-double").tpm(1_000_000).token_factor(2.0)],
        Duration::from_millis(1),
    )
    .await;
    let balancer = exact_builder()
        .member(member(
            &sim,
            "double",
            "sk-double",
            Limits::none().tpm(1_000_000),
        ))
        .build()
        .expect("a valid balancer");
    let handle = balancer.handle();
    let batch = embedding_requests("settle", 8);
    let estimated: u64 = batch.iter().map(|r| r.approx_prompt_charge()).sum();
    let results = run(balancer, batch, 1).await;
    let reported: u64 = results
        .iter()
        .map(|r| {
            let answer = r.as_ref().expect("answered");
            answer.usage.as_ref().expect("usage").prompt_tokens
        })
        .sum();
    assert_eq!(reported, 2 * estimated, "the simulator counts double");

    let sim_stats = sim.key_stats("sk-double").expect("a known key");
    let usage = handle.headroom("double").expect("tracked");
    assert_eq!(usage.tokens_in_window, sim_stats.tokens_charged);
    assert_eq!(usage.tokens_in_window, reported);
    assert!(
        usage.token_correction > 1.5,
        "learnt from the embeddings' usage: {}",
        usage.token_correction
    );
}

/// English prose of a few sentences: tiktoken and the simulator's four-bytes-per-token rule
/// agree on it within a few tens of percent.
const PROSE: [&str; 4] = [
    "The quick brown fox jumps over the lazy dog while the farmer watches from the porch.",
    "Rate limits are counted per minute, so a steady stream of requests beats a burst.",
    "Embeddings turn each sentence into a vector whose direction captures its meaning.",
    "A balancer spreads the work over several keys and moves on when one of them fails.",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tiktoken_estimate_is_close_to_what_the_provider_reports() {
    let sim = simulator_with(
        [KeyConfig::new("sk-tik").rpm(1_000).tpm(100_000)],
        Duration::from_millis(1),
    )
    .await;
    let limits = Limits::none().rpm(1_000).tpm(100_000);
    let estimator = TiktokenEstimator::new();

    // Embeddings through a balancer with the default (tiktoken) estimator.
    let embeddings: Balancer<EmbeddingRequest> = Balancer::builder()
        .usage(unpaced())
        .member(member(&sim, "tik", "sk-tik", limits))
        .build()
        .expect("a valid balancer");
    let requests: Vec<EmbeddingRequest> = (1..=PROSE.len())
        .map(|n| EmbeddingRequest::new(EMBEDDING_MODEL, PROSE[..n].to_vec()))
        .collect();
    let results = run(embeddings.clone(), requests.clone(), 1).await;
    for (request, result) in requests.iter().zip(&results) {
        let answer = result.as_ref().expect("answered");
        let estimate = estimator.estimate(request);
        let reported = answer.usage.as_ref().expect("usage").prompt_tokens;
        assert_close(estimate.prompt, reported);
        assert_eq!(estimate.completion_budget, 0);
    }
    let correction = embeddings
        .handle()
        .headroom("tik")
        .expect("tracked")
        .token_correction;
    // The simulator's four-bytes rule counts this prose a little higher than tiktoken: the
    // tracker learnt that ratio from the embeddings' usage (with the approximate estimator,
    // the simulator's own rule, it would be exactly 1), and it stays within the 25 %.
    assert!(correction > 1.0 && correction <= 4.0 / 3.0, "{correction}");

    // Completions: prompts close, and the reserved budget covers what was generated.
    let completions: Balancer<CompletionRequest> = Balancer::builder()
        .usage(unpaced())
        .member(member(&sim, "tik", "sk-tik", limits))
        .build()
        .expect("a valid balancer");
    let requests: Vec<CompletionRequest> = (1..=PROSE.len())
        .map(|n| {
            CompletionRequest::new(COMPLETION_MODEL, PROSE[..n].to_vec())
                .max_tokens(12)
                .n(2)
        })
        .collect();
    let results = run(completions, requests.clone(), 1).await;
    for (request, result) in requests.iter().zip(&results) {
        let answer = result.as_ref().expect("answered");
        assert_completes(request, answer);
        let estimate = estimator.estimate(request);
        let usage = answer.usage.as_ref().expect("usage");
        assert_close(estimate.prompt, usage.prompt_tokens);
        assert_eq!(
            estimate.completion_budget,
            12 * 2 * request.prompt_count() as u64
        );
        assert!(usage.completion_tokens <= estimate.completion_budget);
    }
    assert_eq!(limit_429s(&sim, "sk-tik"), 0);
}

/// `estimate` is within 25 % of `reported`.
fn assert_close(estimate: u64, reported: u64) {
    let (low, high) = (reported * 3 / 4, reported * 5 / 4);
    assert!(
        (low..=high).contains(&estimate),
        "estimate {estimate} vs reported {reported}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_id_inputs_are_estimated_exactly_as_the_provider_counts_them() {
    let sim = simulator_with(
        [KeyConfig::new("sk-ids").tpm(100_000)],
        Duration::from_millis(1),
    )
    .await;
    let balancer: Balancer<EmbeddingRequest> = Balancer::builder()
        .member(member(&sim, "ids", "sk-ids", Limits::none().tpm(100_000)))
        .build()
        .expect("a valid balancer");
    let request = EmbeddingRequest::new(EMBEDDING_MODEL, vec![vec![1u32, 2, 3], vec![4, 5]]);
    assert_eq!(
        TiktokenEstimator::new().estimate(&request),
        TokenEstimate::new(5, 0)
    );
    let answer = balancer.oneshot(request.clone()).await.expect("answered");
    assert_eq!(answer.usage.as_ref().map(|u| u.prompt_tokens), Some(5));
    let vectors = answer.vectors().expect("float vectors");
    for (vector, ids) in vectors.iter().zip(lbgpt_sim::input_texts(&request.input)) {
        assert_eq!(*vector, lbgpt_sim::expected_embedding(&ids).as_slice());
    }
    assert_eq!(answer.meta.member.as_deref(), Some("ids"));
    assert_eq!(answer.meta.attempts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_tracker_holds_one_limit_across_endpoints() {
    // One key whose 20 requests per minute cover every endpoint, as on a compatible server
    // with one limit: the embeddings and the completions balancer share a tracker and name
    // the key alike.
    let sim = simulator_with(
        [KeyConfig::new("sk-shared").rpm(20)],
        Duration::from_millis(1),
    )
    .await;
    let tracker = unpaced();
    let limits = Limits::none().rpm(20);
    let embeddings: Balancer<EmbeddingRequest> = exact_builder()
        .usage(tracker.clone())
        .member(member(&sim, "shared", "sk-shared", limits))
        .max_wait(Duration::ZERO)
        .build()
        .expect("a valid balancer");
    let completions: Balancer<CompletionRequest> = exact_builder()
        .usage(tracker.clone())
        .member(member(&sim, "shared", "sk-shared", limits))
        .max_wait(Duration::ZERO)
        .build()
        .expect("a valid balancer");

    let (embedded, completed) = tokio::join!(
        run(embeddings.clone(), embedding_requests("shared", 15), 4),
        run(completions.clone(), completion_requests("shared", 15), 4),
    );
    let answered = embedded.iter().filter(|r| r.is_ok()).count()
        + completed.iter().filter(|r| r.is_ok()).count();
    // Exactly the key's limit between the two balancers (without the shared tracker both
    // would take all 15). The simulator answers out of admission order (eight requests race
    // on one ledger), so its `x-ratelimit-remaining-requests` can be below what the ledger
    // had left when a request was admitted: that must not count as usage the provider saw
    // beyond ours (it once did, refusing a request or two in about one run in three).
    assert_eq!(answered, 20, "together, exactly the key's limit");
    assert_eq!(arrivals(&sim, "sk-shared"), 20);
    assert_eq!(limit_429s(&sim, "sk-shared"), 0);
    let refused = embedded
        .iter()
        .filter_map(|r| r.as_ref().err())
        .chain(completed.iter().filter_map(|r| r.as_ref().err()));
    for error in refused {
        assert!(matches!(error, Error::NoMemberAvailable { .. }), "{error}");
    }

    // Removing the member from one balancer leaves the other's tracking alone.
    embeddings
        .handle()
        .remove_member("shared")
        .expect("a member");
    let view = completions
        .handle()
        .headroom("shared")
        .expect("still tracked for the completions balancer");
    assert_eq!(view.requests_in_window, 20);
    assert_eq!(view.headroom_requests, Some(0));
}
