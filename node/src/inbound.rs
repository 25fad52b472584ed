//! The node's edge: everything peers send is checked here before anything else sees it.
//! Consensus envelopes must be for this chain and this node, signed by the key that the libp2p
//! connection authenticated, and, on a permissioned chain, from a validator (a proof-of-work
//! network is open: anyone may mine, so any peer may speak; the network task bounds each peer's
//! rate and the engine scores what it sends); gossiped transactions go through mempool
//! admission. Anything else is dropped and counted.

use std::sync::{Arc, RwLock};

use libp2p::{PeerId, gossipsub};
use synod_chain::limits::MAX_TX_BYTES;
use synod_chain::{SignedTransaction, codec};
use tracing::debug;

use crate::context::NodeContext;
use crate::envelope;
use crate::inbox::ControlEvent;
use crate::net::behaviour::MAX_GOSSIP_BYTES;
use crate::net::{Inbound, NetCommand, node_id_of, peer_id_of};

/// Most transactions in one gossip batch.
pub const MAX_GOSSIP_TXS: usize = MAX_GOSSIP_BYTES / 100;

/// The node's [`Inbound`].
pub struct NodeInbound {
    /// Shared node state.
    pub ctx: Arc<NodeContext>,
    /// Connected peers (for the observer's sync).
    pub peers: Arc<RwLock<Vec<PeerId>>>,
    /// Gossip admissions that may run at once.
    pub admission: Arc<tokio::sync::Semaphore>,
}

/// Gossip batches checked at once (each on a blocking thread).
pub const MAX_GOSSIP_ADMISSIONS: usize = 2;

impl Inbound for NodeInbound {
    fn consensus(&self, from: PeerId, bytes: Vec<u8>) {
        let ctx = &self.ctx;
        let drop = |reason: &'static str| {
            ctx.metrics.dropped(reason);
            debug!(peer = %from, reason, "dropped a consensus envelope");
        };
        let unverified = match envelope::parse(&bytes, &ctx.genesis_hash, &ctx.me) {
            Ok(unverified) => unverified,
            Err(e) => {
                return drop(match e {
                    envelope::EnvelopeError::Malformed => "malformed",
                    envelope::EnvelopeError::WrongChain => "wrong_chain",
                    envelope::EnvelopeError::WrongRecipient => "wrong_recipient",
                    envelope::EnvelopeError::BadSignature(_) => "forged",
                });
            }
        };
        // Cheap checks first: a stranger's envelope costs no signature check.
        if peer_id_of(&unverified.from) != Some(from) {
            return drop("sender_mismatch");
        }
        if ctx.genesis.engine.is_permissioned() && !ctx.is_member(&unverified.from) {
            return drop("not_a_validator");
        }
        let opened = match unverified.verify() {
            Ok(opened) => opened,
            Err(_) => return drop("forged"),
        };
        if !ctx.to_driver(ControlEvent::Message {
            from: opened.from,
            payload: opened.payload,
        }) {
            ctx.metrics.dropped("driver_busy");
        }
    }

    fn gossip_txs(&self, from: PeerId, id: gossipsub::MessageId, bytes: Vec<u8>) {
        let verdict = move |ctx: &NodeContext, verdict: gossipsub::MessageAcceptance| {
            if let Some(net) = ctx.net.get() {
                net.send(NetCommand::GossipVerdict {
                    id: id.clone(),
                    source: from,
                    verdict,
                });
            }
        };
        let txs: Vec<SignedTransaction> = match codec::decode(&bytes, MAX_GOSSIP_BYTES) {
            Ok(txs) => txs,
            Err(_) => {
                self.ctx.metrics.dropped("malformed_gossip");
                return verdict(&self.ctx, gossipsub::MessageAcceptance::Reject);
            }
        };
        if txs.len() > MAX_GOSSIP_TXS || txs.iter().any(|t| t.encode().len() > MAX_TX_BYTES) {
            self.ctx.metrics.dropped("oversized_gossip");
            return verdict(&self.ctx, gossipsub::MessageAcceptance::Reject);
        }
        // A bounded number of admissions at once: under a flood, the rest is dropped.
        let Ok(permit) = self.admission.clone().try_acquire_owned() else {
            self.ctx.metrics.dropped("admission_busy");
            return verdict(&self.ctx, gossipsub::MessageAcceptance::Ignore);
        };
        let ctx = self.ctx.clone();
        let refused = verdict.clone();
        let queued = self.ctx.admission.spawn(move || {
            let outcome = crate::admission::admit_from_peer_checked(&ctx, txs);
            drop(permit);
            debug!(peer = %from, admitted = outcome.admitted, invalid = outcome.invalid, "gossiped transactions");
            // Invalid transactions mean the relay did not check them: it is scored down.
            let acceptance = if outcome.invalid > 0 {
                gossipsub::MessageAcceptance::Reject
            } else if outcome.admitted > 0 {
                gossipsub::MessageAcceptance::Accept
            } else {
                gossipsub::MessageAcceptance::Ignore
            };
            verdict(&ctx, acceptance);
        });
        if !queued {
            self.ctx.metrics.dropped("admission_busy");
            refused(&self.ctx, gossipsub::MessageAcceptance::Ignore);
        }
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
        self.ctx
            .set_connected_peers(connected.iter().filter_map(node_id_of).collect());
    }

    fn send_failed(&self, _to: PeerId) {
        self.ctx.metrics.dropped("undeliverable");
    }

    fn dropped(&self, reason: &'static str) {
        self.ctx.metrics.dropped(reason);
    }
}
