//! Byzantine behaviours, for experiments: a replica built with one runs the honest engine except
//! at a few hooks, each of which is the identity for an honest replica. The node allows them on
//! dev chains only; the simulator uses them to show what PBFT tolerates.
//!
//! | behaviour | what the replica does |
//! | --- | --- |
//! | `Equivocate` | as primary, pre-prepares two different valid blocks for each sequence number, each to half of the backups |
//! | `Silent` | sends nothing at all (it still receives and follows the chain) |
//! | `Censor(Some(a))` / `Censor(None)` | as primary, never includes account `a`'s transactions / any transaction |
//! | `BadBlock` | as primary, proposes blocks with a wrong state root or a transaction whose signature is broken |
//! | `BadNewView` | as a new primary, sends a NEW-VIEW that ignores the prepared certificates (or invents one) |
//! | `DoubleVote` | as a backup, sends its PREPAREs and COMMITs to half the replicas and conflicting ones to the other half |
//! | `Amnesia` | in its VIEW-CHANGEs, forgets its prepared certificates and its executed height |

use std::fmt;
use std::str::FromStr;

use synod_chain::hash::TaggedHasher;
use synod_chain::keys::{Address, Signature};
use synod_chain::ledger::BlockTemplate;
use synod_chain::merkle::merkle_root;
use synod_chain::{Block, SignedTransaction};

use super::PbftEngine;
use super::certificate::{CommittedTip, PreparedCertificate};
use super::log::Phase;
use super::messages::{Ballot, PbftMessage, PrePrepare};
use super::new_view::{Selection, bogus_digest};
use super::signing::Signed;
use crate::engine::{Action, NodeId};

/// A deliberate fault of a replica (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByzantineBehaviour {
    /// Two different blocks per sequence number as primary.
    Equivocate,
    /// Sends nothing.
    Silent,
    /// Leaves out one account's transactions (`Some`), or all transactions (`None`).
    Censor(Option<Address>),
    /// Proposes invalid blocks.
    BadBlock,
    /// Sends a wrong NEW-VIEW.
    BadNewView,
    /// Votes for two digests at once.
    DoubleVote,
    /// Hides its history in VIEW-CHANGEs.
    Amnesia,
}

impl ByzantineBehaviour {
    /// Every behaviour (censoring everything), for sweeps that pick one at random.
    pub const ALL: [ByzantineBehaviour; 7] = [
        ByzantineBehaviour::Equivocate,
        ByzantineBehaviour::Silent,
        ByzantineBehaviour::Censor(None),
        ByzantineBehaviour::BadBlock,
        ByzantineBehaviour::BadNewView,
        ByzantineBehaviour::DoubleVote,
        ByzantineBehaviour::Amnesia,
    ];
}

impl fmt::Display for ByzantineBehaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ByzantineBehaviour::Equivocate => f.write_str("equivocate"),
            ByzantineBehaviour::Silent => f.write_str("silent"),
            ByzantineBehaviour::Censor(None) => f.write_str("censor"),
            ByzantineBehaviour::Censor(Some(address)) => write!(f, "censor={address}"),
            ByzantineBehaviour::BadBlock => f.write_str("bad-block"),
            ByzantineBehaviour::BadNewView => f.write_str("bad-new-view"),
            ByzantineBehaviour::DoubleVote => f.write_str("double-vote"),
            ByzantineBehaviour::Amnesia => f.write_str("amnesia"),
        }
    }
}

/// A behaviour name that is not one of the list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown byzantine behaviour {0:?} (equivocate, silent, censor, censor=<address>, bad-block, bad-new-view, double-vote, amnesia)"
)]
pub struct UnknownBehaviour(pub String);

impl FromStr for ByzantineBehaviour {
    type Err = UnknownBehaviour;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let unknown = || UnknownBehaviour(text.to_string());
        Ok(match text {
            "equivocate" => ByzantineBehaviour::Equivocate,
            "silent" => ByzantineBehaviour::Silent,
            "censor" => ByzantineBehaviour::Censor(None),
            "bad-block" => ByzantineBehaviour::BadBlock,
            "bad-new-view" => ByzantineBehaviour::BadNewView,
            "double-vote" => ByzantineBehaviour::DoubleVote,
            "amnesia" => ByzantineBehaviour::Amnesia,
            _ => match text.strip_prefix("censor=") {
                Some(address) => {
                    ByzantineBehaviour::Censor(Some(address.parse().map_err(|_| unknown())?))
                }
                None => return Err(unknown()),
            },
        })
    }
}

impl PbftEngine {
    fn behaves(&self, behaviour: ByzantineBehaviour) -> bool {
        self.behaviour == Some(behaviour)
    }

    /// The replicas other than this one, split in two halves by genesis position.
    fn halves(&self) -> (Vec<NodeId>, Vec<NodeId>) {
        self.replicas
            .ids()
            .iter()
            .filter(|id| **id != self.me)
            .enumerate()
            .fold((Vec::new(), Vec::new()), |(mut a, mut b), (i, id)| {
                if i % 2 == 0 {
                    a.push(*id)
                } else {
                    b.push(*id)
                }
                (a, b)
            })
    }

    /// Whether the proposer leaves `tx` out.
    pub(super) fn censors(&self, tx: &SignedTransaction) -> bool {
        match self.behaviour {
            Some(ByzantineBehaviour::Censor(None)) => true,
            Some(ByzantineBehaviour::Censor(Some(address))) => tx.tx().sender() == address,
            _ => false,
        }
    }

    /// An equivocating primary's second block for the next sequence number: as valid as the
    /// first, one millisecond later.
    pub(super) fn equivocation_twin(
        &mut self,
        template: &BlockTemplate,
        candidates: &[SignedTransaction],
    ) -> Option<Block> {
        if !self.behaves(ByzantineBehaviour::Equivocate) {
            return None;
        }
        let later = BlockTemplate {
            timestamp_ms: template.timestamp_ms + 1,
            ..*template
        };
        self.chain
            .build_detached(&later, candidates.to_vec())
            .ok()
            .map(|built| built.block)
    }

    /// A bad-block primary's proposal: a wrong state root, or a transaction with a broken
    /// signature (the tx root recomputed so that only the signature check catches it).
    pub(super) fn corrupt_proposal(&self, mut block: Block) -> Block {
        if !self.behaves(ByzantineBehaviour::BadBlock) {
            return block;
        }
        if block.header.height.is_multiple_of(2) || block.txs.is_empty() {
            block.header.state_root.0[0] ^= 0xff;
            return block;
        }
        let (tx, mut signature) = block.txs[0].clone().into_parts();
        signature.0[40] ^= 0x01;
        block.txs[0] = SignedTransaction::from_parts(tx, signature);
        block.header.tx_root = merkle_root(&block.tx_ids());
        block
    }

    /// Multicasts a PRE-PREPARE (an equivocating primary sends `twin` to half the backups).
    pub(super) fn send_pre_prepare(
        &self,
        pre_prepare: Signed<PrePrepare>,
        block: Block,
        twin: Option<Block>,
        out: &mut Vec<Action<PbftMessage>>,
    ) {
        let Some(twin) = twin else {
            out.push(Action::Broadcast(PbftMessage::PrePrepare {
                pre_prepare,
                block: Box::new(block),
            }));
            return;
        };
        let twin_pre_prepare = self.sign(PrePrepare(Ballot {
            digest: twin.hash(),
            ..pre_prepare.body.0
        }));
        let real = PbftMessage::PrePrepare {
            pre_prepare,
            block: Box::new(block),
        };
        let other = PbftMessage::PrePrepare {
            pre_prepare: twin_pre_prepare,
            block: Box::new(twin),
        };
        self.split_send(real, other, out);
    }

    /// A digest a double-voter votes for beside the real one.
    fn conflicting(ballot: Ballot) -> Ballot {
        Ballot {
            digest: TaggedHasher::new(b"synod/pbft/double-vote")
                .update(&ballot.digest.0)
                .finish(),
            ..ballot
        }
    }

    /// Multicasts this replica's vote (a double-voter sends a conflicting one to half the
    /// replicas).
    pub(super) fn send_vote(
        &self,
        phase: Phase,
        ballot: Ballot,
        signature: Signature,
        out: &mut Vec<Action<PbftMessage>>,
    ) {
        let real = phase.message(ballot, self.me, signature);
        if !self.behaves(ByzantineBehaviour::DoubleVote) {
            out.push(Action::Broadcast(real));
            return;
        }
        let other = Self::conflicting(ballot);
        let fake = phase.message(other, self.me, phase.sign(&self.key, &self.chain_id, other));
        self.split_send(real, fake, out);
    }

    fn split_send(&self, real: PbftMessage, fake: PbftMessage, out: &mut Vec<Action<PbftMessage>>) {
        let (first, second) = self.halves();
        for to in first {
            out.push(Action::Send {
                to,
                msg: real.clone(),
            });
        }
        for to in second {
            out.push(Action::Send {
                to,
                msg: fake.clone(),
            });
        }
    }

    /// What a VIEW-CHANGE reports: the truth, or nothing for an amnesiac replica.
    #[allow(clippy::type_complexity)]
    pub(super) fn reported_history(
        &self,
        executed: Option<CommittedTip>,
        prepared: Vec<PreparedCertificate>,
        blocks: Vec<Block>,
    ) -> (Option<CommittedTip>, Vec<PreparedCertificate>, Vec<Block>) {
        if self.behaves(ByzantineBehaviour::Amnesia) {
            return (None, Vec::new(), Vec::new());
        }
        (executed, prepared, blocks)
    }

    /// The re-proposals a new primary announces: the chosen ones, or for a bad-new-view primary
    /// none of them (or, when there are none, one it made up).
    pub(super) fn announced_reproposals(
        &self,
        selection: &Selection,
        ballots: Vec<Ballot>,
        blocks: Vec<Block>,
    ) -> (Vec<Ballot>, Vec<Block>) {
        if !self.behaves(ByzantineBehaviour::BadNewView) {
            return (ballots, blocks);
        }
        if !ballots.is_empty() {
            return (Vec::new(), Vec::new());
        }
        let invented = Ballot {
            view: self.view,
            seq: selection.base + 1,
            digest: bogus_digest(self.view),
        };
        (vec![invented], Vec::new())
    }

    /// A silent replica's output: everything but messages.
    pub(super) fn filter_outgoing(&self, first: usize, out: &mut Vec<Action<PbftMessage>>) {
        if !self.behaves(ByzantineBehaviour::Silent) || out.len() <= first {
            return;
        }
        let produced = out.split_off(first);
        out.extend(
            produced
                .into_iter()
                .filter(|a| !matches!(a, Action::Send { .. } | Action::Broadcast(_))),
        );
    }
}
