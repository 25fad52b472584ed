//! Admission: every header and block offered to the engine (announced, synced, fetched, pushed,
//! mined here) passes through here. A header whose parent is known is checked against its
//! parent's chain and joins the tree; a body is checked against its header; a block whose parent
//! is unknown waits among the orphans while its ancestors are asked for; one stamped too far
//! ahead waits among the early arrivals. Every refusal is reported with its reason and the peer
//! it came from, and a block found invalid is remembered with everything built on it.

use synod_chain::hash::Hash;
use synod_chain::pow::timestamp::MEDIAN_TIME_SPAN;
use synod_chain::pow::work::work;
use synod_chain::{Block, BlockHeader};

use super::early::Early;
use super::tree::TreeNode;
use super::validation::{HeaderContext, Rejection, check_body, check_header};
use super::{EARLY_TIMER, PowEngine, PowMessage};
use crate::engine::{Action, EngineEvent, NodeId};

/// What became of a header or block offered to the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Already in the tree (with its body, for a block).
    Known,
    /// Joined the tree (a header, or the body of a known header).
    Added,
    /// Its parent is unknown.
    Orphan,
    /// Stamped too far ahead of the clock: held until it is due.
    Early,
    /// Refused, and reported.
    Rejected,
}

impl Admission {
    /// Whether the block or header is now in the tree.
    pub fn in_tree(self) -> bool {
        matches!(self, Admission::Known | Admission::Added)
    }
}

impl PowEngine {
    /// Checks `header` (id `hash`) against the chain ending at its parent.
    pub(super) fn check_header_in_tree(
        &self,
        header: &BlockHeader,
        hash: &Hash,
        parent: &TreeNode,
    ) -> Result<(), Rejection> {
        if parent.height() < self.finalized {
            return Err(Rejection::BelowFinalized {
                fork: parent.height(),
                finalized: self.finalized,
            });
        }
        let expected_bits = self
            .difficulty
            .next_bits(&parent.header, |h| {
                self.tree
                    .ancestor(&parent.hash, h)
                    .map(|n| n.header.timestamp_ms)
            })
            .map_err(|e| Rejection::Difficulty(e.to_string()))?;
        let timestamps = self.tree.timestamps(&parent.hash, MEDIAN_TIME_SPAN);
        check_header(
            header,
            hash,
            &HeaderContext {
                parent: &parent.header,
                expected_bits,
                recent_timestamps: &timestamps,
                pow_limit: self.difficulty.pow_limit(),
                now: self.now,
                max_future_ms: self.params.max_future_block_time_ms,
            },
        )
    }

    pub(super) fn report_rejection(
        from: Option<NodeId>,
        hash: Hash,
        height: u64,
        rejection: &Rejection,
        out: &mut Vec<Action<PowMessage>>,
    ) {
        out.push(Action::Event(EngineEvent::BlockRejected {
            from,
            hash,
            height,
            reason: rejection.to_string(),
        }));
    }

    /// Refuses block `hash`: reports it, drops it and its descendants from the tree, and, if
    /// the rejection condemns it, remembers them all as invalid. A block refused only because
    /// following it would undo final blocks is reported as a refused reorganisation, not against
    /// its sender: an honest peer that was cut off for long sends exactly that.
    pub(super) fn refuse(
        &mut self,
        hash: Hash,
        height: u64,
        from: Option<NodeId>,
        rejection: &Rejection,
        out: &mut Vec<Action<PowMessage>>,
    ) {
        match rejection {
            Rejection::BelowFinalized { fork, finalized } => {
                out.push(Action::Event(EngineEvent::ReorgRefused {
                    fork_height: *fork,
                    finalized: *finalized,
                    tip: hash,
                }));
            }
            _ => {
                let from = from.filter(|_| rejection.blames_sender());
                Self::report_rejection(from, hash, height, rejection, out);
            }
        }
        let removed = self.tree.remove_branch(&hash);
        if rejection.condemns_block() {
            self.invalid.insert(hash);
            for h in removed {
                self.invalid.insert(h);
            }
        }
    }

    fn admit_header(
        &mut self,
        header: BlockHeader,
        from: Option<NodeId>,
        out: &mut Vec<Action<PowMessage>>,
    ) -> Admission {
        let hash = header.hash();
        if self.tree.contains(&hash) {
            return Admission::Known;
        }
        if self.invalid.contains(&hash) {
            return Admission::Rejected;
        }
        if self.invalid.contains(&header.parent) {
            self.refuse(
                hash,
                header.height,
                from,
                &Rejection::InvalidAncestor(header.parent),
                out,
            );
            return Admission::Rejected;
        }
        let Some(parent) = self.tree.get(&header.parent) else {
            return Admission::Orphan;
        };
        let parent_work = parent.chainwork;
        match self.check_header_in_tree(&header, &hash, parent) {
            Ok(()) => {}
            Err(rejection) if rejection.is_deferred() => return Admission::Early,
            Err(rejection) => {
                self.refuse(hash, header.height, from, &rejection, out);
                return Admission::Rejected;
            }
        }
        // The bits passed the target check above, so they decode.
        let Ok(block_work) = work(header.seal.bits) else {
            return Admission::Rejected;
        };
        self.tree
            .insert(TreeNode::new(header, parent_work + block_work, from));
        Admission::Added
    }

    fn admit_block(
        &mut self,
        block: Block,
        from: Option<NodeId>,
        out: &mut Vec<Action<PowMessage>>,
    ) -> Admission {
        let hash = block.hash();
        let admission = match self.tree.get(&hash) {
            Some(node) if node.body.is_some() => return Admission::Known,
            Some(_) => Admission::Known,
            None => self.admit_header(block.header, from, out),
        };
        match admission {
            Admission::Known | Admission::Added => {
                let chain_id = self.ledger.rules().chain_id.clone();
                match check_body(&block, &chain_id, &mut self.verifier) {
                    Ok(()) => {
                        if let Some(node) = self.tree.get_mut(&hash) {
                            node.body = Some(block.txs);
                            node.requested = None;
                        }
                        Admission::Added
                    }
                    Err(rejection) if rejection.condemns_block() => {
                        self.refuse(hash, block.header.height, from, &rejection, out);
                        Admission::Rejected
                    }
                    Err(rejection) => {
                        Self::report_rejection(from, hash, block.header.height, &rejection, out);
                        Admission::Rejected
                    }
                }
            }
            Admission::Orphan => {
                self.orphans.add(block, from);
                Admission::Orphan
            }
            Admission::Early => {
                self.early.add(Early::Block(block), from);
                self.arm_early_timer(out);
                Admission::Early
            }
            Admission::Rejected => Admission::Rejected,
        }
    }

    /// Offers a header; one that joins the tree may let waiting orphans in after it.
    pub(super) fn offer_header(
        &mut self,
        header: BlockHeader,
        from: Option<NodeId>,
        out: &mut Vec<Action<PowMessage>>,
    ) -> Admission {
        let hash = header.hash();
        let admission = self.admit_header(header, from, out);
        match admission {
            Admission::Added => self.adopt_orphans(hash, out),
            Admission::Early => {
                self.early.add(Early::Header(header), from);
                self.arm_early_timer(out);
            }
            _ => {}
        }
        admission
    }

    /// Offers a block. An orphan is held, and with `ask` its sender is asked for the headers
    /// that connect it.
    pub(super) fn offer_block(
        &mut self,
        block: Block,
        from: Option<NodeId>,
        ask: bool,
        out: &mut Vec<Action<PowMessage>>,
    ) -> Admission {
        let hash = block.hash();
        let admission = self.admit_block(block, from, out);
        match admission {
            Admission::Added => self.adopt_orphans(hash, out),
            Admission::Orphan if ask => {
                if let Some(peer) = from {
                    let locator = self.locator(&self.tip_hash());
                    out.push(Action::Send {
                        to: peer,
                        msg: PowMessage::GetHeaders { locator },
                    });
                }
            }
            _ => {}
        }
        admission
    }

    /// Lets in the orphans waiting for `parent`, and theirs after them.
    fn adopt_orphans(&mut self, parent: Hash, out: &mut Vec<Action<PowMessage>>) {
        if self.orphans.is_empty() {
            return;
        }
        let mut parents = vec![parent];
        while let Some(parent) = parents.pop() {
            for (block, from) in self.orphans.take_children(&parent) {
                let hash = block.hash();
                if self.admit_block(block, from, out).in_tree() {
                    parents.push(hash);
                }
            }
        }
    }

    pub(super) fn arm_early_timer(&mut self, out: &mut Vec<Action<PowMessage>>) {
        if self.early.is_empty() {
            return;
        }
        if let Some(due) = self.early.next_due(self.params.max_future_block_time_ms) {
            out.push(Action::SetTimer {
                id: EARLY_TIMER,
                after: due.saturating_sub(self.now).max(1),
            });
        }
    }

    /// Offers again what arrived early and is due now.
    pub(super) fn on_early_timer(&mut self, out: &mut Vec<Action<PowMessage>>) {
        let due = self
            .early
            .take_due(self.now, self.params.max_future_block_time_ms);
        for (item, from) in due {
            match item {
                Early::Header(header) => {
                    self.offer_header(header, from, out);
                }
                Early::Block(block) => {
                    self.offer_block(block, from, true, out);
                }
            }
        }
        self.arm_early_timer(out);
        self.after_new_data(out);
    }
}
