//! What proof of work keeps across a restart, and how it is read back.
//!
//! The engine persists nothing of its own: every block it commits carries its cumulative
//! chainwork as the block's finality proof (32 big-endian bytes, what a node shows as
//! `chainwork`), and the store keeps undo data for every block above the finalized height. On a
//! restart the driver hands over the last [`restore_depth`] canonical blocks with their proofs
//! and undo data ([`crate::Restored::recent`]), from which the engine rebuilds its tree: the
//! headers validation reads, the bodies a reorganisation gives back, the undo data it rewinds
//! with. Side branches are not kept; peers offer them again if they grow heavier.

use synod_chain::BlockHeader;
use synod_chain::pow::uint256::U256;
use synod_chain::pow::work::{Chainwork, work};
use synod_genesis::PowParams;

use super::difficulty::DifficultyRule;
use super::tree::TreeNode;
use crate::engine::Restored;

/// Why persisted proof-of-work state could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PowStateError {
    /// The engine's parameters are unusable.
    #[error("proof-of-work parameters: {0}")]
    Params(String),
    /// The recent blocks contradict each other or the chain tip.
    #[error("restored chain is inconsistent: {0}")]
    Inconsistent(String),
    /// A stored block's proof is not a chainwork, or its bits are not a target.
    #[error("block {height} is corrupt: {detail}")]
    Corrupt {
        /// Its height.
        height: u64,
        /// What is wrong.
        detail: String,
    },
}

/// How many recent canonical blocks a restarting engine needs: every block it may still rewind
/// (the reorganisation limit) and the headers below them that validation reads.
pub fn restore_depth(params: &PowParams, rule: &DifficultyRule) -> u64 {
    params
        .max_reorg_depth
        .saturating_add(rule.ancestry())
        .saturating_add(1)
}

/// The finality proof a committed block carries: its cumulative chainwork.
pub fn chainwork_proof(chainwork: &Chainwork) -> Vec<u8> {
    chainwork.as_u256().to_be_bytes().to_vec()
}

/// Reads a chainwork back from a block's proof.
pub fn chainwork_from_proof(proof: &[u8]) -> Option<Chainwork> {
    let bytes: [u8; 32] = proof.try_into().ok()?;
    Some(Chainwork::from_u256(U256::from_be_bytes(bytes)))
}

/// The work of one block, with genesis standing for the initial bits.
pub fn block_work(header: &BlockHeader, initial_bits: u32) -> Result<Chainwork, PowStateError> {
    let bits = if header.height == 0 {
        initial_bits
    } else {
        header.seal.bits
    };
    work(bits).map_err(|e| PowStateError::Corrupt {
        height: header.height,
        detail: e.to_string(),
    })
}

/// The canonical chain rebuilt from the store, and the finalized height it implies.
#[derive(Debug)]
pub struct RestoredChain {
    /// The canonical blocks, lowest first, ending at the tip.
    pub nodes: Vec<TreeNode>,
    /// The highest height the engine will never rewind below.
    pub finalized: u64,
}

/// Rebuilds the canonical chain from `restored`. The finalized height is the store's (the
/// highest block without undo data), raised, when the blocks handed over do not reach back to
/// genesis, to the lowest height whose validation context (`ancestry` headers) they still cover.
/// It is not raised to the reorganisation limit below the tip: the engine finalizes only through
/// its own `Finalize` actions, which hold back while a heavier chain is being fetched, and a
/// restart must not finalize what that hold protected.
pub fn restore(
    restored: &Restored,
    initial_bits: u32,
    ancestry: u64,
) -> Result<RestoredChain, PowStateError> {
    let tip = &restored.chain.tip;
    if restored.recent.is_empty() {
        if tip.height != 0 {
            return Err(PowStateError::Inconsistent(format!(
                "no recent blocks were handed over for a chain at height {}",
                tip.height
            )));
        }
        let mut node = TreeNode::new(*tip, block_work(tip, initial_bits)?, None);
        node.body = Some(Vec::new());
        return Ok(RestoredChain {
            nodes: vec![node],
            finalized: 0,
        });
    }
    let last = restored.recent.last().map(|r| r.block.header);
    if last.map(|h| h.hash()) != Some(tip.hash()) {
        return Err(PowStateError::Inconsistent(format!(
            "the recent blocks end at {:?}, not at the tip {} at height {}",
            last.map(|h| (h.height, h.hash())),
            tip.hash(),
            tip.height
        )));
    }
    let mut nodes: Vec<TreeNode> = Vec::with_capacity(restored.recent.len());
    let mut finalized = 0;
    for recent in &restored.recent {
        let header = recent.block.header;
        let chainwork = match nodes.last() {
            Some(parent) => {
                if header.parent != parent.hash || header.height != parent.height() + 1 {
                    return Err(PowStateError::Inconsistent(format!(
                        "block {} at height {} does not follow block {} at height {}",
                        header.hash(),
                        header.height,
                        parent.hash,
                        parent.height()
                    )));
                }
                parent.chainwork + block_work(&header, initial_bits)?
            }
            None if header.height == 0 => block_work(&header, initial_bits)?,
            None => chainwork_from_proof(&recent.proof).ok_or_else(|| PowStateError::Corrupt {
                height: header.height,
                detail: format!("proof of {} bytes is not a chainwork", recent.proof.len()),
            })?,
        };
        if header.height > 0
            && !recent.proof.is_empty()
            && chainwork_from_proof(&recent.proof) != Some(chainwork)
        {
            return Err(PowStateError::Inconsistent(format!(
                "block {} records a chainwork other than its chain's",
                header.height
            )));
        }
        if recent.undo.is_none() {
            finalized = finalized.max(header.height);
        }
        let mut node = TreeNode::new(header, chainwork, None);
        node.body = Some(recent.block.txs.clone());
        node.undo = recent.undo.clone();
        nodes.push(node);
    }
    let base = nodes.first().map_or(0, TreeNode::height);
    if base > 0 {
        finalized = finalized.max(base.saturating_add(ancestry));
    }
    Ok(RestoredChain {
        nodes,
        finalized: finalized.min(tip.height),
    })
}
