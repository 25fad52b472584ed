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
use crate::driver::DriverEvent;
use crate::envelope;
use crate::mempool;
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
        if !ctx.to_driver(DriverEvent::Message {
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
            let admitted = admit(&ctx, txs, false);
            debug!(peer = %from, admitted = admitted.len(), "gossiped transactions");
            if !admitted.is_empty() {
                ctx.to_driver(DriverEvent::Transactions(admitted));
            }
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

/// Admits transactions to the mempool, counting outcomes. Returns the admitted ones.
pub fn admit(
    ctx: &NodeContext,
    txs: Vec<SignedTransaction>,
    local: bool,
) -> Vec<SignedTransaction> {
    admit_with_results(ctx, txs, local)
        .into_iter()
        .filter_map(|(tx, result)| result.ok().map(|_| tx))
        .collect()
}

/// Admits transactions and returns each with its outcome.
pub fn admit_with_results(
    ctx: &NodeContext,
    txs: Vec<SignedTransaction>,
    local: bool,
) -> Vec<(
    SignedTransaction,
    Result<synod_chain::Hash, mempool::AdmitError>,
)> {
    let results = match ctx.store.reader() {
        Ok(reader) => mempool::admit(&ctx.mempool, txs.clone(), &reader, local),
        Err(e) => vec![Err(mempool::AdmitError::Store(e.to_string())); txs.len()],
    };
    for result in &results {
        match result {
            Ok(_) => {
                ctx.metrics.txs_admitted.inc();
            }
            Err(e) => {
                ctx.metrics
                    .txs_rejected
                    .get_or_create(&crate::metrics::ReasonLabel {
                        reason: e.label().to_string(),
                    })
                    .inc();
            }
        }
    }
    txs.into_iter().zip(results).collect()
}
