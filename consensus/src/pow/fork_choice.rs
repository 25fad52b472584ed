//! Fork choice and reorganisation. The canonical tip is the block with the most cumulative work
//! whose whole branch is here and valid; the first seen wins a tie, because only strictly more
//! work displaces the tip. A heavier branch is validated in full against the state at its fork
//! point (the tip's accounts with the canonical blocks above the fork undone) before anything is
//! emitted; a block that fails is refused with everything above it and the next heaviest branch
//! is tried. A branch that holds becomes canonical: `Rewind` to the fork point, a `Commit` per
//! block, the abandoned blocks' transactions back to the pool unless the new branch holds them.
//! A branch forking below the finalized height is refused, never followed.

use std::collections::{BTreeSet, HashSet};

use synod_chain::hash::Hash;
use synod_chain::ledger::StateChanges;
use synod_chain::{Finality, SignedTransaction};

use super::ledger_view::{self, ForkView, undo_data};
use super::messages::MAX_ANNOUNCE_HEADERS;
use super::restore::chainwork_proof;
use super::validation::Rejection;
use super::{MAX_OFF_CHAIN, PowEngine, PowMessage};
use crate::engine::{Action, CommittedBlock, EngineEvent};

impl PowEngine {
    /// After blocks or headers arrived: follow the heaviest valid branch, keep the tree within
    /// bounds, fetch the bodies the best known chain still lacks, and mine on a new tip. Returns
    /// whether the tip changed.
    pub(super) fn after_new_data(&mut self, out: &mut Vec<Action<PowMessage>>) -> bool {
        let changed = self.activate_best_chain(out);
        let best = self.tree.best().hash;
        self.tree.cap_off_chain(MAX_OFF_CHAIN, &best);
        self.request_bodies(out);
        if changed {
            self.refresh_template(out);
        }
        changed
    }

    /// Switches to the heaviest branch that validates, as often as one beats the tip. Returns
    /// whether the tip changed.
    fn activate_best_chain(&mut self, out: &mut Vec<Action<PowMessage>>) -> bool {
        let old_tip = self.tip_hash();
        let mut lowest_fork: Option<u64> = None;
        while let Some(best) = self.best_complete_branch() {
            let Some((fork, fork_height)) =
                self.tree.fork_point(&best).map(|n| (n.hash, n.height()))
            else {
                break;
            };
            if fork_height < self.finalized {
                if let Some(first) = self.tree.path(&fork, &best).first().copied() {
                    self.tree.remove_branch(&first);
                }
                out.push(Action::Event(EngineEvent::ReorgRefused {
                    fork_height,
                    finalized: self.finalized,
                    tip: best,
                }));
                continue;
            }
            match self.validate_branch(&fork, &best) {
                Ok(branch) => {
                    self.switch_to(fork_height, branch, out);
                    lowest_fork = Some(lowest_fork.map_or(fork_height, |f| f.min(fork_height)));
                }
                Err((hash, rejection)) => {
                    let (height, from) = self
                        .tree
                        .get(&hash)
                        .map_or((0, None), |n| (n.height(), n.from));
                    self.refuse(hash, height, from, &rejection, out);
                }
            }
        }
        let changed = self.tip_hash() != old_tip;
        if let (true, Some(fork)) = (changed, lowest_fork) {
            self.announce_tip(fork, out);
        }
        changed
    }

    /// The block with the most work above the tip's whose branch down to the canonical chain
    /// has every body.
    fn best_complete_branch(&self) -> Option<Hash> {
        let tip_work = self.tree.tip().chainwork;
        let mut incomplete: HashSet<Hash> = HashSet::new();
        for node in self.tree.by_work() {
            if node.chainwork <= tip_work {
                return None;
            }
            let mut walked = Vec::new();
            let mut cursor = Some(node);
            let complete = loop {
                let Some(n) = cursor else {
                    break false;
                };
                if self.tree.is_canonical(n) {
                    break true;
                }
                if n.body.is_none() || incomplete.contains(&n.hash) {
                    break false;
                }
                walked.push(n.hash);
                cursor = self.tree.get(&n.header.parent);
            };
            if complete {
                return Some(node.hash);
            }
            incomplete.extend(walked);
        }
        None
    }

    /// Applies the branch from `fork` (exclusive) to `best` to the state at `fork`, checking
    /// every block fully. Returns each block's changes, or the first block that failed and why.
    fn validate_branch(
        &mut self,
        fork: &Hash,
        best: &Hash,
    ) -> Result<Vec<(Hash, StateChanges)>, (Hash, Rejection)> {
        let Some(fork_node) = self.tree.get(fork) else {
            return Err((*best, Rejection::Unavailable(format!("fork point {fork}"))));
        };
        let mut parent = fork_node.header;
        let tip_height = self.tree.tip().height();
        let mut view = ForkView::at_tip(&self.accounts);
        for height in (parent.height + 1..=tip_height).rev() {
            match self.tree.canonical_at(height).and_then(|n| n.undo.as_ref()) {
                Some(undo) => view.undo(undo),
                None => {
                    return Err((
                        *best,
                        Rejection::Unavailable(format!("undo data of block {height}")),
                    ));
                }
            }
        }
        let mut branch = Vec::new();
        for hash in self.tree.path(fork, best) {
            let Some(block) = self.tree.get(&hash).and_then(|n| n.block()) else {
                return Err((hash, Rejection::Unavailable(format!("body of {hash}"))));
            };
            match self
                .ledger
                .apply_block(&mut self.verifier, &view, &parent, &block)
            {
                Ok(changes) => {
                    view.apply(&changes);
                    parent = block.header;
                    branch.push((hash, changes));
                }
                Err(e) => return Err((hash, Rejection::State(e.to_string()))),
            }
        }
        Ok(branch)
    }

    /// Makes the validated `branch` canonical on top of the canonical block at `fork_height`.
    fn switch_to(
        &mut self,
        fork_height: u64,
        branch: Vec<(Hash, StateChanges)>,
        out: &mut Vec<Action<PowMessage>>,
    ) {
        let removed = self.tree.tip().height() - fork_height;
        let mut abandoned: Vec<SignedTransaction> = Vec::new();
        let undo_state = self.fault.undoes_state();
        if removed > 0 {
            out.push(Action::Rewind {
                height: fork_height,
            });
            for hash in self.tree.rewind_canonical(fork_height) {
                if let Some(node) = self.tree.get_mut(&hash) {
                    if let Some(undo) = node.undo.take()
                        && undo_state
                    {
                        ledger_view::undo(&mut self.accounts, &undo);
                    }
                    if let Some(body) = &node.body {
                        abandoned.extend(body.iter().cloned());
                    }
                }
            }
        }
        let added = branch.len() as u64;
        let mut committed: HashSet<Hash> = HashSet::new();
        let mut senders = BTreeSet::new();
        for (hash, changes) in branch {
            let Some(node) = self.tree.get_mut(&hash) else {
                continue;
            };
            node.undo = Some(undo_data(&changes));
            let block = node.block().expect("a validated branch has every body");
            let proof = chainwork_proof(&node.chainwork);
            ledger_view::apply(&mut self.accounts, &changes);
            self.tree.push_canonical(hash);
            for tx in &block.txs {
                committed.insert(tx.id());
                senders.insert(tx.sender());
            }
            self.pool.unpark_credited(&block);
            out.push(Action::Commit(Box::new(CommittedBlock {
                block,
                changes,
                proof,
                finality: Finality::Tentative,
                persist: Vec::new(),
                replayable: false,
            })));
        }
        if !self.fault.gives_back() {
            abandoned.clear();
        }
        let returned: Vec<SignedTransaction> = abandoned
            .into_iter()
            .filter(|tx| !committed.contains(&tx.id()))
            .collect();
        senders.extend(returned.iter().map(SignedTransaction::sender));
        self.pool.give_back(self.now, returned);
        self.pool.remove(&committed);
        let dropped = self
            .pool
            .prune_committed(senders, &self.accounts, &committed);
        for (id, reason) in dropped {
            out.push(Action::Event(EngineEvent::TxDropped { id, reason }));
        }
        if removed > 0 {
            out.push(Action::Event(EngineEvent::Reorg {
                fork_height,
                removed,
                added,
                tip: self.tip_hash(),
            }));
        }
        let final_height = self.next_final_height();
        if final_height > self.finalized {
            self.set_finalized(final_height);
            out.push(Action::Finalize {
                height: final_height,
            });
        }
    }

    /// The height the tip's depth makes final, held back (by up to another reorganisation limit)
    /// to below the fork point of a heavier chain whose headers are known but whose bodies have
    /// not arrived yet: a node cut off from its peers' bodies must not finalize its own branch
    /// against the chain it is about to fetch. The hold is bounded so that headers alone, which
    /// cost only their work, cannot keep a node's undo data growing.
    fn next_final_height(&self) -> u64 {
        let tip = self.tree.tip();
        let depth = self.params.max_reorg_depth;
        let by_depth = tip.height().saturating_sub(depth);
        let best = self.tree.best();
        if best.chainwork <= tip.chainwork {
            return by_depth;
        }
        match self.tree.fork_point(&best.hash) {
            Some(fork) => by_depth.min(
                fork.height()
                    .max(tip.height().saturating_sub(depth.saturating_mul(2))),
            ),
            None => by_depth,
        }
    }

    /// Tells every peer about the new tip, with the headers of the branch above `fork_height`
    /// (the last few), so that a peer on the old branch can fetch the new one at once.
    fn announce_tip(&self, fork_height: u64, out: &mut Vec<Action<PowMessage>>) {
        let tip = self.tree.tip().height();
        let from = (fork_height + 1).max(tip.saturating_sub(MAX_ANNOUNCE_HEADERS as u64 - 1));
        let headers = (from..=tip)
            .filter_map(|h| self.tree.canonical_at(h).map(|n| n.header))
            .collect();
        out.push(Action::Broadcast(PowMessage::Announce { headers }));
    }
}
