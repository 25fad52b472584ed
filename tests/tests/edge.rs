//! The edge against strangers, on real processes: an observer served a forged block by a peer
//! holding a validator's identity refuses it and bans the peer; a stranger flooding a validator
//! with connections and with oversized, unsigned and forged envelopes gets nowhere while the
//! chain keeps committing.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use synod_chain::codec;
use synod_chain::keyfile::read_key_file;
use synod_chain::keys::SecretKey;
use synod_chain::ledger::{BlockTemplate, Ledger};
use synod_chain::{Block, Seal};
use synod_consensus::raft::proof::{RaftCommitProof, sign_block};
use synod_genesis::{Genesis, Home};
use synod_node::net::{Inbound, NetCommand, NetSetup, peer_id_of, start};
use synod_node::sync::{SyncResponse, SyncedBlock};
use synod_tests::chain_audit::{account_keys, chain_id, is_committed, submit, transfers};
use synod_tests::testnet::{Testnet, free_port, observer_home, start_node, wait_for};

/// A peer that answers every sync request with the same (forged) blocks and ignores the rest.
struct Liar {
    response: Vec<u8>,
}

impl Inbound for Liar {
    fn consensus(&self, _: libp2p::PeerId, _: Vec<u8>) {}
    fn gossip_txs(&self, _: libp2p::PeerId, _: libp2p::gossipsub::MessageId, _: Vec<u8>) {}
    fn sync_request(&self, _: libp2p::PeerId, _: &[u8]) -> Vec<u8> {
        self.response.clone()
    }
    fn peers_changed(&self, _: &[libp2p::PeerId]) {}
    fn send_failed(&self, _: libp2p::PeerId) {}
    fn dropped(&self, _: &'static str) {}
}

fn metric(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

/// A peer with validator 1's identity (its key taken from its home) serves an observer a block
/// at height 1 whose Raft proof is signed by someone else: the observer stores nothing, counts
/// the bad proof, and bans the peer.
#[test]
fn a_forged_raft_block_served_to_an_observer_is_refused_and_the_peer_banned() {
    let net = Testnet::init("raft", 3, 1, &[]);
    // No validator runs: the liar is the only peer the observer can reach.
    let genesis = Genesis::load(&Home::new(net.home(0)).genesis_path()).unwrap();
    let state = genesis.state();
    let impersonated = read_key_file(&Home::new(net.home(1)).key_path()).unwrap();
    let built = Ledger::new(genesis.ledger_rules())
        .build_block(
            &state.accounts,
            &state.block.header,
            &BlockTemplate {
                proposer: impersonated.public(),
                timestamp_ms: state.block.header.timestamp_ms + 1,
                seal: Seal {
                    round: 1,
                    bits: 0,
                    nonce: 0,
                },
                max_txs: 0,
            },
            Vec::new(),
        )
        .unwrap();
    let forger = SecretKey::generate();
    let proof = codec::encode(&RaftCommitProof {
        term: 1,
        signature: sign_block(&forger, &genesis.chain_id, &built.block.hash(), 1),
    });
    let response = codec::encode(&SyncResponse {
        tip: 1,
        blocks: vec![SyncedBlock {
            block: Block::clone(&built.block),
            proof,
        }],
    });
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let liar_addr = format!("127.0.0.1:{}", free_port());
    let (_handle, task) = runtime.block_on(async {
        start(
            NetSetup {
                keypair: synod_node::net::sender::keypair_of(&impersonated).unwrap(),
                listen: liar_addr.parse().unwrap(),
                dial: Vec::new(),
                known: Default::default(),
                tx_topic: "unused".into(),
                faults: Default::default(),
                open: false,
            },
            Arc::new(Liar { response }),
        )
        .unwrap()
    });
    runtime.spawn(task);

    let (home, rpc) = observer_home(&net, "observer", vec![liar_addr]);
    let _observer = start_node(&home);
    let mut client =
        synod_node::rpc::client::RpcClient::new(&rpc).with_timeout(Duration::from_secs(5));
    wait_for(Duration::from_secs(30), "the bad proof is counted", || {
        let metrics = client.metrics().unwrap_or_default();
        metric(
            &metrics,
            "synod_messages_dropped_total{reason=\"bad_proof\"}",
        ) >= 1
    });
    wait_for(Duration::from_secs(30), "the liar is cut off", || {
        client
            .call("status", serde_json::json!({}))
            .is_ok_and(|s| s["peers"] == 0)
    });
    let status = client.call("status", serde_json::json!({})).unwrap();
    assert_eq!(status["height"], 0, "the forged block was not stored");
}

/// A stranger opens many connections and sends a validator oversized, unsigned and forged
/// envelopes and sync requests far beyond its rate: every one is dropped at the edge, counted,
/// and the testnet keeps committing.
#[test]
fn a_strangers_flood_is_dropped_at_the_edge_and_the_chain_goes_on() {
    let net = Testnet::init("raft", 3, 2, &[]);
    net.up();
    let target = 0;
    let node = &net.manifest.nodes[target];
    let genesis = Genesis::load(&Home::new(net.home(target)).genesis_path()).unwrap();
    let node_key = genesis.validators[target].public_key;
    let peer = peer_id_of(&node_key).unwrap();
    let chain = genesis.hash();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // Many strangers at once: more than the pending-connection cap.
    let mut handles = Vec::new();
    for _ in 0..48 {
        let stranger = SecretKey::generate();
        let targets = [(node_key, node.listen.clone())];
        let (handle, task) = runtime
            .block_on(async { synod_node::net::sender::start_sender(&stranger, &targets, false) })
            .unwrap();
        runtime.spawn(task);
        handles.push((stranger, handle));
    }
    // One round of the flood from stranger `from`: its envelopes, bytes that are not one, bytes
    // far larger than any message (the codec refuses them before reading them all), and sync
    // requests far beyond the rate limit.
    let flood = |from: usize, messages: u32| {
        let (stranger, flooder) = &handles[from % handles.len()];
        for i in 0..messages {
            let bytes = match i % 3 {
                0 => synod_node::envelope::seal(stranger, &chain, &node_key, &i.to_le_bytes()),
                1 => i.to_le_bytes().to_vec(),
                _ => vec![0u8; 17 << 20],
            };
            flooder.send(NetCommand::Consensus { to: peer, bytes });
            let (reply, _) = tokio::sync::oneshot::channel();
            flooder.send(NetCommand::Sync {
                to: peer,
                bytes: vec![0xff; 64],
                reply,
            });
        }
    };
    flood(0, 2_000);
    let keys = account_keys(&net);
    let mut client = net.client(target);
    let ids = submit(
        &mut client,
        &transfers(&chain_id(&net), &keys[0], &keys[1], 0, 20),
    )
    .unwrap();
    wait_for(Duration::from_secs(60), "commits during the flood", || {
        ids.iter().all(|id| is_committed(&mut client, id))
    });
    // A stranger's requests made before its connection is up fail with its dial (the node may
    // refuse it while over the pending-connection cap): until each kind of drop is counted, the
    // next stranger floods again (about once a second: a poll is every 20 ms).
    let mut polls = 0usize;
    for (what, reasons) in [
        ("envelopes from a non-validator", &["not_a_validator"][..]),
        ("bytes that are not an envelope", &["malformed"][..]),
        ("a sync flood", &["sync_busy", "malformed_sync"][..]),
    ] {
        wait_for(Duration::from_secs(60), what, || {
            let metrics = client.metrics().unwrap_or_default();
            let counted = reasons
                .iter()
                .map(|reason| {
                    metric(
                        &metrics,
                        &format!("synod_messages_dropped_total{{reason=\"{reason}\"}}"),
                    )
                })
                .sum::<u64>();
            polls += 1;
            if counted == 0 && polls.is_multiple_of(50) {
                flood(polls / 50, 30);
            }
            counted >= 1
        });
    }
    assert_eq!(client.health().unwrap(), "ok");
    drop(handles);
}
