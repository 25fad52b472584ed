//! Measuring the miner: the real miner threads on a template no nonce can solve, for a fixed
//! time, so the figure includes everything a mining node pays per hash (chunking, the staleness
//! checks, the counters), not only the kernel's inner loop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use synod_chain::block::{HEADER_VERSION, Seal};
use synod_chain::hash::Hash;
use synod_chain::keys::PublicKey;
use synod_chain::pow::kernel::Kernel;
use synod_chain::{Block, BlockHeader};

use super::Miner;
use super::stats::MiningStats;

/// The hardest compact target there is (the value 1): no header meets it in practice.
const UNSOLVABLE_BITS: u32 = 0x0300_0001;

/// A template the benchmark mines.
fn template() -> Block {
    Block {
        header: BlockHeader {
            version: HEADER_VERSION,
            parent: Hash([7; 32]),
            height: 1,
            timestamp_ms: 1,
            tx_root: Hash::ZERO,
            state_root: Hash::ZERO,
            proposer: PublicKey([9; 32]),
            seal: Seal {
                round: 0,
                bits: UNSOLVABLE_BITS,
                nonce: 0,
            },
        },
        txs: Vec::new(),
    }
}

/// Hashes per second of `threads` miner threads running `kernel` for `duration`.
pub fn hash_rate(kernel: Kernel, threads: usize, duration: Duration) -> f64 {
    let stats = Arc::new(MiningStats::default());
    let mut miner = Miner::new(kernel, threads.max(1), stats.clone(), Box::new(|_| {}));
    let started = Instant::now();
    miner.mine(template());
    std::thread::sleep(duration);
    let hashes = stats.hashes.get();
    let elapsed = started.elapsed();
    drop(miner);
    hashes as f64 / elapsed.as_secs_f64().max(1e-9)
}
