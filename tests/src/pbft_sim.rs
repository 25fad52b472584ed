//! PBFT in the simulator: the factories and random Byzantine plans of
//! `synod_consensus::pbft::simulation`, plus what the suites share (seeds, running one sweep
//! seed).

use std::time::Instant;

use synod_consensus::engine::EngineEvent;
use synod_consensus::pbft::PbftEngine;
pub use synod_consensus::pbft::simulation::{
    PbftSimOptions, pbft_factory, random_behaviours, random_byzantine_faults, shared_verifier,
    sim_params,
};
use synod_consensus::sim::{Sim, SimConfig, SimFailure};

/// Seed handling and failure printing, shared with the Raft suites.
pub use crate::raft_sim::{ok, sweep_seeds};

/// A simulation of `config.nodes` PBFT replicas built with `options`; the replicas given a
/// Byzantine behaviour are marked Byzantine.
pub fn pbft_sim(mut config: SimConfig, options: PbftSimOptions) -> Sim<PbftEngine> {
    config.byzantine.extend(options.byzantine_nodes());
    ok(Sim::new(config, pbft_factory(options)))
}

/// Node `i`'s view, if it is running.
pub fn view(sim: &Sim<PbftEngine>, i: usize) -> Option<u64> {
    sim.engine(i).map(PbftEngine::view)
}

/// Whether node `i` runs and operates in its view.
pub fn is_active(sim: &Sim<PbftEngine>, i: usize) -> bool {
    sim.engine(i).is_some_and(PbftEngine::is_active)
}

/// The running replicas that are not Byzantine.
pub fn honest(sim: &Sim<PbftEngine>) -> Vec<usize> {
    (0..sim.len())
        .filter(|i| sim.is_up(*i) && !sim.is_byzantine(*i))
        .collect()
}

/// Whether the running honest replicas hold one chain tip.
pub fn honest_converged(sim: &Sim<PbftEngine>) -> bool {
    let nodes = honest(sim);
    nodes.iter().all(|i| sim.tip(*i) == sim.tip(nodes[0]))
}

/// Whether node `i` gave up a view for a reason containing `reason`.
pub fn gave_up(sim: &Sim<PbftEngine>, i: usize, reason: &str) -> bool {
    sim.events().iter().any(|(_, node, event)| {
        *node == i
            && matches!(event, EngineEvent::SteppedDown { reason: r, .. } if r.contains(reason))
    })
}

/// Submits `per_tick` transactions every 50 ms for `ms` (clients keep retrying what waits).
pub fn load(sim: &mut Sim<PbftEngine>, per_tick: usize, ms: u64) {
    let end = sim.now() + ms;
    while sim.now() < end {
        sim.submit(per_tick);
        let t = sim.now();
        ok(sim.run_until(t + 50));
    }
}

/// Runs under light load until the honest replicas committed `blocks` more blocks.
pub fn commit_more(sim: &mut Sim<PbftEngine>, blocks: u64, within: u64, what: &str) {
    let target = sim.checker().decided_height() + blocks;
    let deadline = sim.now() + within;
    while sim.checker().decided_height() < target {
        assert!(
            sim.now() < deadline,
            "{what}: decided height {} < {target} by t={deadline} (seed {})",
            sim.checker().decided_height(),
            sim.seed()
        );
        load(sim, 5, 100);
    }
}

/// What one sweep measured.
#[derive(Debug, Default)]
pub struct SweepReport {
    /// Seeds run.
    pub seeds: usize,
    /// Simulated steps.
    pub steps: u64,
    /// Commits by any node.
    pub commits: usize,
    /// Seeds that had at least one Byzantine replica.
    pub byzantine_seeds: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
}

impl SweepReport {
    /// Seeds per wall-clock second.
    pub fn seeds_per_second(&self) -> f64 {
        self.seeds as f64 / self.seconds.max(1e-9)
    }
}

/// One seed of a Byzantine sweep with `nodes` replicas over `duration` simulated ms.
pub fn run_byzantine_seed(
    seed: u64,
    nodes: usize,
    duration: u64,
    base: PbftSimOptions,
) -> Result<Sim<PbftEngine>, SimFailure> {
    let (scenario, options) = random_byzantine_faults(seed, nodes, duration, base);
    scenario.run(pbft_factory(options))
}

/// Runs a Byzantine sweep over `seeds`, panicking with the seed, its Byzantine replicas and the
/// failure on the first violation.
pub fn byzantine_sweep(seeds: &[u64], nodes: usize, duration: u64) -> SweepReport {
    let started = Instant::now();
    let mut report = SweepReport::default();
    for &seed in seeds {
        match run_byzantine_seed(seed, nodes, duration, PbftSimOptions::default()) {
            Ok(sim) => {
                report.steps += sim.steps();
                report.commits += sim.commit_log().len();
                report.byzantine_seeds += usize::from((0..sim.len()).any(|i| sim.is_byzantine(i)));
            }
            Err(failure) => panic!(
                "\nseed {seed} ({nodes} replicas, Byzantine {:?}): {failure}",
                random_behaviours(seed, nodes)
            ),
        }
        report.seeds += 1;
    }
    report.seconds = started.elapsed().as_secs_f64();
    report
}
