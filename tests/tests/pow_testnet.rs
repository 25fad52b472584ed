//! Proof-of-work testnets of real `synod node` processes on 127.0.0.1 (OS-chosen ports): four
//! miners commit transactions and converge, every database replays with the right supply, a
//! SIGKILLed miner restarts and catches up, two halves that mined apart converge on the heavier
//! chain with a reorganisation, `synod mine` mines to a chosen key, a node that does not mine
//! follows, and a stranger that sends a block without its work is banned.
//!
//! The tests share the machine's two cores with their miners, so they run one at a time, at an
//! easy difficulty with half-second blocks (ASERT follows the hash power they really get).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use synod_chain::block::{HEADER_VERSION, Seal};
use synod_chain::hash::Hash;
use synod_chain::keys::SecretKey;
use synod_chain::merkle::merkle_root;
use synod_chain::target::Target;
use synod_chain::{Block, BlockHeader};
use synod_consensus::pow::PowMessage;
use synod_genesis::{Genesis, Home};
use synod_tests::chain_audit::{
    account_keys, chain_id, is_committed, submit, transfers, wait_committed_on,
};
use synod_tests::outsider;
use synod_tests::pow_audit::{
    assert_pow_databases_identical, mining_info, set_mining, settle, tip,
};
use synod_tests::testnet::{
    Testnet, observer_home, one_testnet_at_a_time, start_node, synod_ok, tail, wait_for,
};

/// Half-second blocks at about 2 M hashes each to start with, a short ASERT half-life so the
/// difficulty finds the testnet's hash rate quickly, and a shorter future bound to go with it.
const EASY: &[&str] = &[
    "--target-block-time",
    "500",
    "--initial-bits",
    "1e1fffff",
    "--param",
    "asert_half_life_ms=10000",
    "--param",
    "max_future_block_time_ms=5000",
];

fn pow_testnet(nodes: usize, accounts: usize) -> Testnet {
    Testnet::init("pow", nodes, accounts, EASY)
}

fn height_of(net: &Testnet, i: usize) -> u64 {
    net.height(i)
}

/// Waits until node `i` has mined on to at least `height`.
fn wait_height(net: &Testnet, i: usize, height: u64) {
    wait_for(Duration::from_secs(60), "the chain grows", || {
        height_of(net, i) >= height
    });
}

fn block(net: &Testnet, i: usize, params: Value) -> Value {
    net.client(i).call("get_block", params).unwrap()
}

#[test]
fn four_miners_commit_transactions_converge_and_replay() {
    let _serial = one_testnet_at_a_time();
    let net = pow_testnet(4, 4);
    net.up();
    let keys = account_keys(&net);
    let chain = chain_id(&net);
    let mut ids = Vec::new();
    for i in 0..4 {
        let txs = transfers(&chain, &keys[i], &keys[(i + 1) % 4], 0, 20);
        ids.extend(submit(&mut net.client(i), &txs).unwrap());
    }
    // A node that does not mine follows: it runs the engine, takes blocks from anyone, and
    // serves them (a proof-of-work network is open, so its fresh key needs no admission).
    let peers = vec![net.manifest.nodes[0].listen.clone()];
    let (follower_home, follower_rpc) = observer_home(&net, "follower", peers);
    let _follower = start_node(&follower_home);
    wait_committed_on(&net, 0..4, &ids, Duration::from_secs(60));
    let mut follower = synod_node::rpc::client::RpcClient::new(&follower_rpc);
    wait_for(
        Duration::from_secs(60),
        "the follower commits them too",
        || ids.iter().all(|id| is_committed(&mut follower, id)),
    );
    let status = follower.call("status", json!({})).unwrap();
    assert_eq!(status["role"], "follower");
    assert_eq!(status["mining"], false);

    // Every miner mined; proof-of-work blocks show their work and depth.
    for i in 0..4 {
        let info = mining_info(&net, i);
        assert!(info["hashes"].as_u64().unwrap() > 0, "node {i}: {info}");
        assert_eq!(info["mining"], true);
        assert_eq!(info["threads"], 1);
    }
    let b = block(&net, 0, json!({ "height": 1, "txs": "none" }));
    assert!(b["confirmations"].as_u64().unwrap() >= 1, "{b}");
    assert_eq!(b["bits"].as_str().unwrap().len(), 8);
    assert_eq!(b["chainwork"].as_str().unwrap().len(), 64);
    assert_pow_databases_identical(&net);
}

#[test]
fn a_sigkilled_miner_restarts_and_catches_up() {
    let _serial = one_testnet_at_a_time();
    let net = Arc::new(pow_testnet(4, 1));
    net.up();
    wait_height(&net, 0, 3);
    net.kill(1);
    let at_kill = height_of(&net, 0);
    // The others carry on without it.
    wait_height(&net, 0, at_kill + 5);
    net.start(1);
    wait_for(
        Duration::from_secs(60),
        "the restarted miner catches up",
        || {
            height_of(&net, 1) >= height_of(&net, 0).saturating_sub(1)
                && height_of(&net, 1) > at_kill + 5
        },
    );
    // It mines again after the restart.
    let found = mining_info(&net, 1)["hashes"].as_u64().unwrap();
    wait_for(
        Duration::from_secs(30),
        "the restarted miner hashes",
        || mining_info(&net, 1)["hashes"].as_u64().unwrap() > found,
    );
    assert_pow_databases_identical(&net);
}

#[test]
fn separated_halves_converge_on_the_heavier_chain_with_a_reorg() {
    let _serial = one_testnet_at_a_time();
    let net = pow_testnet(4, 1);
    net.up();
    wait_height(&net, 0, 3);
    // Half B (nodes 2 and 3) goes down; half A mines on alone.
    net.kill(2);
    net.kill(3);
    let fork = height_of(&net, 0);
    wait_height(&net, 0, fork + 3);
    // Mining stops (blocks mined on request break any tie between the two).
    let tip_a = settle(&net, &[0, 1]);
    let work_a = mining_info(&net, 0)["chainwork"]
        .as_str()
        .unwrap()
        .to_string();
    net.kill(0);
    net.kill(1);
    // Half B restarts with A down and mines its own branch until it has more work.
    net.start(2);
    net.start(3);
    // A node that is still opening its RPC port after the restart is asked again.
    wait_for(Duration::from_secs(90), "half B outworks half A", || {
        net.client(2)
            .call("get_mining_info", json!({}))
            .ok()
            .and_then(|info| info["chainwork"].as_str().map(|w| w > work_a.as_str()))
            .unwrap_or(false)
    });
    let tip_b = settle(&net, &[2, 3]);
    let work_b = mining_info(&net, 2)["chainwork"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(work_b > work_a, "{work_b} <= {work_a}");
    // Half A comes back without mining (so the two branches stay as measured) and meets B.
    for i in [0, 1] {
        let home = Home::new(net.home(i));
        let mut config = home.load_config().unwrap();
        config.mining.threads = 0;
        home.save_config(&config).unwrap();
        net.start(i);
    }
    wait_for(Duration::from_secs(60), "every node on B's tip", || {
        (0..4).all(|i| tip(&net, i) == Some(tip_b))
    });
    for i in 0..4 {
        // Half A keeps its abandoned branch off the chain; half B never fetched it.
        match net
            .client(i)
            .call("get_block", json!({ "hash": tip_a, "txs": "none" }))
        {
            Ok(a) => assert_eq!(a["confirmations"], -1, "node {i}: A's tip is off the chain"),
            Err(e) => assert!(i >= 2, "node {i} lost A's tip: {e}"),
        }
        let b = block(&net, i, json!({ "hash": tip_b, "txs": "none" }));
        assert_eq!(b["confirmations"], 1, "node {i}: B's tip is the tip");
    }
    for i in [0, 1] {
        let log = net.log(i);
        assert!(
            log.contains("reorganised onto a heavier branch"),
            "node {i} did not reorganise:\n{}",
            tail(&log, 30)
        );
    }
    assert_pow_databases_identical(&net);
}

#[test]
fn mine_on_request_pays_the_given_key_and_puts_the_settings_back() {
    let _serial = one_testnet_at_a_time();
    let net = pow_testnet(1, 1);
    net.up();
    set_mining(&net, 0, false);
    let payee = SecretKey::generate();
    let key_file = net.dir.join("payee.key");
    synod_chain::keyfile::write_key_file(&key_file, &payee).unwrap();
    let dir = net.dir.to_string_lossy().to_string();
    let out = synod_ok(&[
        "mine",
        "--dir",
        &dir,
        "--blocks",
        "3",
        "--to",
        &key_file.to_string_lossy(),
        "--threads",
        "2",
    ]);
    let ids: Vec<Hash> = out.lines().filter_map(|l| l.parse().ok()).collect();
    assert_eq!(ids.len(), 3, "{out}");
    for id in &ids {
        let b = block(&net, 0, json!({ "hash": id, "txs": "none" }));
        assert_eq!(b["proposer"], payee.public().to_string(), "{b}");
        assert!(b["confirmations"].as_i64().unwrap() >= 1);
    }
    let account = net
        .client(0)
        .call("get_account", json!({ "address": payee.address() }))
        .unwrap();
    assert_eq!(account["balance"], 150);
    let info = mining_info(&net, 0);
    assert_eq!(info["mining"], false, "the settings are back: {info}");
    assert_eq!(info["mine_request"], Value::Null);
    // Set on and off by RPC; a non-key payout is refused with the reason.
    let refused = net.client(0).call(
        "set_mining",
        json!({ "enabled": true, "to": payee.address() }),
    );
    assert!(refused.is_err());
    let on = net
        .client(0)
        .call("set_mining", json!({ "enabled": true, "threads": 1 }))
        .unwrap();
    assert_eq!(on["enabled"], true);
    let height = height_of(&net, 0);
    wait_height(&net, 0, height + 2);
    // The benchmark needs no node.
    let bench = synod_ok(&["mine", "--bench", "--seconds", "1", "--threads", "1"]);
    assert!(bench.contains("portable"), "{bench}");
    settle(&net, &[0]);
}

/// A stranger (a key no genesis names) may speak on an open network, and its messages reach the
/// engine; one that sends a block without its work is banned.
#[test]
fn a_stranger_that_sends_a_block_without_its_work_is_banned() {
    let _serial = one_testnet_at_a_time();
    let net = pow_testnet(1, 1);
    net.up();
    wait_height(&net, 0, 2);
    let genesis = Genesis::load(&Home::new(net.home(0)).genesis_path()).unwrap();
    let node_key = synod_chain::keyfile::read_key_file(&Home::new(net.home(0)).key_path())
        .unwrap()
        .public();
    let stranger = SecretKey::generate();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (handle, peer) = outsider::connect(
        &runtime,
        &stranger,
        &net.manifest.nodes[0].listen,
        &node_key,
        true,
    );
    let mut client = net.client(0);
    let chain = genesis.hash();
    wait_for(Duration::from_secs(30), "the stranger is banned", || {
        // A block on the node's tip with the bits it requires and a nonce that misses them.
        let info = mining_info(&net, 0);
        let bits = u32::from_str_radix(info["bits"].as_str().unwrap(), 16).unwrap();
        let mut header = BlockHeader {
            version: HEADER_VERSION,
            parent: info["tip"].as_str().unwrap().parse().unwrap(),
            height: info["height"].as_u64().unwrap() + 1,
            timestamp_ms: synod_node::clock::now_ms(),
            tx_root: merkle_root(&[]),
            state_root: Hash::ZERO,
            proposer: stranger.public(),
            seal: Seal {
                round: 0,
                bits,
                nonce: 0,
            },
        };
        let target = Target::from_compact(bits).unwrap();
        while target.is_met_by(&header.hash()) {
            header.seal.nonce += 1;
        }
        let message = PowMessage::Blocks {
            blocks: vec![Block {
                header,
                txs: Vec::new(),
            }],
        };
        handle.send(synod_node::net::NetCommand::Consensus {
            to: peer,
            bytes: synod_node::envelope::seal(
                &stranger,
                &chain,
                &node_key,
                &synod_chain::codec::encode(&message),
            ),
        });
        std::thread::sleep(Duration::from_millis(200));
        client
            .metrics()
            .unwrap_or_default()
            .contains("synod_peers_banned_total 1")
    });
    let metrics = client.metrics().unwrap();
    assert!(
        metrics.contains("synod_messages_received_total{kind=\"blocks\"}"),
        "the stranger's message reached the engine"
    );
    assert!(net.log(0).contains("banning a peer"));
    // The node mines on.
    let height = height_of(&net, 0);
    wait_height(&net, 0, height + 2);
}
