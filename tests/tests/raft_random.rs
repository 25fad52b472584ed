//! Seed sweeps: random crashes, restarts, partitions and message faults over 3- and 5-node Raft
//! clusters, with every invariant checked after every step. `SYNOD_SEEDS=<n>` runs more seeds,
//! `SYNOD_SEED=<s>` replays one.

#![allow(clippy::unwrap_used)]

use std::time::Instant;

use synod_consensus::raft::{RaftEngine, RaftFault};
use synod_consensus::sim::scenario::random_faults;
use synod_tests::raft_sim::{RaftOptions, raft_factory, sweep_seeds};
use synod_tests::sweep::count_caught;

const DURATION_MS: u64 = 10_000;

fn nodes_for(seed: u64) -> usize {
    if seed.is_multiple_of(2) { 3 } else { 5 }
}

#[test]
fn random_faults_never_break_an_invariant() {
    let seeds = sweep_seeds(2_000);
    let started = Instant::now();
    let mut steps = 0u64;
    let mut commits = 0usize;
    for seed in &seeds {
        let sim = random_faults::<RaftEngine>(*seed, nodes_for(*seed), DURATION_MS)
            .run(raft_factory(RaftOptions::default()))
            .unwrap_or_else(|failure| {
                panic!("\nseed {seed} ({} nodes): {failure}", nodes_for(*seed))
            });
        steps += sim.steps();
        commits += sim.commit_log().len();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{} seeds, {steps} steps, {commits} commits in {secs:.1}s ({:.0} seeds/s)",
        seeds.len(),
        seeds.len() as f64 / secs
    );
}

#[test]
fn a_seed_replays_exactly() {
    let run = || {
        random_faults::<RaftEngine>(4242, 5, DURATION_MS)
            .run(raft_factory(RaftOptions::default()))
            .unwrap()
    };
    let (a, b) = (run(), run());
    assert_eq!(a.steps(), b.steps());
    assert_eq!(a.commit_log(), b.commit_log());
    assert_eq!(a.events(), b.events());
    assert!(a.commit_log().len() > 10);
}

/// Runs `seeds` random-fault seeds with a deliberately broken engine and returns how many were
/// caught, each by a violation of one of `kinds` (anything else fails the test).
fn caught_by(fault: RaftFault, kinds: &[&str], seeds: &[u64]) -> usize {
    let options = RaftOptions {
        fault,
        ..RaftOptions::default()
    };
    count_caught(&format!("{fault:?}"), kinds, seeds, |seed| {
        random_faults::<RaftEngine>(seed, nodes_for(seed), DURATION_MS)
            .run(raft_factory(options.clone()))
            .map(|_| ())
    })
}

/// The checkers find a real bug: with the commit quorum one replica short, random fault schedules
/// produce a violation within the seed budget. (The Figure 8 variant needs an interleaving random
/// schedules essentially never produce, because a new leader ships the old entry and its own in
/// one append; `raft_scenarios` scripts that one.)
#[test]
fn broken_commit_rule_is_caught_within_the_seed_budget() {
    let caught = caught_by(
        RaftFault::CommitQuorumOffByOne,
        &["agreement", "validity", "durability", "transaction loss"],
        &sweep_seeds(200),
    );
    assert!(
        caught > 0,
        "the broken commit rule survived the seed budget"
    );
}

/// The election-safety checker fires: a node that votes twice in one term lets two candidates
/// win it.
#[test]
fn voting_twice_is_caught_by_election_safety() {
    let caught = caught_by(
        RaftFault::VoteTwice,
        &["election safety", "agreement", "validity", "durability"],
        &sweep_seeds(200),
    );
    assert!(caught > 0, "double votes survived the seed budget");
}

/// The durability checker fires: followers that acknowledge entries they never wrote lose
/// committed blocks in a crash, and a restart finds its chain ahead of its log.
#[test]
fn acknowledging_before_persisting_is_caught() {
    let caught = caught_by(
        RaftFault::AckBeforePersist,
        &[
            "durability",
            "agreement",
            "validity",
            "transaction loss",
            "liveness",
        ],
        &sweep_seeds(200),
    );
    assert!(
        caught > 0,
        "acknowledging unwritten entries survived the seed budget"
    );
}

/// The transaction-accounting checker fires: a leader whose pool silently loses one transaction
/// in sixteen leaves clients' transactions uncommitted, with no reason reported.
#[test]
fn a_lossy_pool_is_caught_by_transaction_accounting() {
    let caught = caught_by(
        RaftFault::LossyPool,
        &["transaction loss"],
        &sweep_seeds(20),
    );
    assert!(caught > 0, "the lossy pool survived the seed budget");
}
