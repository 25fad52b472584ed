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
