//! The leader's block production: pending transactions are batched (a short delay, or a full
//! block at once) into blocks built on the speculative state of the uncommitted log.

use synod_chain::SignedTransaction;
use synod_chain::block::Seal;
use synod_chain::ledger::BlockTemplate;

use super::storage;
use super::{BATCH_TIMER, LogEntry, MAX_UNCOMMITTED_BLOCKS, RaftEngine, RaftMessage};
use crate::engine::{Action, EngineEvent, Millis, Role};

impl RaftEngine {
    pub(super) fn on_transactions(
        &mut self,
        now: Millis,
        txs: Vec<SignedTransaction>,
        out: &mut Vec<Action<RaftMessage>>,
    ) {
        self.pool.add(txs);
        if self.role == Role::Leader {
            self.schedule_batch(now, out);
        }
    }

    /// Cuts a block now if a full one is waiting, otherwise arms the batching delay.
    pub(super) fn schedule_batch(&mut self, now: Millis, out: &mut Vec<Action<RaftMessage>>) {
        if self.pool.is_empty() {
            return;
        }
        if self.pool.len() >= self.params.max_block_txs as usize {
            return self.propose_block(now, false, out);
        }
        let Some(state) = self.leader_state.as_mut() else {
            return;
        };
        if !state.batch_armed {
            state.batch_armed = true;
            out.push(Action::SetTimer {
                id: BATCH_TIMER,
                after: self.params.batch_delay_ms,
            });
        }
    }

    pub(super) fn on_batch_timer(&mut self, now: Millis, out: &mut Vec<Action<RaftMessage>>) {
        if let Some(state) = self.leader_state.as_mut() {
            state.batch_armed = false;
        }
        if self.role == Role::Leader && !self.pool.is_empty() {
            self.propose_block(now, false, out);
        }
    }

    /// Brings the speculative execution in line with the log: drops speculative blocks the log
    /// no longer holds and executes entries it has not seen (an earlier leader's). Returns false
    /// if an entry does not apply.
    pub(super) fn sync_execution(&mut self, out: &mut Vec<Action<RaftMessage>>) -> bool {
        let base = self.applied();
        let mut keep = base;
        for (i, hash) in self.execution.pending_hashes().enumerate() {
            let index = base + 1 + i as u64;
            if self.log.entry(index).map(|e| e.block.hash()) != Some(hash) {
                break;
            }
            keep = index;
        }
        self.execution.truncate_above(keep);
        while self.execution.head_height() < self.log.last_index() {
            let index = self.execution.head_height() + 1;
            let Some(entry) = self.log.entry(index) else {
                break;
            };
            let block = entry.block.clone();
            if let Err(e) = self.execution.execute(None, &block) {
                out.push(Action::Event(EngineEvent::Divergence {
                    height: index,
                    detail: format!("uncommitted entry does not apply: {e}"),
                }));
                return false;
            }
        }
        true
    }

    fn template(&self, now: Millis) -> BlockTemplate {
        BlockTemplate {
            proposer: self.me,
            timestamp_ms: now.max(self.execution.head().timestamp_ms + 1),
            seal: Seal {
                round: self.hard.term,
                bits: 0,
                nonce: 0,
            },
            max_txs: self.params.max_block_txs as usize,
        }
    }

    /// Builds and appends the next block from the pool. `force` proposes even an empty block and
    /// ignores the in-flight limit (the no-op of a new leader, an operator's `propose`).
    pub(super) fn propose_block(
        &mut self,
        now: Millis,
        force: bool,
        out: &mut Vec<Action<RaftMessage>>,
    ) {
        if self.role != Role::Leader || self.halted {
            return;
        }
        let transferring = self
            .leader_state
            .as_ref()
            .is_some_and(|s| s.transfer.is_some());
        let uncommitted = self.log.last_index() - self.commit_index;
        if !force && (transferring || uncommitted >= MAX_UNCOMMITTED_BLOCKS || self.pool.is_empty())
        {
            return;
        }
        if !self.sync_execution(out) {
            return;
        }
        let template = self.template(now);
        let parent_height = self.execution.head_height();
        let candidates = self.pool.candidates(template.max_txs);
        let built = match self.execution.build(&template, candidates) {
            Ok(built) => built,
            Err(e) => {
                return out.push(Action::Event(EngineEvent::CommandRejected {
                    reason: format!("could not build a block: {e}"),
                }));
            }
        };
        self.pool.remove_rejected(&built.rejected);
        if built.block.txs.is_empty() && !force {
            // Nothing applicable (say, only nonces ahead of a gap): no empty block for that.
            self.execution.truncate_above(parent_height);
            return;
        }
        let ids = built.block.tx_ids();
        self.pool.remove(&ids);
        let entry = LogEntry {
            term: self.hard.term,
            block: built.block,
            change: None,
        };
        self.append_as_leader(now, entry, out);
    }

    /// Persists `entry`, appends it, and sends it to the followers.
    pub(super) fn append_as_leader(
        &mut self,
        now: Millis,
        entry: LogEntry,
        out: &mut Vec<Action<RaftMessage>>,
    ) {
        out.push(Action::Persist(vec![storage::write_entry(&entry)]));
        let changed = entry.change.is_some();
        self.log.push(entry);
        if changed {
            self.on_membership_changed(out);
        }
        self.replicate(now, out);
        self.maybe_commit(now, out);
    }
}
