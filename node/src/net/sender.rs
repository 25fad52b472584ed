//! A peer that only sends: the network of a tool that speaks the node's protocols with a key of
//! its choosing and ignores whatever comes back. Benchmarks use it to flood a testnet as a
//! stranger would, and tests to hand a node exactly the envelopes they want its edge to judge.

use std::future::Future;
use std::sync::Arc;

use libp2p::{PeerId, gossipsub};
use synod_chain::keys::{PublicKey, SecretKey};

use super::{Inbound, NetSetup, NetworkHandle, peer_id_of, start, to_multiaddr};
use crate::error::NodeError;

/// An [`Inbound`] that ignores everything.
pub struct Deaf;

impl Inbound for Deaf {
    fn consensus(&self, _: PeerId, _: Vec<u8>) {}
    fn gossip_txs(&self, _: PeerId, _: gossipsub::MessageId, _: Vec<u8>) {}
    fn sync_request(&self, _: PeerId, _: &[u8]) -> Vec<u8> {
        Vec::new()
    }
    fn peers_changed(&self, _: &[PeerId]) {}
    fn send_failed(&self, _: PeerId) {}
    fn dropped(&self, _: &'static str) {}
}

/// The libp2p identity of a node key.
pub fn keypair_of(key: &SecretKey) -> Result<libp2p::identity::Keypair, NodeError> {
    libp2p::identity::Keypair::ed25519_from_bytes(key.seed())
        .map_err(|e| NodeError::Network(e.to_string()))
}

/// Starts a send-only network with identity `key` on 127.0.0.1 (an OS-chosen port), dialing each
/// of `targets` (a node's key and its p2p `host:port`) and redialing it when disconnected. Must
/// be called inside a tokio runtime; the returned task must be spawned on it. `open` applies the
/// per-peer bounds of a permissionless network to what this peer receives.
pub fn start_sender(
    key: &SecretKey,
    targets: &[(PublicKey, String)],
    open: bool,
) -> Result<(NetworkHandle, impl Future<Output = ()> + use<>), NodeError> {
    let mut dial = Vec::with_capacity(targets.len());
    let mut known = std::collections::HashMap::with_capacity(targets.len());
    for (node_key, listen) in targets {
        let address = to_multiaddr(listen).map_err(NodeError::Network)?;
        let peer = peer_id_of(node_key)
            .ok_or_else(|| NodeError::Network(format!("{node_key} is not an ed25519 key")))?;
        dial.push(address.clone());
        known.insert(peer, address);
    }
    start(
        NetSetup {
            keypair: keypair_of(key)?,
            listen: "127.0.0.1:0".parse().expect("a loopback socket address"),
            dial,
            known,
            tx_topic: "unused".into(),
            faults: Default::default(),
            open,
        },
        Arc::new(Deaf),
    )
}
