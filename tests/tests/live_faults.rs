//! Live fault injection on a Raft testnet of real processes (127.0.0.1, OS-chosen ports): a
//! partition cut with `synod testnet partition` keeps the minority from committing while the
//! majority commits, and after `synod testnet heal` every node converges on one chain and the
//! minority's clients' transactions commit too. Fault injection needs the node's credential.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::json;
use synod_node::rpc::client::{ClientError, RpcClient};
use synod_tests::chain_audit::{
    account_keys, assert_databases_identical, chain_id, is_committed, submit, transfers, tx_status,
    wait_converged,
};
use synod_tests::testnet::{Testnet, synod, synod_ok, wait_for};

const WAIT: Duration = Duration::from_secs(60);

fn fault_dropped(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("synod_fault_dropped_total{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[test]
fn a_partitioned_minority_never_commits_and_everyone_converges_after_heal() {
    let net = Testnet::init("raft", 3, 3, &[]);
    net.up();
    let dir = net.dir.to_string_lossy().to_string();
    let keys = account_keys(&net);
    let chain = chain_id(&net);
    wait_for(WAIT, "a leader", || net.leader().is_some());
    let minority = net.leader().unwrap();
    let majority: Vec<usize> = (0..3).filter(|i| *i != minority).collect();

    // Without the cookie the admin method is refused.
    let refused = RpcClient::new(&net.manifest.nodes[0].rpc)
        .call("heal_faults", json!({}))
        .unwrap_err();
    assert!(
        matches!(refused, ClientError::Rpc { code: -32001, .. }),
        "{refused}"
    );

    let name = net.manifest.nodes[minority].name.clone();
    let out = synod_ok(&["testnet", "partition", &name, "--dir", &dir]);
    assert!(out.contains("cut off"), "{out}");
    let status = net.status(minority).unwrap();
    assert_eq!(status["faults"]["partition"].as_array().unwrap().len(), 2);
    let frozen = net.height(minority);

    // A client of the minority and a client of the majority each send a batch.
    let stuck = submit(
        &mut net.client(minority),
        &transfers(&chain, &keys[0], &keys[1], 0, 10),
    )
    .unwrap();
    let through = submit(
        &mut net.client(majority[0]),
        &transfers(&chain, &keys[1], &keys[2], 0, 10),
    )
    .unwrap();
    let mut client = net.client(majority[1]);
    wait_for(WAIT, "the majority commits its client's batch", || {
        through.iter().all(|id| is_committed(&mut client, id))
    });
    // Give the minority every chance to commit something it should not: a few election
    // timeouts, while the majority keeps committing.
    let target = net.height(majority[0]) + 1;
    submit(
        &mut net.client(majority[0]),
        &transfers(&chain, &keys[2], &keys[0], 0, 5),
    )
    .unwrap();
    wait_for(WAIT, "the majority commits again", || {
        net.height(majority[1]) >= target
    });
    assert_eq!(net.height(minority), frozen, "the minority committed");
    let mut minority_client = net.client(minority);
    for id in &stuck {
        assert_ne!(
            tx_status(&mut minority_client, id).as_deref(),
            Some("committed")
        );
    }
    let metrics = RpcClient::new(&net.manifest.nodes[minority].rpc)
        .metrics()
        .unwrap();
    assert!(fault_dropped(&metrics) > 0, "the partition dropped nothing");

    let out = synod_ok(&["testnet", "heal", "--dir", &dir]);
    assert!(out.contains("none"), "{out}");
    let status = synod_ok(&["testnet", "status", "--dir", &dir]);
    assert!(status.contains("faults"), "{status}");
    for i in 0..3 {
        let mut client = net.client(i);
        wait_for(WAIT, "the minority's clients' batch commits", || {
            stuck.iter().all(|id| is_committed(&mut client, id))
        });
    }
    wait_converged(&net, target, WAIT);
    assert_databases_identical(&net);
}

#[test]
fn delay_is_applied_to_one_nodes_links_and_heals() {
    let net = Testnet::init("raft", 3, 1, &[]);
    net.up();
    let dir = net.dir.to_string_lossy().to_string();
    let out = synod_ok(&[
        "testnet", "delay", "30", "--jitter", "10", "--loss", "5", "--node", "node1", "--dir", &dir,
    ]);
    assert!(
        out.contains("node0: delay 30±10 ms, 5.0% loss to node1"),
        "{out}"
    );
    assert!(out.contains("node1: delay 30±10 ms, 5.0% loss ("), "{out}");
    let keys = account_keys(&net);
    let ids = submit(
        &mut net.client(1),
        &transfers(&chain_id(&net), &keys[0], &keys[0], 0, 5),
    )
    .unwrap();
    let mut client = net.client(0);
    wait_for(WAIT, "commits through slow links", || {
        ids.iter().all(|id| is_committed(&mut client, id))
    });
    synod_ok(&["testnet", "heal", "--dir", &dir]);
    assert!(net.status(1).unwrap()["faults"]["delay"].is_null());
}

/// `synod testnet byzantine` restarts a Raft node with a behaviour, refuses an unknown one with
/// the node's own reason, and `testnet status` names the behaviour in force until the node is
/// restarted honest.
#[test]
fn a_node_restarted_byzantine_says_so_and_an_unknown_behaviour_is_refused() {
    let net = Testnet::init("raft", 3, 1, &[]);
    net.up();
    let dir = net.dir.to_string_lossy().to_string();
    let name = net.manifest.nodes[1].name.clone();

    let refused = synod(&["testnet", "byzantine", &name, "bogus", "--dir", &dir]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("unknown Raft behaviour"), "{said}");
    assert!(
        net.status(1).is_some(),
        "a refused behaviour leaves the node running"
    );

    let out = synod_ok(&["testnet", "byzantine", &name, "silent", "--dir", &dir]);
    assert!(out.contains("--byzantine silent"), "{out}");
    assert_eq!(net.status(1).unwrap()["faults"]["byzantine"], "silent");
    let table = synod_ok(&["testnet", "status", "--dir", &dir]);
    assert!(table.contains("byzantine silent"), "{table}");

    net.kill(1);
    net.start(1);
    wait_for(WAIT, "node1 back honest", || {
        net.status(1)
            .is_some_and(|s| s["faults"]["byzantine"].is_null())
    });
}
