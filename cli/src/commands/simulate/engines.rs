//! The engines `synod simulate` can put in the simulator, and how each is built: its factory and
//! its Byzantine behaviours. This is the one place a new engine's simulator plugs in (a factory
//! such as `synod_consensus::pbft::simulation::pbft_factory` and its behaviours); until then the
//! engine is reported as not in this build.

use synod_consensus::raft::RaftEngine;
use synod_consensus::raft::simulation::{RaftBehaviour, RaftOptions, adversary, raft_factory};
use synod_consensus::sim::scenario::{FaultMix, random_faults_of};
use synod_consensus::sim::{SimFailure, bank};

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
    match engine {
        "raft" => {
            if spec.byzantine > 0 {
                spec.behaviour
                    .parse::<RaftBehaviour>()
                    .map_err(anyhow::Error::msg)?;
            }
            if spec.byzantine > spec.nodes {
                anyhow::bail!(
                    "--byzantine {} exceeds --nodes {}",
                    spec.byzantine,
                    spec.nodes
                );
            }
            Ok(())
        }
        "pbft" | "pow" => anyhow::bail!(
            "the {engine} simulator is not in this build of synod yet: it arrives with the {engine} engine"
        ),
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
    let validators: Vec<_> = (0..spec.nodes)
        .map(|i| bank::validator_key(i).public())
        .collect();
    let chain_id = bank::fixture().genesis.chain_id.clone();
    let mut scenario = random_faults_of::<RaftEngine>(seed, spec.nodes, spec.duration_ms, spec.mix)
        .trace(spec.trace_lines);
    if spec.byzantine > 0 {
        let behaviour: RaftBehaviour = spec.behaviour.parse().map_err(anyhow::Error::msg)?;
        for i in 0..spec.byzantine {
            scenario = scenario.adversary(
                i,
                adversary(behaviour, bank::validator_key(i), &validators, &chain_id),
            );
        }
    }
    Ok(scenario
        .run(raft_factory(RaftOptions::default()))
        .map(|sim| Passed {
            steps: sim.steps(),
            commits: sim.commit_log().len(),
            trace: sim.trace_lines(),
        }))
}
