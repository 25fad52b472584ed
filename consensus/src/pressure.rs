//! Backpressure: whether an engine holds more pending transactions than it should take on more.
//!
//! Past a high-water mark the node answers its clients "busy, retry later" before admitting
//! anything (it would otherwise admit work that only waits, and its latency would grow without
//! bound), and it keeps answering so until the pool has drained to a low-water mark. The gap
//! between the two marks keeps the answer from flapping with every block.

/// The share of the pool's capacity at which an engine reports itself overloaded: a fifth
/// leaves the pool room for what followers and peers still forward while clients are being
/// turned away, and at the throughput of a few blocks a second it is seconds of work.
const HIGH_WATER_SHARE: usize = 5;

/// Hysteresis over the pool's fill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backpressure {
    high: usize,
    low: usize,
    on: bool,
}

impl Backpressure {
    /// Marks for a pool holding at most `capacity` transactions: on at a fifth of it, off again
    /// at a tenth.
    pub fn for_capacity(capacity: usize) -> Self {
        let high = (capacity / HIGH_WATER_SHARE).max(1);
        Backpressure {
            high,
            low: high / 2,
            on: false,
        }
    }

    /// Takes note of how many transactions are pending now.
    pub fn observe(&mut self, pending: usize) {
        if pending >= self.high {
            self.on = true;
        } else if pending <= self.low {
            self.on = false;
        }
    }

    /// Whether clients should be turned away for now.
    pub fn is_on(&self) -> bool {
        self.on
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_on_at_the_high_mark_and_off_only_at_the_low_one() {
        let mut pressure = Backpressure::for_capacity(1_000);
        pressure.observe(199);
        assert!(!pressure.is_on());
        pressure.observe(200);
        assert!(pressure.is_on());
        pressure.observe(150);
        assert!(pressure.is_on(), "between the marks the answer holds");
        pressure.observe(100);
        assert!(!pressure.is_on());
        pressure.observe(150);
        assert!(!pressure.is_on(), "between the marks the answer holds");
    }

    #[test]
    fn a_tiny_pool_still_has_marks() {
        let mut pressure = Backpressure::for_capacity(1);
        pressure.observe(1);
        assert!(pressure.is_on());
        pressure.observe(0);
        assert!(!pressure.is_on());
    }
}
