//! How far the embeddings client runs ahead of a slow call: its reorder window counts chunks
//! (up to 2048 vectors each), so its default is a few chunks per allowed concurrent request,
//! not the chat window of at least 1024 answers. Against the simulator on loopback.

use futures::StreamExt;
use lbgpt::openai::OpenAiConfig;
use lbgpt::{ChatGpt, EmbeddingRequest, EMBEDDING_REORDER_WINDOW_PER_REQUEST};
use lbgpt_sim::{expected_embedding, Fault, KeyConfig, SimConfig, Simulator};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const KEY: &str = "sk-sim-embedding-window";
const MODEL: &str = "text-embedding-3-small";

async fn sim() -> Simulator {
    Simulator::start(SimConfig::new().key(KeyConfig::new(KEY)))
        .await
        .expect("simulator starts")
}

fn client(sim: &Simulator, concurrency: usize) -> lbgpt::ChatGptBuilder {
    ChatGpt::builder()
        .openai_config(
            OpenAiConfig::new()
                .api_key(KEY)
                .base_url(sim.base_url())
                .no_proxy(),
        )
        .max_concurrent_requests(concurrency)
}

fn text(i: usize) -> String {
    format!("text {i}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_call_holds_back_at_most_the_embeddings_window() {
    let sim = sim().await;
    let concurrency = 2;
    let gpt = client(&sim, concurrency).build().expect("builds");
    let window = concurrency * EMBEDDING_REORDER_WINDOW_PER_REQUEST;
    assert_eq!(
        gpt.embeddings()
            .expect("OpenAI serves embeddings")
            .current_embedding_reorder_window(),
        window
    );

    // The first call to arrive (input 0 or 1) stalls; the other worker keeps going, but only
    // within the window: inputs beyond it are not even pulled until the stalled one answers.
    sim.script(KEY, [Fault::Stall(Duration::from_secs(3))]);
    let count = 60;
    let pulled = Arc::new(AtomicUsize::new(0));
    let requests = {
        let pulled = Arc::clone(&pulled);
        (0..count).map(move |i| {
            pulled.fetch_add(1, Ordering::SeqCst);
            EmbeddingRequest::new(MODEL, vec![text(i)])
        })
    };
    let mut answers = gpt.embedding_ordered(requests);
    let mut yielded = 0;
    while let Some(answer) = answers.next().await {
        let answer = answer.expect("embeds");
        assert_eq!(
            answer.data[0].embedding.to_floats().expect("floats"),
            expected_embedding(&text(yielded)),
            "answer {yielded} in input order"
        );
        // Before answer `k` was yielded, at most `k + window` requests were pulled; yielding
        // it lets one more in.
        let seen = pulled.load(Ordering::SeqCst);
        assert!(
            seen <= yielded + window + 1,
            "{seen} requests pulled by answer {yielded} (window {window})"
        );
        yielded += 1;
    }
    assert_eq!(yielded, count);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_reorder_window_setting_does_not_widen_the_embeddings_window() {
    let sim = sim().await;
    let gpt = client(&sim, 3)
        .reorder_window(5000)
        .build()
        .expect("builds");
    assert_eq!(gpt.as_lbgpt().current_reorder_window(), 5000);
    assert_eq!(
        gpt.completions()
            .expect("OpenAI serves completions")
            .current_reorder_window(),
        5000,
        "prompts are answers of chat size: completions take the chat setting"
    );
    let embeddings = gpt.embeddings().expect("OpenAI serves embeddings");
    assert_eq!(
        embeddings.current_embedding_reorder_window(),
        3 * EMBEDDING_REORDER_WINDOW_PER_REQUEST
    );
    // Set on the embeddings client itself, it applies (and the clone keeps the shared limit).
    let wider = embeddings.clone().reorder_window(64);
    assert_eq!(wider.current_embedding_reorder_window(), 64);
    assert_eq!(wider.max_concurrent(), 3);
    let answers = wider
        .embedding_list((0..5).map(|i| EmbeddingRequest::new(MODEL, vec![text(i)])))
        .await;
    assert_eq!(answers.len(), 5);
    for (i, answer) in answers.into_iter().enumerate() {
        assert_eq!(
            answer.expect("embeds").data[0]
                .embedding
                .to_floats()
                .expect("floats"),
            expected_embedding(&text(i))
        );
    }
}
