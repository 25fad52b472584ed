//! Proof-of-work scenarios on the deterministic simulator. Every run is also held, after every
//! step, to the checker's probabilistic-finality invariants: each node's chain applies block by
//! block and its stored state equals the replay, supply is genesis + height × reward, no
//! transaction appears twice on a chain, no node rewinds below what it finalized, and honest
//! nodes agree on every final block. Each scenario ends with the honest nodes converged on one
//! tip holding every transaction an honest node accepted.

#![allow(clippy::unwrap_used)]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use synod_chain::hash::Hash;
use synod_consensus::engine::{EngineEvent, Message, NodeId};
use synod_consensus::pow::simulation::{
    EASY_BITS, Forgery, PowOptions, Withholder, forger, pow_factory, pow_scenario, pow_sim_config,
    run_until_converged_and_settled, sim_params,
};
use synod_consensus::pow::{PowEngine, PowMessage};
use synod_consensus::sim::Sim;
use synod_consensus::sim::scenario::Step;
use synod_genesis::{DifficultyAlgorithm, PowParams};
use synod_tests::raft_sim::ok;

/// Every reorganisation: (node, fork height, blocks removed, blocks added).
fn reorgs(sim: &Sim<PowEngine>) -> Vec<(usize, u64, u64, u64)> {
    sim.events()
        .iter()
        .filter_map(|(_, node, e)| match e {
            EngineEvent::Reorg {
                fork_height,
                removed,
                added,
                ..
            } => Some((*node, *fork_height, *removed, *added)),
            _ => None,
        })
        .collect()
}

/// Every rejection: (node, sender, reason).
fn rejections(sim: &Sim<PowEngine>) -> Vec<(usize, Option<NodeId>, String)> {
    sim.events()
        .iter()
        .filter_map(|(_, node, e)| match e {
            EngineEvent::BlockRejected { from, reason, .. } => Some((*node, *from, reason.clone())),
            _ => None,
        })
        .collect()
}

/// Ids of node `i`'s chain, by height.
fn chain_ids(sim: &Sim<PowEngine>, i: usize) -> Vec<Hash> {
    (1..=sim.height(i))
        .map(|h| sim.block(i, h).unwrap().hash())
        .collect()
}

/// The default network with these hash-power shares and reorganisation limit.
fn shares_and_depth(shares: Vec<f64>, max_reorg_depth: u64) -> PowOptions {
    PowOptions {
        shares: Some(shares),
        params: PowParams {
            max_reorg_depth,
            ..sim_params()
        },
        ..PowOptions::default()
    }
}

fn assert_same_state_everywhere(sim: &Sim<PowEngine>) {
    for i in 1..sim.len() {
        assert_eq!(sim.accounts(i), sim.accounts(0), "node {i}'s accounts");
        assert_eq!(sim.tip(i), sim.tip(0));
    }
}

#[test]
fn a_clean_network_mines_converges_and_commits_every_transaction() {
    let options = PowOptions::default();
    let mut sim = ok(pow_scenario("clean", 4, 1, &options)
        .load(40, 100, 5_000)
        .run(pow_factory(options.clone())));
    ok(sim.run_until(10_000));
    ok(run_until_converged_and_settled(&mut sim, 15_000));
    assert_same_state_everywhere(&sim);
    let height = sim.height(0);
    // About four blocks a second (forks cost a few).
    assert!((25..=60).contains(&height), "height {height}");
    assert!(sim.checker().committed_count() >= 190);
    // Blocks deeper than the reorganisation limit are final everywhere.
    assert!(sim.checker().final_height() >= height - 12 - 2);
    assert!(rejections(&sim).is_empty());
}

#[test]
fn after_a_partition_every_node_follows_the_heavier_side() {
    // {0, 1} hold three times the hash power of {2, 3}.
    let options = shares_and_depth(vec![3.0, 3.0, 1.0, 1.0], 100);
    let mut sim = ok(pow_scenario("partition", 4, 7, &options)
        .load(40, 100, 6_000)
        .at(1_000, Step::Partition(vec![vec![0, 1], vec![2, 3]]))
        .run(pow_factory(options.clone())));
    // Both sides mined on their own branch.
    let heavy = sim.engine(0).unwrap().tip_chainwork();
    let light = sim.engine(2).unwrap().tip_chainwork();
    assert!(heavy > light, "{heavy} vs {light}");
    let heavy_tip = sim.tip(0);
    let light_chain = chain_ids(&sim, 2);
    let fork = chain_ids(&sim, 0)
        .iter()
        .zip(&light_chain)
        .take_while(|(a, b)| a == b)
        .count();
    assert!(light_chain.len() > fork + 2, "the light side mined too");

    sim.network_mut().heal();
    ok(run_until_converged_and_settled(&mut sim, 20_000));
    assert_same_state_everywhere(&sim);
    // Every node holds the heavy side's tip of the partition on its chain...
    for i in 0..4 {
        assert_eq!(sim.block(i, heavy_tip.height).unwrap().header, heavy_tip);
    }
    // ... so the light side reorganised, back to the fork point.
    let light_reorgs: Vec<_> = reorgs(&sim)
        .into_iter()
        .filter(|(node, fork_height, _, _)| *node >= 2 && *fork_height == fork as u64)
        .collect();
    assert!(!light_reorgs.is_empty(), "{:?}", reorgs(&sim));
    // The heavy side never gave up a block of its partition-time branch.
    assert!(
        reorgs(&sim)
            .iter()
            .all(|(node, fork_height, ..)| *node >= 2 || *fork_height >= fork as u64),
        "{:?}",
        reorgs(&sim)
    );
}

#[test]
fn a_reorganisation_deeper_than_a_hundred_blocks() {
    // Node 0 mines alone with 40% of the hash power, the others together with 60%.
    let options = PowOptions {
        shares: Some(vec![4.0, 2.0, 2.0, 2.0]),
        params: PowParams {
            target_block_time_ms: 100,
            max_reorg_depth: 1_000,
            ..sim_params()
        },
        ..PowOptions::default()
    };
    let mut sim = ok(pow_scenario("deep reorg", 4, 3, &options)
        .load(20, 100, 30_000)
        .at(100, Step::Partition(vec![vec![0], vec![1, 2, 3]]))
        .at(35_000, Step::Heal)
        .run(pow_factory(options.clone())));
    ok(run_until_converged_and_settled(&mut sim, 60_000));
    assert_same_state_everywhere(&sim);
    let deepest = reorgs(&sim)
        .into_iter()
        .filter(|(node, ..)| *node == 0)
        .map(|(_, _, removed, _)| removed)
        .max()
        .unwrap();
    assert!(
        deepest > 100,
        "node 0's deepest reorganisation removed {deepest} blocks"
    );
}

#[test]
fn a_reorganisation_across_a_retarget_boundary() {
    // Bitcoin's rule with a 10-block window. The network finds blocks twice as fast as the
    // schedule at the initial bits. Split from height 1 or so, each branch retargets at height
    // 20 from its own window (10 to 19): the pair of nodes (two thirds of the hash power, faster
    // than the schedule) to harder bits, the lone node (slower than the schedule) to bits capped
    // at the limit. (The first window is slow on both: it includes the start-up second.)
    let options = PowOptions {
        params: PowParams {
            difficulty: DifficultyAlgorithm::Bitcoin,
            retarget_window: 10,
            max_reorg_depth: 100,
            ..sim_params()
        },
        mining_block_time_ms: Some(125),
        ..PowOptions::default()
    };
    let mut sim = ok(pow_scenario("retarget reorg", 3, 11, &options)
        .load(20, 100, 10_000)
        .at(300, Step::Partition(vec![vec![0], vec![1, 2]]))
        .run(pow_factory(options.clone())));
    assert!(sim.height(0) > 20 && sim.height(1) > 20);
    let lone = sim.block(0, 20).unwrap().header;
    let pair = sim.block(1, 20).unwrap().header;
    assert_eq!(lone.seal.bits, EASY_BITS);
    assert_ne!(pair.seal.bits, EASY_BITS);
    assert_eq!(sim.block(1, 19).unwrap().header.seal.bits, EASY_BITS);
    let old_tip = sim.height(0);

    sim.network_mut().heal();
    ok(run_until_converged_and_settled(&mut sim, 25_000));
    assert_same_state_everywhere(&sim);
    // The lone node left a branch past the boundary for one whose block 20 carries other bits,
    // which it could only accept by retargeting from that branch's own window.
    assert_eq!(sim.block(0, 20).unwrap().header, pair);
    let crossing = reorgs(&sim)
        .into_iter()
        .find(|(node, fork, removed, added)| {
            *node == 0 && *fork < 20 && fork + removed >= old_tip && fork + added > 20
        });
    assert!(crossing.is_some(), "{:?}", reorgs(&sim));
}

#[test]
fn a_selfish_miner_with_most_of_the_hash_power_rewrites_the_honest_chain() {
    // Node 0 holds 75% of the hash power and withholds its blocks for four seconds.
    let options = shares_and_depth(vec![9.0, 1.0, 1.0, 1.0], 100);
    let mut sim = ok(Sim::new(
        pow_sim_config(5, 4, &options),
        pow_factory(options.clone()),
    ));
    sim.set_adversary(0, Box::new(Withholder { release_at: 4_500 }));
    ok(sim.run_until(500));
    run_with_load(&mut sim, 40);
    let honest_before = chain_ids(&sim, 1);
    assert!(
        sim.height(0) > sim.height(1),
        "the selfish branch is longer"
    );
    ok(run_until_converged_and_settled(&mut sim, 20_000));
    // The honest nodes gave up their own blocks for the released branch.
    let deepest = reorgs(&sim)
        .into_iter()
        .filter(|(node, ..)| *node != 0)
        .map(|(_, _, removed, _)| removed)
        .max()
        .unwrap_or(0);
    assert!(deepest >= 1, "{:?}", reorgs(&sim));
    let after = chain_ids(&sim, 1);
    let kept = honest_before
        .iter()
        .zip(&after)
        .take_while(|(a, b)| a == b)
        .count();
    assert!(kept < honest_before.len());
    for i in 2..4 {
        assert_eq!(sim.tip(i), sim.tip(1));
    }
}

#[test]
fn a_selfish_miner_with_little_hash_power_loses_its_withheld_blocks() {
    let options = PowOptions {
        shares: Some(vec![1.0, 1.0, 1.0, 1.0]),
        ..PowOptions::default()
    };
    let mut sim = ok(Sim::new(
        pow_sim_config(6, 4, &options),
        pow_factory(options.clone()),
    ));
    sim.set_adversary(0, Box::new(Withholder { release_at: 4_500 }));
    run_with_load(&mut sim, 45);
    let selfish = sim.id(0);
    ok(run_until_converged_and_settled(&mut sim, 20_000));
    // The honest chain never gave way by more than a natural fork.
    let honest_depth = reorgs(&sim)
        .into_iter()
        .filter(|(node, ..)| *node != 0)
        .map(|(_, _, removed, _)| removed)
        .max()
        .unwrap_or(0);
    assert!(honest_depth <= 1, "{:?}", reorgs(&sim));
    // The selfish node mined while withholding, and ended on the honest chain, where little of
    // what it mined in private survived.
    assert!(reorgs(&sim).iter().any(|(node, ..)| *node == 0));
    let tip = sim.height(1);
    let its_blocks = (1..=tip)
        .filter(|h| sim.block(1, *h).unwrap().header.proposer == selfish)
        .count();
    assert!(its_blocks as u64 * 4 < tip, "{its_blocks} of {tip}");
}

/// Submits a transaction and runs 100 ms, `ticks` times.
fn run_with_load(sim: &mut Sim<PowEngine>, ticks: usize) {
    for _ in 0..ticks {
        sim.submit(1);
        let t = sim.now();
        ok(sim.run_until(t + 100));
    }
}

/// Node 0 of a 4-node network pushes blocks forged with `forgeries` instead of announcing its
/// own, for `ticks` ticks of load; then the network runs until it converged. Returns the
/// simulation, the honest nodes' reasons for rejecting blocks from node 0, and the forged ids.
fn with_forger(
    seed: u64,
    options: &PowOptions,
    forgeries: Vec<Forgery>,
    ticks: usize,
) -> (Sim<PowEngine>, Vec<String>, Vec<Hash>) {
    let forged = Arc::new(Mutex::new(Vec::new()));
    let mut sim = ok(Sim::new(
        pow_sim_config(seed, 4, options),
        pow_factory(options.clone()),
    ));
    sim.set_adversary(0, Box::new(forger(forgeries, forged.clone())));
    run_with_load(&mut sim, ticks);
    ok(run_until_converged_and_settled(&mut sim, 20_000));
    let forger_id = sim.id(0);
    let reasons = rejections(&sim)
        .into_iter()
        .filter(|(node, from, _)| *node != 0 && *from == Some(forger_id))
        .map(|(_, _, reason)| reason)
        .collect();
    let forged = forged.lock().unwrap().clone();
    assert!(!forged.is_empty());
    // No forged block is on any honest chain.
    for i in 1..4 {
        assert!(chain_ids(&sim, i).iter().all(|h| !forged.contains(h)));
    }
    (sim, reasons, forged)
}

#[test]
fn a_miner_with_bad_timestamps_or_bad_bits_is_rejected_with_the_reason() {
    let (_, reasons, _) = with_forger(
        8,
        &PowOptions::default(),
        vec![Forgery::StaleTimestamp, Forgery::WrongBits],
        50,
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("not after the median time past")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("the difficulty schedule requires 207fffff")),
        "{reasons:?}"
    );
}

#[test]
fn invalid_blocks_are_rejected_with_the_reason() {
    // Node 0 mines alone (the others follow), pushing forged siblings of its blocks: one with a
    // forged transaction signature, one with a wrong state root. The followers reject each and
    // still take its real blocks through sync.
    let options = PowOptions {
        followers: vec![1, 2, 3],
        ..PowOptions::default()
    };
    let (sim, reasons, _) = with_forger(
        9,
        &options,
        vec![Forgery::BadSignature, Forgery::BadStateRoot],
        80,
    );
    assert!(
        reasons.iter().any(|r| r.contains("bad signature")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("state root")),
        "{reasons:?}"
    );
    for i in 1..4 {
        assert!(sim.height(i) >= 15);
        assert_eq!(sim.tip(i), sim.tip(0));
    }
}

/// Counts the messages of each kind delivered to node `to`, and the headers they carried.
type Tally = Rc<RefCell<BTreeMap<&'static str, (usize, usize)>>>;

fn tally_to(sim: &mut Sim<PowEngine>, to: usize) -> Tally {
    let tally: Tally = Rc::new(RefCell::new(BTreeMap::new()));
    let record = tally.clone();
    sim.set_interceptor(Some(Box::new(move |_, _, recipient, msg: PowMessage| {
        if recipient == to {
            let items = match &msg {
                PowMessage::Headers { headers, .. } => headers.len(),
                PowMessage::Blocks { blocks } => blocks.len(),
                _ => 1,
            };
            let mut record = record.borrow_mut();
            let entry = record.entry(msg.kind()).or_default();
            entry.0 += 1;
            entry.1 += items;
        }
        Some(msg)
    })));
    tally
}

/// Node 3 of a 4-node network goes down at 0.5 s while the others mine and take a transaction
/// every 100 ms for `ticks` ticks; then it restarts and the network runs until it converged with
/// every transaction settled. Returns the simulation, how many blocks node 3 was behind, and the
/// messages delivered to it after its restart.
fn down_then_back(seed: u64, options: &PowOptions, ticks: usize) -> (Sim<PowEngine>, u64, Tally) {
    let mut sim = ok(Sim::new(
        pow_sim_config(seed, 4, options),
        pow_factory(options.clone()),
    ));
    ok(sim.run_until(500));
    sim.crash(3);
    run_with_load(&mut sim, ticks);
    let behind = sim.height(0) - sim.height(3);
    let tally = tally_to(&mut sim, 3);
    sim.restart(3).unwrap();
    ok(run_until_converged_and_settled(&mut sim, 40_000));
    assert_same_state_everywhere(&sim);
    (sim, behind, tally)
}

#[test]
fn a_node_down_for_long_catches_up_headers_first() {
    let options = PowOptions {
        params: PowParams {
            max_reorg_depth: 200,
            ..sim_params()
        },
        ..PowOptions::default()
    };
    let (_, behind, tally) = down_then_back(12, &options, 150);
    assert!(behind >= 40, "only {behind} blocks behind");
    let tally = tally.borrow();
    // The missing headers came in sync answers, and the bodies were fetched for them.
    let (_, headers) = tally.get("headers").copied().unwrap_or_default();
    let (_, blocks) = tally.get("blocks").copied().unwrap_or_default();
    assert!(headers as u64 >= behind, "{tally:?}");
    assert!(blocks as u64 >= behind, "{tally:?}");
}

#[test]
fn a_node_behind_its_peers_window_catches_up_from_their_stores() {
    // With a reorganisation limit of 12, peers serve headers only from their last 12 blocks: a
    // node further behind is told their height and fetches the range from a peer's store.
    let (_, behind, tally) = down_then_back(13, &PowOptions::default(), 100);
    assert!(behind >= 30, "only {behind} blocks behind");
    let tally = tally.borrow();
    let (_, blocks) = tally.get("blocks").copied().unwrap_or_default();
    assert!(
        (blocks as u64) < behind / 2,
        "most blocks came from the store: {tally:?}"
    );
}
