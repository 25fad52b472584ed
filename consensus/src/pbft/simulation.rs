//! PBFT in the simulator: engine factories with the knobs scenarios need, parameters scaled to
//! the simulator's millisecond links, and random Byzantine plans for seed sweeps. Shared by the
//! test suites and the benchmarks.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use synod_genesis::PbftParams;

use super::{ByzantineBehaviour, PbftConfig, PbftEngine, PbftFault, Verifier};
use crate::engine::Millis;
use crate::rng::DetRng;
use crate::sim::EngineFactory;
use crate::sim::bank;
use crate::sim::scenario::{Scenario, random_faults};

/// One verifier for every simulated replica of the process: each signature (and each of the
/// bank's pre-signed transactions) is checked once, whichever replica or run meets it first.
/// Memoizing a pure function: outcomes are the same, runs are faster.
pub fn shared_verifier() -> Verifier {
    static SHARED: OnceLock<Verifier> = OnceLock::new();
    SHARED.get_or_init(Verifier::new).clone()
}

/// Parameters for simulated runs: links take milliseconds, so timeouts are a few hundred; small
/// checkpoint intervals so that checkpoints, watermarks and garbage collection happen in every
/// run; a batching delay that keeps blocks (and so signatures) few under the sweeps' load.
pub fn sim_params() -> PbftParams {
    PbftParams {
        view_change_timeout_ms: 400,
        checkpoint_interval: 10,
        watermark_window: 30,
        max_block_txs: 1_000,
        batch_delay_ms: 150,
    }
}

/// How the simulated PBFT engines are built.
#[derive(Clone, Debug)]
pub struct PbftSimOptions {
    /// Engine parameters.
    pub params: PbftParams,
    /// Byzantine behaviour per node index (twins and adversaries are set on the simulation).
    pub behaviours: BTreeMap<usize, ByzantineBehaviour>,
    /// A deliberately broken rule, for every node.
    pub fault: PbftFault,
    /// Signature caches shared by the replicas.
    pub verifier: Verifier,
}

impl Default for PbftSimOptions {
    fn default() -> Self {
        PbftSimOptions {
            params: sim_params(),
            behaviours: BTreeMap::new(),
            fault: PbftFault::None,
            verifier: shared_verifier(),
        }
    }
}

impl PbftSimOptions {
    /// The nodes built to misbehave.
    pub fn byzantine_nodes(&self) -> Vec<usize> {
        self.behaviours.keys().copied().collect()
    }
}

/// A factory building PBFT engines with `options`.
pub fn pbft_factory(options: PbftSimOptions) -> EngineFactory<PbftEngine> {
    Box::new(move |setup, restored| {
        let mut config = PbftConfig::new(
            setup.key.clone(),
            setup.validators.clone(),
            options.params.clone(),
            setup.seed,
        );
        config.behaviour = options.behaviours.get(&setup.index).copied();
        config.fault = options.fault;
        config.verifier = options.verifier.clone();
        PbftEngine::new(config, setup.ledger.clone(), restored).map_err(|e| e.to_string())
    })
}

/// Up to f Byzantine replicas (at random positions) with random behaviours, for `seed`.
pub fn random_behaviours(seed: u64, nodes: usize) -> BTreeMap<usize, ByzantineBehaviour> {
    let mut rng = DetRng::new(seed ^ 0xb42a_471e);
    let f = nodes.saturating_sub(1) / 3;
    let count = rng.index(f + 1);
    let mut chosen = BTreeMap::new();
    while chosen.len() < count {
        let node = rng.index(nodes);
        let mut behaviour = ByzantineBehaviour::ALL[rng.index(ByzantineBehaviour::ALL.len())];
        if behaviour == ByzantineBehaviour::Censor(None) && rng.chance(0.5) {
            let account = rng.index(bank::ACCOUNTS);
            behaviour = ByzantineBehaviour::Censor(Some(bank::fixture().addresses[account]));
        }
        chosen.insert(node, behaviour);
    }
    chosen
}

/// A seed sweep's run: [`random_faults`] (delays, loss, duplication, partitions, crashes and
/// restarts, then healing, with progress and convergence expected) with up to f Byzantine
/// replicas from [`random_behaviours`]. Returns the scenario and the options to build it with.
pub fn random_byzantine_faults(
    seed: u64,
    nodes: usize,
    duration: Millis,
    base: PbftSimOptions,
) -> (Scenario<PbftEngine>, PbftSimOptions) {
    let options = PbftSimOptions {
        behaviours: random_behaviours(seed, nodes),
        ..base
    };
    let scenario = random_faults(seed, nodes, duration).byzantine(options.byzantine_nodes());
    (scenario, options)
}
