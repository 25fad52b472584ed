//! One block template being mined: the target its bits declare, each thread's share of the nonce
//! space, and the timestamps it is mined under.
//!
//! Every timestamp gets a window of [`NONCE_WINDOW`] nonces (Bitcoin's 32-bit nonce space), cut
//! into one share per thread, so threads never hash the same header. A thread that exhausts its
//! share rolls the template to the next timestamp (an *epoch*): the wall clock, or one past the
//! previous epoch's if the clock has not moved, so the timestamp only grows from the one the
//! engine chose (at least one past the median time past) and stays at the clock (never ahead of
//! it by more than the rolls themselves; at ~20 MH/s a window lasts minutes). Each epoch has its
//! own header midstate; the first thread to need an epoch builds it, the others share it.

use std::ops::Range;
use std::sync::{Arc, Mutex};

use synod_chain::Block;
use synod_chain::pow::midstate::HeaderMidstate;
use synod_chain::target::{Target, TargetError};

/// Nonces hashed under one timestamp, over all threads.
pub const NONCE_WINDOW: u64 = 1 << 32;

/// The template under one timestamp.
#[derive(Debug)]
pub struct Epoch {
    /// Counts from 0, the engine's own timestamp.
    pub index: u64,
    /// The header timestamp of this epoch.
    pub timestamp_ms: u64,
    /// The header's hashing state with this timestamp.
    pub midstate: HeaderMidstate,
}

/// A template being mined by a fixed number of threads.
#[derive(Debug)]
pub struct Job {
    /// Distinguishes this job from every earlier one: workers drop a job whose generation is no
    /// longer the miner's current one.
    pub generation: u64,
    /// The block as the engine built it (nonce and timestamp get filled in when solved).
    pub template: Block,
    /// The target its bits declare.
    pub target: Target,
    threads: u64,
    window: u64,
    latest: Mutex<Arc<Epoch>>,
}

impl Job {
    /// A job for `template`, shared by `threads` threads with `window` nonces per timestamp.
    pub fn new(
        generation: u64,
        template: Block,
        threads: usize,
        window: u64,
    ) -> Result<Job, TargetError> {
        let target = Target::from_compact(template.header.seal.bits)?;
        let first = Epoch {
            index: 0,
            timestamp_ms: template.header.timestamp_ms,
            midstate: HeaderMidstate::new(&template.header),
        };
        Ok(Job {
            generation,
            template,
            target,
            threads: threads.max(1) as u64,
            window: window.max(threads.max(1) as u64),
            latest: Mutex::new(Arc::new(first)),
        })
    }

    /// The nonces thread `index` hashes under each timestamp: its slice of the window (the last
    /// thread also takes the remainder).
    pub fn share(&self, index: usize) -> Range<u64> {
        let index = (index as u64).min(self.threads - 1);
        let size = self.window / self.threads;
        let start = index * size;
        let end = if index + 1 == self.threads {
            self.window
        } else {
            start + size
        };
        start..end
    }

    /// The epoch the job starts in (the engine's timestamp), or the latest one if threads have
    /// already rolled past it.
    pub fn current_epoch(&self) -> Arc<Epoch> {
        self.lock().clone()
    }

    /// The epoch after `done` (whose share a thread just exhausted): the latest one if another
    /// thread already rolled past `done`, else a new one stamped `max(now_ms, previous + 1)`.
    pub fn next_epoch(&self, done: &Epoch, now_ms: u64) -> Arc<Epoch> {
        let mut latest = self.lock();
        if latest.index > done.index {
            return latest.clone();
        }
        let timestamp_ms = now_ms.max(latest.timestamp_ms.saturating_add(1));
        let mut header = self.template.header;
        header.timestamp_ms = timestamp_ms;
        let epoch = Arc::new(Epoch {
            index: latest.index + 1,
            timestamp_ms,
            midstate: HeaderMidstate::new(&header),
        });
        *latest = epoch.clone();
        epoch
    }

    /// The template with the solution filled in.
    pub fn solved(&self, epoch: &Epoch, nonce: u64) -> Block {
        let mut block = self.template.clone();
        block.header.timestamp_ms = epoch.timestamp_ms;
        block.header.seal.nonce = nonce;
        block
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Arc<Epoch>> {
        self.latest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use synod_chain::fixtures::Fixture;
    use synod_chain::hash::sha256d;

    fn template(bits: u32) -> Block {
        let mut block = Fixture::new("miner-job", 1, 10, 50).genesis.block;
        block.header.height = 1;
        block.header.timestamp_ms = 1_000;
        block.header.seal.bits = bits;
        block
    }

    #[test]
    fn shares_cover_the_window_once() {
        let job = Job::new(1, template(0x207f_ffff), 3, 100).unwrap();
        assert_eq!(job.share(0), 0..33);
        assert_eq!(job.share(1), 33..66);
        assert_eq!(job.share(2), 66..100);
        let one = Job::new(1, template(0x207f_ffff), 1, NONCE_WINDOW).unwrap();
        assert_eq!(one.share(0), 0..NONCE_WINDOW);
    }

    #[test]
    fn rolling_moves_the_timestamp_forward_once_per_epoch() {
        let job = Job::new(1, template(0x207f_ffff), 2, 10).unwrap();
        let first = job.current_epoch();
        assert_eq!((first.index, first.timestamp_ms), (0, 1_000));
        // The clock has not moved: one past the previous timestamp.
        let second = job.next_epoch(&first, 900);
        assert_eq!((second.index, second.timestamp_ms), (1, 1_001));
        // Another thread that exhausted epoch 0 joins epoch 1 instead of rolling again.
        let joined = job.next_epoch(&first, 5_000);
        assert_eq!(joined.index, 1);
        let third = job.next_epoch(&second, 5_000);
        assert_eq!((third.index, third.timestamp_ms), (2, 5_000));
        // Each epoch hashes its own header.
        let block = job.solved(&third, 42);
        assert_eq!(block.header.timestamp_ms, 5_000);
        assert_eq!(third.midstate.hash(42), sha256d(&block.header.encode()));
        assert_eq!(block.hash(), third.midstate.hash(42));
    }

    #[test]
    fn unusable_bits_are_refused() {
        assert!(Job::new(1, template(0), 1, 10).is_err());
    }
}
