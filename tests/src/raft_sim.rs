//! Raft in the simulator for the test suites: the engine factory (from
//! `synod_consensus::raft::simulation`), failure printing, and seed handling for sweeps.

use synod_consensus::sim::SimFailure;

/// The factory and its options live in the consensus crate, where `synod simulate` uses them too.
pub use synod_consensus::raft::simulation::{RaftOptions, raft_factory};

/// Unwraps a simulation result, printing the failure (seed, violation, trace) on error.
pub fn ok<T>(result: Result<T, SimFailure>) -> T {
    result.unwrap_or_else(|failure| panic!("\n{failure}"))
}

/// The seeds of a sweep: `SYNOD_SEED` alone (replay), or `SYNOD_SEEDS` consecutive seeds from
/// `SYNOD_SEED_BASE` (default `count` from a fixed base, so CI is reproducible).
pub fn sweep_seeds(count: u64) -> Vec<u64> {
    let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    if let Some(seed) = var("SYNOD_SEED") {
        return vec![seed];
    }
    let count = var("SYNOD_SEEDS").unwrap_or(count);
    let base = var("SYNOD_SEED_BASE").unwrap_or(1);
    (base..base + count).collect()
}
