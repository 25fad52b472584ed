use synod_genesis::RaftParams;

use super::*;
use crate::sim::scenario::{Scenario, Step, Target};
use crate::sim::{EngineFactory, Sim, SimConfig};

pub(crate) fn factory(params: RaftParams) -> EngineFactory<RaftEngine> {
    Box::new(move |setup, restored| {
        RaftEngine::new(
            RaftConfig::new(
                setup.key.clone(),
                setup.validators.clone(),
                params.clone(),
                setup.seed,
            ),
            setup.ledger.clone(),
            restored,
        )
        .map_err(|e| e.to_string())
    })
}

#[test]
fn three_nodes_elect_a_leader_and_commit_transactions() {
    let sim = Scenario::new("basic", 3, 7)
        .load(500, 500, 2_000)
        .expect_height(2, 2_500)
        .expect_converged(3_000)
        .run(factory(RaftParams::default()))
        .unwrap_or_else(|f| panic!("{f}"));
    let leader = sim.leader().expect("a leader");
    let status = sim.status(leader).unwrap();
    assert_eq!(status.role, Role::Leader);
    let txs: usize = (1..=sim.height(0))
        .filter_map(|h| sim.block(0, h))
        .map(|b| b.txs.len())
        .sum();
    assert!(txs > 500, "only {txs} transactions committed");
}

#[test]
fn single_node_commits_alone() {
    let mut sim = Sim::new(SimConfig::new(1, 1), factory(RaftParams::default())).unwrap();
    sim.run_until(1_000).unwrap();
    sim.submit(10);
    sim.run_until(2_000).unwrap();
    assert_eq!(sim.leader(), Some(0));
    assert!(sim.height(0) >= 2);
}

#[test]
fn leader_crash_elects_a_new_leader() {
    Scenario::new("leader crash", 5, 11)
        .load(300, 500, 4_000)
        .at(1_500, Step::Crash(Target::Leader))
        .expect_progress(2_500, 2, 4_000)
        .at(4_500, Step::RestartAll)
        .expect_converged(6_000)
        .run(factory(RaftParams::default()))
        .unwrap_or_else(|f| panic!("{f}"));
}

/// A leader whose pool passes its high-water mark says so in its appends, and every follower
/// reports it too (their nodes then answer clients "busy"); all of it clears once the pool has
/// drained to the low-water mark.
#[test]
fn a_leaders_backpressure_reaches_its_followers_and_clears_as_it_drains() {
    let params = RaftParams {
        max_block_txs: 10,
        ..RaftParams::default()
    };
    let factory: EngineFactory<RaftEngine> = Box::new(move |setup, restored| {
        let mut config = RaftConfig::new(
            setup.key.clone(),
            setup.validators.clone(),
            params.clone(),
            setup.seed,
        );
        // Marks at 100 and 50 pending.
        config.pool_capacity = 500;
        RaftEngine::new(config, setup.ledger.clone(), restored).map_err(|e| e.to_string())
    });
    let mut sim = Sim::new(SimConfig::new(21, 3), factory).unwrap();
    sim.run_until_true(3_000, "a leader", |s| s.leader().is_some())
        .unwrap_or_else(|f| panic!("{f}"));
    let overloaded = |s: &Sim<RaftEngine>, i: usize| s.status(i).is_some_and(|st| st.overloaded);
    assert!((0..3).all(|i| !overloaded(&sim, i)), "idle nodes push back");

    sim.submit(400);
    sim.run_until_true(sim.now() + 2_000, "every node pushes back", |s| {
        (0..3).all(|i| overloaded(s, i))
    })
    .unwrap_or_else(|f| panic!("{f}"));
    let leader = sim.leader().expect("a leader");
    assert!(sim.status(leader).unwrap().pending_txs >= 50);

    sim.run_until_settled(sim.now() + 60_000)
        .unwrap_or_else(|f| panic!("{f}"));
    sim.run_until_true(sim.now() + 2_000, "the pushback clears", |s| {
        (0..3).all(|i| !overloaded(s, i))
    })
    .unwrap_or_else(|f| panic!("{f}"));
}
