//! Log replication: pipelined appends with fast back-off on conflict, the commit rule, applying
//! committed blocks, and log compaction behind a snapshot.

use synod_chain::Finality;
use synod_chain::codec;
use synod_chain::store::EngineWrite;

use super::messages::Conflict;
use super::proof::RaftCommitProof;
use super::storage;
use super::{
    HEARTBEAT_TIMER, LeaderContact, LogEntry, MAX_APPEND_BYTES, MAX_APPEND_ENTRIES,
    MAX_INFLIGHT_APPENDS, RaftEngine, RaftMessage, SnapshotMeta,
};
use crate::engine::{Action, CommittedBlock, EngineEvent, Millis, NodeId, Role};

impl RaftEngine {
    /// Sends the next append (or snapshot) to `peer`, pipelining up to a window of appends.
    pub(super) fn send_append(
        &mut self,
        now: Millis,
        peer: NodeId,
        out: &mut Vec<Action<RaftMessage>>,
    ) {
        let snapshot_index = self.log.snapshot_index();
        let Some(p) = self
            .leader_state
            .as_mut()
            .and_then(|s| s.progress.get_mut(&peer))
        else {
            return;
        };
        if p.snapshot_offset.is_some() {
            return;
        }
        if p.next <= snapshot_index {
            return self.start_snapshot(now, peer, out);
        }
        if p.inflight >= MAX_INFLIGHT_APPENDS || (p.probing && p.inflight > 0) {
            return;
        }
        let prev_index = p.next - 1;
        let Some(prev_term) = self.log.term_at(prev_index) else {
            return;
        };
        let entries = self
            .log
            .entries_from(p.next, MAX_APPEND_ENTRIES, MAX_APPEND_BYTES);
        // A probe does not move `next`: its answer decides where to go.
        if let Some(last) = entries.last().filter(|_| !p.probing) {
            p.next = last.index() + 1;
        }
        p.inflight += 1;
        out.push(Action::Send {
            to: peer,
            msg: RaftMessage::Append {
                term: self.hard.term,
                prev_index,
                prev_term,
                entries,
                commit: self.commit_index,
                overloaded: self.pressure.is_on(),
            },
        });
    }

    fn peers(&self) -> Vec<NodeId> {
        self.leader_state
            .as_ref()
            .map(|s| s.progress.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Sends new entries to every follower that is not throttled.
    pub(super) fn replicate(&mut self, now: Millis, out: &mut Vec<Action<RaftMessage>>) {
        for peer in self.peers() {
            self.send_append(now, peer, out);
        }
    }

    pub(super) fn on_heartbeat(&mut self, now: Millis, out: &mut Vec<Action<RaftMessage>>) {
        if self.role != Role::Leader {
            return;
        }
        for peer in self.peers() {
            let resend_snapshot = match self
                .leader_state
                .as_mut()
                .and_then(|s| s.progress.get_mut(&peer))
            {
                Some(p) => {
                    // Lost messages stall a pipeline; a heartbeat restarts it from `next`, and a
                    // follower that lacks entries answers with where to resume.
                    p.inflight = 0;
                    p.snapshot_offset.is_some()
                }
                None => continue,
            };
            if resend_snapshot {
                self.send_snapshot_chunk(peer, out);
            } else {
                self.send_append(now, peer, out);
            }
        }
        out.push(Action::SetTimer {
            id: HEARTBEAT_TIMER,
            after: self.params.heartbeat_interval_ms,
        });
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_append_response(
        &mut self,
        now: Millis,
        from: NodeId,
        term: u64,
        success: bool,
        match_index: u64,
        conflict: Option<Conflict>,
        out: &mut Vec<Action<RaftMessage>>,
    ) {
        if term > self.hard.term {
            return self.become_follower(term, None, out);
        }
        if self.role != Role::Leader || term < self.hard.term {
            return;
        }
        let last_index = self.log.last_index();
        let conflict_next = conflict.map(|c| match c.term {
            Some(t) => self.log.last_index_of_term(t).map_or(c.index, |i| i + 1),
            None => c.index,
        });
        let Some(state) = self.leader_state.as_mut() else {
            return;
        };
        let transfer = state.transfer;
        let Some(p) = state.progress.get_mut(&from) else {
            return;
        };
        p.last_ack = now;
        p.inflight = p.inflight.saturating_sub(1);
        if success {
            p.probing = false;
            p.matched = p.matched.max(match_index.min(last_index));
            p.next = p.next.max(p.matched + 1);
            let caught_up = p.matched == last_index;
            let more = p.next <= last_index;
            self.maybe_commit(now, out);
            if transfer == Some(from) && caught_up {
                out.push(Action::Send {
                    to: from,
                    msg: RaftMessage::TimeoutNow {
                        term: self.hard.term,
                    },
                });
            }
            if more {
                self.send_append(now, from, out);
            }
        } else {
            // `match_index` names the rejected append's previous index. A rejection of an append
            // sent before the latest probe (or one already answered) says nothing new.
            let rejected = match_index;
            let stale = if p.probing {
                rejected + 1 != p.next
            } else {
                rejected < p.matched
            };
            if stale {
                return;
            }
            let next = conflict_next
                .unwrap_or(rejected)
                .clamp(p.matched + 1, last_index + 1);
            let moved = !p.probing || next < p.next;
            p.next = next;
            p.probing = true;
            p.inflight = 0;
            // A probe that cannot move back waits for the next heartbeat instead of looping.
            if moved {
                self.send_append(now, from, out);
            }
        }
    }

    /// Advances the commit index to the highest entry of this term stored by a majority.
    pub(super) fn maybe_commit(&mut self, now: Millis, out: &mut Vec<Action<RaftMessage>>) {
        if self.role != Role::Leader {
            return;
        }
        let Some(state) = self.leader_state.as_ref() else {
            return;
        };
        let mut matched: Vec<u64> = self
            .members
            .iter()
            .map(|m| {
                if *m == self.me {
                    self.log.last_index()
                } else {
                    state.progress.get(m).map_or(0, |p| p.matched)
                }
            })
            .collect();
        matched.sort_unstable_by(|a, b| b.cmp(a));
        let (quorum, any_term) = match self.fault {
            #[cfg(feature = "test-faults")]
            super::RaftFault::CommitQuorumOffByOne => {
                (self.majority().saturating_sub(1).max(1), false)
            }
            #[cfg(feature = "test-faults")]
            super::RaftFault::CommitEntriesOfAnyTerm => (self.majority(), true),
            _ => (self.majority(), false),
        };
        let Some(&candidate) = matched.get(quorum - 1) else {
            return;
        };
        if candidate <= self.commit_index {
            return;
        }
        // Raft §5.4.2: only entries of the current term commit by counting replicas.
        if any_term || self.log.term_at(candidate) == Some(self.hard.term) {
            self.commit_index = candidate;
            self.apply_committed(now, out);
        }
    }

    /// Applies committed entries to the chain, in order.
    pub(super) fn apply_committed(&mut self, now: Millis, out: &mut Vec<Action<RaftMessage>>) {
        while !self.halted && self.applied() < self.commit_index {
            let index = self.applied() + 1;
            let Some(entry) = self.log.entry(index).cloned() else {
                // Compaction never passes the applied index, so this cannot happen.
                return self.halt(index, "committed entry missing from the log".into(), out);
            };
            let changes = match self.execution.commit(&entry.block) {
                Ok(changes) => changes,
                Err(e) => return self.halt(index, e.to_string(), out),
            };
            let ids: Vec<_> = entry.block.tx_ids();
            self.pool.remove(&ids);
            self.pool.unpark_credited(&entry.block);
            let senders: std::collections::BTreeSet<_> =
                entry.block.txs.iter().map(|tx| tx.sender()).collect();
            let dropped = self.pool.prune_committed(
                senders,
                self.execution.accounts(),
                &ids.iter().copied().collect(),
            );
            Self::report_dropped(dropped, out);
            out.push(Action::Commit(Box::new(CommittedBlock {
                block: entry.block,
                changes,
                proof: codec::encode(&RaftCommitProof {
                    term: entry.term,
                    signature: entry.signature,
                }),
                finality: Finality::Final,
                persist: Vec::new(),
                // Committed entries stay in the durable log (on a majority) until compacted
                // behind a snapshot, and a restart re-applies them.
                replayable: true,
            })));
            if let Some(change) = entry.change {
                self.on_change_committed(index, change, out);
            }
        }
        self.maybe_compact(now, out);
        if self.role == Role::Leader {
            self.schedule_batch(now, out);
        }
    }

    fn halt(&mut self, height: u64, detail: String, out: &mut Vec<Action<RaftMessage>>) {
        self.halted = true;
        out.push(Action::Event(EngineEvent::Divergence { height, detail }));
        if self.role == Role::Leader {
            self.become_follower(self.hard.term, None, out);
        }
        out.push(Action::CancelTimer(super::ELECTION_TIMER));
    }

    /// Compacts the log behind a snapshot every `snapshot_interval` applied blocks. A leader keeps
    /// the entries its live followers still need; dead ones will get a snapshot.
    fn maybe_compact(&mut self, now: Millis, out: &mut Vec<Action<RaftMessage>>) {
        let applied = self.applied();
        if applied - self.log.snapshot_index() < self.params.snapshot_interval {
            return;
        }
        let mut upto = applied;
        if let Some(state) = &self.leader_state {
            for p in state.progress.values() {
                if now.saturating_sub(p.last_ack) < self.params.election_timeout_min_ms {
                    upto = upto.min(p.matched);
                }
            }
        }
        if upto <= self.log.snapshot_index() {
            return;
        }
        let (Some(term), Some(entry)) = (self.log.term_at(upto), self.log.entry(upto)) else {
            return;
        };
        let meta = SnapshotMeta {
            index: upto,
            term,
            block: entry.block.hash(),
            members: self.members_at(upto),
            signature: Some(entry.signature),
        };
        self.snapshot_members = meta.members.clone();
        self.log.compact_to(upto, term);
        out.push(Action::Persist(storage::write_snapshot(&meta, false)));
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_append(
        &mut self,
        now: Millis,
        from: NodeId,
        term: u64,
        prev_index: u64,
        prev_term: u64,
        mut entries: Vec<LogEntry>,
        commit: u64,
        out: &mut Vec<Action<RaftMessage>>,
    ) {
        let respond = |engine: &Self,
                       success: bool,
                       match_index: u64,
                       conflict: Option<Conflict>,
                       out: &mut Vec<Action<RaftMessage>>| {
            out.push(Action::Send {
                to: from,
                msg: RaftMessage::AppendResponse {
                    term: engine.hard.term,
                    success,
                    match_index,
                    conflict,
                },
            });
        };
        match self.hear_from_leader(now, from, term, out) {
            LeaderContact::Stale => return respond(self, false, 0, None, out),
            LeaderContact::Halted => return,
            LeaderContact::Accepted => {}
        }
        // A leader that sends non-contiguous entries is broken; ignore the message.
        if entries
            .iter()
            .enumerate()
            .any(|(i, e)| e.index() != prev_index + 1 + i as u64)
        {
            return;
        }
        let last_new = prev_index + entries.len() as u64;
        let (mut prev_index, mut prev_term) = (prev_index, prev_term);
        let snapshot_index = self.log.snapshot_index();
        if prev_index < snapshot_index {
            // Everything up to the snapshot is committed and therefore identical.
            if last_new <= snapshot_index {
                return respond(self, true, snapshot_index, None, out);
            }
            entries.drain(..(snapshot_index - prev_index) as usize);
            prev_index = snapshot_index;
            prev_term = self.log.snapshot_term();
        }
        match self.log.term_at(prev_index) {
            None => {
                let conflict = Conflict {
                    term: None,
                    index: self.log.last_index() + 1,
                };
                return respond(self, false, prev_index, Some(conflict), out);
            }
            Some(t) if t != prev_term => {
                let conflict = Conflict {
                    term: Some(t),
                    index: self.log.first_index_of_term(t, prev_index),
                };
                return respond(self, false, prev_index, Some(conflict), out);
            }
            Some(_) => {}
        }
        let mut writes: Vec<EngineWrite> = Vec::new();
        let mut membership_changed = false;
        for entry in entries {
            let index = entry.index();
            match self.log.term_at(index) {
                Some(t) if t == entry.term => continue,
                Some(_) => {
                    if index <= self.commit_index {
                        return self.halt(index, "leader overwrote a committed entry".into(), out);
                    }
                    let removed = self.log.truncate_from(index);
                    writes.push(storage::truncate_from(index));
                    self.execution.truncate_above(index - 1);
                    membership_changed |= removed.iter().any(|e| e.change.is_some());
                    // Their transactions may still belong in a later block.
                    self.pool
                        .add(now, removed.into_iter().flat_map(|e| e.block.txs));
                }
                None => {}
            }
            membership_changed |= entry.change.is_some();
            writes.push(storage::write_entry(&entry));
            self.log.push(entry);
        }
        #[cfg(feature = "test-faults")]
        if self.fault == super::RaftFault::AckBeforePersist {
            writes.clear();
        }
        if !writes.is_empty() {
            out.push(Action::Persist(writes));
        }
        if membership_changed {
            self.on_membership_changed(out);
        }
        let new_commit = commit.min(last_new);
        if new_commit > self.commit_index {
            self.commit_index = new_commit;
            self.apply_committed(now, out);
        }
        respond(self, true, last_new, None, out);
    }
}
