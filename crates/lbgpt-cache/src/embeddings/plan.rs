//! [`Plan`]: the inputs of one embedding request, each with its key, and the distinct ones.

use crate::CacheKey;
use lbgpt_core::TextInput;
use std::collections::HashMap;

/// The inputs of a request reduced to distinct keys: each distinct input is looked up,
/// fetched and stored once, and its answer copied to every position holding it.
pub(crate) struct Plan {
    /// The distinct inputs, in the order of their first position.
    pub(crate) distinct: Vec<DistinctInput>,
    /// For each position of the request, the index of its input in `distinct`.
    pub(crate) slot_of: Vec<usize>,
    /// Whether the request gave one input (`"text"` or `[1, 2]`) rather than a list.
    pub(crate) single: bool,
}

/// One distinct input of a request.
pub(crate) struct DistinctInput {
    pub(crate) key: CacheKey,
    /// The input on its own ([`TextInput::Text`] or [`TextInput::Tokens`]).
    pub(crate) input: TextInput,
    /// How many positions of the request hold it (at least 1).
    pub(crate) positions: usize,
}

impl Plan {
    /// The plan of `input`, whose keys (one per input, in order) are `keys`. `None` if the
    /// numbers differ (impossible: keys are derived from the same split).
    pub(crate) fn new(input: &TextInput, keys: Vec<CacheKey>) -> Option<Plan> {
        let inputs = input.split();
        if inputs.len() != keys.len() {
            return None;
        }
        let single = matches!(input, TextInput::Text(_) | TextInput::Tokens(_));
        let mut distinct: Vec<DistinctInput> = Vec::with_capacity(keys.len());
        let mut slot_by_key: HashMap<CacheKey, usize> = HashMap::with_capacity(keys.len());
        let mut slot_of = Vec::with_capacity(keys.len());
        for (input, key) in inputs.into_iter().zip(keys) {
            let slot = *slot_by_key.entry(key).or_insert_with(|| {
                distinct.push(DistinctInput {
                    key,
                    input,
                    positions: 0,
                });
                distinct.len() - 1
            });
            distinct[slot].positions += 1;
            slot_of.push(slot);
        }
        Some(Plan {
            distinct,
            slot_of,
            single,
        })
    }

    /// The `input` of a request sending these distinct inputs (by slot), in the given order:
    /// the request's own shape when it gave a single input, else a list. `None` if texts and
    /// token ids would be mixed (impossible: a request holds one kind).
    pub(crate) fn input_for(&self, slots: &[usize]) -> Option<TextInput> {
        let parts = slots.iter().map(|&slot| self.distinct[slot].input.clone());
        request_input(self.single, parts.collect())
    }
}

/// The `input` of a request sending `parts` (single inputs): the one part itself when the
/// caller's request gave a `single` input, else a list: texts into [`TextInput::Texts`],
/// token ids into [`TextInput::TokenLists`]. `None` when both kinds are given (no request can
/// hold both).
pub(crate) fn request_input(single: bool, mut parts: Vec<TextInput>) -> Option<TextInput> {
    if single && parts.len() == 1 {
        return parts.pop();
    }
    let mut texts = Vec::new();
    let mut lists = Vec::new();
    for part in parts {
        match part {
            TextInput::Text(text) => texts.push(text),
            TextInput::Texts(more) => texts.extend(more),
            TextInput::Tokens(tokens) => lists.push(tokens),
            TextInput::TokenLists(more) => lists.extend(more),
        }
    }
    match (texts.is_empty(), lists.is_empty()) {
        (_, true) => Some(TextInput::Texts(texts)),
        (true, false) => Some(TextInput::TokenLists(lists)),
        (false, false) => None,
    }
}
