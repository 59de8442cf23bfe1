//! A sliding window of charges kept in coarse time buckets, so its memory is bounded by the
//! window's length over the bucket width whatever the request rate.
//!
//! Charges admitted within one bucket width of the bucket's first admission share the
//! bucket, and the bucket leaves the window when its *last* admission does. Every charge
//! therefore stays in the window at least as long as it would alone (up to one width
//! longer), so the window's sum is never below the exact sliding sum: admission stays safe,
//! and a charge admitted alone (no other within the width before it) leaves at exactly its
//! own instant plus the length.

use super::LimitKind;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

/// How many bucket widths make one window (length including slack): 600 gives 100 ms
/// buckets in a 60.05 s window and 16.75 ms buckets in a 10.05 s one.
pub(crate) const BUCKETS_PER_WINDOW: u32 = 600;

/// The most buckets one window ever holds: at most one bucket opens per width, and the
/// oldest kept bucket may have opened up to a width before the window's start.
pub(crate) const MAX_BUCKETS: usize = BUCKETS_PER_WINDOW as usize + 2;

/// Requests and tokens, added up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Sums {
    pub(crate) requests: u64,
    pub(crate) tokens: u64,
}

impl Sums {
    /// One request of `tokens`.
    pub(crate) fn request(tokens: u64) -> Self {
        Sums {
            requests: 1,
            tokens,
        }
    }

    pub(crate) fn get(&self, kind: LimitKind) -> u64 {
        match kind {
            LimitKind::Requests => self.requests,
            LimitKind::Tokens => self.tokens,
        }
    }

    pub(crate) fn add(&mut self, other: Sums) {
        self.requests = self.requests.saturating_add(other.requests);
        self.tokens = self.tokens.saturating_add(other.tokens);
    }

    pub(crate) fn sub(&mut self, other: Sums) {
        self.requests = self.requests.saturating_sub(other.requests);
        self.tokens = self.tokens.saturating_sub(other.tokens);
    }
}

/// The charges of consecutive admissions: ids `first_id` up to the next bucket's.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    first_id: u64,
    opened: Instant,
    last: Instant,
    charge: Sums,
}

/// One sliding window (the long one or the short one) of a member's charges.
#[derive(Debug, Clone)]
pub(crate) struct Window {
    length: Duration,
    width: Duration,
    buckets: VecDeque<Bucket>,
    sum: Sums,
}

impl Window {
    /// An empty window of `length` (slack included).
    pub(crate) fn new(length: Duration) -> Self {
        Window {
            length,
            width: length / BUCKETS_PER_WINDOW,
            buckets: VecDeque::new(),
            sum: Sums::default(),
        }
    }

    /// A window of `length` holding every charge `other` holds (pruning then drops those
    /// older than `length`). Each keeps its bucket, so it leaves no earlier than in `other`.
    pub(crate) fn holding(length: Duration, other: &Window) -> Self {
        Window {
            buckets: other.buckets.clone(),
            sum: other.sum,
            ..Window::new(length)
        }
    }

    /// What the window holds.
    pub(crate) fn sum(&self) -> Sums {
        self.sum
    }

    /// Its length, slack included.
    pub(crate) fn length(&self) -> Duration {
        self.length
    }

    /// How many buckets it keeps (at most [`MAX_BUCKETS`]).
    pub(crate) fn buckets(&self) -> usize {
        self.buckets.len()
    }

    /// Drops the buckets whose last charge has left.
    pub(crate) fn prune(&mut self, now: Instant) {
        while let Some(front) = self.buckets.front() {
            if front.last + self.length > now {
                break;
            }
            self.sum.sub(front.charge);
            self.buckets.pop_front();
        }
    }

    /// Adds admission `id`'s `charge` at `now`; ids come in increasing order.
    pub(crate) fn add(&mut self, now: Instant, id: u64, charge: Sums) {
        self.sum.add(charge);
        if let Some(back) = self.buckets.back_mut() {
            if now < back.opened + self.width {
                back.last = back.last.max(now);
                back.charge.add(charge);
                return;
            }
        }
        self.buckets.push_back(Bucket {
            first_id: id,
            opened: now,
            last: now,
            charge,
        });
    }

    /// Whether admission `id`'s charge is still in the window.
    pub(crate) fn holds(&self, id: u64) -> bool {
        self.buckets
            .front()
            .is_some_and(|front| front.first_id <= id)
    }

    /// Replaces admission `id`'s charge `old` with `new`; false (and nothing changes) when
    /// it has left the window.
    pub(crate) fn recharge(&mut self, id: u64, old: Sums, new: Sums) -> bool {
        let after = self.buckets.partition_point(|bucket| bucket.first_id <= id);
        let Some(bucket) = after
            .checked_sub(1)
            .and_then(|index| self.buckets.get_mut(index))
        else {
            return false;
        };
        bucket.charge.sub(old);
        bucket.charge.add(new);
        self.sum.sub(old);
        self.sum.add(new);
        true
    }

    /// The earliest instant (>= now) at which at least `over` of `kind` has left the
    /// window, if nothing else is admitted meanwhile.
    pub(crate) fn freed(&self, now: Instant, kind: LimitKind, over: u64) -> Instant {
        if over == 0 {
            return now;
        }
        let mut freed = 0u64;
        for bucket in &self.buckets {
            freed = freed.saturating_add(bucket.charge.get(kind));
            if freed >= over {
                return (bucket.last + self.length).max(now);
            }
        }
        now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn charges_within_a_width_share_a_bucket_and_leave_with_its_last() {
        let t0 = Instant::now();
        let mut window = Window::new(Duration::from_secs(60));
        assert_eq!(window.width, Duration::from_millis(100));
        for (i, at) in [0u64, 40, 99, 100, 250].into_iter().enumerate() {
            window.add(t0 + Duration::from_millis(at), i as u64, Sums::request(10));
        }
        // [0, 40, 99] [100] [250]
        assert_eq!(window.buckets(), 3);
        assert_eq!(
            window.sum(),
            Sums {
                requests: 5,
                tokens: 50
            }
        );
        let first_leaves = t0 + Duration::from_millis(60_099);
        assert_eq!(window.freed(t0, LimitKind::Requests, 1), first_leaves);
        assert_eq!(window.freed(t0, LimitKind::Tokens, 31), first_leaves + MS);
        window.prune(first_leaves - MS);
        assert_eq!(window.sum().requests, 5);
        window.prune(first_leaves);
        assert_eq!(
            window.sum(),
            Sums {
                requests: 2,
                tokens: 20
            }
        );
        assert!(!window.holds(2));
        assert!(window.holds(3));
    }

    #[test]
    fn recharging_finds_the_bucket_of_an_id_and_ignores_ids_that_left() {
        let t0 = Instant::now();
        let mut window = Window::new(Duration::from_secs(1));
        for id in 0..10u64 {
            window.add(t0 + Duration::from_millis(id), id, Sums::request(5));
        }
        assert!(window.recharge(7, Sums::request(5), Sums::request(50)));
        assert_eq!(window.sum().tokens, 95);
        assert!(window.recharge(2, Sums::request(5), Sums::default()));
        assert_eq!(
            window.sum(),
            Sums {
                requests: 9,
                tokens: 90
            }
        );
        window.prune(t0 + Duration::from_secs(2));
        assert_eq!(window.buckets(), 0);
        assert!(!window.recharge(9, Sums::request(50), Sums::request(5)));
        assert_eq!(window.sum(), Sums::default());
    }

    #[test]
    fn a_million_charges_keep_at_most_max_buckets() {
        let t0 = Instant::now();
        let mut window = Window::new(Duration::from_millis(10_050));
        let mut most = 0;
        for id in 0..1_000_000u64 {
            // 17 us apart: about 59 000 per second, 17 s in all.
            let now = t0 + Duration::from_micros(17 * id);
            window.prune(now);
            window.add(now, id, Sums::request(1));
            most = most.max(window.buckets());
        }
        assert!(most <= MAX_BUCKETS, "{most} buckets");
        assert!(most >= MAX_BUCKETS - 2, "{most} buckets");
    }
}
