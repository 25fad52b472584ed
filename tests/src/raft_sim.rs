//! Raft in the simulator: engine factories with the knobs scenarios need, and seed handling for
//! sweeps.

use synod_consensus::raft::{RaftConfig, RaftEngine, RaftFault};
use synod_consensus::sim::{EngineFactory, SimFailure};
use synod_genesis::RaftParams;

/// How the simulated Raft engines are built.
#[derive(Clone, Debug, Default)]
pub struct RaftOptions {
    /// Engine parameters.
    pub params: RaftParams,
    /// Only the first `n` simulated nodes are genesis validators (the rest start as observers).
    pub genesis_validators: Option<usize>,
    /// A deliberately broken commit rule.
    pub fault: RaftFault,
}

/// A factory building Raft engines with `options`.
pub fn raft_factory(options: RaftOptions) -> EngineFactory<RaftEngine> {
    Box::new(move |setup, restored| {
        let validators = match options.genesis_validators {
            Some(n) => setup.validators[..n].to_vec(),
            None => setup.validators.clone(),
        };
        let mut config = RaftConfig::new(
            setup.key.clone(),
            validators,
            options.params.clone(),
            setup.seed,
        );
        config.fault = options.fault;
        RaftEngine::new(config, setup.ledger.clone(), restored).map_err(|e| e.to_string())
    })
}

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
