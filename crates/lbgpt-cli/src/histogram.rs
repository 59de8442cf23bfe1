//! A bounded latency histogram: percentiles of any number of samples in a fixed 5 KiB.
//!
//! Samples are microseconds in log-linear buckets: exact below 16 µs, then 16 buckets per
//! power of two, so a reported percentile is within about 3 % of the true sample (it is the
//! middle of the sample's bucket). Values above about 51 days land in the last bucket.

use std::fmt;
use std::time::Duration;

/// Buckets per power of two (and the exact range below the first power).
const SUB_BUCKETS: u64 = 16;
/// log2 of [`SUB_BUCKETS`].
const SUB_BITS: u32 = 4;
/// The largest power of two kept apart: 2^42 µs, about 51 days.
const MAX_EXPONENT: u32 = 42;
/// Every bucket: 16 exact ones, then 16 for each exponent from 4 to 42.
const BUCKETS: usize = (SUB_BUCKETS + (MAX_EXPONENT - SUB_BITS + 1) as u64 * SUB_BUCKETS) as usize;

/// Counts of latencies in log-linear buckets.
#[derive(Clone, PartialEq, Eq)]
pub struct LatencyHistogram {
    counts: Box<[u64; BUCKETS]>,
    samples: u64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            counts: Box::new([0; BUCKETS]),
            samples: 0,
        }
    }
}

impl fmt::Debug for LatencyHistogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LatencyHistogram")
            .field("samples", &self.samples)
            .field("p50", &self.percentile(0.5))
            .field("p95", &self.percentile(0.95))
            .finish()
    }
}

impl LatencyHistogram {
    /// Counts one sample.
    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.counts[bucket_of(micros)] += 1;
        self.samples += 1;
    }

    /// How many samples were counted.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// The latency below which a share `quantile` (0.0 to 1.0) of the samples lie, as the
    /// middle of that sample's bucket; `None` without samples.
    pub fn percentile(&self, quantile: f64) -> Option<Duration> {
        if self.samples == 0 {
            return None;
        }
        let quantile = quantile.clamp(0.0, 1.0);
        // The rank of the sample asked for, from 1.
        let rank = ((quantile * self.samples as f64).ceil() as u64).clamp(1, self.samples);
        let mut seen = 0;
        for (bucket, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(Duration::from_micros(middle_of(bucket)));
            }
        }
        None
    }
}

/// The bucket of a sample of `micros` microseconds.
fn bucket_of(micros: u64) -> usize {
    if micros < SUB_BUCKETS {
        return micros as usize;
    }
    let exponent = (63 - micros.leading_zeros()).min(MAX_EXPONENT);
    let shifted = micros >> (exponent - SUB_BITS);
    // For samples above the last power kept apart: the last bucket.
    let sub = if exponent == MAX_EXPONENT && shifted >= 2 * SUB_BUCKETS {
        SUB_BUCKETS - 1
    } else {
        shifted - SUB_BUCKETS
    };
    (SUB_BUCKETS + u64::from(exponent - SUB_BITS) * SUB_BUCKETS + sub) as usize
}

/// The middle of a bucket, in microseconds.
fn middle_of(bucket: usize) -> u64 {
    let bucket = bucket as u64;
    if bucket < SUB_BUCKETS {
        return bucket;
    }
    let exponent = (bucket - SUB_BUCKETS) / SUB_BUCKETS + u64::from(SUB_BITS);
    let sub = (bucket - SUB_BUCKETS) % SUB_BUCKETS;
    let width = 1u64 << (exponent - u64::from(SUB_BITS));
    (SUB_BUCKETS + sub) * width + width / 2
}

/// A latency for a table: `850 us`, `412 ms`, `1.9 s`, `2m05s`; `-` for none.
pub fn format_latency(latency: Option<Duration>) -> String {
    let Some(latency) = latency else {
        return "-".to_owned();
    };
    let micros = latency.as_micros();
    if micros < 1_000 {
        format!("{micros} us")
    } else if micros < 1_000_000 {
        format!("{} ms", micros / 1_000)
    } else if micros < 60_000_000 {
        format!("{:.1} s", latency.as_secs_f64())
    } else {
        let seconds = latency.as_secs();
        format!("{}m{:02}s", seconds / 60, seconds % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn within(actual: Duration, expected: Duration, share: f64) -> bool {
        let (a, e) = (actual.as_secs_f64(), expected.as_secs_f64());
        (a - e).abs() <= e * share
    }

    #[test]
    fn percentiles_of_a_uniform_spread_are_within_a_few_percent() {
        let mut histogram = LatencyHistogram::default();
        for ms in 1..=1000 {
            histogram.record(Duration::from_millis(ms));
        }
        assert_eq!(histogram.samples(), 1000);
        let p50 = histogram.percentile(0.5).expect("samples");
        let p95 = histogram.percentile(0.95).expect("samples");
        assert!(within(p50, Duration::from_millis(500), 0.04), "{p50:?}");
        assert!(within(p95, Duration::from_millis(950), 0.04), "{p95:?}");
        let max = histogram.percentile(1.0).expect("samples");
        assert!(within(max, Duration::from_millis(1000), 0.04), "{max:?}");
    }

    #[test]
    fn small_exact_huge_and_empty() {
        assert_eq!(LatencyHistogram::default().percentile(0.5), None);
        let mut histogram = LatencyHistogram::default();
        histogram.record(Duration::from_micros(7));
        assert_eq!(histogram.percentile(0.5), Some(Duration::from_micros(7)));
        let mut huge = LatencyHistogram::default();
        huge.record(Duration::from_secs(u64::MAX));
        huge.record(Duration::MAX);
        assert_eq!(huge.samples(), 2);
        assert!(huge.percentile(1.0).expect("samples") > Duration::from_secs(86_400 * 40));
    }

    #[test]
    fn every_bucket_holds_its_own_middle_and_buckets_grow_monotonically() {
        let mut last = 0;
        for bucket in 0..BUCKETS {
            let middle = middle_of(bucket);
            assert_eq!(bucket_of(middle), bucket, "bucket {bucket}");
            assert!(middle >= last);
            last = middle;
        }
    }

    #[test]
    fn latencies_read_well() {
        assert_eq!(format_latency(None), "-");
        assert_eq!(format_latency(Some(Duration::from_micros(850))), "850 us");
        assert_eq!(format_latency(Some(Duration::from_millis(412))), "412 ms");
        assert_eq!(format_latency(Some(Duration::from_millis(1_940))), "1.9 s");
        assert_eq!(format_latency(Some(Duration::from_secs(125))), "2m05s");
    }
}
