//! What a backup checks of a pre-prepared block's header before it executes the block (paper
//! §4.2: a backup accepts only a request that is valid for it). The ledger then checks the rest
//! on the state below the block: every transaction's signature (batched, verified once per
//! node), nonce and balance, the parent, the height and both roots.
//!
//! - The proposer is the primary of the view the block was proposed in (`seal.round`): for a
//!   fresh proposal that is the current view; a block re-proposed by a NEW-VIEW keeps its
//!   original view, which must not be later than the current one.
//! - No proof-of-work fields.
//! - The timestamp is after the parent's and, for a fresh proposal, not absurdly far ahead of
//!   this replica's clock (or of the parent's time, when the chain runs ahead of the clock).
//! - No more transactions than the genesis file allows.

use synod_chain::BlockHeader;

use super::log::Proposal;
use super::{MAX_TIMESTAMP_AHEAD_MS, PbftEngine};
use crate::engine::Millis;

impl PbftEngine {
    /// Checks `proposal`'s header rules against its parent; the reason if it breaks one.
    pub(super) fn check_proposal(
        &self,
        now: Millis,
        proposal: &Proposal,
        parent: &BlockHeader,
    ) -> Result<(), &'static str> {
        let header = &proposal.block.header;
        let round = header.seal.round;
        if proposal.reproposal {
            if round > self.view {
                return Err("a re-proposed block claims a later view");
            }
        } else if round != self.view {
            return Err("the block's view is not the current view");
        }
        if header.proposer != self.replicas.primary(round) {
            return Err("the block's proposer is not the primary of its view");
        }
        if header.seal.bits != 0 || header.seal.nonce != 0 {
            return Err("the block carries proof-of-work fields");
        }
        if header.timestamp_ms <= parent.timestamp_ms {
            return Err("the block's timestamp is not after its parent's");
        }
        let latest = now
            .max(parent.timestamp_ms)
            .saturating_add(MAX_TIMESTAMP_AHEAD_MS);
        if !proposal.reproposal && header.timestamp_ms > latest {
            return Err("the block's timestamp is too far in the future");
        }
        if proposal.block.txs.len() > self.params.max_block_txs as usize {
            return Err("the block holds more transactions than allowed");
        }
        Ok(())
    }
}
