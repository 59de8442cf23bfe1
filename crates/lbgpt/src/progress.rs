/// A snapshot of a batch's progress, handed to the callback of
/// [`Lbgpt::chat_completion_list_with_progress`](crate::Lbgpt::chat_completion_list_with_progress)
/// after every result and available from the streams' `progress()` methods.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// Results produced so far (`succeeded + failed`).
    pub completed: usize,
    /// Results that are answers.
    pub succeeded: usize,
    /// Results that are errors.
    pub failed: usize,
    /// Requests of this batch started and not yet returned.
    pub in_flight: usize,
    /// The number of inputs, when the input iterator knows it exactly
    /// (its `size_hint` has equal lower and upper bounds, as for a `Vec`).
    pub total: Option<usize>,
}

impl Progress {
    /// The share of inputs completed, from 0.0 to 1.0, when the total is known.
    pub fn fraction(&self) -> Option<f64> {
        match self.total {
            Some(0) => Some(1.0),
            Some(total) => Some(self.completed as f64 / total as f64),
            None => None,
        }
    }

    /// True when every input has a result (only known when the total is known).
    pub fn is_done(&self) -> bool {
        self.total == Some(self.completed)
    }
}
