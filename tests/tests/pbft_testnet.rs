//! PBFT testnets of real `synod node` processes on 127.0.0.1 (OS-chosen ports): four replicas
//! commit transactions and end with identical chains whose commit certificates verify; a
//! SIGKILLed primary under load is replaced by a view change, loses nothing that was
//! acknowledged, and catches up when it restarts; an equivocating or a silent primary cannot stop
//! the honest replicas from agreeing and committing; an observer follows by checking certificates.

#![allow(clippy::unwrap_used)]

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use synod_chain::hash::Hash;
use synod_node::rpc::client::RpcClient;
use synod_tests::Background;
use synod_tests::chain_audit::{
    account_keys, assert_databases_identical, assert_databases_identical_among,
    assert_proofs_verify, chain_id, commit_on_every_node, is_committed, submit, transfers,
    wait_committed_on, wait_converged,
};
use synod_tests::testnet::{
    Testnet, observer_home, one_testnet_at_a_time, start_node, synod, synod_ok, wait_for,
};

const N: usize = 4;

/// The view a node reports (its `round`), if it answers.
fn view(net: &Testnet, i: usize) -> Option<u64> {
    net.status(i).and_then(|s| s["round"].as_u64())
}

#[test]
fn four_replicas_commit_everywhere_with_verifiable_certificates() {
    let _serial = one_testnet_at_a_time();
    let net = Testnet::init("pbft", N, N, &[]);
    net.up();
    // Each replica receives transfers from its own account: backups' ones reach the primary.
    commit_on_every_node(&net);
    // That audit read the stopped databases; the checks below ask the running nodes.
    net.up();
    let dir = net.dir.to_string_lossy().to_string();
    let height = net.height(1).to_string();
    // `get_block` says the certificate checks; `synod block verify` checks it itself, from the
    // testnet's genesis; against another genesis (other validator keys) the same block fails.
    let block = net
        .client(2)
        .call(
            "get_block",
            json!({ "height": net.height(2), "txs": "none" }),
        )
        .unwrap();
    assert_eq!(block["finality"]["verified"], true, "{block}");
    let out = synod_ok(&["block", "verify", &height, "--dir", &dir, "--node", "node1"]);
    assert!(out.contains("finality proof checks"), "{out}");
    let strangers = tempfile::tempdir().unwrap();
    let strangers_dir = strangers.path().join("net").to_string_lossy().to_string();
    synod_ok(&[
        "testnet",
        "init",
        "--engine",
        "pbft",
        "--validators",
        "4",
        "--random-keys",
        "--dir",
        &strangers_dir,
    ]);
    let other_genesis = format!("{strangers_dir}/genesis.json");
    let refused = synod(&[
        "block",
        "verify",
        &height,
        "--dir",
        &dir,
        "--genesis",
        &other_genesis,
    ]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stdout);
    assert!(said.contains("FAILED"), "{said}");
    assert_proofs_verify(&net, &(0..N).collect::<Vec<_>>());
    // Offline, on a stopped replica's home.
    let home = net.home(3).to_string_lossy().to_string();
    let out = synod_ok(&["inspect", "--home", &home, "verify", &height]);
    assert!(out.contains("finality proof checks"), "{out}");
}

/// SIGKILL the primary under load: the backups move to a new view and commit again, the killed
/// replica restarts and catches up, and every transaction acknowledged as committed before the
/// kill (and every one submitted at all) is in every chain.
#[test]
fn primary_sigkill_under_load_changes_view_and_loses_nothing() {
    let _serial = one_testnet_at_a_time();
    let net = Arc::new(Testnet::init("pbft", N, 2, &[]));
    net.up();
    let keys = account_keys(&net);
    let chain = chain_id(&net);
    let sent: Arc<Mutex<Vec<Hash>>> = Arc::default();
    let load = {
        let (net, sent) = (net.clone(), sent.clone());
        Background::spawn(move |stop| {
            let mut nonce = 0;
            let mut target = 0;
            while !stop.load(Ordering::Relaxed) {
                let txs = transfers(&chain, &keys[0], &keys[1], nonce, 10);
                // A batch whose node is down goes to the next one: no nonce gaps.
                loop {
                    target = (target + 1) % N;
                    if let Ok(ids) = submit(&mut net.client(target), &txs) {
                        sent.lock().unwrap().extend(ids);
                        break;
                    }
                    assert!(!stop.load(Ordering::Relaxed));
                }
                nonce += 10;
                std::thread::sleep(Duration::from_millis(30));
            }
        })
    };
    let primary = {
        let mut found = None;
        wait_for(Duration::from_secs(30), "a primary with commits", || {
            found = net.leader();
            found.is_some_and(|p| net.height(p) >= 5)
        });
        found.unwrap()
    };
    let first_view = view(&net, primary).unwrap();
    let acknowledged: Vec<Hash> = {
        let mut client = net.client(primary);
        let ids = sent.lock().unwrap().clone();
        ids.into_iter()
            .filter(|id| is_committed(&mut client, id))
            .collect()
    };
    assert!(
        acknowledged.len() >= 10,
        "only {} acknowledged",
        acknowledged.len()
    );
    let before = net.height(primary);
    net.kill(primary);
    let killed_at = Instant::now();
    let backups: Vec<usize> = (0..N).filter(|i| *i != primary).collect();
    wait_for(
        Duration::from_secs(30),
        "a new primary in a later view commits",
        || {
            net.leader()
                .is_some_and(|l| l != primary && view(&net, l).is_some_and(|v| v > first_view))
                && backups.iter().any(|i| net.height(*i) > before)
        },
    );
    println!(
        "a new primary committing {:?} after the kill",
        killed_at.elapsed()
    );
    // Keep the load on the new view for a moment, then stop it and bring the old primary back.
    let after_view_change = net.height(backups[0]);
    wait_for(Duration::from_secs(20), "commits in the new view", || {
        net.height(backups[0]) >= after_view_change + 3
    });
    load.finish();
    net.start(primary);
    let all: Vec<Hash> = sent.lock().unwrap().clone();
    wait_committed_on(&net, 0..N, &acknowledged, Duration::from_secs(30));
    wait_committed_on(&net, [backups[0]], &all, Duration::from_secs(30));
    wait_converged(&net, before + 1, Duration::from_secs(30));
    assert_databases_identical(&net);
    assert_proofs_verify(&net, &(0..N).collect::<Vec<_>>());
}

/// Sends each of the `honest` replicas ten transfers, waits (up to `timeout`) until every
/// honest replica committed all of them, then until they stand at one height.
fn honest_replicas_commit_transfers(net: &Testnet, honest: &[usize], timeout: Duration) {
    let keys = account_keys(net);
    let chain = chain_id(net);
    let mut ids = Vec::new();
    for (batch, &i) in honest.iter().enumerate() {
        let txs = transfers(&chain, &keys[0], &keys[1], 10 * batch as u64, 10);
        ids.extend(submit(&mut net.client(i), &txs).unwrap());
    }
    wait_committed_on(net, honest.iter().copied(), &ids, timeout);
    let top = honest.iter().map(|i| net.height(*i)).max().unwrap();
    wait_for(timeout, "the honest replicas at one height", || {
        honest.iter().all(|i| net.height(*i) == top)
    });
}

/// Starts replica 0 — the primary of view 0 — with `behaviour` and the others honest, sends the
/// honest replicas transfers, and checks that each of them commits all of them and that their
/// chains are identical, with certificates that verify. Returns the view the honest replicas
/// ended in.
fn honest_replicas_prevail_over_a_byzantine_primary(behaviour: &str) -> u64 {
    let net = Testnet::init("pbft", N, 2, &[]);
    let byzantine = 0;
    let honest: Vec<usize> = (1..N).collect();
    net.start_byzantine(byzantine, behaviour);
    for &i in &honest {
        net.start(i);
    }
    wait_for(
        Duration::from_secs(30),
        "every replica connected to the others",
        || {
            (0..N).all(|i| {
                net.status(i)
                    .and_then(|s| s["peers"].as_u64())
                    .is_some_and(|p| p as usize + 1 >= N)
            })
        },
    );
    honest_replicas_commit_transfers(&net, &honest, Duration::from_secs(40));
    let ended_in = honest.iter().filter_map(|i| view(&net, *i)).min().unwrap();
    assert!(
        net.log(byzantine)
            .contains("deliberate Byzantine behaviour"),
        "the Byzantine replica ran honest:\n{}",
        net.log(byzantine)
    );
    assert_databases_identical_among(&net, &honest);
    assert_proofs_verify(&net, &honest);
    ended_in
}

/// The primary of view 0 equivocates: two blocks per sequence number, each to half of the
/// backups. With n = 4 the larger half (two backups) and the primary can still certify one of
/// them, which the third backup then fetches by state transfer; either way the honest replicas
/// agree on every block and commit every transaction.
#[test]
fn equivocating_primary_cannot_split_the_honest_replicas() {
    let _serial = one_testnet_at_a_time();
    honest_replicas_prevail_over_a_byzantine_primary("equivocate");
}

/// The primary of view 0 is silent: the backups suspect it, change view, and commit under the
/// next primary.
#[test]
fn silent_primary_is_replaced_by_a_view_change() {
    let _serial = one_testnet_at_a_time();
    let view = honest_replicas_prevail_over_a_byzantine_primary("silent");
    assert!(view >= 1, "the honest replicas stayed in view {view}");
}

/// A node outside the validator set follows the PBFT chain: it accepts a block only once the
/// block's commit certificate checks against the genesis validators.
#[test]
fn observer_follows_by_checking_commit_certificates() {
    let _serial = one_testnet_at_a_time();
    let net = Testnet::init("pbft", N, 1, &[]);
    net.up();
    let peers = net
        .manifest
        .nodes
        .iter()
        .map(|n| n.listen.clone())
        .collect();
    let (home, rpc) = observer_home(&net, "observer", peers);
    let _observer = start_node(&home);
    let keys = account_keys(&net);
    let ids = submit(
        &mut net.client(1),
        &transfers(&chain_id(&net), &keys[0], &keys[0], 0, 20),
    )
    .unwrap();
    let mut observer = RpcClient::new(&rpc).with_timeout(Duration::from_secs(5));
    wait_for(
        Duration::from_secs(40),
        "the observer has every transaction",
        || ids.iter().all(|id| is_committed(&mut observer, id)),
    );
    let status = observer.call("status", json!({})).unwrap();
    assert_eq!(status["role"], "observer");
    let height = status["height"].as_u64().unwrap();
    let theirs = net
        .client(0)
        .call("get_block", json!({ "height": height, "txs": "none" }))
        .unwrap();
    let ours = observer
        .call("get_block", json!({ "height": height, "txs": "none" }))
        .unwrap();
    assert_eq!(ours["hash"], theirs["hash"]);
    assert_eq!(ours["final"], true);
}

/// Seven replicas tolerate f = 2 Byzantine ones: `testnet up --byzantine` starts a silent
/// backup, then `testnet byzantine` turns the primary of view 0 into an equivocator. The five
/// honest replicas (exactly a quorum of 2f+1) replace the primary, commit every transfer sent to
/// them, and hold identical chains with certificates that verify.
#[test]
fn seven_replicas_with_two_byzantine_keep_committing() {
    let _serial = one_testnet_at_a_time();
    const SEVEN: usize = 7;
    let net = Testnet::init("pbft", SEVEN, 2, &[]);
    let dir = net.dir.to_string_lossy().to_string();
    let out = synod_ok(&[
        "testnet",
        "up",
        "--dir",
        &dir,
        "--timeout",
        "120",
        "--byzantine",
        "node6=silent",
    ]);
    assert!(
        out.contains("started node6 with --byzantine silent"),
        "{out}"
    );
    synod_ok(&["testnet", "byzantine", "node0", "equivocate", "--dir", &dir]);
    let honest: Vec<usize> = (1..6).collect();
    honest_replicas_commit_transfers(&net, &honest, Duration::from_secs(90));
    assert!(
        honest.iter().filter_map(|i| view(&net, *i)).min().unwrap() >= 1,
        "the equivocating primary of view 0 was replaced"
    );
    for byzantine in [0, 6] {
        assert!(
            net.log(byzantine)
                .contains("deliberate Byzantine behaviour"),
            "node{byzantine} ran honest"
        );
    }
    assert_databases_identical_among(&net, &honest);
    assert_proofs_verify(&net, &honest);
}
