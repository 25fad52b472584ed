//! Per-peer rate limits: a token bucket for each peer, refilled continuously. A peer that asks
//! more often than the rate (beyond a burst) is answered with nothing until its bucket refills.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;

/// Buckets idle this long are forgotten (a full bucket is the same as none).
const FORGET_AFTER: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by peer.
#[derive(Debug)]
pub struct PerPeer {
    rate: f64,
    burst: f64,
    buckets: HashMap<PeerId, Bucket>,
}

impl PerPeer {
    /// `rate` requests a second per peer, `burst` at once.
    pub fn new(rate: f64, burst: f64) -> Self {
        PerPeer {
            rate,
            burst,
            buckets: HashMap::new(),
        }
    }

    /// Whether `peer` may make one more request now (and takes its token if so).
    pub fn allow(&mut self, peer: PeerId) -> bool {
        self.allow_at(peer, 1.0, Instant::now())
    }

    /// Whether `peer` may spend `cost` tokens now (bytes, say), and takes them if so. A cost
    /// above the burst is never allowed.
    pub fn allow_cost(&mut self, peer: PeerId, cost: f64) -> bool {
        self.allow_at(peer, cost, Instant::now())
    }

    fn allow_at(&mut self, peer: PeerId, cost: f64, now: Instant) -> bool {
        let bucket = self.buckets.entry(peer).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= cost {
            bucket.tokens -= cost;
            true
        } else {
            false
        }
    }

    /// Forgets peers not heard from for a while, so the map stays as small as the active peers.
    pub fn forget_idle(&mut self) {
        let now = Instant::now();
        self.buckets
            .retain(|_, b| now.saturating_duration_since(b.at) < FORGET_AFTER);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let mut limits = PerPeer::new(10.0, 3.0);
        let (a, b) = (PeerId::random(), PeerId::random());
        let t0 = Instant::now();
        assert!((0..3).all(|_| limits.allow_at(a, 1.0, t0)));
        assert!(!limits.allow_at(a, 1.0, t0), "the burst is spent");
        assert!(
            limits.allow_at(b, 1.0, t0),
            "another peer has its own bucket"
        );
        assert!(!limits.allow_at(a, 1.0, t0 + Duration::from_millis(50)));
        assert!(limits.allow_at(a, 1.0, t0 + Duration::from_millis(110)));
        // Costs: the bucket holds at most the burst.
        assert!(!limits.allow_at(b, 3.5, t0 + Duration::from_secs(10)));
        assert!(limits.allow_at(b, 2.5, t0 + Duration::from_secs(10)));
    }
}
