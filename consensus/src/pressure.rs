//! Backpressure: whether an engine holds more work than it should take on more of.
//!
//! Past a high-water mark of transactions in blocks proposed and not yet committed plus those
//! that could go into the next blocks now, the node answers its
//! clients "busy, retry later" before admitting anything (it would otherwise admit work that
//! only waits, and its latency would grow without bound), and it keeps answering so until that
//! backlog has drained to a low-water mark. The gap between the two marks keeps the answer from
//! flapping with every block. Transactions behind a nonce gap, or of a sender parked for want of
//! funds, do not count: they cost a builder nothing, and counting them would let one sender's
//! unexecutable transactions turn every client away.

use crate::engine::Millis;
use crate::pool::TxPool;
use synod_chain::keys::Address;

/// The share of the pool's capacity at which an engine reports itself overloaded: a fifth
/// leaves the pool room for what followers and peers still forward while clients are being
/// turned away, and at the throughput of a few blocks a second it is seconds of work.
const HIGH_WATER_SHARE: usize = 5;

/// How often, in engine time, the backlog is counted again while the pool holds more than the
/// low mark: counting walks every sender's nonces, and the engine steps far more often.
const RECOUNT_MS: Millis = 50;
/// Senders per extra millisecond between counts: a pool of many senders is counted less often,
/// so that counting keeps to a small share of the engine's time however the pool is made up.
const SENDERS_PER_MS: usize = 100;

/// Hysteresis over an engine's backlog: transactions in blocks in flight plus those in the pool
/// that could go into the next blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backpressure {
    high: usize,
    low: usize,
    on: bool,
    /// When the backlog was last counted.
    counted_at: Option<Millis>,
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
            counted_at: None,
        }
    }

    /// Takes note of `pool` at `now`, with `in_flight` transactions already in blocks the engine
    /// proposed and has not committed (work taken on, not done), and `next_nonce` the nonce each
    /// sender's next block transaction must carry (as the engine builds blocks).
    pub fn observe(
        &mut self,
        now: Millis,
        pool: &TxPool,
        in_flight: usize,
        next_nonce: impl Fn(&Address) -> u64,
    ) {
        // Nothing above the low mark at all: no need to count.
        if pool.len() + in_flight <= self.low {
            self.on = false;
            return;
        }
        let interval = RECOUNT_MS + (pool.senders() / SENDERS_PER_MS) as Millis;
        if self
            .counted_at
            .is_some_and(|at| now.saturating_sub(at) < interval)
        {
            return;
        }
        self.counted_at = Some(now);
        let wanted = self.high.saturating_sub(in_flight);
        self.settle(in_flight + pool.executable(wanted, next_nonce));
    }

    /// Moves the answer for a backlog of `backlog` transactions.
    fn settle(&mut self, backlog: usize) {
        if backlog >= self.high {
            self.on = true;
        } else if backlog <= self.low {
            self.on = false;
        }
    }

    /// Forgets the answer (a leader stepping down: what it counted says nothing of its pool the
    /// next time it leads).
    pub fn reset(&mut self) {
        self.on = false;
        self.counted_at = None;
    }

    /// Whether clients should be turned away for now.
    pub fn is_on(&self) -> bool {
        self.on
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::bank;

    /// A pool holding `run` consecutive nonces from each of the first `senders` test accounts,
    /// starting at nonce `from`.
    fn pool_of(senders: usize, run: u64, from: u64) -> TxPool {
        let mut pool = TxPool::new(10_000);
        for account in 0..senders {
            let txs = (from..from + run).map(|n| bank::transfer(account, n as usize).clone());
            pool.add(0, txs);
        }
        pool
    }

    #[test]
    fn turns_on_at_the_high_mark_and_off_only_at_the_low_one() {
        let mut pressure = Backpressure::for_capacity(1_000);
        pressure.settle(199);
        assert!(!pressure.is_on());
        pressure.settle(200);
        assert!(pressure.is_on());
        pressure.settle(150);
        assert!(pressure.is_on(), "between the marks the answer holds");
        pressure.settle(100);
        assert!(!pressure.is_on());
        pressure.settle(150);
        assert!(!pressure.is_on(), "between the marks the answer holds");
    }

    #[test]
    fn counts_only_what_could_go_into_a_block() {
        // 4 senders x 60 nonces: 240 executable from nonce 0, none from nonce 1 (all behind
        // the missing 0).
        let mut pressure = Backpressure::for_capacity(1_000);
        let waiting = pool_of(4, 60, 1);
        pressure.observe(0, &waiting, 0, |_| 0);
        assert!(!pressure.is_on(), "a pool of gaps is no load");
        let executable = pool_of(4, 60, 0);
        pressure.observe(1, &executable, 0, |_| 0);
        assert!(
            !pressure.is_on(),
            "counted again only after {RECOUNT_MS} ms"
        );
        pressure.observe(RECOUNT_MS + 1, &executable, 0, |_| 0);
        assert!(pressure.is_on());
        pressure.observe(2 * RECOUNT_MS + 2, &waiting, 0, |_| 0);
        assert!(!pressure.is_on());
        // Blocks in flight count as work taken on: 150 of them and 60 executable pass the mark.
        pressure.observe(3 * RECOUNT_MS + 3, &pool_of(1, 60, 0), 150, |_| 0);
        assert!(pressure.is_on());
    }

    #[test]
    fn a_tiny_pool_still_has_marks() {
        let mut pressure = Backpressure::for_capacity(1);
        pressure.settle(1);
        assert!(pressure.is_on());
        pressure.settle(0);
        assert!(!pressure.is_on());
    }
}
