//! Helpers for testnet tests that sign, submit and audit: the testnet's account keys, signed
//! transfers, submission and commit checks over JSON-RPC, convergence, and the audit of every
//! node's database once the nodes are stopped (same blocks, same accounts, each chain replays).

use std::time::Duration;

use serde_json::json;
use synod_chain::hash::Hash;
use synod_chain::keyfile::read_key_file;
use synod_chain::keys::SecretKey;
use synod_chain::ledger::Ledger;
use synod_chain::{Memo, SignedTransaction, Transaction};
use synod_genesis::{Genesis, Home};
use synod_node::rpc::client::{ClientError, RpcClient};

use crate::testnet::{Testnet, is_running, poll_until, tail, wait_for};

/// The testnet's funded account keys, in manifest order.
pub fn account_keys(net: &Testnet) -> Vec<SecretKey> {
    net.manifest
        .accounts
        .iter()
        .map(|a| read_key_file(&net.dir.join(&a.key)).expect("the testnet's account key files"))
        .collect()
}

/// The testnet's chain id.
pub fn chain_id(net: &Testnet) -> String {
    net.manifest.chain_id.clone()
}

/// Signs `count` transfers from `key` to `to` starting at `nonce` (amounts 1, 2, ...; fee 1).
pub fn transfers(
    chain: &str,
    key: &SecretKey,
    to: &SecretKey,
    nonce: u64,
    count: usize,
) -> Vec<SignedTransaction> {
    (0..count as u64)
        .map(|i| {
            Transaction {
                chain_id: chain.to_string(),
                from: key.public(),
                to: to.address(),
                amount: 1 + i,
                fee: 1,
                nonce: nonce + i,
                memo: Memo::default(),
            }
            .sign(key)
        })
        .collect()
}

/// Submits `txs` in one call; panics if the node refuses any of them.
pub fn submit(client: &mut RpcClient, txs: &[SignedTransaction]) -> Result<Vec<Hash>, ClientError> {
    let raw: Vec<String> = txs.iter().map(|t| hex::encode(t.encode())).collect();
    let results = client.call("send_transactions", json!({ "raw": raw }))?;
    Ok(results
        .as_array()
        .expect("send_transactions answers an array")
        .iter()
        .map(|r| {
            assert!(r.get("error").is_none(), "rejected: {r}");
            r["id"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .expect("an admitted transaction has an id")
        })
        .collect())
}

/// What a node says of a transaction: `committed`, `pending`, `dropped`, or `None` if it does
/// not know it (or does not answer).
pub fn tx_status(client: &mut RpcClient, id: &Hash) -> Option<String> {
    client
        .call("get_transaction", json!({ "id": id }))
        .ok()
        .and_then(|v| v["status"].as_str().map(str::to_string))
}

/// Whether the node has `id` in its chain.
pub fn is_committed(client: &mut RpcClient, id: &Hash) -> bool {
    tx_status(client, id).as_deref() == Some("committed")
}

/// Waits, node by node, until each of `nodes` reports every one of `ids` committed (each node
/// gets its own `timeout`).
pub fn wait_committed_on(
    net: &Testnet,
    nodes: impl IntoIterator<Item = usize>,
    ids: &[Hash],
    timeout: Duration,
) {
    for i in nodes {
        let mut client = net.client(i);
        wait_for(
            timeout,
            &format!("all {} transactions committed on node {i}", ids.len()),
            || ids.iter().all(|id| is_committed(&mut client, id)),
        );
    }
}

/// Sends 25 transfers from each node's own account to that node, waits until every node has
/// committed all of them and the chains have converged, and checks every node is healthy and
/// every database holds the same blocks.
pub fn commit_on_every_node(net: &Testnet) {
    let n = net.manifest.nodes.len();
    let keys = account_keys(net);
    let chain = chain_id(net);
    let mut ids = Vec::new();
    for i in 0..n {
        let txs = transfers(&chain, &keys[i], &keys[(i + 1) % n], 0, 25);
        ids.extend(submit(&mut net.client(i), &txs).expect("transfers admitted"));
    }
    wait_committed_on(net, 0..n, &ids, Duration::from_secs(60));
    wait_converged(net, 2, Duration::from_secs(30));
    for i in 0..n {
        assert_eq!(
            net.client(i).health().expect("health"),
            "ok",
            "node {i} health"
        );
    }
    assert_databases_identical(net);
}

/// Waits until every node answers at the same height, at least `min`; otherwise panics with
/// each node's height, whether its process runs, and the end of its log.
pub fn wait_converged(net: &Testnet, min: u64, timeout: Duration) {
    let n = net.manifest.nodes.len();
    let converged = poll_until(timeout, || {
        let heights: Vec<u64> = (0..n).map(|i| net.height(i)).collect();
        heights[0] >= min && heights.iter().all(|h| *h == heights[0])
    });
    if !converged {
        let nodes: Vec<String> = (0..n)
            .map(|i| {
                format!(
                    "node {i}: height {}, running {}, log ends:\n{}",
                    net.height(i),
                    is_running(&net.home(i)),
                    tail(&net.log(i), 12)
                )
            })
            .collect();
        panic!(
            "all nodes at one height: not within {timeout:?}\n{}",
            nodes.join("\n")
        );
    }
}

/// Stops the testnet and checks every node's database: same blocks at every height, same
/// accounts, and each one consistent on its own (chain links, indexes, replayed state).
pub fn assert_databases_identical(net: &Testnet) {
    let all: Vec<usize> = (0..net.manifest.nodes.len()).collect();
    assert_databases_identical_among(net, &all);
}

/// [`assert_databases_identical`] over the nodes `nodes` only (the honest ones, when others were
/// Byzantine). Stops every node first.
pub fn assert_databases_identical_among(net: &Testnet, nodes: &[usize]) {
    net.down();
    let genesis = Genesis::load(&Home::new(net.home(0)).genesis_path()).expect("the genesis");
    let state = genesis.state();
    let ledger = Ledger::new(genesis.ledger_rules());
    let stores: Vec<_> = nodes.iter().map(|i| net.store(*i)).collect();
    let tip = stores[0].tip();
    for (store, i) in stores.iter().zip(nodes) {
        assert_eq!(store.tip(), tip, "node {i} has another tip");
        assert_eq!(
            store.accounts().expect("accounts"),
            stores[0].accounts().expect("accounts"),
            "node {i} accounts"
        );
        let report = store
            .verify_chain(Some((&state, &ledger)))
            .expect("the chain walk");
        assert!(report.replayed, "node {i}'s chain does not replay");
        for height in 0..=tip.height {
            assert_eq!(
                store.hash_at(height).expect("the canonical index"),
                stores[0].hash_at(height).expect("the canonical index"),
                "node {i} differs at height {height}"
            );
        }
    }
}

/// Stops the testnet and checks, in the databases of `nodes`, that every block's stored finality
/// proof verifies against the genesis validators, as an observer would check it.
pub fn assert_proofs_verify(net: &Testnet, nodes: &[usize]) {
    net.down();
    let genesis = Genesis::load(&Home::new(net.home(0)).genesis_path()).expect("the genesis");
    let validators = genesis.validator_keys();
    for &i in nodes {
        let store = net.store(i);
        let tip = store.tip();
        for height in 1..=tip.height {
            let header = store
                .header_at(height)
                .expect("the header index")
                .expect("a header at every height up to the tip");
            let proof = store.proof(&header.hash()).expect("the proof table");
            if let Err(e) = synod_consensus::finality::verify_finality(
                &genesis.engine,
                &genesis.chain_id,
                &validators,
                &header,
                &proof,
            ) {
                panic!("node {i}: the proof of block {height} does not verify: {e}");
            }
        }
    }
}
