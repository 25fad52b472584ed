//! One Byzantine leader, the same workload, two engines.
//!
//! Raft (3 nodes, tolerating one *crash*) trusts its leader: followers store what it appends
//! and apply it once it says so. A leader that sends one block to one follower and a different
//! block at the same height to the other makes them commit different chains, and the
//! simulator's checker reports it.
//!
//! PBFT (4 nodes, tolerating one *Byzantine* replica) does not trust its primary: a block
//! commits only once a quorum of replicas signed that they prepared *that* block, and any two
//! quorums share an honest replica. The same lie — one block to half the backups, another to
//! the rest — costs it at most a view change. Nothing honest is lost.
//!
//! Run with `cargo test -p synod-tests --test byzantine_comparison -- --nocapture` to see the
//! checker's report for Raft.

#![allow(clippy::unwrap_used)]

use synod_chain::Block;
use synod_consensus::pbft::ByzantineBehaviour;
use synod_consensus::raft::{RaftEngine, RaftMessage};
use synod_consensus::sim::adversary::Rewriter;
use synod_consensus::sim::{Sim, SimConfig, SimFailure};
use synod_tests::pbft_sim::{PbftSimOptions, honest_converged, pbft_sim};
use synod_tests::raft_sim::{RaftOptions, ok, raft_factory};

/// The seed both runs share.
const SEED: u64 = 2026;
/// Client transactions per 50 ms, for this long.
const PER_TICK: usize = 10;
const LOAD_MS: u64 = 3_000;

/// The workload: the same client transactions every 50 ms, then quiet time to settle.
fn run_workload<E: synod_consensus::Engine>(sim: &mut Sim<E>) -> Result<(), SimFailure> {
    let end = sim.now() + LOAD_MS;
    while sim.now() < end {
        sim.submit(PER_TICK);
        let t = sim.now();
        sim.run_until(t + 50)?;
    }
    let t = sim.now();
    sim.run_until(t + 2_000)
}

/// The same block, one millisecond later: a different block at the same height.
fn twin(block: &Block) -> Block {
    let mut twin = block.clone();
    twin.header.timestamp_ms += 1;
    twin
}

/// Raft: once a leader is elected it turns Byzantine and sends `victim` altered blocks.
fn raft_with_equivocating_leader() -> Result<Sim<RaftEngine>, SimFailure> {
    let mut sim = Sim::new(
        SimConfig::new(SEED, 3),
        raft_factory(RaftOptions::default()),
    )?;
    sim.run_until_true(3_000, "a leader", |s| s.leader().is_some())?;
    let leader = sim.leader().unwrap();
    let victim = sim.id((leader + 1) % 3);
    sim.set_adversary(
        leader,
        Box::new(Rewriter {
            rewrite: Box::new(move |_, to, msg| {
                vec![match msg {
                    RaftMessage::Append {
                        term,
                        prev_index,
                        prev_term,
                        mut entries,
                        commit,
                        overloaded,
                    } if to == victim => {
                        for entry in &mut entries {
                            entry.block = twin(&entry.block);
                        }
                        RaftMessage::Append {
                            term,
                            prev_index,
                            prev_term,
                            entries,
                            commit,
                            overloaded,
                        }
                    }
                    other => other,
                }]
            }),
        }),
    );
    run_workload(&mut sim)?;
    Ok(sim)
}

#[test]
fn a_byzantine_leader_breaks_raft_but_not_pbft() {
    // Raft loses agreement (or, one block later, validity: the victim's chain no longer links).
    let failure = raft_with_equivocating_leader()
        .err()
        .expect("Raft cannot survive an equivocating leader");
    assert!(
        ["agreement", "validity"].contains(&failure.violation.kind),
        "{failure}"
    );
    println!("Raft, 3 nodes, one equivocating leader:\n{failure}");

    // PBFT under the same seed and workload, with an equivocating primary: nothing is lost.
    let options = PbftSimOptions {
        behaviours: [(0, ByzantineBehaviour::Equivocate)].into_iter().collect(),
        ..PbftSimOptions::default()
    };
    let mut sim = pbft_sim(SimConfig::new(SEED, 4), options);
    ok(run_workload(&mut sim));
    let height = sim.checker().decided_height();
    assert!(height >= 5, "PBFT kept committing: height {height}");
    assert!(honest_converged(&sim), "the honest replicas hold one chain");
    println!(
        "PBFT, 4 replicas, one equivocating primary: {height} blocks, the honest replicas agree"
    );
}
