//! The batch methods of a ready-made client, forwarded to its inner [`Lbgpt`](crate::Lbgpt).

/// Adds `chat_completion` and friends to a wrapper struct with a `client: Lbgpt<$service>`
/// field.
macro_rules! forward_batch_api {
    ($service:ty) => {
        /// Sends one request; see [`Lbgpt::chat_completion`](crate::Lbgpt::chat_completion).
        pub fn chat_completion(
            &self,
            request: $crate::ChatRequest,
        ) -> impl std::future::Future<Output = Result<$crate::ChatResponse, $crate::Error>>
               + Send
               + 'static {
            self.client.chat_completion(request)
        }

        /// Sends every request; one result per input, in input order. See
        /// [`Lbgpt::chat_completion_list`](crate::Lbgpt::chat_completion_list).
        pub fn chat_completion_list<R>(
            &self,
            requests: R,
        ) -> impl std::future::Future<Output = Vec<Result<$crate::ChatResponse, $crate::Error>>>
        where
            R: IntoIterator<Item = $crate::ChatRequest>,
        {
            self.client.chat_completion_list(requests)
        }

        /// Like `chat_completion_list`, reporting [`Progress`](crate::Progress) after each
        /// result. See [`Lbgpt::chat_completion_list_with_progress`](
        /// crate::Lbgpt::chat_completion_list_with_progress).
        pub fn chat_completion_list_with_progress<R, F>(
            &self,
            requests: R,
            on_progress: F,
        ) -> impl std::future::Future<Output = Vec<Result<$crate::ChatResponse, $crate::Error>>>
        where
            R: IntoIterator<Item = $crate::ChatRequest>,
            F: FnMut(&$crate::Progress),
        {
            self.client
                .chat_completion_list_with_progress(requests, on_progress)
        }

        /// Results as they finish, with their input index. See
        /// [`Lbgpt::chat_completion_stream`](crate::Lbgpt::chat_completion_stream).
        pub fn chat_completion_stream<R>(
            &self,
            requests: R,
        ) -> $crate::CompletionStream<$service, R::IntoIter>
        where
            R: IntoIterator<Item = $crate::ChatRequest>,
        {
            self.client.chat_completion_stream(requests)
        }

        /// Results in input order, lazily. See
        /// [`Lbgpt::chat_completion_ordered`](crate::Lbgpt::chat_completion_ordered).
        pub fn chat_completion_ordered<R>(
            &self,
            requests: R,
        ) -> $crate::OrderedCompletionStream<$service, R::IntoIter>
        where
            R: IntoIterator<Item = $crate::ChatRequest>,
        {
            self.client.chat_completion_ordered(requests)
        }

        /// The concurrency limit.
        pub fn max_concurrent(&self) -> usize {
            self.client.max_concurrent()
        }

        /// Requests running right now on this client and its clones.
        pub fn in_flight(&self) -> usize {
            self.client.in_flight()
        }

        /// The generic client inside.
        pub fn as_lbgpt(&self) -> &$crate::Lbgpt<$service> {
            &self.client
        }

        /// The generic client inside, giving up this wrapper.
        pub fn into_lbgpt(self) -> $crate::Lbgpt<$service> {
            self.client
        }
    };
}

pub(crate) use forward_batch_api;
