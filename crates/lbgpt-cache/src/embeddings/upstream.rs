//! One upstream call for the inputs the cache could not answer, the checks on its answer, and
//! the form each input's answer is stored in.

use lbgpt_core::{
    CacheStatus, DecodeKind, EmbeddingRequest, EmbeddingResponse, EmbeddingUsage, Error, Extra,
    ResponseMeta,
};
use std::sync::Arc;
use tower::{Service, ServiceExt};

/// What an upstream answer says beside its vectors.
#[derive(Debug)]
pub(crate) struct Call {
    /// What the provider charged for the call.
    pub(crate) usage: Option<EmbeddingUsage>,
    /// How the answer was obtained (member, attempts, rate limits, ...).
    pub(crate) meta: ResponseMeta,
    /// The answer's `object`, `model` and unknown fields.
    pub(crate) envelope: Envelope,
    /// Whether the vectors are exact answers to the inputs sent, so may be stored: not when a
    /// layer below answered by similarity.
    pub(crate) storable: bool,
}

/// The fields of an embeddings answer that are not per input.
#[derive(Debug, Clone)]
pub(crate) struct Envelope {
    pub(crate) object: String,
    pub(crate) model: String,
    pub(crate) extra: Extra,
}

impl Envelope {
    /// The envelope of `response`.
    pub(crate) fn of(response: &EmbeddingResponse) -> Envelope {
        Envelope {
            object: response.object.clone(),
            model: response.model.clone(),
            extra: response.extra.clone(),
        }
    }
}

/// An upstream answer cut into one answer per input sent.
pub(crate) struct Fetched {
    /// One answer per input sent, in the order sent, each holding one embedding at index 0
    /// (the form stored under the input's key).
    pub(crate) answers: Vec<EmbeddingResponse>,
    pub(crate) call: Arc<Call>,
}

/// Sends `request` (the inputs the cache could not answer) to `inner` and cuts the answer
/// into one answer per input.
///
/// Fails with the inner service's error as it is, or with [`Error::Decode`] when the answer
/// does not hold exactly one embedding for each input sent (indices `0..n`, each once).
pub(crate) async fn fetch<S>(inner: S, request: EmbeddingRequest) -> Result<Fetched, Error>
where
    S: Service<EmbeddingRequest, Response = EmbeddingResponse, Error = Error>,
{
    let sent = request.input.len();
    let response = inner.oneshot(request).await?;
    split_answer(response, sent)
}

/// Cuts `response`, the answer to `sent` inputs, into one answer per input in input order.
pub(crate) fn split_answer(mut response: EmbeddingResponse, sent: usize) -> Result<Fetched, Error> {
    if response.data.len() != sent {
        return Err(shape_error(format!(
            "the provider answered {} embeddings for {sent} inputs",
            response.data.len()
        )));
    }
    let storable = matches!(
        response.meta.cache,
        CacheStatus::Miss | CacheStatus::Exact | CacheStatus::Partial { .. }
    );
    response.data.sort_by_key(|embedding| embedding.index);
    for (position, embedding) in response.data.iter().enumerate() {
        if usize::try_from(embedding.index).ok() != Some(position) {
            return Err(shape_error(format!(
                "the provider's embedding indices are not 0..{sent} each once \
                 (index {} where {position} was expected)",
                embedding.index
            )));
        }
    }
    // The call's usage and metadata go to the call once; each stored answer carries none.
    let call = Call {
        usage: response.usage.take(),
        meta: std::mem::take(&mut response.meta),
        envelope: Envelope::of(&response),
        storable,
    };
    Ok(Fetched {
        answers: response.split(),
        call: Arc::new(call),
    })
}

fn shape_error(message: String) -> Error {
    Error::Decode {
        kind: DecodeKind::UnexpectedShape,
        status: 200,
        message,
        excerpt: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer(indices: &[u32]) -> EmbeddingResponse {
        let data: Vec<_> = indices
            .iter()
            .map(|&index| json!({"index": index, "embedding": [index as f32, 0.5]}))
            .collect();
        serde_json::from_value(json!({"data": data, "model": "m"})).expect("answer parses")
    }

    #[test]
    fn answers_come_back_in_index_order_each_at_index_zero() {
        let fetched = split_answer(answer(&[2, 0, 1]), 3).expect("splits");
        let firsts: Vec<f32> = fetched
            .answers
            .iter()
            .map(|a| a.data[0].embedding.as_floats().expect("floats")[0])
            .collect();
        assert_eq!(firsts, vec![0.0, 1.0, 2.0]);
        assert!(fetched.answers.iter().all(|a| a.data[0].index == 0));
        assert!(fetched.call.storable);
    }

    #[test]
    fn wrong_counts_and_indices_are_decode_errors() {
        for (indices, sent) in [
            (&[0u32, 1][..], 3),
            (&[0, 0, 1][..], 3),
            (&[0, 1, 3][..], 3),
        ] {
            match split_answer(answer(indices), sent) {
                Err(Error::Decode { kind, message, .. }) => {
                    assert_eq!(kind, DecodeKind::UnexpectedShape);
                    assert!(message.contains("provider"), "{message}");
                }
                other => panic!(
                    "{indices:?}: expected a decode error, got {:?}",
                    other.is_ok()
                ),
            }
        }
    }

    #[test]
    fn semantic_answers_are_not_storable() {
        let mut semantic = answer(&[0]);
        semantic.meta.cache = CacheStatus::Semantic { score: 0.9 };
        assert!(!split_answer(semantic, 1).expect("splits").call.storable);
    }
}
