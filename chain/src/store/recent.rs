//! The recent canonical blocks an engine that reorganises needs to resume after a restart: the
//! blocks themselves (for timestamps, difficulty and the transactions a reorg gives back), their
//! finality proofs, and the undo data of the ones that may still be rewound.

use super::tables::{META, META_TIP, UNDO};
use super::{ChainTip, Store, StoreError, StoreReader};
use crate::block::Block;
use crate::codec;
use crate::keys::Address;
use crate::ledger::Account;
use crate::limits::MAX_BLOCK_BYTES;

/// One canonical block as the store holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecentBlock {
    /// The block.
    pub block: Block,
    /// Its finality proof, as the engine wrote it (empty if none, as for block 0).
    pub proof: Vec<u8>,
    /// Every account the block touched, as it was before the block: present while the block is
    /// above the finalized height and can still be rewound, `None` once it is final.
    pub undo: Option<Vec<(Address, Account)>>,
}

impl StoreReader {
    /// The canonical tip as of this snapshot.
    pub fn tip(&self) -> Result<ChainTip, StoreError> {
        let table = self.txn.open_table(META)?;
        let bytes = table
            .get(META_TIP)?
            .ok_or_else(|| StoreError::corrupt("meta", META_TIP, "missing"))?;
        codec::decode(bytes.value(), 1024).map_err(|e| StoreError::decode("meta", META_TIP, e))
    }

    /// The undo data of the canonical block at `height`, if it can still be rewound.
    pub fn undo(&self, height: u64) -> Result<Option<Vec<(Address, Account)>>, StoreError> {
        let table = self.txn.open_table(UNDO)?;
        let Some(bytes) = table.get(height)? else {
            return Ok(None);
        };
        codec::decode(bytes.value(), MAX_BLOCK_BYTES)
            .map(Some)
            .map_err(|e| StoreError::decode("undo", height, e))
    }
}

impl Store {
    /// The last `count` canonical blocks ending at the tip, lowest first, each with its proof and
    /// undo data. Fewer when the chain is shorter or a snapshot left a gap (the list then starts
    /// above the gap). One consistent read, so the list always ends at the current tip.
    pub fn recent_blocks(&self, count: u64) -> Result<Vec<RecentBlock>, StoreError> {
        let reader = self.reader()?;
        let tip = reader.tip()?.height;
        let from = tip.saturating_sub(count.saturating_sub(1));
        let mut out: Vec<RecentBlock> = Vec::new();
        for height in (from..=tip).rev() {
            if count == 0 {
                break;
            }
            let Some(block) = reader.block_at(height)? else {
                break;
            };
            if let Some(child) = out.last()
                && child.block.header.parent != block.hash()
            {
                return Err(StoreError::corrupt(
                    "canonical",
                    height,
                    "is not the parent of the block above it",
                ));
            }
            let proof = reader.proof(&block.hash())?;
            let undo = reader.undo(height)?;
            out.push(RecentBlock { block, proof, undo });
        }
        out.reverse();
        Ok(out)
    }
}
