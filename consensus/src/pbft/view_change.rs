//! View changes (paper §4.4, with the liveness rules of §4.5.2).
//!
//! - A replica that suspects the primary of view v (see the module docs of [`super`]) stops
//!   taking normal-case messages of v, records view v+1 durably and multicasts VIEW-CHANGE(v+1)
//!   with its stable checkpoint, its executed tip's commit certificate and its prepared
//!   certificates above that tip (rule 3 of the module docs). Blocks it had accepted but not
//!   executed are dropped; their transactions go back to the pool.
//! - f+1 valid VIEW-CHANGEs for views above its own make a replica join the smallest view that
//!   f+1 of them reach: at least one honest replica wants it.
//! - Once a quorum of replicas asked for its view or a later one, a replica starts a timer; if
//!   no valid NEW-VIEW comes before it fires it moves to the next view, and the timer doubles
//!   with each such failure until a block executes.
//! - The primary of the new view, holding a quorum, sends NEW-VIEW ([`super::new_view`]).
//! - A VIEW-CHANGE for a view this replica already operates in (or passed) comes from a replica
//!   that missed the NEW-VIEW: it gets the NEW-VIEW back.

use std::collections::{BTreeMap, BTreeSet};

use synod_chain::Block;
use synod_chain::hash::Hash;

use super::messages::{MAX_PREPARED, PbftMessage, ViewChange};
use super::signing::Signed;
use super::storage::{self, ViewChangeRecord};
use super::{
    BATCH_TIMER, MAX_VIEW_CHANGES_PER_REPLICA, PbftEngine, REQUEST_TIMER, VIEW_CHANGE_TIMER,
};
use crate::engine::{Action, EngineEvent, Millis, NodeId};

impl PbftEngine {
    /// Gives up on the current view's primary for `reason` and asks for the next view.
    pub(super) fn suspect(
        &mut self,
        now: Millis,
        reason: &'static str,
        out: &mut Vec<Action<PbftMessage>>,
    ) {
        if !self.active {
            return;
        }
        out.push(Action::Event(EngineEvent::SteppedDown {
            round: self.view,
            reason,
        }));
        self.start_view_change(now, self.view + 1, out);
    }

    /// Moves to `target` (> the current view) and multicasts VIEW-CHANGE(target).
    pub(super) fn start_view_change(
        &mut self,
        now: Millis,
        target: u64,
        out: &mut Vec<Action<PbftMessage>>,
    ) {
        if target <= self.view || self.halted {
            return;
        }
        self.view = target;
        self.active = false;
        self.view_started_at = now;
        self.view_change_timer = None;
        self.new_view = None;
        self.batch_armed = false;
        self.request_timer_armed = false;
        for id in [BATCH_TIMER, REQUEST_TIMER, VIEW_CHANGE_TIMER] {
            out.push(Action::CancelTimer(id));
        }
        let dropped = self.chain.truncate_above(self.executed());
        self.return_to_pool(now, dropped);
        self.log.clear();
        let record = self.build_view_change();
        self.own_view_change = Some(record.clone());
        self.view_changes.retain(|(view, _), _| *view >= target);
        self.view_changes.insert((target, self.me), record.clone());
        out.push(Action::Persist(vec![
            storage::write_view(&self.view_record()),
            storage::write_view_change(&record),
            storage::delete_all_accepted(),
        ]));
        out.push(Action::Broadcast(PbftMessage::ViewChange {
            view_change: Box::new(record.view_change),
            blocks: record.blocks,
        }));
        self.announce_role(out);
        self.process_view_changes(now, out);
    }

    /// This replica's VIEW-CHANGE for its current view.
    fn build_view_change(&self) -> ViewChangeRecord {
        let executed = self.executed();
        let (prepared, blocks): (Vec<_>, Vec<Block>) = self
            .prepared
            .range(executed + 1..=executed + MAX_PREPARED as u64)
            .map(|(_, record)| (record.certificate.clone(), record.block.clone()))
            .unzip();
        let (executed, prepared, blocks) =
            self.reported_history(self.committed_tip.clone(), prepared, blocks);
        let body = ViewChange {
            view: self.view,
            checkpoint: self.stable.clone(),
            executed,
            prepared,
        };
        ViewChangeRecord {
            view_change: self.sign(body),
            blocks,
        }
    }

    /// Checks a VIEW-CHANGE statement: its signature, and every certificate in it.
    pub(super) fn check_view_change(
        &self,
        signed: &Signed<ViewChange>,
    ) -> Result<(), &'static str> {
        if !self.replicas.contains(&signed.signer) {
            return Err("the signer is not a replica");
        }
        signed
            .verify(&self.chain_id, &self.verifier)
            .map_err(|_| "bad signature")?;
        let body = &signed.body;
        if let Some(checkpoint) = &body.checkpoint {
            checkpoint
                .check(&self.replicas, &self.chain_id, &self.verifier)
                .map_err(|_| "bad checkpoint certificate")?;
        }
        let executed = match &body.executed {
            Some(tip) => {
                tip.check(
                    &self.replicas,
                    &self.chain_id,
                    self.commit_quorum(),
                    &self.verifier,
                )
                .map_err(|_| "bad commit certificate")?;
                tip.header.height
            }
            None => 0,
        };
        let mut seqs = BTreeSet::new();
        for certificate in &body.prepared {
            let ballot = certificate.ballot;
            if ballot.view >= body.view || ballot.seq <= executed || !seqs.insert(ballot.seq) {
                return Err("a prepared certificate is out of place");
            }
            certificate
                .check(&self.replicas, &self.chain_id, &self.verifier)
                .map_err(|_| "bad prepared certificate")?;
        }
        Ok(())
    }

    /// Checks that `blocks` are exactly well-formed blocks named by `digests`.
    pub(super) fn check_blocks(
        digests: impl IntoIterator<Item = Hash>,
        blocks: &[Block],
    ) -> Result<(), &'static str> {
        let mut wanted: Vec<Hash> = digests.into_iter().collect();
        if wanted.len() != blocks.len() {
            return Err("blocks do not match the certificates");
        }
        for block in blocks {
            let hash = block.hash();
            let Some(i) = wanted.iter().position(|d| *d == hash) else {
                return Err("a block no certificate names");
            };
            wanted.swap_remove(i);
            block.check_shape().map_err(|_| "a malformed block")?;
        }
        Ok(())
    }

    pub(super) fn on_view_change(
        &mut self,
        now: Millis,
        from: NodeId,
        signed: Signed<ViewChange>,
        blocks: Vec<Block>,
        out: &mut Vec<Action<PbftMessage>>,
    ) {
        if signed.signer != from {
            return;
        }
        let view = signed.body.view;
        if view < self.view || (view == self.view && self.active) {
            // The sender missed the NEW-VIEW of a view this replica reached.
            return self.relay_new_view(from, out);
        }
        if self.view_changes.contains_key(&(view, from)) {
            return;
        }
        let digests = signed.body.prepared.iter().map(|c| c.ballot.digest);
        if Self::check_blocks(digests, &blocks).is_err() || self.check_view_change(&signed).is_err()
        {
            return;
        }
        if let Some(checkpoint) = signed.body.checkpoint.clone() {
            self.adopt_checkpoint(now, &checkpoint, out);
        }
        self.view_changes.insert(
            (view, from),
            ViewChangeRecord {
                view_change: signed,
                blocks,
            },
        );
        let held: Vec<u64> = self
            .view_changes
            .keys()
            .filter(|(_, id)| *id == from)
            .map(|(v, _)| *v)
            .collect();
        if held.len() > MAX_VIEW_CHANGES_PER_REPLICA {
            self.view_changes.remove(&(held[0], from));
        }
        self.process_view_changes(now, out);
    }

    /// Applies the f+1 rule, starts the view-change timer once a quorum asks for this view (or
    /// beyond), and has the new primary send NEW-VIEW once a quorum asks for exactly this view.
    pub(super) fn process_view_changes(&mut self, now: Millis, out: &mut Vec<Action<PbftMessage>>) {
        // Each other replica's highest view above ours.
        let mut highest: BTreeMap<NodeId, u64> = BTreeMap::new();
        for (view, id) in self.view_changes.keys() {
            if *id != self.me && *view > self.view {
                highest.insert(*id, *view);
            }
        }
        let f = self.replicas.f();
        if highest.len() > f {
            let mut views: Vec<u64> = highest.into_values().collect();
            views.sort_unstable_by(|a, b| b.cmp(a));
            return self.start_view_change(now, views[f], out);
        }
        if self.active {
            return;
        }
        // The timer starts once a quorum of replicas left the views below ours (some may be past
        // it already: a replica that restarted, or whose copies of this view's VIEW-CHANGEs were
        // lost, still times out and catches up with them).
        let mut asking: Vec<&NodeId> = self
            .view_changes
            .range((self.view, NodeId::default())..)
            .map(|((_, id), _)| id)
            .collect();
        asking.sort();
        asking.dedup();
        if asking.len() < self.replicas.quorum() {
            return;
        }
        if self.view_change_timer != Some(self.view) {
            self.view_change_timer = Some(self.view);
            out.push(Action::SetTimer {
                id: VIEW_CHANGE_TIMER,
                after: self.timeout(),
            });
        }
        let exactly = self
            .view_changes
            .range((self.view, NodeId::default())..)
            .take_while(|((view, _), _)| *view == self.view)
            .count();
        if self.is_primary() && self.own_view_change.is_some() && exactly >= self.replicas.quorum()
        {
            self.send_new_view(now, out);
        }
    }

    pub(super) fn on_view_change_timer(&mut self, now: Millis, out: &mut Vec<Action<PbftMessage>>) {
        if self.active || self.view_change_timer != Some(self.view) {
            return;
        }
        self.view_change_timer = None;
        self.failed_views = self.failed_views.saturating_add(1);
        out.push(Action::Event(EngineEvent::SteppedDown {
            round: self.view,
            reason: "no NEW-VIEW in time",
        }));
        self.start_view_change(now, self.view + 1, out);
    }

    /// Sends the NEW-VIEW that started the current view to `to` (which missed it).
    pub(super) fn relay_new_view(&self, to: NodeId, out: &mut Vec<Action<PbftMessage>>) {
        if let Some(record) = self.new_view.as_ref().filter(|_| self.active) {
            out.push(Action::Send {
                to,
                msg: PbftMessage::NewView {
                    new_view: Box::new(record.new_view.clone()),
                    blocks: record.blocks.clone(),
                },
            });
        }
    }
}
