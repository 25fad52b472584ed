//! A libp2p peer a test drives by hand, connected to one node of a testnet: it speaks the node's
//! protocols with a key of the test's choosing (a stranger's, or one stolen from a node's home)
//! and hears nothing back, so a test can send exactly the envelopes it wants the edge to judge.

use libp2p::PeerId;
use synod_chain::keys::{PublicKey, SecretKey};
use synod_node::net::NetworkHandle;

/// Starts a send-only network task with `key` on `runtime`, dialing the node that listens at
/// `listen` with key `node_key`. Returns the handle to send with and the node's peer id.
pub fn connect(
    runtime: &tokio::runtime::Runtime,
    key: &SecretKey,
    listen: &str,
    node_key: &PublicKey,
    open: bool,
) -> (NetworkHandle, PeerId) {
    let peer = synod_node::net::peer_id_of(node_key).expect("an ed25519 key");
    let targets = [(*node_key, listen.to_string())];
    let (handle, task) = runtime
        .block_on(async { synod_node::net::sender::start_sender(key, &targets, open) })
        .expect("the outsider's network starts");
    runtime.spawn(task);
    (handle, peer)
}
