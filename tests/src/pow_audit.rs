//! Auditing a live proof-of-work testnet. Miners keep extending the chain and two of them may
//! sit on equal-work tips (the first seen wins a tie), so a settled chain is made first: mining
//! stops everywhere, one node mines blocks on request until its branch is the heaviest and every
//! node reports its tip. After the generic audit (same blocks and
//! accounts, each chain replays) come the proof-of-work checks: every block meets the target its
//! bits declare and records its chain's cumulative work, and the supply is the genesis balances
//! plus one reward per block (fees only move coins).

use std::time::Duration;

use serde_json::{Value, json};
use synod_chain::hash::Hash;
use synod_chain::pow::work::work;
use synod_chain::target::Target;
use synod_consensus::pow::chainwork_from_proof;
use synod_genesis::{EngineConfig, Genesis, Home};

use crate::chain_audit::assert_databases_identical;
use crate::testnet::{Testnet, poll_until};

/// The proof-of-work parameters the testnet's genesis holds.
pub fn pow_params(net: &Testnet) -> synod_genesis::PowParams {
    let genesis = Genesis::load(&Home::new(net.home(0)).genesis_path()).expect("the genesis");
    match genesis.engine {
        EngineConfig::Pow(params) => params,
        other => panic!("not a proof-of-work testnet: {}", other.kind()),
    }
}

/// `get_mining_info` of node `i`.
pub fn mining_info(net: &Testnet, i: usize) -> Value {
    net.client(i)
        .call("get_mining_info", json!({}))
        .expect("get_mining_info")
}

/// Turns mining on or off on node `i`.
pub fn set_mining(net: &Testnet, i: usize, enabled: bool) {
    net.client(i)
        .call("set_mining", json!({ "enabled": enabled }))
        .expect("set_mining");
}

/// Node `i`'s tip, if it answers.
pub fn tip(net: &Testnet, i: usize) -> Option<Hash> {
    net.status(i)?["tip"].as_str()?.parse().ok()
}

/// Most blocks [`settle`] mines on the first node before it gives up on agreement.
const SETTLE_ROUNDS: usize = 5;

/// Stops mining on `nodes`, then has the first of them mine one block at a time until they all
/// report the same tip: the tip they agree on. One block is not always enough: another node may
/// commit a block it found just before its miner stopped, at the height the requested block
/// takes, and neither node leaves its first-seen twin of equal work; the next block makes the
/// first node's branch strictly heavier, and the others reorganise onto it.
pub fn settle(net: &Testnet, nodes: &[usize]) -> Hash {
    for &i in nodes {
        set_mining(net, i, false);
    }
    for _ in 0..SETTLE_ROUNDS {
        let mined = net
            .client(nodes[0])
            .with_timeout(Duration::from_secs(120))
            .call("mine", json!({ "blocks": 1 }))
            .expect("mine one block");
        let last: Hash = mined[0]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("mine answers block ids");
        if poll_until(Duration::from_secs(20), || {
            nodes.iter().all(|i| tip(net, *i) == Some(last))
        }) {
            return last;
        }
    }
    let tips: Vec<String> = nodes
        .iter()
        .map(|&i| {
            let status = net.status(i).unwrap_or(Value::Null);
            format!("node {i} at {} {}", status["height"], status["tip"])
        })
        .collect();
    panic!(
        "no single tip after {SETTLE_ROUNDS} blocks mined on node {}: {}",
        nodes[0],
        tips.join(", ")
    );
}

/// Settles the chain on every node, stops the testnet and checks every node's database: the
/// generic audit, then every block's work and recorded chainwork, and the supply.
pub fn assert_pow_databases_identical(net: &Testnet) {
    let nodes: Vec<usize> = (0..net.manifest.nodes.len()).collect();
    settle(net, &nodes);
    assert_databases_identical(net);
    let params = pow_params(net);
    let genesis = Genesis::load(&Home::new(net.home(0)).genesis_path()).expect("the genesis");
    let genesis_supply: u128 = genesis.accounts.iter().map(|a| a.balance as u128).sum();
    for i in nodes {
        let store = net.store(i);
        let tip = store.tip();
        let reader = store.reader().expect("a reader");
        let mut chainwork = work(params.initial_bits).expect("initial bits");
        for height in 1..=tip.height {
            let block = reader.block_at(height).expect("read").expect("a block");
            let bits = block.header.seal.bits;
            let target = Target::from_compact(bits).expect("bits decode");
            assert!(
                target.is_met_by(&block.hash()),
                "node {i}: block {height} lacks its work"
            );
            chainwork += work(bits).expect("bits decode");
            let proof = reader.proof(&block.hash()).expect("a proof");
            assert_eq!(
                chainwork_from_proof(&proof),
                Some(chainwork),
                "node {i}: block {height} records another chainwork"
            );
        }
        let supply: u128 = store
            .accounts()
            .expect("accounts")
            .iter()
            .map(|(_, a)| a.balance as u128)
            .sum();
        assert_eq!(
            supply,
            genesis_supply + tip.height as u128 * params.block_reward as u128,
            "node {i}: supply after {} blocks",
            tip.height
        );
    }
}
