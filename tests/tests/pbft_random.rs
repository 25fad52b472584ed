//! Randomized Byzantine sweeps: up to f Byzantine replicas with random behaviours, plus random
//! delays, loss, duplication, partitions, crashes and restarts, over 4- and 7-replica PBFT; every
//! invariant checked after every step; progress and convergence of the honest replicas once the
//! network heals. `SYNOD_SEEDS=<n>` runs more seeds, `SYNOD_SEED=<s>` replays one.

#![allow(clippy::unwrap_used)]

use synod_consensus::pbft::{ByzantineBehaviour, PbftEngine, PbftFault};
use synod_consensus::sim::SimFailure;
use synod_consensus::sim::scenario::random_faults;
use synod_tests::pbft_sim::{
    PbftSimOptions, byzantine_sweep, pbft_factory, run_byzantine_seed, sweep_seeds,
};

/// Simulated time per seed: four seconds of faults, then four healed (see `random_faults`).
const DURATION_MS: u64 = 8_000;

fn sweep(nodes: usize) {
    let seeds = sweep_seeds(2_000);
    let report = byzantine_sweep(&seeds, nodes, DURATION_MS);
    println!(
        "{nodes} replicas: {} seeds ({} with Byzantine replicas), {} steps, {} commits in {:.1}s ({:.1} seeds/s)",
        report.seeds,
        report.byzantine_seeds,
        report.steps,
        report.commits,
        report.seconds,
        report.seeds_per_second()
    );
}

#[test]
fn four_replicas_with_byzantine_faults_never_break_an_invariant() {
    sweep(4);
}

#[test]
fn seven_replicas_with_byzantine_faults_never_break_an_invariant() {
    sweep(7);
}

/// One sweep seed with `fault` (and, with `amnesiac`, one replica lying in its VIEW-CHANGEs).
fn run_seed(seed: u64, nodes: usize, fault: PbftFault, amnesiac: bool) -> Result<(), SimFailure> {
    let mut base = PbftSimOptions {
        fault,
        ..PbftSimOptions::default()
    };
    if !amnesiac {
        return run_byzantine_seed(seed, nodes, DURATION_MS, base).map(|_| ());
    }
    base.behaviours
        .insert((seed % nodes as u64) as usize, ByzantineBehaviour::Amnesia);
    random_faults::<PbftEngine>(seed, nodes, DURATION_MS)
        .byzantine(base.byzantine_nodes())
        .run(pbft_factory(base))
        .map(|_| ())
}

/// Runs `fault` over the sweep's schedules until the checkers catch it, then replays the
/// catching seed with the correct rules, which must pass: the violation is the fault's doing.
/// With `amnesiac` one replica forgets its prepared certificates and executed height in its
/// VIEW-CHANGEs (a Byzantine lie a full quorum is there to withstand), which makes the broken
/// rules bite in a few dozen seeds instead of a few hundred.
fn caught(fault: PbftFault, nodes: usize, budget: u64, amnesiac: bool) -> bool {
    for seed in sweep_seeds(budget) {
        if let Err(failure) = run_seed(seed, nodes, fault, amnesiac) {
            assert!(
                ["agreement", "validity", "durability"].contains(&failure.violation.kind),
                "seed {seed}: the broken rule caused an unexpected failure:\n{failure}"
            );
            println!("seed {seed} caught {fault:?}:\n{failure}");
            if let Err(failure) = run_seed(seed, nodes, PbftFault::None, amnesiac) {
                panic!("seed {seed} fails with the correct rules too:\n{failure}");
            }
            return true;
        }
    }
    false
}

#[test]
fn commit_quorum_one_short_is_caught_within_the_seed_budget() {
    assert!(
        caught(PbftFault::CommitQuorumShort, 4, 300, true),
        "a commit one COMMIT short of a quorum survived the whole seed budget"
    );
}

#[test]
fn new_view_ignoring_prepared_certificates_is_caught_within_the_seed_budget() {
    assert!(
        caught(PbftFault::NewViewIgnoresPrepared, 4, 300, true),
        "a NEW-VIEW that ignores prepared certificates survived the whole seed budget"
    );
}
