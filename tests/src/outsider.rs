//! A libp2p peer a test drives by hand, connected to one node of a testnet: it speaks the node's
//! protocols with a key of the test's choosing (a stranger's, or one stolen from a node's home)
//! and hears nothing back, so a test can send exactly the envelopes it wants the edge to judge.

use std::sync::Arc;

use libp2p::PeerId;
use synod_chain::keys::{PublicKey, SecretKey};
use synod_node::net::{Inbound, NetSetup, NetworkHandle};

/// An [`Inbound`] that ignores everything: the outsider only sends.
pub struct Deaf;

impl Inbound for Deaf {
    fn consensus(&self, _: PeerId, _: Vec<u8>) {}
    fn gossip_txs(&self, _: PeerId, _: libp2p::gossipsub::MessageId, _: Vec<u8>) {}
    fn sync_request(&self, _: PeerId, _: &[u8]) -> Vec<u8> {
        Vec::new()
    }
    fn peers_changed(&self, _: &[PeerId]) {}
    fn send_failed(&self, _: PeerId) {}
    fn dropped(&self, _: &'static str) {}
}

/// Starts a network task with `key` on `runtime`, dialing the node that listens at `listen` with
/// key `node_key`. Returns the handle to send with and the node's peer id.
pub fn connect(
    runtime: &tokio::runtime::Runtime,
    key: &SecretKey,
    listen: &str,
    node_key: &PublicKey,
    open: bool,
) -> (NetworkHandle, PeerId) {
    let peer = synod_node::net::peer_id_of(node_key).expect("an ed25519 key");
    let address = synod_node::net::to_multiaddr(listen).expect("a node address");
    let (handle, task) = runtime.block_on(async {
        synod_node::net::start(
            NetSetup {
                keypair: libp2p::identity::Keypair::ed25519_from_bytes(key.seed())
                    .expect("an ed25519 seed"),
                listen: "127.0.0.1:0".parse().expect("a loopback address"),
                dial: vec![address.clone()],
                known: [(peer, address)].into(),
                tx_topic: "unused".into(),
                open,
                faults: Default::default(),
            },
            Arc::new(Deaf),
        )
        .expect("the outsider's network starts")
    });
    runtime.spawn(task);
    (handle, peer)
}
