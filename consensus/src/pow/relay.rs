//! Transactions on their way to every miner. What the node's mempool hands in (signatures
//! already verified there) and what peers relay (verified here, in batches, once) goes into the
//! pool, and whatever was new to this node is relayed on to every peer, so a transaction reaches
//! every miner that any path reaches. A transaction that has waited longer than the relay
//! interval is relayed again, which covers lost messages and peers that were down. A peer that
//! relays invalid transactions is reported for scoring.

use synod_chain::SignedTransaction;
use synod_chain::hash::Hash;

use super::messages::MAX_RELAY_TXS;
use super::{PowEngine, PowMessage};
use crate::engine::{Action, EngineEvent, NodeId};

/// Most pending transactions relayed again on one timer tick.
const MAX_RELAY_BURST: usize = 4 * MAX_RELAY_TXS;

impl PowEngine {
    /// Transactions admitted by the node's mempool, which verified their signatures.
    pub(super) fn on_transactions(
        &mut self,
        txs: Vec<SignedTransaction>,
        out: &mut Vec<Action<PowMessage>>,
    ) {
        for tx in &txs {
            self.verifier.mark_verified(tx.id());
        }
        let fresh = self.admit_to_pool(txs, out);
        Self::relay(fresh, out);
    }

    /// Transactions relayed by `from`: checked for this chain and verified before they count.
    pub(super) fn on_relayed(
        &mut self,
        from: NodeId,
        txs: Vec<SignedTransaction>,
        out: &mut Vec<Action<PowMessage>>,
    ) {
        let chain_id = self.ledger.rules().chain_id.clone();
        let mut bad = 0usize;
        let accounts = &self.accounts;
        // What is already waiting or already settled costs no signature check.
        let candidates: Vec<SignedTransaction> = txs
            .into_iter()
            .take(MAX_RELAY_TXS)
            .filter(|tx| !self.pool.contains(&tx.id()))
            .filter(|tx| {
                accounts
                    .get(&tx.sender())
                    .is_none_or(|a| tx.tx().nonce >= a.nonce)
            })
            .filter(|tx| {
                let ok = tx.check_stateless(&chain_id).is_ok();
                bad += usize::from(!ok);
                ok
            })
            .collect();
        let ids: Vec<Hash> = candidates.iter().map(SignedTransaction::id).collect();
        let results = self.verifier.verify_many(&candidates, &ids);
        let valid: Vec<SignedTransaction> = candidates
            .into_iter()
            .zip(results)
            .filter_map(|(tx, result)| match result {
                Ok(()) => Some(tx),
                Err(_) => {
                    bad += 1;
                    None
                }
            })
            .collect();
        if bad > 0 {
            out.push(Action::Event(EngineEvent::PeerMisbehaved {
                peer: from,
                reason: format!("relayed {bad} invalid transactions"),
            }));
        }
        let fresh = self.admit_to_pool(valid, out);
        Self::relay(fresh, out);
    }

    /// Adds what the tip's state has not settled yet to the pool; returns what was new, and has
    /// the template rebuilt if anything was.
    fn admit_to_pool(
        &mut self,
        txs: Vec<SignedTransaction>,
        out: &mut Vec<Action<PowMessage>>,
    ) -> Vec<SignedTransaction> {
        let accounts = &self.accounts;
        let current = txs.into_iter().filter(|tx| {
            accounts
                .get(&tx.sender())
                .is_none_or(|a| tx.tx().nonce >= a.nonce)
        });
        let fresh = self.pool.add(self.now, current);
        if !fresh.is_empty() {
            self.schedule_template(out);
        }
        fresh
    }

    fn relay(txs: Vec<SignedTransaction>, out: &mut Vec<Action<PowMessage>>) {
        for chunk in txs.chunks(MAX_RELAY_TXS) {
            out.push(Action::Broadcast(PowMessage::Transactions {
                txs: chunk.to_vec(),
            }));
        }
    }

    /// Relays again what has waited a relay interval since it was last sent.
    pub(super) fn relay_due(&mut self, out: &mut Vec<Action<PowMessage>>) {
        let due = self.pool.take_due_for_resend(
            self.now,
            self.relay_interval_ms,
            usize::MAX,
            MAX_RELAY_BURST,
        );
        Self::relay(due, out);
    }
}
