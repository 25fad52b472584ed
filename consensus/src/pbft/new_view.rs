//! NEW-VIEW (paper §4.4): the new primary's choice of what the new view starts from, made from a
//! quorum of VIEW-CHANGEs by [`select`], and every backup's check of it.
//!
//! The paper picks, per sequence number between the low and high watermark, the pre-prepare of
//! the highest-view prepared certificate, or a null request. With chained blocks a re-proposal at
//! n is only usable on top of the block chosen at n−1, so [`select`] walks the chain upwards from
//! the highest certified executed block (rule 3 of [`super`]'s docs, where the argument that no
//! committed block is lost is written out). A backup recomputes the choice from the VIEW-CHANGEs
//! the NEW-VIEW carries and, if the primary's pre-prepares differ, moves to the next view.

use synod_chain::Block;
use synod_chain::hash::{Hash, TaggedHasher};

use super::certificate::PreparedCertificate;
use super::messages::{Ballot, MAX_PREPARED, NewView, PbftMessage, PrePrepare, ViewChange};
use super::signing::Signed;
use super::storage::{self, NewViewRecord};
use super::{PbftEngine, VIEW_CHANGE_TIMER};
use crate::engine::{Action, EngineEvent, Millis, NodeId};

/// What a new view starts from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    /// The highest executed height proven in the VIEW-CHANGEs (0: genesis).
    pub base: u64,
    /// The blocks re-proposed above it, in height order.
    pub chosen: Vec<PreparedCertificate>,
}

impl Selection {
    /// The highest sequence number the selection fixes.
    pub fn end(&self) -> u64 {
        self.chosen.last().map_or(self.base, |c| c.ballot.seq)
    }
}

/// Chooses the new view's starting point from `view_changes` (already checked): the highest
/// certified executed block is the base; above it, for each height in turn, the highest-view
/// prepared certificate whose block's parent is the block chosen one height down, until a height
/// has none. With `ignore_prepared` (a deliberately broken variant for tests) nothing is
/// re-proposed.
pub fn select(view_changes: &[&ViewChange], ignore_prepared: bool) -> Selection {
    let base_tip = view_changes
        .iter()
        .filter_map(|vc| vc.executed.as_ref())
        .max_by_key(|tip| tip.header.height);
    let (base, mut parent): (u64, Option<Hash>) = match base_tip {
        Some(tip) => (tip.header.height, Some(tip.header.hash())),
        // Every chain starts from the same genesis: any certified block at height 1 extends it.
        None => (0, None),
    };
    let mut chosen: Vec<PreparedCertificate> = Vec::new();
    while !ignore_prepared && chosen.len() < MAX_PREPARED {
        let seq = base + 1 + chosen.len() as u64;
        let best = view_changes
            .iter()
            .flat_map(|vc| vc.prepared.iter())
            .filter(|c| c.ballot.seq == seq && parent.is_none_or(|p| c.header.parent == p))
            .max_by_key(|c| (c.ballot.view, c.ballot.digest));
        let Some(best) = best else {
            break;
        };
        parent = Some(best.ballot.digest);
        chosen.push(best.clone());
    }
    Selection { base, chosen }
}

/// A digest no block has, for a NEW-VIEW that lies.
pub(super) fn bogus_digest(view: u64) -> Hash {
    TaggedHasher::new(b"synod/pbft/bogus")
        .update_u64(view)
        .finish()
}

impl PbftEngine {
    /// The choice for the VIEW-CHANGEs `bodies`, under this engine's rules.
    fn choose(&self, bodies: &[&ViewChange]) -> Selection {
        select(bodies, self.ignores_prepared())
    }

    /// As the primary of the current view with a quorum of VIEW-CHANGEs: sends NEW-VIEW and
    /// starts the view.
    pub(super) fn send_new_view(&mut self, now: Millis, out: &mut Vec<Action<PbftMessage>>) {
        let mut senders: Vec<NodeId> = vec![self.me];
        senders.extend(self.replicas.ids().iter().filter(|id| **id != self.me));
        let records: Vec<_> = senders
            .iter()
            .filter_map(|id| self.view_changes.get(&(self.view, *id)))
            .take(self.replicas.quorum())
            .cloned()
            .collect();
        let bodies: Vec<&ViewChange> = records.iter().map(|r| &r.view_change.body).collect();
        let selection = self.choose(&bodies);
        let mut blocks: Vec<Block> = Vec::new();
        for certificate in &selection.chosen {
            let found = records
                .iter()
                .flat_map(|r| r.blocks.iter())
                .find(|b| b.hash() == certificate.ballot.digest);
            match found {
                Some(block) => blocks.push(block.clone()),
                // Every checked VIEW-CHANGE carries its blocks; a missing one is a bug, not a fault.
                None => return,
            }
        }
        let ballots: Vec<Ballot> = selection
            .chosen
            .iter()
            .map(|c| Ballot {
                view: self.view,
                seq: c.ballot.seq,
                digest: c.ballot.digest,
            })
            .collect();
        let (ballots, blocks) = self.announced_reproposals(&selection, ballots, blocks);
        let pre_prepares = ballots
            .into_iter()
            .map(|b| self.sign(PrePrepare(b)))
            .collect();
        let new_view = self.sign(NewView {
            view: self.view,
            view_changes: records.into_iter().map(|r| r.view_change).collect(),
            pre_prepares,
        });
        let record = NewViewRecord { new_view, blocks };
        self.install_new_view(now, record, selection, true, out);
    }

    /// Checks a NEW-VIEW signed by its view's primary: a quorum of valid VIEW-CHANGEs for that
    /// view from distinct replicas, re-proposals equal to this replica's own choice from them,
    /// each signed by the primary, and the blocks they name.
    fn check_new_view(
        &self,
        signed: &Signed<NewView>,
        blocks: &[Block],
    ) -> Result<Selection, &'static str> {
        let body = &signed.body;
        let mut signers: Vec<NodeId> = Vec::new();
        for vc in &body.view_changes {
            if vc.body.view != body.view || signers.contains(&vc.signer) {
                return Err("a VIEW-CHANGE is for another view or repeats a replica");
            }
            signers.push(vc.signer);
            self.check_view_change(vc)?;
        }
        if signers.len() < self.replicas.quorum() {
            return Err("fewer VIEW-CHANGEs than a quorum");
        }
        let bodies: Vec<&ViewChange> = body.view_changes.iter().map(|vc| &vc.body).collect();
        let selection = self.choose(&bodies);
        if body.pre_prepares.len() != selection.chosen.len() {
            return Err("the re-proposals differ from the VIEW-CHANGEs' choice");
        }
        let primary = self.replicas.primary(body.view);
        for (pre_prepare, certificate) in body.pre_prepares.iter().zip(&selection.chosen) {
            let expected = Ballot {
                view: body.view,
                seq: certificate.ballot.seq,
                digest: certificate.ballot.digest,
            };
            if pre_prepare.body.0 != expected || pre_prepare.signer != primary {
                return Err("the re-proposals differ from the VIEW-CHANGEs' choice");
            }
            pre_prepare
                .verify(&self.chain_id, &self.verifier)
                .map_err(|_| "a re-proposal's signature does not verify")?;
        }
        Self::check_blocks(selection.chosen.iter().map(|c| c.ballot.digest), blocks)?;
        Ok(selection)
    }

    pub(super) fn on_new_view(
        &mut self,
        now: Millis,
        signed: Signed<NewView>,
        blocks: Vec<Block>,
        out: &mut Vec<Action<PbftMessage>>,
    ) {
        let view = signed.body.view;
        if view < self.view || (view == self.view && self.active) {
            return;
        }
        if signed.signer != self.replicas.primary(view)
            || signed.verify(&self.chain_id, &self.verifier).is_err()
        {
            return;
        }
        match self.check_new_view(&signed, &blocks) {
            Ok(selection) => {
                let record = NewViewRecord {
                    new_view: signed,
                    blocks,
                };
                self.install_new_view(now, record, selection, false, out);
            }
            Err(reason) => {
                // Signed by the new primary and wrong: that primary is faulty.
                out.push(Action::Event(EngineEvent::SteppedDown {
                    round: view,
                    reason,
                }));
                self.start_view_change(now, view + 1, out);
            }
        }
    }

    /// Starts the view of `record` (checked, or built here if `announce`).
    fn install_new_view(
        &mut self,
        now: Millis,
        record: NewViewRecord,
        selection: Selection,
        announce: bool,
        out: &mut Vec<Action<PbftMessage>>,
    ) {
        self.view = record.new_view.body.view;
        self.active = true;
        self.view_started_at = now;
        self.view_change_timer = None;
        out.push(Action::CancelTimer(VIEW_CHANGE_TIMER));
        self.own_view_change = None;
        let view = self.view;
        self.view_changes.retain(|(v, _), _| *v > view);
        let dropped = self.chain.truncate_above(self.executed());
        self.return_to_pool(now, dropped);
        self.log.clear();
        out.push(Action::Persist(vec![
            storage::write_view(&self.view_record()),
            storage::write_new_view(&record),
            storage::delete_view_change(),
            storage::delete_all_accepted(),
        ]));
        if announce {
            out.push(Action::Broadcast(PbftMessage::NewView {
                new_view: Box::new(record.new_view.clone()),
                blocks: record.blocks.clone(),
            }));
        }
        self.announce_role(out);
        let checkpoints: Vec<_> = record
            .new_view
            .body
            .view_changes
            .iter()
            .filter_map(|vc| vc.body.checkpoint.clone())
            .collect();
        for checkpoint in &checkpoints {
            self.adopt_checkpoint(now, checkpoint, out);
        }
        let executed_below = self.load_reproposals(&record, &selection);
        self.new_view = Some(record);
        for ballot in executed_below {
            self.vote_for_executed(ballot, out);
        }
        if self.executed() < self.view_base {
            let holders = self.base_holders();
            self.need_blocks(now, self.view_base, holders, out);
        }
        self.forward_pending(now, out);
        self.replay_future(now, out);
        self.advance(now, out);
    }

    /// Puts the NEW-VIEW's re-proposals into the log as the view's pre-prepares, and sets the
    /// view's base. Returns the ballots of re-proposals this replica already executed.
    fn load_reproposals(&mut self, record: &NewViewRecord, selection: &Selection) -> Vec<Ballot> {
        self.view_base = selection.base;
        self.reproposal_end = selection.end();
        let mut executed_below = Vec::new();
        for pre_prepare in &record.new_view.body.pre_prepares {
            let ballot = pre_prepare.body.0;
            let Some(block) = record.blocks.iter().find(|b| b.hash() == ballot.digest) else {
                continue;
            };
            if ballot.seq <= self.executed() {
                if self.chain.executed_hash_at(ballot.seq) == Some(ballot.digest) {
                    executed_below.push(ballot);
                }
                continue;
            }
            let slot = self.log.entry(ballot.seq).or_default();
            slot.proposal = Some(super::log::Proposal {
                signature: pre_prepare.signature,
                block: block.clone(),
                digest: ballot.digest,
                reproposal: true,
            });
        }
        executed_below
    }

    /// After a restart in an active view: the view's base and re-proposals, from its NEW-VIEW.
    pub(super) fn restore_new_view_bounds(&mut self) {
        let Some(record) = self.new_view.clone().filter(|_| self.active) else {
            return;
        };
        let bodies: Vec<&ViewChange> = record
            .new_view
            .body
            .view_changes
            .iter()
            .map(|vc| &vc.body)
            .collect();
        let selection = self.choose(&bodies);
        self.load_reproposals(&record, &selection);
    }

    /// Replicas whose VIEW-CHANGE in the current NEW-VIEW proves the base height.
    pub(super) fn base_holders(&self) -> Vec<NodeId> {
        let base = self.view_base;
        self.new_view
            .iter()
            .flat_map(|r| r.new_view.body.view_changes.iter())
            .filter(|vc| vc.body.executed.as_ref().map(|t| t.header.height) >= Some(base))
            .map(|vc| vc.signer)
            .collect()
    }
}
