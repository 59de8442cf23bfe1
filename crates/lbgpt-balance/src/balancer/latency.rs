//! Peak-EWMA latency of a member, the load signal of the least-latency strategy.

use std::time::Duration;
use tokio::time::Instant;

/// A peak-sensitive exponentially weighted moving average of latency samples.
///
/// A sample above the current estimate replaces it at once (a member that slows down is
/// avoided immediately); a sample below it pulls the estimate down gradually, weighted by
/// the time since the last sample (`1 - e^(-elapsed/decay)`). Read back, the estimate also
/// decays towards zero while no sample arrives, so a member once slow is tried again after a
/// while instead of being shunned forever.
#[derive(Debug, Clone)]
pub(crate) struct PeakEwma {
    /// Seconds; `None` until the first sample.
    estimate: Option<f64>,
    updated: Instant,
    decay_secs: f64,
}

impl PeakEwma {
    pub(crate) fn new(decay: Duration, now: Instant) -> Self {
        PeakEwma {
            estimate: None,
            updated: now,
            decay_secs: decay.as_secs_f64().max(1e-3),
        }
    }

    fn weight_since(&self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        (-elapsed / self.decay_secs).exp()
    }

    /// Adds a sample observed at `now`.
    pub(crate) fn observe(&mut self, sample: Duration, now: Instant) {
        let sample = sample.as_secs_f64();
        let next = match self.estimate {
            None => sample,
            Some(current) if sample >= current => sample,
            Some(current) => {
                let keep = self.weight_since(now);
                current * keep + sample * (1.0 - keep)
            }
        };
        self.estimate = Some(next);
        self.updated = now;
    }

    /// The estimate at `now`, decayed towards zero since the last sample.
    pub(crate) fn estimate(&self, now: Instant) -> Option<Duration> {
        let current = self.estimate?;
        let decayed = current * self.weight_since(now);
        Duration::try_from_secs_f64(decayed).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    #[tokio::test(start_paused = true)]
    async fn peaks_are_taken_at_once_and_lows_slowly() {
        let start = Instant::now();
        let mut ewma = PeakEwma::new(Duration::from_secs(10), start);
        assert_eq!(ewma.estimate(start), None);
        ewma.observe(ms(100), start);
        assert_eq!(ewma.estimate(start), Some(ms(100)));
        ewma.observe(ms(400), start);
        assert_eq!(ewma.estimate(start), Some(ms(400)));

        // One second later a fast sample moves the estimate only about 10 % of the way.
        let later = start + Duration::from_secs(1);
        ewma.observe(ms(100), later);
        let estimate = ewma.estimate(later).expect("observed");
        assert!(estimate > ms(360) && estimate < ms(380), "{estimate:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_estimate_decays_towards_zero() {
        let start = Instant::now();
        let mut ewma = PeakEwma::new(Duration::from_secs(10), start);
        ewma.observe(ms(1000), start);
        let estimate = ewma
            .estimate(start + Duration::from_secs(10))
            .expect("observed");
        assert!(estimate > ms(360) && estimate < ms(370), "{estimate:?}");
    }
}
