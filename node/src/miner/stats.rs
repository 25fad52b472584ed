//! What the miner reports while it runs: hashes tried and blocks found (Prometheus counters the
//! worker threads bump directly), the threads running, whether a template is being mined, and
//! the hash rate over the last few seconds, from samples of the hash counter.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;

/// The span the hash rate is averaged over.
const RATE_WINDOW: Duration = Duration::from_secs(3);

/// The miner's counters, shared with the RPC and the metrics.
#[derive(Debug, Default)]
pub struct MiningStats {
    /// Nonces hashed since the node started.
    pub hashes: Counter,
    /// Blocks this node's miner solved (the engine may still lose some to a race).
    pub blocks_found: Counter,
    threads: AtomicUsize,
    active: AtomicBool,
    samples: Mutex<VecDeque<(Instant, u64)>>,
}

impl MiningStats {
    /// Stats that count into these (registered) counters.
    pub fn new(hashes: Counter, blocks_found: Counter) -> Self {
        MiningStats {
            hashes,
            blocks_found,
            ..MiningStats::default()
        }
    }

    /// Miner threads running.
    pub fn threads(&self) -> usize {
        self.threads.load(Ordering::Relaxed)
    }

    /// Whether a template is being mined right now.
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    pub(super) fn set_threads(&self, threads: usize) {
        self.threads.store(threads, Ordering::Relaxed);
    }

    pub(super) fn set_active(&self, active: bool) {
        self.active.store(active, Ordering::Relaxed);
    }

    /// Records the hash counter now; call it every second or so (the driver does, each loop
    /// turn). Samples older than the rate window are dropped, but one is kept to measure from.
    pub fn sample(&self) {
        self.sample_at(Instant::now());
    }

    fn sample_at(&self, now: Instant) {
        let mut samples = self.lock();
        samples.push_back((now, self.hashes.get()));
        while samples.len() > 2
            && samples
                .get(1)
                .is_some_and(|(at, _)| now.saturating_duration_since(*at) >= RATE_WINDOW)
        {
            samples.pop_front();
        }
    }

    /// Hashes per second over the sampled window (0 before two samples).
    pub fn hash_rate(&self) -> f64 {
        let samples = self.lock();
        match (samples.front(), samples.back()) {
            (Some((t0, h0)), Some((t1, h1))) if t1 > t0 => {
                h1.saturating_sub(*h0) as f64 / t1.saturating_duration_since(*t0).as_secs_f64()
            }
            _ => 0.0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(Instant, u64)>> {
        self.samples
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_the_slope_over_the_recent_window() {
        let stats = MiningStats::default();
        assert_eq!(stats.hash_rate(), 0.0);
        let t0 = Instant::now();
        stats.sample_at(t0);
        stats.hashes.inc_by(1_000);
        stats.sample_at(t0 + Duration::from_secs(1));
        assert!((stats.hash_rate() - 1_000.0).abs() < 1e-6);
        // Idle for longer than the window: the rate falls to zero.
        for s in 2..8 {
            stats.sample_at(t0 + Duration::from_secs(s));
        }
        assert_eq!(stats.hash_rate(), 0.0);
    }
}
