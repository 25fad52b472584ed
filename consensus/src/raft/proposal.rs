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
        // A transaction whose nonce the committed state has passed is already settled.
        let accounts = self.execution.accounts();
        let current = txs.into_iter().filter(|tx| {
            let t = tx.tx();
            accounts
                .get(&tx.sender())
                .is_none_or(|a| t.nonce >= a.nonce)
        });
        let fresh = self.pool.add(now, current);
        #[cfg(feature = "test-faults")]
        if self.fault == super::RaftFault::LossyPool && self.role == Role::Leader {
            for tx in &fresh {
                self.lossy_count += 1;
                if self.lossy_count.is_multiple_of(16) {
                    self.pool.remove(&[tx.id()]);
                }
            }
        }
        if fresh.is_empty() {
            return;
        }
        match (self.role, self.leader) {
            (Role::Leader, _) => self.schedule_batch(now, out),
            // Followers forward client transactions to the leader (Raft §8), so a transaction
            // that reached only a follower is never stranded; they keep a copy in case the
            // leader changes.
            (Role::Follower | Role::Observer, Some(leader)) if leader != self.me => {
                self.forward(leader, fresh, out)
            }
            _ => {}
        }
    }

    /// Cuts a block now if the pipeline is idle or a full block is waiting; otherwise arms the
    /// batching delay, so blocks grow under load and light load is not delayed.
    pub(super) fn schedule_batch(&mut self, now: Millis, out: &mut Vec<Action<RaftMessage>>) {
        if self.pool.is_empty() {
            return;
        }
        let idle = self.log.last_index() == self.commit_index;
        if idle || self.pool.len() >= self.params.max_block_txs as usize {
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

    pub(super) fn template(&self, now: Millis) -> BlockTemplate {
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
        let execution = &self.execution;
        let candidates = self
            .pool
            .candidates(template.max_txs, |a| execution.account(a).nonce);
        let built = match self.execution.build(&template, candidates) {
            Ok(built) => built,
            Err(e) => {
                return out.push(Action::Event(EngineEvent::CommandRejected {
                    reason: format!("could not build a block: {e}"),
                }));
            }
        };
        let dropped = self.pool.remove_rejected(&built.rejected);
        Self::report_dropped(dropped, out);
        if built.block.txs.is_empty() && !force {
            // Nothing applicable (say, only nonces ahead of a gap): no empty block for that.
            self.execution.truncate_above(parent_height);
            return;
        }
        let ids = built.block.tx_ids();
        self.pool.remove(&ids);
        let entry = self.signed_entry(built.block, None);
        self.append_as_leader(now, entry, out);
    }

    /// Appends `entry`, sends it to the followers, then persists it.
    ///
    /// The leader's own write comes after the sends so that it overlaps the followers' writes
    /// (Raft dissertation §10.2.1). That is safe: the leader counts its own copy towards a commit
    /// only in `maybe_commit` below, which runs after the `Persist` in this same action list, and
    /// the driver finishes every action of a step, the write included, before it handles the
    /// next input (an acknowledgement). A crash between the sends and the write loses an entry
    /// that was never counted. Followers still persist before they acknowledge.
    pub(super) fn append_as_leader(
        &mut self,
        now: Millis,
        entry: LogEntry,
        out: &mut Vec<Action<RaftMessage>>,
    ) {
        let write = storage::write_entry(&entry);
        let changed = entry.change.is_some();
        self.log.push(entry);
        if changed {
            self.on_membership_changed(out);
        }
        self.replicate(now, out);
        out.push(Action::Persist(vec![write]));
        self.maybe_commit(now, out);
    }
}
