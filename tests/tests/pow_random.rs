//! Proof-of-work seed sweeps: random crashes (clean, and between two actions of a step),
//! restarts, partitions, one-way cuts and message faults over 3- to 5-node networks, every
//! invariant checked after every step: each node's chain valid (state equals its replay), supply
//! = genesis + height × reward, no transaction twice on a chain, no rewind below a node's
//! finalized height, agreement on final blocks. After the faults heal, the honest nodes must
//! converge on one tip with every accepted transaction on it. `SYNOD_SEEDS=<n>` runs more seeds,
//! `SYNOD_SEED=<s>` replays one.

#![allow(clippy::unwrap_used)]

use std::time::Instant;

use synod_consensus::engine::EngineEvent;
use synod_consensus::pow::PowFault;
use synod_consensus::pow::simulation::{PowOptions, pow_random_faults, run_random_schedule};
use synod_consensus::rng::DetRng;
use synod_genesis::{DifficultyAlgorithm, PowParams};
use synod_tests::raft_sim::sweep_seeds;
use synod_tests::sweep::count_caught;

const DURATION_MS: u64 = 10_000;

fn nodes_for(seed: u64) -> usize {
    3 + (seed % 3) as usize
}

/// Each seed's network: uneven hash power, now and then a node that does not mine, and every
/// other seed Bitcoin's retarget (10-block windows, blocks found faster than the schedule, so
/// the difficulty moves) instead of ASERT.
fn options_for(seed: u64) -> PowOptions {
    let mut rng = DetRng::new(seed ^ 0x0005_eed0_f90f);
    let nodes = nodes_for(seed);
    let mut options = PowOptions {
        shares: Some((0..nodes).map(|_| rng.range(1, 4) as f64).collect()),
        ..PowOptions::default()
    };
    if seed.is_multiple_of(5) {
        options.followers = vec![nodes - 1];
    }
    if seed % 2 == 1 {
        options.params = PowParams {
            difficulty: DifficultyAlgorithm::Bitcoin,
            retarget_window: 10,
            ..options.params
        };
        options.mining_block_time_ms = Some(180);
    }
    options
}

#[test]
fn random_faults_never_break_an_invariant_and_the_network_converges() {
    let seeds = sweep_seeds(1_000);
    let started = Instant::now();
    let (mut steps, mut commits, mut reorgs, mut finalized) = (0u64, 0usize, 0usize, 0u64);
    for seed in &seeds {
        let nodes = nodes_for(*seed);
        let options = options_for(*seed);
        let scenario = pow_random_faults(*seed, nodes, DURATION_MS, &options);
        let run = run_random_schedule(scenario, options, DURATION_MS);
        let sim = run.unwrap_or_else(|failure| panic!("\nseed {seed} ({nodes} nodes): {failure}"));
        steps += sim.steps();
        commits += sim.commit_log().len();
        reorgs += sim
            .events()
            .iter()
            .filter(|(_, _, e)| matches!(e, EngineEvent::Reorg { .. }))
            .count();
        finalized += sim.checker().final_height();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{} seeds, {steps} steps, {commits} commits, {reorgs} reorgs, mean final height {:.1} in {secs:.1}s ({:.0} seeds/s)",
        seeds.len(),
        finalized as f64 / seeds.len() as f64,
        seeds.len() as f64 / secs
    );
    assert!(reorgs > 0 && finalized > 0);
}

#[test]
fn a_seed_replays_exactly() {
    let options = options_for(4242);
    let run = || {
        let scenario = pow_random_faults(4242, nodes_for(4242), DURATION_MS, &options);
        run_random_schedule(scenario, options.clone(), DURATION_MS).unwrap()
    };
    let (a, b) = (run(), run());
    assert_eq!(a.steps(), b.steps());
    assert_eq!(a.commit_log(), b.commit_log());
    assert_eq!(a.events(), b.events());
    assert!(a.commit_log().len() > 20);
}

/// Runs `seeds` with a deliberately broken engine and returns how many were caught, each by a
/// violation of one of `kinds` (anything else fails the test).
fn caught_by(fault: PowFault, kinds: &[&str], seeds: &[u64]) -> usize {
    count_caught(&format!("{fault:?}"), kinds, seeds, |seed| {
        let options = PowOptions {
            fault,
            ..options_for(seed)
        };
        let scenario = pow_random_faults(seed, nodes_for(seed), DURATION_MS, &options);
        run_random_schedule(scenario, options, DURATION_MS).map(|_| ())
    })
}

/// The transaction accounting fires: an engine that drops a reorganisation's abandoned
/// transactions leaves accepted transactions on no chain, with no reason reported.
#[test]
fn losing_abandoned_transactions_is_caught() {
    let caught = caught_by(
        PowFault::LoseAbandonedTransactions,
        &["transaction loss", "liveness"],
        &sweep_seeds(60),
    );
    assert!(caught > 0, "lost transactions survived the seed budget");
}

/// The per-node replay fires: an engine that rewinds its chain but not its own accounts builds
/// and accepts blocks on the wrong state (and, refusing valid ones, may split from the others
/// for good, which the finality checks catch).
#[test]
fn a_reorganisation_that_keeps_the_old_state_is_caught() {
    let caught = caught_by(
        PowFault::KeepStateOnReorg,
        &[
            "validity",
            "agreement",
            "finality",
            "liveness",
            "transaction loss",
        ],
        &sweep_seeds(60),
    );
    assert!(
        caught > 0,
        "stale state after reorgs survived the seed budget"
    );
}
