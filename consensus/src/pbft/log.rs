//! The message log of the current view (paper §4.2): per sequence number, the primary's
//! pre-prepare with its block, and the PREPAREs and COMMITs received, at most one of each per
//! replica (a second, different vote from a replica is evidence of a fault and is not counted).
//! The *prepared* and *committed* predicates are counts over this log, of votes whose signatures
//! were checked: a vote is checked when it could first complete a quorum, with the others in one
//! batch, and dropped if it fails (so its sender may still send a valid one).

use std::collections::BTreeMap;

use synod_chain::Block;
use synod_chain::hash::Hash;
use synod_chain::keys::{SecretKey, Signature};

use super::certificate::Signatures;
use super::messages::{Ballot, Commit, PbftMessage, Prepare};
use super::replicas::Replicas;
use super::signing::{Signed, Statement};
use crate::engine::NodeId;

/// The primary's pre-prepare for a sequence number, with its block.
#[derive(Clone, Debug)]
pub(super) struct Proposal {
    /// The primary's PRE-PREPARE signature.
    pub signature: Signature,
    /// The block.
    pub block: Block,
    /// The block's id.
    pub digest: Hash,
    /// Re-proposed by the NEW-VIEW that started the view (the block may be from an earlier view).
    pub reproposal: bool,
}

/// Which vote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    Prepare,
    Commit,
}

impl Phase {
    /// What a replica signs to cast this vote for `ballot`.
    pub fn statement(self, ballot: Ballot, chain_id: &str) -> Hash {
        match self {
            Phase::Prepare => Prepare(ballot).signing_digest(chain_id),
            Phase::Commit => Commit(ballot).signing_digest(chain_id),
        }
    }

    /// `key`'s signature of this vote for `ballot`.
    pub fn sign(self, key: &SecretKey, chain_id: &str, ballot: Ballot) -> Signature {
        key.sign(&self.statement(ballot, chain_id).0)
    }

    /// The message carrying this vote.
    pub fn message(self, ballot: Ballot, signer: NodeId, signature: Signature) -> PbftMessage {
        match self {
            Phase::Prepare => PbftMessage::Prepare(Signed {
                body: Prepare(ballot),
                signer,
                signature,
            }),
            Phase::Commit => PbftMessage::Commit(Signed {
                body: Commit(ballot),
                signer,
                signature,
            }),
        }
    }
}

/// One replica's PREPARE or COMMIT: the digest voted for and the signature, which is checked
/// only once the vote could count towards a certificate (then with the others, in one batch).
#[derive(Clone, Copy, Debug)]
pub(super) struct Vote {
    pub digest: Hash,
    pub signature: Signature,
    pub verified: bool,
}

/// The votes of one phase at one sequence number: the first vote of each replica.
#[derive(Clone, Debug, Default)]
pub(super) struct VoteSet(BTreeMap<NodeId, Vote>);

impl VoteSet {
    /// `id`'s vote.
    pub fn get(&self, id: &NodeId) -> Option<&Vote> {
        self.0.get(id)
    }

    /// Records `id`'s vote (signature not yet checked) unless it voted already (a second,
    /// different vote of one replica is a fault and does not count); true if recorded.
    pub fn record(&mut self, id: NodeId, digest: Hash, signature: Signature) -> bool {
        if self.0.contains_key(&id) {
            return false;
        }
        self.0.insert(
            id,
            Vote {
                digest,
                signature,
                verified: false,
            },
        );
        true
    }

    /// Records a vote known to be valid (this replica's own, or from a certificate).
    pub fn record_verified(&mut self, id: NodeId, digest: Hash, signature: Signature) {
        self.0.insert(
            id,
            Vote {
                digest,
                signature,
                verified: true,
            },
        );
    }

    /// Marks `id`'s vote checked.
    pub fn mark_verified(&mut self, id: &NodeId) {
        if let Some(vote) = self.0.get_mut(id) {
            vote.verified = true;
        }
    }

    /// Drops `id`'s vote (its signature did not verify).
    pub fn remove(&mut self, id: &NodeId) {
        self.0.remove(id);
    }

    /// The votes for `digest` in genesis order, leaving out `excluded`.
    pub fn for_digest(
        &self,
        digest: &Hash,
        replicas: &Replicas,
        excluded: Option<&NodeId>,
    ) -> Vec<(NodeId, Vote)> {
        replicas
            .ids()
            .iter()
            .filter(|id| Some(*id) != excluded)
            .filter_map(|id| match self.0.get(id) {
                Some(vote) if vote.digest == *digest => Some((*id, *vote)),
                _ => None,
            })
            .collect()
    }

    /// Every digest voted for, sorted.
    pub fn digests(&self) -> Vec<Hash> {
        let mut digests: Vec<Hash> = self.0.values().map(|v| v.digest).collect();
        digests.sort();
        digests.dedup();
        digests
    }
}

/// Everything known about one sequence number in the current view.
#[derive(Clone, Debug, Default)]
pub(super) struct Slot {
    /// The pre-prepare, once one with a valid signature arrived.
    pub proposal: Option<Proposal>,
    /// The block is on this replica's chain (valid on the state below it).
    pub accepted: bool,
    /// This replica sent its PREPARE.
    pub sent_prepare: bool,
    /// This replica holds a prepared certificate for the proposal (recorded durably).
    pub prepared: bool,
    /// This replica sent its COMMIT.
    pub sent_commit: bool,
    /// PREPAREs.
    pub prepares: VoteSet,
    /// COMMITs.
    pub commits: VoteSet,
}

impl Slot {
    /// The proposal's digest.
    pub fn digest(&self) -> Option<Hash> {
        self.proposal.as_ref().map(|p| p.digest)
    }

    /// The votes of `phase`.
    pub fn votes(&self, phase: Phase) -> &VoteSet {
        match phase {
            Phase::Prepare => &self.prepares,
            Phase::Commit => &self.commits,
        }
    }

    /// The votes of `phase`, to change.
    pub fn votes_mut(&mut self, phase: Phase) -> &mut VoteSet {
        match phase {
            Phase::Prepare => &mut self.prepares,
            Phase::Commit => &mut self.commits,
        }
    }
}

/// Signatures of the votes in `votes` (for a certificate).
pub(super) fn signatures(votes: &[(NodeId, Vote)]) -> Signatures {
    votes.iter().map(|(id, v)| (*id, v.signature)).collect()
}
