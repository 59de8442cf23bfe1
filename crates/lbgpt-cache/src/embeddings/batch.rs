//! A batch: the upstream call a request makes for the missing inputs it leads, shared (one
//! flight per input) with concurrent requests waiting for any of those inputs.

use super::plan::request_input;
use super::store_io::{look_up_all, store_all};
use super::upstream::{fetch, Call};
use crate::flight::{FlightFuture, FlightStart, Flights};
use crate::state::{CacheState, Lookup};
use crate::CacheKey;
use futures::FutureExt;
use lbgpt_core::{EmbeddingRequest, EmbeddingResponse, Error, TextInput};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tower::Service;

/// The state of an embedding cache layer: its flights (one per input) end with a shared batch
/// outcome.
pub(crate) type EmbeddingState = CacheState<Flights<Arc<BatchOutcome>>>;

/// What a batch ends with, shared by every request waiting for one of its inputs.
#[derive(Debug)]
pub(crate) struct BatchOutcome {
    /// Each led input's answer (one embedding at index 0) by key digest, and whether it came
    /// from the store (found by the second look just before the call).
    pub(crate) answers: HashMap<[u8; 32], (EmbeddingResponse, bool)>,
    /// The upstream call, if one was made.
    pub(crate) call: Option<Arc<Call>>,
}

/// A missing input a request leads: it makes the upstream call for it.
pub(crate) struct LedInput {
    pub(crate) key: CacheKey,
    pub(crate) input: TextInput,
    /// Whether to look in the store once more before calling (not after a failed lookup).
    pub(crate) look_again: bool,
}

/// One flight per led input (in order, each owning its registration guard), all views of one
/// shared batch: second look, one upstream call for what is still missing, then storing each
/// answer whose flight wants it stored. `template` is the request with every field but its
/// inputs; `single`: whether the caller gave one input rather than a list.
pub(crate) fn start_batch<S>(
    state: Arc<EmbeddingState>,
    inner: S,
    template: EmbeddingRequest,
    single: bool,
    led: Vec<LedInput>,
    starts: Vec<FlightStart<Arc<BatchOutcome>>>,
) -> Vec<FlightFuture<Arc<BatchOutcome>>>
where
    S: Service<EmbeddingRequest, Response = EmbeddingResponse, Error = Error> + Send + 'static,
    S::Future: Send + 'static,
{
    let (wanted, guards): (Vec<_>, Vec<_>) = starts
        .into_iter()
        .map(|start| (start.store_wanted, start.guard))
        .unzip();
    let batch = run(state, inner, template, single, led, wanted)
        .boxed()
        .shared();
    guards
        .into_iter()
        .map(|guard| {
            let batch = batch.clone();
            async move {
                // Unregisters this input's flight when it ends or is dropped: after the
                // batch stored the answers, so a later request finds them in the store.
                let _guard = guard;
                batch.await
            }
            .boxed()
        })
        .collect()
}

async fn run<S>(
    state: Arc<EmbeddingState>,
    inner: S,
    mut template: EmbeddingRequest,
    single: bool,
    led: Vec<LedInput>,
    store_wanted: Vec<Arc<AtomicBool>>,
) -> Result<Arc<BatchOutcome>, Error>
where
    S: Service<EmbeddingRequest, Response = EmbeddingResponse, Error = Error>,
{
    let mut answers = HashMap::with_capacity(led.len());
    let again: Vec<CacheKey> = led
        .iter()
        .filter(|input| input.look_again)
        .map(|input| input.key)
        .collect();
    let second_look = look_up_all(&state, again).await;
    let mut second_look = second_look.into_iter();
    let mut to_send = Vec::new();
    for (input, wanted) in led.into_iter().zip(store_wanted) {
        if input.look_again {
            if let Some(Lookup::Found(answer)) = second_look.next() {
                answers.insert(*input.key.digest(), (answer, true));
                continue;
            }
        }
        to_send.push((input, wanted));
    }
    if to_send.is_empty() {
        return Ok(Arc::new(BatchOutcome {
            answers,
            call: None,
        }));
    }

    let inputs = to_send
        .iter()
        .map(|(input, _)| input.input.clone())
        .collect();
    template.input = request_input(single, inputs)
        .ok_or_else(|| Error::Internal("one request mixed text and token inputs".into()))?;
    let fetched = fetch(inner, template).await?;
    if fetched.call.storable {
        let entries = to_send
            .iter()
            .zip(&fetched.answers)
            .filter(|((_, wanted), _)| wanted.load(Ordering::Acquire))
            .map(|((input, _), answer)| (input.key, answer))
            .collect();
        store_all(&state, entries).await;
    }
    for ((input, _), answer) in to_send.into_iter().zip(fetched.answers) {
        answers.insert(*input.key.digest(), (answer, false));
    }
    Ok(Arc::new(BatchOutcome {
        answers,
        call: Some(fetched.call),
    }))
}
