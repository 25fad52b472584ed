//! The node's edge: everything peers send is checked here before anything else sees it.
//! Consensus envelopes must be for this chain and this node, signed by the key that the libp2p
//! connection authenticated, and from a validator; gossiped transactions go through mempool
//! admission. Anything else is dropped and counted.

use std::sync::{Arc, RwLock};

use libp2p::PeerId;
use synod_chain::limits::MAX_TX_BYTES;
use synod_chain::{SignedTransaction, codec};
use tracing::debug;

use crate::context::NodeContext;
use crate::envelope;
use crate::inbox::ControlEvent;
use crate::net::behaviour::MAX_GOSSIP_BYTES;
use crate::net::{Inbound, peer_id_of};

/// Most transactions in one gossip batch.
pub const MAX_GOSSIP_TXS: usize = MAX_GOSSIP_BYTES / 100;

/// The node's [`Inbound`].
pub struct NodeInbound {
    /// Shared node state.
    pub ctx: Arc<NodeContext>,
    /// Connected peers (for the observer's sync).
    pub peers: Arc<RwLock<Vec<PeerId>>>,
}

impl Inbound for NodeInbound {
    fn consensus(&self, from: PeerId, bytes: Vec<u8>) {
        let ctx = &self.ctx;
        let opened = match envelope::open(&bytes, &ctx.genesis_hash, &ctx.me) {
            Ok(opened) => opened,
            Err(e) => {
                ctx.metrics.dropped(match e {
                    envelope::EnvelopeError::BadSignature(_) => "forged",
                    envelope::EnvelopeError::Malformed => "malformed",
                    envelope::EnvelopeError::WrongChain => "wrong_chain",
                    envelope::EnvelopeError::WrongRecipient => "wrong_recipient",
                });
                debug!(peer = %from, error = %e, "dropped a consensus envelope");
                return;
            }
        };
        if peer_id_of(&opened.from) != Some(from) {
            ctx.metrics.dropped("sender_mismatch");
            debug!(peer = %from, "envelope signed by a key other than the connection's");
            return;
        }
        if !ctx.is_member(&opened.from) {
            ctx.metrics.dropped("not_a_validator");
            debug!(peer = %from, "consensus message from outside the validator set");
            return;
        }
        if !ctx.to_driver(ControlEvent::Message {
            from: opened.from,
            payload: opened.payload,
        }) {
            ctx.metrics.dropped("driver_busy");
        }
    }

    fn gossip_txs(&self, from: PeerId, bytes: Vec<u8>) {
        let txs: Vec<SignedTransaction> = match codec::decode(&bytes, MAX_GOSSIP_BYTES) {
            Ok(txs) => txs,
            Err(_) => {
                self.ctx.metrics.dropped("malformed_gossip");
                return;
            }
        };
        if txs.len() > MAX_GOSSIP_TXS || txs.iter().any(|t| t.encode().len() > MAX_TX_BYTES) {
            self.ctx.metrics.dropped("oversized_gossip");
            return;
        }
        let ctx = self.ctx.clone();
        tokio::task::spawn_blocking(move || {
            let admitted = crate::admission::admit_from_peer(&ctx, txs);
            debug!(peer = %from, admitted, "gossiped transactions");
        });
    }

    fn sync_request(&self, _from: PeerId, bytes: &[u8]) -> Vec<u8> {
        crate::sync::serve(&self.ctx, bytes)
    }

    fn peers_changed(&self, connected: &[PeerId]) {
        self.ctx.metrics.peers.set(connected.len() as i64);
        self.ctx.update_status(|s| s.peers = connected.len());
        if let Ok(mut peers) = self.peers.write() {
            *peers = connected.to_vec();
        }
    }

    fn send_failed(&self, _to: PeerId) {
        self.ctx.metrics.dropped("undeliverable");
    }
}
