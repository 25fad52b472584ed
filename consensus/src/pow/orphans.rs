//! Orphans: full blocks whose parent the engine does not know yet. They are held (a bounded
//! number, the oldest evicted first) while the engine asks the sender for the headers between,
//! and re-offered once their parent arrives.

use std::collections::{BTreeMap, VecDeque};

use synod_chain::Block;
use synod_chain::hash::Hash;

use crate::engine::NodeId;

/// Orphans held at most: enough for a burst of blocks delivered out of order, small enough that
/// a peer flooding made-up blocks cannot grow memory (each is bounded by the block size).
pub const MAX_ORPHANS: usize = 64;

/// Blocks waiting for their parent.
#[derive(Clone, Debug, Default)]
pub struct OrphanPool {
    blocks: BTreeMap<Hash, (Block, Option<NodeId>)>,
    /// Arrival order, for eviction; ids already gone are skipped.
    order: VecDeque<Hash>,
}

impl OrphanPool {
    /// Orphans held.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Holds `block`, sent by `from`, evicting the oldest orphan if full. Returns false if it
    /// was already held.
    pub fn add(&mut self, block: Block, from: Option<NodeId>) -> bool {
        let hash = block.hash();
        if self.blocks.contains_key(&hash) {
            return false;
        }
        while self.blocks.len() >= MAX_ORPHANS {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.blocks.remove(&oldest);
        }
        self.blocks.insert(hash, (block, from));
        self.order.push_back(hash);
        if self.order.len() > 2 * MAX_ORPHANS {
            let blocks = &self.blocks;
            self.order.retain(|h| blocks.contains_key(h));
        }
        true
    }

    /// Takes out every orphan whose parent is `parent`.
    pub fn take_children(&mut self, parent: &Hash) -> Vec<(Block, Option<NodeId>)> {
        let children: Vec<Hash> = self
            .blocks
            .iter()
            .filter(|(_, (block, _))| block.header.parent == *parent)
            .map(|(hash, _)| *hash)
            .collect();
        children
            .iter()
            .filter_map(|hash| self.blocks.remove(hash))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use synod_chain::BlockHeader;
    use synod_chain::block::{HEADER_VERSION, Seal};
    use synod_chain::keys::PublicKey;

    fn block(parent: Hash, salt: u64) -> Block {
        Block {
            header: BlockHeader {
                version: HEADER_VERSION,
                parent,
                height: 1,
                timestamp_ms: salt,
                tx_root: Hash::ZERO,
                state_root: Hash::ZERO,
                proposer: PublicKey::default(),
                seal: Seal::default(),
            },
            txs: Vec::new(),
        }
    }

    #[test]
    fn bounded_oldest_evicted_first_and_children_come_back_by_parent() {
        let mut pool = OrphanPool::default();
        let parent = Hash([9; 32]);
        let first = block(parent, 0);
        assert!(pool.add(first.clone(), None));
        assert!(!pool.add(first.clone(), None));
        for salt in 1..MAX_ORPHANS as u64 + 5 {
            pool.add(block(Hash([100 + salt as u8; 32]), salt), None);
        }
        assert_eq!(pool.len(), MAX_ORPHANS);
        // The first one was the oldest, so it is gone.
        assert!(pool.take_children(&parent).is_empty());

        let parent = Hash([7; 32]);
        let mut pool = OrphanPool::default();
        pool.add(block(parent, 1), None);
        pool.add(block(parent, 2), None);
        pool.add(block(Hash([8; 32]), 3), None);
        assert_eq!(pool.take_children(&parent).len(), 2);
        assert_eq!(pool.len(), 1);
    }
}
