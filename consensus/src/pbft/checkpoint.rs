//! Checkpoints, watermarks and garbage collection (paper §4.3). Every K = checkpoint_interval
//! executed blocks a replica signs CHECKPOINT(n, block id) and multicasts it; q matching ones make
//! the checkpoint *stable*, with the signatures as its proof. The low watermark h is the stable
//! checkpoint, the high watermark H = h + watermark_window; log entries, votes and executed block
//! ids below h are dropped. CHECKPOINTs are view-independent and taken in any view.
//!
//! f+1 CHECKPOINTs (or one stable-checkpoint certificate) above the executed height prove that an
//! honest replica is ahead: this replica fetches the blocks (state transfer, §5.3).

use synod_chain::hash::Hash;

use super::certificate::CheckpointCertificate;
use super::messages::{Checkpoint, PbftMessage};
use super::signing::Signed;
use super::{PbftEngine, storage};
use crate::engine::{Action, Millis, NodeId};

/// Heights with CHECKPOINT votes kept at once.
const MAX_CHECKPOINT_HEIGHTS: usize = 64;

impl PbftEngine {
    /// After executing `seq`: at a checkpoint height, sign and multicast the checkpoint.
    pub(super) fn on_executed(
        &mut self,
        seq: u64,
        digest: Hash,
        out: &mut Vec<Action<PbftMessage>>,
    ) {
        if !self.is_replica() || !seq.is_multiple_of(self.params.checkpoint_interval) {
            return;
        }
        let checkpoint = self.sign(Checkpoint { seq, digest });
        self.checkpoint_votes
            .entry(seq)
            .or_default()
            .insert(self.me, (digest, checkpoint.signature));
        self.own_checkpoint = Some(checkpoint.clone());
        out.push(Action::Broadcast(PbftMessage::Checkpoint(checkpoint)));
        self.try_stabilize(out);
    }

    pub(super) fn on_checkpoint(
        &mut self,
        now: Millis,
        from: NodeId,
        signed: Signed<Checkpoint>,
        out: &mut Vec<Action<PbftMessage>>,
    ) {
        let Checkpoint { seq, digest } = signed.body;
        if signed.signer != from
            || seq <= self.low_watermark
            || !seq.is_multiple_of(self.params.checkpoint_interval)
        {
            return;
        }
        if let Some(votes) = self.checkpoint_votes.get(&seq) {
            if votes.contains_key(&from) {
                return;
            }
        } else if self.checkpoint_votes.len() >= MAX_CHECKPOINT_HEIGHTS
            && self
                .checkpoint_votes
                .keys()
                .next_back()
                .is_some_and(|highest| seq > *highest)
        {
            return;
        }
        if signed.verify(&self.chain_id, &self.verifier).is_err() {
            return;
        }
        let votes = self.checkpoint_votes.entry(seq).or_default();
        votes.insert(from, (digest, signed.signature));
        let signers: Vec<NodeId> = votes
            .iter()
            .filter(|(_, (d, _))| *d == digest)
            .map(|(id, _)| *id)
            .collect();
        if self.checkpoint_votes.len() > MAX_CHECKPOINT_HEIGHTS {
            self.checkpoint_votes.pop_last();
        }
        self.try_stabilize(out);
        if seq > self.executed() && signers.len() >= self.replicas.weak_quorum() {
            self.need_blocks(now, seq, signers, out);
        }
    }

    /// Makes the highest checkpoint with a quorum of votes matching this replica's own executed
    /// block stable.
    fn try_stabilize(&mut self, out: &mut Vec<Action<PbftMessage>>) {
        let executed = self.executed();
        let found = self
            .checkpoint_votes
            .iter()
            .rev()
            .filter(|(seq, _)| **seq <= executed)
            .find_map(|(seq, votes)| {
                let ours = self.chain.executed_hash_at(*seq)?;
                let signatures: Vec<_> = self
                    .replicas
                    .ids()
                    .iter()
                    .filter_map(|id| match votes.get(id) {
                        Some((d, signature)) if *d == ours => Some((*id, *signature)),
                        _ => None,
                    })
                    .collect();
                (signatures.len() >= self.replicas.quorum()).then_some(CheckpointCertificate {
                    checkpoint: Checkpoint {
                        seq: *seq,
                        digest: ours,
                    },
                    signatures,
                })
            });
        if let Some(certificate) = found {
            self.make_stable(certificate, out);
        }
    }

    /// Moves the low watermark to `certificate`'s height and collects garbage below it.
    fn make_stable(
        &mut self,
        certificate: CheckpointCertificate,
        out: &mut Vec<Action<PbftMessage>>,
    ) {
        let seq = certificate.checkpoint.seq;
        if seq <= self.low_watermark {
            return;
        }
        self.low_watermark = seq;
        out.push(Action::Persist(vec![storage::write_checkpoint(
            &certificate,
        )]));
        self.stable = Some(certificate);
        self.checkpoint_votes = self.checkpoint_votes.split_off(&(seq + 1));
        self.chain.forget_executed_below(seq);
        if self
            .own_checkpoint
            .as_ref()
            .is_some_and(|c| c.body.seq <= seq)
        {
            self.own_checkpoint = None;
        }
    }

    /// Takes a stable-checkpoint certificate learned from another replica (in a VIEW-CHANGE,
    /// NEW-VIEW or STATUS): adopts it if this replica executed that block, fetches blocks if it
    /// is behind it.
    pub(super) fn adopt_checkpoint(
        &mut self,
        now: Millis,
        certificate: &CheckpointCertificate,
        out: &mut Vec<Action<PbftMessage>>,
    ) {
        let Checkpoint { seq, digest } = certificate.checkpoint;
        if seq <= self.low_watermark
            || certificate
                .check(&self.replicas, &self.chain_id, &self.verifier)
                .is_err()
        {
            return;
        }
        if seq > self.executed() {
            let peers = certificate.signatures.iter().map(|(id, _)| *id).collect();
            self.need_blocks(now, seq, peers, out);
        } else if self.chain.executed_hash_at(seq) == Some(digest) {
            self.make_stable(certificate.clone(), out);
        }
    }

    /// Our own latest CHECKPOINT, while it is not stable yet (for retransmission).
    pub(super) fn unstable_checkpoint(&self) -> Option<&Signed<Checkpoint>> {
        self.own_checkpoint
            .as_ref()
            .filter(|c| c.body.seq > self.low_watermark)
    }
}
