//! The block tree: every block and header the engine accepted, each with its cumulative work, and
//! the canonical chain through it.
//!
//! The tree is rooted at the oldest retained canonical block. Canonical blocks are indexed by
//! height, so ancestor lookups on the main chain are O(1) and a side branch is walked only down
//! to where it joins. A node may hold only its header (headers-first sync, or an announcement
//! whose body is still being fetched). Blocks are ordered by work, most first, with the block
//! seen first ahead among equals: the heaviest block is the first of that order, and "first seen
//! wins ties" falls out of it.
//!
//! Memory is bounded by the engine: it prunes everything below its finalized height except the
//! headers that validation still reads, and caps the blocks off the canonical chain.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap, VecDeque};

use synod_chain::hash::Hash;
use synod_chain::keys::Address;
use synod_chain::ledger::Account;
use synod_chain::pow::work::Chainwork;
use synod_chain::{Block, BlockHeader, SignedTransaction};

use crate::engine::{Millis, NodeId};

/// A block (or header) in the tree.
#[derive(Clone, Debug)]
pub struct TreeNode {
    /// The header.
    pub header: BlockHeader,
    /// Its id.
    pub hash: Hash,
    /// Work of the chain from genesis up to and including this block.
    pub chainwork: Chainwork,
    /// The transactions, once fetched (dropped again once the block is final).
    pub body: Option<Vec<SignedTransaction>>,
    /// Accounts as they were before this block: kept while it is canonical and above the
    /// finalized height, to rewind it.
    pub undo: Option<Vec<(Address, Account)>>,
    /// Arrival order; the lower wins a tie in work.
    pub seq: u64,
    /// The peer it came from (`None`: mined here, or restored from the store).
    pub from: Option<NodeId>,
    /// Whom its body was last asked from, and when.
    pub requested: Option<(NodeId, Millis)>,
    children: Vec<Hash>,
}

impl TreeNode {
    /// A node for `header` with no body yet.
    pub fn new(header: BlockHeader, chainwork: Chainwork, from: Option<NodeId>) -> TreeNode {
        TreeNode {
            hash: header.hash(),
            header,
            chainwork,
            body: None,
            undo: None,
            seq: 0,
            from,
            requested: None,
            children: Vec::new(),
        }
    }

    /// Its height.
    pub fn height(&self) -> u64 {
        self.header.height
    }

    /// The whole block, if its body is here.
    pub fn block(&self) -> Option<Block> {
        self.body.as_ref().map(|txs| Block {
            header: self.header,
            txs: txs.clone(),
        })
    }
}

type WorkKey = (Reverse<Chainwork>, u64, Hash);

/// Blocks by id, the canonical chain, and the order of work.
#[derive(Clone, Debug)]
pub struct BlockTree {
    nodes: HashMap<Hash, TreeNode>,
    by_work: BTreeSet<WorkKey>,
    /// `canonical[i]` is the canonical block at height `base + i`; the last is the tip.
    canonical: VecDeque<Hash>,
    base: u64,
    next_seq: u64,
}

fn key(node: &TreeNode) -> WorkKey {
    (Reverse(node.chainwork), node.seq, node.hash)
}

impl BlockTree {
    /// A tree of one canonical chain (lowest first, each the parent of the next; not empty).
    pub fn from_chain(chain: Vec<TreeNode>) -> BlockTree {
        let base = chain.first().map_or(0, TreeNode::height);
        let mut tree = BlockTree {
            nodes: HashMap::new(),
            by_work: BTreeSet::new(),
            canonical: VecDeque::new(),
            base,
            next_seq: 0,
        };
        let mut parent: Option<Hash> = None;
        for mut node in chain {
            node.seq = tree.next_seq;
            tree.next_seq += 1;
            if let Some(p) = parent.and_then(|p| tree.nodes.get_mut(&p)) {
                p.children.push(node.hash);
            }
            parent = Some(node.hash);
            tree.canonical.push_back(node.hash);
            tree.by_work.insert(key(&node));
            tree.nodes.insert(node.hash, node);
        }
        tree
    }

    /// The block `hash`, if in the tree.
    pub fn get(&self, hash: &Hash) -> Option<&TreeNode> {
        self.nodes.get(hash)
    }

    /// The block `hash` for changes that keep its id and work.
    pub fn get_mut(&mut self, hash: &Hash) -> Option<&mut TreeNode> {
        self.nodes.get_mut(hash)
    }

    /// Whether `hash` is in the tree.
    pub fn contains(&self, hash: &Hash) -> bool {
        self.nodes.contains_key(hash)
    }

    /// Blocks in the tree.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Blocks off the canonical chain (side branches and headers ahead of the tip).
    pub fn off_chain(&self) -> usize {
        self.nodes.len() - self.canonical.len()
    }

    /// Height of the oldest retained canonical block.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// The canonical tip.
    pub fn tip(&self) -> &TreeNode {
        self.canonical
            .back()
            .and_then(|h| self.nodes.get(h))
            .expect("the canonical chain always holds its root")
    }

    /// The canonical block at `height`.
    pub fn canonical_at(&self, height: u64) -> Option<&TreeNode> {
        let index = usize::try_from(height.checked_sub(self.base)?).ok()?;
        self.canonical.get(index).and_then(|h| self.nodes.get(h))
    }

    /// Whether `node` is on the canonical chain.
    pub fn is_canonical(&self, node: &TreeNode) -> bool {
        self.canonical_at(node.height())
            .is_some_and(|c| c.hash == node.hash)
    }

    /// The ancestor of `hash` (or `hash` itself) at `height`.
    pub fn ancestor(&self, hash: &Hash, height: u64) -> Option<&TreeNode> {
        let mut node = self.nodes.get(hash)?;
        while node.height() > height {
            if self.is_canonical(node) {
                return self.canonical_at(height);
            }
            node = self.nodes.get(&node.header.parent)?;
        }
        (node.height() == height).then_some(node)
    }

    /// Timestamps of `hash` and up to `count - 1` of its ancestors, oldest first.
    pub fn timestamps(&self, hash: &Hash, count: usize) -> Vec<u64> {
        let mut out = Vec::with_capacity(count);
        let mut node = self.nodes.get(hash);
        while let Some(n) = node {
            if out.len() == count {
                break;
            }
            out.push(n.header.timestamp_ms);
            node = self.nodes.get(&n.header.parent);
        }
        out.reverse();
        out
    }

    /// The canonical block where `hash`'s branch joins the canonical chain (`hash` itself if it
    /// is canonical).
    pub fn fork_point(&self, hash: &Hash) -> Option<&TreeNode> {
        let mut node = self.nodes.get(hash)?;
        while !self.is_canonical(node) {
            node = self.nodes.get(&node.header.parent)?;
        }
        Some(node)
    }

    /// The blocks after `from` up to and including `to`, lowest first (`to` must descend from
    /// `from`).
    pub fn path(&self, from: &Hash, to: &Hash) -> Vec<Hash> {
        let mut path = Vec::new();
        let mut cursor = *to;
        while cursor != *from {
            let Some(node) = self.nodes.get(&cursor) else {
                break;
            };
            path.push(cursor);
            cursor = node.header.parent;
        }
        path.reverse();
        path
    }

    /// Every block, most work first, the earliest seen first among equals.
    pub fn by_work(&self) -> impl Iterator<Item = &TreeNode> + '_ {
        self.by_work
            .iter()
            .filter_map(|(_, _, h)| self.nodes.get(h))
    }

    /// The block with the most work (a header, perhaps, whose body is not here yet).
    pub fn best(&self) -> &TreeNode {
        self.by_work().next().unwrap_or_else(|| self.tip())
    }

    /// Adds `node` as a child of its parent, which must be in the tree. Returns false (and adds
    /// nothing) if the parent is missing or the block is already here.
    pub fn insert(&mut self, mut node: TreeNode) -> bool {
        if self.nodes.contains_key(&node.hash) {
            return false;
        }
        let Some(parent) = self.nodes.get_mut(&node.header.parent) else {
            return false;
        };
        parent.children.push(node.hash);
        node.seq = self.next_seq;
        self.next_seq += 1;
        self.by_work.insert(key(&node));
        self.nodes.insert(node.hash, node);
        true
    }

    /// Removes `hash` and everything that descends from it (never a canonical block). Returns the
    /// removed ids.
    pub fn remove_branch(&mut self, hash: &Hash) -> Vec<Hash> {
        let Some(node) = self.nodes.get(hash) else {
            return Vec::new();
        };
        if self.is_canonical(node) {
            return Vec::new();
        }
        let parent = node.header.parent;
        if let Some(p) = self.nodes.get_mut(&parent) {
            p.children.retain(|c| c != hash);
        }
        let mut removed = Vec::new();
        let mut stack = vec![*hash];
        while let Some(h) = stack.pop() {
            if let Some(node) = self.nodes.remove(&h) {
                self.by_work.remove(&key(&node));
                stack.extend(node.children.iter().copied());
                removed.push(h);
            }
        }
        removed
    }

    /// Cuts the canonical chain back to `height` (the blocks above stay, as a side branch).
    /// Returns the ids cut, highest first.
    pub fn rewind_canonical(&mut self, height: u64) -> Vec<Hash> {
        let mut cut = Vec::new();
        while self.base + (self.canonical.len() as u64) > height + 1 && self.canonical.len() > 1 {
            if let Some(h) = self.canonical.pop_back() {
                cut.push(h);
            }
        }
        cut
    }

    /// Appends `hash`, a child of the tip, to the canonical chain.
    pub fn push_canonical(&mut self, hash: Hash) {
        debug_assert_eq!(
            self.nodes.get(&hash).map(|n| n.header.parent),
            Some(self.tip().hash)
        );
        self.canonical.push_back(hash);
    }

    /// Children of `hash` that are not canonical (the side branches forking there).
    pub fn side_children(&self, hash: &Hash) -> Vec<Hash> {
        let Some(node) = self.nodes.get(hash) else {
            return Vec::new();
        };
        node.children
            .iter()
            .filter(|c| self.nodes.get(c).is_some_and(|n| !self.is_canonical(n)))
            .copied()
            .collect()
    }

    /// Drops the canonical blocks below `height` and every side branch forking below it.
    pub fn prune_below(&mut self, height: u64) {
        while self.base < height && self.canonical.len() > 1 {
            let Some(root) = self.canonical.front().copied() else {
                break;
            };
            for side in self.side_children(&root) {
                self.remove_branch(&side);
            }
            if let Some(node) = self.nodes.remove(&root) {
                self.by_work.remove(&key(&node));
            }
            self.canonical.pop_front();
            self.base += 1;
        }
    }

    /// Removes off-chain leaves, the least work first (the newest first among equals), until at
    /// most `max` blocks are off the canonical chain. The branch leading to `keep` stays.
    pub fn cap_off_chain(&mut self, max: usize, keep: &Hash) -> usize {
        if self.off_chain() <= max {
            return 0;
        }
        let mut removed = 0;
        let protected: BTreeSet<Hash> = {
            let mut path = BTreeSet::new();
            let mut cursor = self.nodes.get(keep);
            while let Some(n) = cursor.filter(|n| !self.is_canonical(n)) {
                path.insert(n.hash);
                cursor = self.nodes.get(&n.header.parent);
            }
            path
        };
        while self.off_chain() > max {
            let leaf = self
                .by_work
                .iter()
                .rev()
                .filter_map(|(_, _, h)| self.nodes.get(h))
                .find(|n| {
                    n.children.is_empty() && !protected.contains(&n.hash) && !self.is_canonical(n)
                })
                .map(|n| n.hash);
            let Some(leaf) = leaf else {
                break;
            };
            removed += self.remove_branch(&leaf).len();
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use synod_chain::block::{HEADER_VERSION, Seal};
    use synod_chain::keys::PublicKey;
    use synod_chain::pow::uint256::U256;

    fn header(parent: Hash, height: u64, salt: u64) -> BlockHeader {
        BlockHeader {
            version: HEADER_VERSION,
            parent,
            height,
            timestamp_ms: 1_000 * height + salt,
            tx_root: Hash::ZERO,
            state_root: Hash::ZERO,
            proposer: PublicKey::default(),
            seal: Seal {
                round: 0,
                bits: 0x207f_ffff,
                nonce: salt,
            },
        }
    }

    fn work(n: u64) -> Chainwork {
        Chainwork::from_u256(U256::from_u64(n))
    }

    /// A tree whose canonical chain is `len` blocks from height 0, each adding work 2.
    fn chain(len: u64) -> BlockTree {
        let mut nodes = Vec::new();
        let mut parent = Hash::ZERO;
        for h in 0..len {
            let node = TreeNode::new(header(parent, h, 0), work(2 * (h + 1)), None);
            parent = node.hash;
            nodes.push(node);
        }
        BlockTree::from_chain(nodes)
    }

    fn child(tree: &mut BlockTree, parent: &Hash, salt: u64, added_work: u64) -> Hash {
        let p = tree.get(parent).unwrap().clone();
        let node = TreeNode::new(
            header(p.hash, p.height() + 1, salt),
            Chainwork::from_u256(
                p.chainwork
                    .as_u256()
                    .saturating_add(U256::from_u64(added_work)),
            ),
            None,
        );
        let hash = node.hash;
        assert!(tree.insert(node));
        hash
    }

    #[test]
    fn ties_go_to_the_block_seen_first() {
        let mut tree = chain(3);
        let tip = tree.tip().hash;
        let first = child(&mut tree, &tip, 1, 2);
        let second = child(&mut tree, &tip, 2, 2);
        assert_eq!(tree.best().hash, first);
        // More work wins over arrival order.
        let heavier = child(&mut tree, &tip, 3, 3);
        assert_eq!(tree.best().hash, heavier);
        let order: Vec<Hash> = tree.by_work().take(3).map(|n| n.hash).collect();
        assert_eq!(order, vec![heavier, first, second]);
    }

    #[test]
    fn ancestors_fork_points_and_paths() {
        let mut tree = chain(5);
        let at2 = tree.canonical_at(2).unwrap().hash;
        let a = child(&mut tree, &at2, 1, 2);
        let b = child(&mut tree, &a, 1, 2);
        assert_eq!(tree.fork_point(&b).unwrap().hash, at2);
        assert_eq!(tree.path(&at2, &b), vec![a, b]);
        assert_eq!(tree.ancestor(&b, 3).unwrap().hash, a);
        assert_eq!(
            tree.ancestor(&b, 1).unwrap().hash,
            tree.canonical_at(1).unwrap().hash
        );
        assert!(tree.ancestor(&b, 9).is_none());
        assert_eq!(tree.timestamps(&b, 3), vec![2_000, 3_001, 4_001]);
        assert_eq!(tree.timestamps(&b, 50).len(), 5);
        let tip = tree.tip().hash;
        assert_eq!(tree.fork_point(&tip).unwrap().hash, tip);
    }

    #[test]
    fn rewinding_keeps_the_old_branch_as_a_side_branch() {
        let mut tree = chain(5);
        let old_tip = tree.tip().hash;
        let at2 = tree.canonical_at(2).unwrap().hash;
        let cut = tree.rewind_canonical(2);
        assert_eq!(cut.len(), 2);
        assert_eq!(cut[0], old_tip);
        assert_eq!(tree.tip().hash, at2);
        assert!(tree.contains(&old_tip));
        assert!(!tree.is_canonical(tree.get(&old_tip).unwrap()));
        let new = child(&mut tree, &at2, 7, 2);
        tree.push_canonical(new);
        assert_eq!(tree.tip().hash, new);
        assert_eq!(tree.side_children(&at2).len(), 1);
        // Removing a side branch takes its descendants; a canonical block is never removed.
        assert_eq!(tree.remove_branch(&cut[1]).len(), 2);
        assert!(tree.remove_branch(&new).is_empty());
        assert_eq!(tree.off_chain(), 0);
    }

    #[test]
    fn pruning_drops_old_blocks_and_side_branches_below() {
        let mut tree = chain(10);
        let at3 = tree.canonical_at(3).unwrap().hash;
        let at7 = tree.canonical_at(7).unwrap().hash;
        let low = child(&mut tree, &at3, 1, 1);
        let high = child(&mut tree, &at7, 1, 1);
        tree.prune_below(5);
        assert_eq!(tree.base(), 5);
        assert!(tree.canonical_at(4).is_none());
        assert!(!tree.contains(&low));
        assert!(tree.contains(&high));
        assert_eq!(tree.len(), 6);
    }

    #[test]
    fn the_off_chain_cap_evicts_the_lightest_leaves_and_spares_the_kept_branch() {
        let mut tree = chain(3);
        let tip = tree.tip().hash;
        let light = child(&mut tree, &tip, 1, 1);
        let keep = child(&mut tree, &tip, 2, 1);
        let heavy = child(&mut tree, &tip, 3, 5);
        let heavy_child = child(&mut tree, &heavy, 3, 5);
        assert_eq!(tree.off_chain(), 4);
        // `keep` ties `light` on work and arrived later, but it is protected.
        assert_eq!(tree.cap_off_chain(3, &keep), 1);
        assert!(!tree.contains(&light));
        assert!(tree.contains(&keep) && tree.contains(&heavy_child));
        // Leaves go first; a parent goes once its children have.
        assert_eq!(tree.cap_off_chain(1, &keep), 2);
        assert!(!tree.contains(&heavy));
        assert!(tree.contains(&keep));
        assert_eq!(tree.off_chain(), 1);
    }
}
