//! [`RoundRobin`]: the smallest useful balancer, each call to the next member in turn.

use lbgpt_core::{ApiResponse, ChatRequest, ChatResponse, Error};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Context, Poll};
use tower::util::BoxCloneService;
use tower::Service;

/// A member service as [`RoundRobin`] holds it.
pub type MemberService<Req = ChatRequest, Resp = ChatResponse> = BoxCloneService<Req, Resp, Error>;

/// Sends each call to the next of several named member services, in turn.
///
/// The stepping stone before the full balancer (strategies, rate limits, cooldowns, dead
/// members), which replaces it in a later release. It has no notion of health or limits:
/// it only rotates, so that a [`Retry`](crate::retry::Retry) wrapped around it sends each
/// retry to another member.
///
/// Clones share the rotation (one atomic counter), so concurrent callers spread evenly.
/// `poll_ready` picks the member for the next call and waits for that member to be ready;
/// `call` sends the request to it and records its name in
/// [`meta.member`](lbgpt_core::ResponseMeta::member) of the answer.
///
/// ```
/// use lbgpt_balance::RoundRobin;
/// use lbgpt_core::{ChatRequest, ChatResponse, Error};
/// use tower::util::BoxCloneService;
/// use tower::service_fn;
///
/// fn stand_in() -> BoxCloneService<ChatRequest, ChatResponse, Error> {
///     BoxCloneService::new(service_fn(|_request: ChatRequest| async {
///         Err::<ChatResponse, Error>(Error::Cancelled)
///     }))
/// }
///
/// let balancer = RoundRobin::new(vec![("openai-1", stand_in()), ("openai-2", stand_in())])
///     .expect("two distinct members");
/// assert_eq!(balancer.member_names().collect::<Vec<_>>(), ["openai-1", "openai-2"]);
/// assert!(RoundRobin::<ChatRequest, ChatResponse>::new(Vec::<(&str, _)>::new()).is_err());
/// ```
pub struct RoundRobin<Req = ChatRequest, Resp = ChatResponse> {
    shared: Arc<Shared<Req, Resp>>,
    /// The member picked by `poll_ready` for the next call, and its own service clone.
    selected: Option<(usize, MemberService<Req, Resp>)>,
}

struct Shared<Req, Resp> {
    members: Box<[Member<Req, Resp>]>,
    next: AtomicUsize,
}

struct Member<Req, Resp> {
    name: Arc<str>,
    // `BoxCloneService` is `Send` but not `Sync`; the lock is held only to clone it.
    service: Mutex<MemberService<Req, Resp>>,
}

impl<Req, Resp> RoundRobin<Req, Resp> {
    /// A round robin over `members`, given as `(name, service)` pairs, called in this order.
    ///
    /// Fails with [`Error::Config`] when there is no member, a name is empty, or two members
    /// share a name.
    pub fn new<N>(
        members: impl IntoIterator<Item = (N, MemberService<Req, Resp>)>,
    ) -> Result<Self, Error>
    where
        N: Into<Arc<str>>,
    {
        let mut list: Vec<Member<Req, Resp>> = Vec::new();
        for (name, service) in members {
            let name: Arc<str> = name.into();
            if name.trim().is_empty() {
                return Err(Error::Config(
                    "round robin: a member name is empty".to_owned(),
                ));
            }
            if list.iter().any(|member| member.name == name) {
                return Err(Error::Config(format!(
                    "round robin: two members are named {name:?}"
                )));
            }
            list.push(Member {
                name,
                service: Mutex::new(service),
            });
        }
        if list.is_empty() {
            return Err(Error::Config(
                "round robin: at least one member is required".to_owned(),
            ));
        }
        Ok(RoundRobin {
            shared: Arc::new(Shared {
                members: list.into_boxed_slice(),
                next: AtomicUsize::new(0),
            }),
            selected: None,
        })
    }

    /// The members' names, in rotation order.
    pub fn member_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.shared.members.iter().map(|member| &*member.name)
    }

    /// How many members there are (at least one).
    pub fn len(&self) -> usize {
        self.shared.members.len()
    }

    /// Always false: a round robin has at least one member.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Picks the next member in turn and clones its service for this handle.
    fn select(&self) -> (usize, MemberService<Req, Resp>) {
        let count = self.shared.members.len();
        let index = self.shared.next.fetch_add(1, Ordering::Relaxed) % count;
        let service = self.shared.members[index]
            .service
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        (index, service)
    }
}

impl<Req, Resp> Clone for RoundRobin<Req, Resp> {
    /// Shares the members and the rotation; the clone has no member selected yet.
    fn clone(&self) -> Self {
        RoundRobin {
            shared: Arc::clone(&self.shared),
            selected: None,
        }
    }
}

impl<Req, Resp> fmt::Debug for RoundRobin<Req, Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoundRobin")
            .field("members", &self.member_names().collect::<Vec<_>>())
            .field(
                "selected",
                &self
                    .selected
                    .as_ref()
                    .map(|(index, _)| &*self.shared.members[*index].name),
            )
            .finish()
    }
}

impl<Req, Resp> Service<Req> for RoundRobin<Req, Resp>
where
    Req: Send + 'static,
    Resp: ApiResponse,
{
    type Response = Resp;
    type Error = Error;
    type Future = MemberFuture<Resp>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let selected = match &mut self.selected {
            Some(selected) => selected,
            None => self.selected.insert(self.select()),
        };
        let result = ready!(selected.1.poll_ready(cx));
        if result.is_err() {
            // Try the next member in turn after a readiness failure.
            self.selected = None;
        }
        Poll::Ready(result)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        match self.selected.take() {
            Some((index, mut service)) => MemberFuture {
                inner: Ok(service.call(request)),
                name: Some(Arc::clone(&self.shared.members[index].name)),
            },
            None => MemberFuture {
                inner: Err(Some(Error::Config(
                    "round robin: call() without a successful poll_ready()".to_owned(),
                ))),
                name: None,
            },
        }
    }
}

type BoxedResponse<Resp> = Pin<Box<dyn Future<Output = Result<Resp, Error>> + Send>>;

/// The future of a [`RoundRobin`] call: the member's answer, with the member's name recorded
/// in [`meta.member`](lbgpt_core::ResponseMeta::member).
pub struct MemberFuture<Resp> {
    inner: Result<BoxedResponse<Resp>, Option<Error>>,
    name: Option<Arc<str>>,
}

impl<Resp> fmt::Debug for MemberFuture<Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemberFuture")
            .field("member", &self.name)
            .finish_non_exhaustive()
    }
}

impl<Resp: ApiResponse> Future for MemberFuture<Resp> {
    type Output = Result<Resp, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        match &mut this.inner {
            Ok(future) => {
                let mut response = ready!(future.as_mut().poll(cx))?;
                if let Some(name) = this.name.take() {
                    response.meta_mut().member = Some(name);
                }
                Poll::Ready(Ok(response))
            }
            Err(error) => Poll::Ready(Err(error.take().unwrap_or(Error::Cancelled))),
        }
    }
}
