//! Compile-time promises of the public API: what can be spawned, shared and sent.

use lbgpt::{
    AzureGpt, ChatGpt, ChatMessage, ChatRequest, CompletionStream, Lbgpt, OrderedCompletionStream,
};

fn spawnable<T: Send + 'static>(_: &T) {}
fn shareable<T: Send + Sync + Clone + 'static>(_: &T) {}

fn requests() -> impl Iterator<Item = ChatRequest> + Send + 'static {
    (0..3).map(|i| ChatRequest::new("m", vec![ChatMessage::user(i.to_string())]))
}

#[tokio::test]
async fn clients_futures_and_streams_can_move_across_tasks() {
    let gpt = ChatGpt::builder()
        .api_key("sk-test")
        .base_url("http://127.0.0.1:9/v1")
        .build()
        .expect("builds");
    shareable(&gpt);
    spawnable(&gpt.chat_completion(ChatRequest::new("m", vec![ChatMessage::user("x")])));
    spawnable(&gpt.chat_completion_list(requests()));
    spawnable(&gpt.chat_completion_list_with_progress(requests(), |_| {}));
    let stream: CompletionStream<_, _> = gpt.chat_completion_stream(requests());
    spawnable(&stream);
    let ordered: OrderedCompletionStream<_, _> = gpt.chat_completion_ordered(requests());
    spawnable(&ordered);

    let azure = AzureGpt::builder("http://127.0.0.1:9")
        .api_key("k")
        .deployment("m", "d")
        .build()
        .expect("builds");
    shareable(&azure);
    spawnable(&azure.chat_completion_list(requests()));

    let generic: Lbgpt<_> = gpt.clone().into_lbgpt();
    shareable(&generic);
    assert_eq!(generic.max_concurrent(), gpt.max_concurrent());
    // Nothing ran: building futures and streams sends nothing.
    assert_eq!(gpt.in_flight(), 0);
}
