//! Client-side CPU measurement shared by the benchmarks: a client runs alone on a
//! current-thread Tokio runtime in its own OS thread, so that thread's CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`) is exactly the client's work.

use std::time::{Duration, Instant};

/// Per-request figures of one measured run.
#[derive(Clone, Copy)]
pub struct Sample {
    /// The client thread's CPU time per request, in microseconds.
    pub cpu_us_per_request: f64,
    /// Wall time per request, in microseconds.
    pub wall_us_per_request: f64,
}

/// The calling thread's CPU time so far.
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own; the clock id is a constant.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Runs `body` on a fresh current-thread runtime in a new OS thread and measures that thread.
pub fn measure<F, Fut>(count: usize, body: F) -> Sample
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = usize>,
{
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("client runtime");
        let cpu_start = thread_cpu_time();
        let wall_start = Instant::now();
        let ok = runtime.block_on(body());
        let wall = wall_start.elapsed();
        let cpu = thread_cpu_time() - cpu_start;
        assert_eq!(ok, count, "every request must succeed in the benchmark");
        Sample {
            cpu_us_per_request: cpu.as_secs_f64() * 1e6 / count as f64,
            wall_us_per_request: wall.as_secs_f64() * 1e6 / count as f64,
        }
    })
    .join()
    .expect("benchmark thread")
}
