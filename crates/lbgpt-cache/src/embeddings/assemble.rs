//! Puts one request's answer together from its inputs' answers, whichever way each came.

use super::plan::Plan;
use super::upstream::{Call, Envelope};
use lbgpt_core::{CacheStatus, Embedding, EmbeddingResponse, EmbeddingUsage, Error, ResponseMeta};
use std::sync::Arc;
use std::time::Duration;

/// Where a distinct input's answer came from.
pub(crate) enum Source {
    /// The store (a lookup by this request, or the second look of a batch it waited for).
    Store,
    /// An upstream call this request made (one of its `own_calls`).
    OwnCall,
    /// The upstream call of a concurrent request sending the same input.
    SharedCall(Arc<Call>),
}

/// A distinct input's answer (one embedding at index 0) and where it came from.
///
/// [`assemble`] takes the embedding out of `answer`; its other fields stay.
pub(crate) struct Resolved {
    pub(crate) answer: EmbeddingResponse,
    pub(crate) source: Source,
}

/// The answer to the request `plan` describes: one embedding per position, in order, with
/// `index` = position. Usage is what this request's own upstream calls (`own_calls`) were
/// charged (zero when it made none); `meta.cache` says how many inputs came from the store.
///
/// Fails with [`Error::Internal`] if a distinct input has no answer (a bug).
pub(crate) fn assemble(
    plan: &Plan,
    mut resolved: Vec<Resolved>,
    own_calls: &[Arc<Call>],
    lookup_time: Duration,
) -> Result<EmbeddingResponse, Error> {
    let missing = || Error::Internal("an embedding input was left without an answer".into());
    // Each distinct input's embedding moves to its last position; only repeats are copies.
    let mut embeddings: Vec<Option<Embedding>> = resolved
        .iter_mut()
        .map(|resolved| resolved.answer.data.pop())
        .collect();
    let mut positions_left: Vec<usize> =
        plan.distinct.iter().map(|input| input.positions).collect();
    let mut data = Vec::with_capacity(plan.slot_of.len());
    for (position, &slot) in plan.slot_of.iter().enumerate() {
        let (Some(left), Some(embedding)) =
            (positions_left.get_mut(slot), embeddings.get_mut(slot))
        else {
            return Err(missing());
        };
        *left = left.saturating_sub(1);
        let embedding = if *left == 0 {
            embedding.take()
        } else {
            embedding.clone()
        };
        let mut embedding = embedding.ok_or_else(missing)?;
        embedding.index = u32::try_from(position).unwrap_or(u32::MAX);
        data.push(embedding);
    }

    let hit_positions: u64 = plan
        .distinct
        .iter()
        .zip(&resolved)
        .filter(|(_, resolved)| matches!(resolved.source, Source::Store))
        .map(|(input, _)| input.positions as u64)
        .sum();
    let miss_positions = data.len() as u64 - hit_positions;

    let shared_call = resolved.iter().find_map(|resolved| match &resolved.source {
        Source::SharedCall(call) => Some(call),
        _ => None,
    });
    let envelope = match (own_calls.first(), shared_call) {
        (Some(call), _) | (None, Some(call)) => call.envelope.clone(),
        (None, None) => resolved
            .first()
            .map(|r| Envelope::of(&r.answer))
            .ok_or_else(missing)?,
    };
    let mut meta = match (own_calls.first(), shared_call) {
        (Some(first), _) => {
            let mut meta = first.meta.clone();
            for call in &own_calls[1..] {
                meta.attempts += call.meta.attempts;
                meta.latency = meta.latency.max(call.meta.latency);
            }
            meta
        }
        (None, Some(call)) => call.meta.clone(),
        (None, None) => {
            let mut meta = ResponseMeta::default();
            meta.attempts = 0;
            meta.latency = lookup_time;
            meta
        }
    };
    meta.cache = status(hit_positions, miss_positions);

    Ok(EmbeddingResponse {
        object: envelope.object,
        data,
        model: envelope.model,
        usage: charged(own_calls),
        extra: envelope.extra,
        meta,
    })
}

/// `Exact` when every input came from the store, `Miss` when none did, else `Partial`.
fn status(hits: u64, misses: u64) -> CacheStatus {
    match (hits, misses) {
        (_, 0) => CacheStatus::Exact,
        (0, _) => CacheStatus::Miss,
        _ => CacheStatus::Partial {
            hits: u32::try_from(hits).unwrap_or(u32::MAX),
            misses: u32::try_from(misses).unwrap_or(u32::MAX),
        },
    }
}

/// What the request's own upstream calls were charged: zero without a call, `None` when the
/// provider reported no usage.
fn charged(own_calls: &[Arc<Call>]) -> Option<EmbeddingUsage> {
    if own_calls.is_empty() {
        return Some(EmbeddingUsage::default());
    }
    let mut sum: Option<EmbeddingUsage> = None;
    for usage in own_calls.iter().filter_map(|call| call.usage.as_ref()) {
        let total = sum.get_or_insert_with(EmbeddingUsage::default);
        total.prompt_tokens += usage.prompt_tokens;
        total.total_tokens += usage.total_tokens;
    }
    sum
}
