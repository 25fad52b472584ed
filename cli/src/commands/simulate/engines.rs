//! The engines `synod simulate` can put in the simulator, and how each is built: its factory, its
//! random fault schedule and its Byzantine behaviours. This is the one place an engine's
//! simulator plugs in.

use synod_consensus::engine::Engine;
use synod_consensus::pbft::simulation::{PbftSimOptions, pbft_factory};
use synod_consensus::pbft::{ByzantineBehaviour, PbftEngine};
use synod_consensus::pow::simulation::{
    PowBehaviour, PowOptions, adversary as pow_adversary, heal_time, pow_random_faults_of,
    run_random_schedule,
};
use synod_consensus::raft::RaftEngine;
use synod_consensus::raft::simulation::{RaftBehaviour, RaftOptions, adversary, raft_factory};
use synod_consensus::sim::scenario::{FaultMix, Scenario, random_faults_of};
use synod_consensus::sim::{EngineFactory, Sim, SimFailure, bank};

/// What one seed is run with.
#[derive(Clone, Debug)]
pub struct SeedSpec {
    /// Validators.
    pub nodes: usize,
    /// Nodes 0..byzantine misbehave.
    pub byzantine: usize,
    /// How they misbehave.
    pub behaviour: String,
    /// The fault kinds drawn.
    pub mix: FaultMix,
    /// Simulated milliseconds per seed.
    pub duration_ms: u64,
    /// Events kept for the trace.
    pub trace_lines: usize,
}

/// A seed that ran to the end without a violation.
#[derive(Clone, Debug)]
pub struct Passed {
    /// Simulated steps.
    pub steps: u64,
    /// Commits by any node.
    pub commits: usize,
    /// The kept events, oldest first.
    pub trace: Vec<String>,
}

/// Refuses what this build cannot simulate, with the reason.
pub fn check(engine: &str, spec: &SeedSpec) -> anyhow::Result<()> {
    if spec.byzantine >= spec.nodes {
        anyhow::bail!(
            "--byzantine {} leaves no honest node among --nodes {}: progress and agreement are checked on honest nodes",
            spec.byzantine,
            spec.nodes
        );
    }
    match engine {
        "raft" => {
            if spec.byzantine > 0 {
                spec.behaviour
                    .parse::<RaftBehaviour>()
                    .map_err(anyhow::Error::msg)?;
            }
            Ok(())
        }
        "pbft" => {
            if spec.nodes < 4 {
                anyhow::bail!("PBFT needs at least 4 replicas (3f+1), not {}", spec.nodes);
            }
            if spec.byzantine > 0 {
                spec.behaviour
                    .parse::<ByzantineBehaviour>()
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            Ok(())
        }
        "pow" => {
            if spec.byzantine > 0 {
                spec.behaviour
                    .parse::<PowBehaviour>()
                    .map_err(anyhow::Error::msg)?;
            }
            Ok(())
        }
        other => anyhow::bail!("unknown engine {other:?}; expected raft, pbft or pow"),
    }
}

/// Runs one seed of `engine` (checked with [`check`] first).
pub fn run_seed(
    engine: &str,
    spec: &SeedSpec,
    seed: u64,
) -> anyhow::Result<Result<Passed, SimFailure>> {
    check(engine, spec)?;
    if engine == "pbft" {
        let mut options = PbftSimOptions::default();
        if spec.byzantine > 0 {
            let behaviour: ByzantineBehaviour =
                spec.behaviour.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
            options.behaviours = (0..spec.byzantine).map(|i| (i, behaviour)).collect();
        }
        let scenario = scenario::<PbftEngine>(spec, seed).byzantine(options.byzantine_nodes());
        return Ok(run(scenario, pbft_factory(options)));
    }
    if engine == "pow" {
        let options = PowOptions::default();
        let mut scenario =
            pow_random_faults_of(seed, spec.nodes, spec.duration_ms, &options, spec.mix)
                .trace(spec.trace_lines);
        if spec.byzantine > 0 {
            let behaviour: PowBehaviour = spec.behaviour.parse().map_err(anyhow::Error::msg)?;
            // A withholder releases its private branch when the faults heal.
            let release_at = heal_time(spec.duration_ms);
            for i in 0..spec.byzantine {
                scenario = scenario.adversary(i, pow_adversary(behaviour, release_at));
            }
        }
        let run = run_random_schedule(scenario, options, spec.duration_ms);
        return Ok(run.map(|sim| passed(&sim)));
    }
    let validators: Vec<_> = (0..spec.nodes)
        .map(|i| bank::validator_key(i).public())
        .collect();
    let chain_id = bank::fixture().genesis.chain_id.clone();
    let mut scenario = scenario::<RaftEngine>(spec, seed);
    if spec.byzantine > 0 {
        let behaviour: RaftBehaviour = spec.behaviour.parse().map_err(anyhow::Error::msg)?;
        for i in 0..spec.byzantine {
            scenario = scenario.adversary(
                i,
                adversary(behaviour, bank::validator_key(i), &validators, &chain_id),
            );
        }
    }
    Ok(run(scenario, raft_factory(RaftOptions::default())))
}

fn scenario<E: Engine>(spec: &SeedSpec, seed: u64) -> Scenario<E> {
    random_faults_of::<E>(seed, spec.nodes, spec.duration_ms, spec.mix).trace(spec.trace_lines)
}

fn run<E: Engine>(scenario: Scenario<E>, factory: EngineFactory<E>) -> Result<Passed, SimFailure> {
    scenario.run(factory).map(|sim| passed(&sim))
}

fn passed<E: Engine>(sim: &Sim<E>) -> Passed {
    Passed {
        steps: sim.steps(),
        commits: sim.commit_log().len(),
        trace: sim.trace_lines(),
    }
}
