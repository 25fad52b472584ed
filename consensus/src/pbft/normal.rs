//! The normal case (paper §4.2): the primary's PRE-PREPARE, the backups' PREPAREs, COMMITs, and
//! executing committed blocks in sequence order.
//!
//! - A PRE-PREPARE is taken only from the primary of the current view, for h < n ≤ H (a little
//!   beyond H it waits in the log), with a valid signature, and only if no other digest was
//!   pre-prepared for (v, n) — a second one is proof that the primary equivocated.
//! - It is *accepted* once its block extends the block at n−1 on this replica's chain and is
//!   valid there (`validation`), and durably recorded before the PREPARE leaves.
//! - *prepared*(v, n) = the accepted pre-prepare and q−1 matching PREPAREs from distinct replicas
//!   other than the primary; the certificate is recorded durably before the COMMIT leaves.
//! - PREPARE and COMMIT for n go out only once n−1 is prepared in this view or executed (rule 2
//!   of the module docs).
//! - *committed*: q matching COMMITs from distinct replicas; the block is executed when every
//!   block below it is, and the COMMITs become its certificate.
//! - f+1 votes for another digest than the accepted one mean some honest replica accepted a
//!   different pre-prepare: the primary equivocated.

use synod_chain::hash::Hash;
use synod_chain::keys::Signature;
use synod_chain::{Block, Finality};

use super::certificate::{CommitCertificate, CommittedTip, PreparedCertificate, Signatures};
use super::log::{Phase, Proposal, Slot, signatures};
use super::messages::{Ballot, Commit, MAX_PREPARED, PbftMessage, PrePrepare, Prepare};
use super::signing::Signed;
use super::storage::{self, AcceptedRecord, AcceptedRecordRef, PreparedRecord};
use super::{BEYOND_HIGH_WATERMARK, MAX_FUTURE_PER_SENDER, PbftEngine};
use crate::engine::{Action, CommittedBlock, Millis, NodeId};

/// What to do with a normal-case message.
enum Gate {
    /// Handle it.
    Now,
    /// Keep it for a view this replica has not reached.
    Later,
    /// Stale or far out of range.
    Drop,
}

impl PbftEngine {
    fn gate(&self, ballot: &Ballot) -> Gate {
        if ballot.view < self.view {
            return Gate::Drop;
        }
        if ballot.view > self.view || !self.active {
            return Gate::Later;
        }
        if ballot.seq <= self.executed()
            || ballot.seq > self.high_watermark() + BEYOND_HIGH_WATERMARK
        {
            return Gate::Drop;
        }
        Gate::Now
    }

    /// Keeps a message of a view this replica has not reached (bounded per sender, and the
    /// pre-prepares, which carry blocks, more tightly).
    pub(super) fn buffer(&mut self, from: NodeId, msg: PbftMessage) {
        let queue = self.future.entry(from).or_default();
        let is_block = |m: &PbftMessage| matches!(m, PbftMessage::PrePrepare { .. });
        if is_block(&msg)
            && queue.iter().filter(|m| is_block(m)).count() >= MAX_PREPARED
            && let Some(oldest) = queue.iter().position(is_block)
        {
            queue.remove(oldest);
        }
        if queue.len() >= MAX_FUTURE_PER_SENDER {
            queue.pop_front();
        }
        queue.push_back(msg);
    }

    /// Hands buffered messages to the engine again (after a view change).
    pub(super) fn replay_future(&mut self, now: Millis, out: &mut Vec<Action<PbftMessage>>) {
        let buffered = std::mem::take(&mut self.future);
        for (from, queue) in buffered {
            for msg in queue {
                self.on_message(now, from, msg, out);
            }
        }
    }

    pub(super) fn on_pre_prepare(
        &mut self,
        now: Millis,
        from: NodeId,
        pre_prepare: Signed<PrePrepare>,
        block: Box<Block>,
        out: &mut Vec<Action<PbftMessage>>,
    ) {
        let ballot = pre_prepare.body.0;
        match self.gate(&ballot) {
            Gate::Drop => return,
            Gate::Later => {
                return self.buffer(from, PbftMessage::PrePrepare { pre_prepare, block });
            }
            Gate::Now => {}
        }
        let primary = self.primary();
        if from != primary || pre_prepare.signer != primary {
            return;
        }
        // Blocks are kept only a bounded distance ahead; the primary retransmits the rest.
        if ballot.seq > self.executed() + 2 * MAX_PREPARED as u64 {
            return;
        }
        if block.header.height != ballot.seq || block.hash() != ballot.digest {
            return;
        }
        let existing = self.log.get(&ballot.seq).and_then(|slot| slot.digest());
        if existing == Some(ballot.digest) {
            return;
        }
        if pre_prepare.verify(&self.chain_id, &self.verifier).is_err() {
            return;
        }
        if existing.is_some() {
            return self.suspect(
                now,
                "the primary pre-prepared two blocks for one sequence number",
                out,
            );
        }
        let slot = self.log.entry(ballot.seq).or_default();
        slot.proposal = Some(Proposal {
            signature: pre_prepare.signature,
            block: *block,
            digest: ballot.digest,
            reproposal: false,
        });
        self.after_vote(now, ballot.seq, out);
    }

    pub(super) fn on_prepare(
        &mut self,
        now: Millis,
        from: NodeId,
        prepare: Signed<Prepare>,
        out: &mut Vec<Action<PbftMessage>>,
    ) {
        let vote = (prepare.body.0, prepare.signer, prepare.signature);
        self.on_vote(now, from, Phase::Prepare, vote, out);
    }

    pub(super) fn on_commit(
        &mut self,
        now: Millis,
        from: NodeId,
        commit: Signed<Commit>,
        out: &mut Vec<Action<PbftMessage>>,
    ) {
        let vote = (commit.body.0, commit.signer, commit.signature);
        self.on_vote(now, from, Phase::Commit, vote, out);
    }

    fn on_vote(
        &mut self,
        now: Millis,
        from: NodeId,
        phase: Phase,
        (ballot, signer, signature): (Ballot, NodeId, Signature),
        out: &mut Vec<Action<PbftMessage>>,
    ) {
        match self.gate(&ballot) {
            Gate::Drop => return,
            Gate::Later => return self.buffer(from, phase.message(ballot, signer, signature)),
            Gate::Now => {}
        }
        // The primary's pre-prepare is its vote; it sends no PREPARE.
        if phase == Phase::Prepare && from == self.primary() {
            return;
        }
        if self.take_vote(phase, from, &signer, ballot, signature) {
            if phase == Phase::Commit {
                self.note_commits_ahead(ballot.seq);
            }
            self.after_vote(now, ballot.seq, out);
        }
    }

    /// Records a vote (its signature is checked once it could count); false if it is not new: a
    /// duplicate, or a second vote of the same replica, which does not count.
    fn take_vote(
        &mut self,
        phase: Phase,
        from: NodeId,
        signer: &NodeId,
        ballot: Ballot,
        signature: Signature,
    ) -> bool {
        if *signer != from {
            return false;
        }
        self.log
            .entry(ballot.seq)
            .or_default()
            .votes_mut(phase)
            .record(from, ballot.digest, signature)
    }

    /// The votes of `phase` for `ballot` from replicas other than `excluded`, if at least
    /// `needed` of them carry valid signatures. Unchecked signatures are checked here, in one
    /// batch, the first time they could make the count; invalid votes are dropped.
    fn confirmed_votes(
        &mut self,
        phase: Phase,
        ballot: Ballot,
        excluded: Option<&NodeId>,
        needed: usize,
    ) -> Option<Signatures> {
        let votes = self.log.get(&ballot.seq)?.votes(phase).for_digest(
            &ballot.digest,
            &self.replicas,
            excluded,
        );
        if votes.len() < needed {
            return None;
        }
        let statement = phase.statement(ballot, &self.chain_id);
        let unchecked: Vec<(NodeId, Hash, Signature)> = votes
            .iter()
            .filter(|(_, vote)| !vote.verified)
            .map(|(id, vote)| (*id, statement, vote.signature))
            .collect();
        if unchecked.is_empty() {
            return Some(signatures(&votes));
        }
        let invalid: Vec<NodeId> = match self.verifier.check_all(&unchecked) {
            Ok(()) => Vec::new(),
            Err(_) => unchecked
                .iter()
                .filter(|(id, statement, signature)| {
                    self.verifier.check(id, statement, signature).is_err()
                })
                .map(|(id, _, _)| *id)
                .collect(),
        };
        let set = self.log.get_mut(&ballot.seq)?.votes_mut(phase);
        for (id, _, _) in &unchecked {
            if invalid.contains(id) {
                set.remove(id);
            } else {
                set.mark_verified(id);
            }
        }
        let valid: Vec<_> = votes
            .into_iter()
            .filter(|(id, _)| !invalid.contains(id))
            .collect();
        (valid.len() >= needed).then(|| signatures(&valid))
    }

    /// Whether f+1 replicas voted, in one phase, for a digest other than the pre-prepared one:
    /// one of them is honest and accepted another pre-prepare, so the primary equivocated.
    fn equivocation_seen(&mut self, seq: u64) -> bool {
        let Some(slot) = self.log.get(&seq) else {
            return false;
        };
        let Some(ours) = slot.digest() else {
            return false;
        };
        let needed = self.replicas.weak_quorum();
        let others: Vec<(Phase, Hash)> = [Phase::Prepare, Phase::Commit]
            .into_iter()
            .flat_map(|phase| {
                slot.votes(phase)
                    .digests()
                    .into_iter()
                    .filter(|d| *d != ours)
                    .map(move |d| (phase, d))
            })
            .collect();
        others.into_iter().any(|(phase, digest)| {
            let ballot = Ballot {
                view: self.view,
                seq,
                digest,
            };
            self.confirmed_votes(phase, ballot, None, needed).is_some()
        })
    }

    /// After a new pre-prepare or vote at `seq`: checks for equivocation, then moves on.
    fn after_vote(&mut self, now: Millis, seq: u64, out: &mut Vec<Action<PbftMessage>>) {
        if self.equivocation_seen(seq) {
            return self.suspect(
                now,
                "f+1 replicas voted for another block: the primary equivocated",
                out,
            );
        }
        self.advance(now, out);
    }

    /// Moves the normal case as far as it goes: accept pre-prepares that extend the chain, send
    /// the votes the rules allow, execute committed blocks; then propose (primary) and watch the
    /// primary (backups).
    pub(super) fn advance(&mut self, now: Millis, out: &mut Vec<Action<PbftMessage>>) {
        if !self.active || self.halted || !self.is_replica() {
            return;
        }
        loop {
            self.accept_proposals(now, out);
            if !self.active {
                return;
            }
            self.send_votes(out);
            if !self.execute_committed(now, out) || !self.active || self.halted {
                break;
            }
        }
        if self.active && !self.halted {
            self.propose(now, super::proposal::Mode::Normal, out);
            self.arm_request_timer(now, out);
        }
    }

    /// Accepts pre-prepares in sequence order while each extends the chain's head.
    fn accept_proposals(&mut self, now: Millis, out: &mut Vec<Action<PbftMessage>>) {
        while self.active && self.executed() >= self.view_base {
            let seq = self.chain.head_height() + 1;
            if seq > self.executed() + MAX_PREPARED as u64 || seq > self.high_watermark() {
                return;
            }
            let Some(proposal) = self
                .log
                .get(&seq)
                .filter(|slot| !slot.accepted)
                .and_then(|slot| slot.proposal.as_ref())
            else {
                return;
            };
            if proposal.block.header.parent != self.chain.head_hash() {
                return self.suspect(now, "the primary's block does not extend the chain", out);
            }
            let parent = *self.chain.head_header();
            if let Err(reason) = self.check_proposal(now, proposal, &parent) {
                return self.suspect(now, reason, out);
            }
            if self.chain.extend(&self.verifier, &proposal.block).is_err() {
                return self.suspect(now, "the primary proposed an invalid block", out);
            }
            let record = AcceptedRecordRef {
                view: self.view,
                reproposal: proposal.reproposal,
                signature: proposal.signature,
                block: &proposal.block,
            };
            out.push(Action::Persist(vec![storage::write_accepted(seq, &record)]));
            if let Some(slot) = self.log.get_mut(&seq) {
                slot.accepted = true;
            }
        }
    }

    /// Sends PREPAREs and COMMITs for accepted sequence numbers as rule 2 allows, and records
    /// prepared certificates (durably, before the COMMIT that relies on them).
    fn send_votes(&mut self, out: &mut Vec<Action<PbftMessage>>) {
        let primary = self.primary();
        let needed = self.replicas.quorum() - 1;
        // n−1 = the executed tip for the first one.
        let mut below_ready = true;
        for seq in self.executed() + 1..=self.chain.head_height() {
            let Some(slot) = self.log.get(&seq).filter(|s| s.accepted) else {
                break;
            };
            let Some(digest) = slot.digest() else {
                break;
            };
            let ballot = Ballot {
                view: self.view,
                seq,
                digest,
            };
            let send_prepare = below_ready && !slot.sent_prepare && primary != self.me;
            if send_prepare {
                self.cast_vote(Phase::Prepare, ballot, out);
            }
            if self.log.get(&seq).is_some_and(|s| !s.prepared) {
                self.record_prepared(seq, &primary, needed, out);
            }
            let Some(slot) = self.log.get(&seq) else {
                break;
            };
            if slot.prepared && below_ready && !slot.sent_commit {
                self.cast_vote(Phase::Commit, ballot, out);
            }
            below_ready = self.log.get(&seq).is_some_and(|s| s.prepared);
        }
    }

    /// Signs this replica's vote, records it and sends it.
    fn cast_vote(&mut self, phase: Phase, ballot: Ballot, out: &mut Vec<Action<PbftMessage>>) {
        let signature = phase.sign(&self.key, &self.chain_id, ballot);
        let me = self.me;
        if let Some(slot) = self.log.get_mut(&ballot.seq) {
            match phase {
                Phase::Prepare => slot.sent_prepare = true,
                Phase::Commit => slot.sent_commit = true,
            }
            slot.votes_mut(phase)
                .record_verified(me, ballot.digest, signature);
        }
        self.send_vote(phase, ballot, signature, out);
    }

    /// Marks `seq` prepared if q−1 matching PREPAREs are in, writing the certificate.
    fn record_prepared(
        &mut self,
        seq: u64,
        primary: &NodeId,
        needed: usize,
        out: &mut Vec<Action<PbftMessage>>,
    ) {
        let Some(digest) = self.log.get(&seq).and_then(Slot::digest) else {
            return;
        };
        let ballot = Ballot {
            view: self.view,
            seq,
            digest,
        };
        let Some(prepares) = self.confirmed_votes(Phase::Prepare, ballot, Some(primary), needed)
        else {
            return;
        };
        let Some(slot) = self.log.get_mut(&seq) else {
            return;
        };
        let Some(proposal) = slot.proposal.as_ref() else {
            return;
        };
        slot.prepared = true;
        let record = PreparedRecord {
            certificate: PreparedCertificate {
                ballot: Ballot {
                    view: self.view,
                    seq,
                    digest: proposal.digest,
                },
                header: proposal.block.header,
                pre_prepare: proposal.signature,
                prepares,
            },
            block: proposal.block.clone(),
        };
        out.push(Action::Persist(vec![storage::write_prepared(seq, &record)]));
        self.prepared.insert(seq, record);
    }

    /// Executes committed blocks in sequence order; true if any was executed.
    fn execute_committed(&mut self, now: Millis, out: &mut Vec<Action<PbftMessage>>) -> bool {
        let mut progressed = false;
        while self.active && !self.halted {
            let seq = self.executed() + 1;
            let Some((digest, signatures)) = self.committed_digest(seq) else {
                break;
            };
            let Some(slot) = self.log.get(&seq) else {
                break;
            };
            let block = match slot.proposal.as_ref() {
                Some(p) if p.digest == digest => p.block.clone(),
                _ => match self.prepared.get(&seq) {
                    Some(record) if record.certificate.ballot.digest == digest => {
                        record.block.clone()
                    }
                    _ => {
                        // Committed elsewhere, and this replica lacks the block.
                        let peers = signatures.iter().map(|(id, _)| *id).collect();
                        self.note_sync_target(seq, peers, false);
                        break;
                    }
                },
            };
            let certificate = CommitCertificate {
                ballot: Ballot {
                    view: self.view,
                    seq,
                    digest,
                },
                signatures: signatures.into_iter().take(self.commit_quorum()).collect(),
            };
            if !self.execute_block(now, block, certificate, out) {
                break;
            }
            progressed = true;
        }
        progressed
    }

    /// The digest a quorum of (valid) COMMITs at `seq` names, with their signatures.
    fn committed_digest(&mut self, seq: u64) -> Option<(Hash, Signatures)> {
        let digests = self.log.get(&seq)?.commits.digests();
        digests.into_iter().find_map(|digest| {
            let ballot = Ballot {
                view: self.view,
                seq,
                digest,
            };
            self.confirmed_votes(Phase::Commit, ballot, None, self.commit_quorum())
                .map(|signatures| (digest, signatures))
        })
    }

    /// A quorum of COMMITs above the next height to execute hints that blocks below were
    /// committed: remember whom to fetch them from if they do not arrive. (Only a hint, so the
    /// signatures are not checked: it decides whom to ask, never what to accept.)
    fn note_commits_ahead(&mut self, seq: u64) {
        if seq <= self.executed() + 1 {
            return;
        }
        let Some(slot) = self.log.get(&seq) else {
            return;
        };
        let quorum = self.commit_quorum();
        let voters = slot.commits.digests().into_iter().find_map(|digest| {
            let votes = slot.commits.for_digest(&digest, &self.replicas, None);
            (votes.len() >= quorum).then(|| votes.iter().map(|(id, _)| *id).collect::<Vec<_>>())
        });
        if let Some(peers) = voters {
            self.note_sync_target(seq - 1, peers, false);
        }
    }

    /// Executes `block` as the next block with `certificate` as its proof: the one path by which
    /// blocks reach the chain (normal case and state transfer alike).
    pub(super) fn execute_block(
        &mut self,
        now: Millis,
        block: Block,
        certificate: CommitCertificate,
        out: &mut Vec<Action<PbftMessage>>,
    ) -> bool {
        let seq = block.header.height;
        let (changes, dropped) = match self.chain.execute_next(&self.verifier, &block) {
            Ok(done) => done,
            Err(e) => {
                self.halt(seq, format!("certified block does not apply: {e}"), out);
                return false;
            }
        };
        if !dropped.is_empty() {
            // The accepted blocks above were built on another block: accept them again (or not).
            for slot in self.log.values_mut() {
                slot.accepted = false;
            }
            self.return_to_pool(now, dropped);
        }
        let tip = CommittedTip {
            header: block.header,
            certificate: certificate.clone(),
        };
        let mut persist = vec![storage::write_committed(&tip)];
        persist.extend(storage::delete_through(seq));
        self.committed_tip = Some(tip);
        self.log = self.log.split_off(&(seq + 1));
        self.prepared = self.prepared.split_off(&(seq + 1));
        let digest = block.hash();
        self.pool.remove(&block.tx_ids());
        self.pool.unpark_credited(&block);
        out.push(Action::Commit(Box::new(CommittedBlock {
            block,
            changes,
            proof: certificate.encode(),
            finality: Finality::Final,
            persist,
            // The engine state drops the block's records in the same write: nothing replays it.
            replayable: false,
        })));
        self.failed_views = 0;
        self.last_progress = now;
        self.on_executed(seq, digest, out);
        true
    }

    /// Votes for a re-proposal this replica executed already, so the others reach a quorum.
    pub(super) fn vote_for_executed(&mut self, ballot: Ballot, out: &mut Vec<Action<PbftMessage>>) {
        if self.primary() != self.me {
            self.cast_vote(Phase::Prepare, ballot, out);
        }
        self.cast_vote(Phase::Commit, ballot, out);
    }

    /// Restores a pre-prepare accepted before a restart (accepted again once the chain is rebuilt).
    pub(super) fn restore_accepted(&mut self, seq: u64, record: AcceptedRecord) {
        let digest = record.block.hash();
        let mut slot = Slot {
            proposal: Some(Proposal {
                signature: record.signature,
                block: record.block,
                digest,
                reproposal: record.reproposal,
            }),
            ..Slot::default()
        };
        if let Some(prepared) = self.prepared.get(&seq) {
            let ballot = prepared.certificate.ballot;
            if ballot.view == self.view && ballot.digest == digest {
                slot.prepared = true;
                for (id, signature) in &prepared.certificate.prepares {
                    slot.prepares.record_verified(*id, digest, *signature);
                }
            }
        }
        self.log.insert(seq, slot);
    }
}
