//! State transfer (paper §5.3, with blocks for pages): a replica that sees proof it is behind —
//! f+1 CHECKPOINTs or a stable-checkpoint certificate above its executed height, a NEW-VIEW whose
//! base is above it, a peer's executed tip with its commit certificate above it — asks one of the
//! replicas that are ahead for blocks ([`Action::RequestSync`]). A quorum of COMMITs above the
//! next block it can execute is only a hint (those blocks may not be executed anywhere yet): it
//! asks on the next tick if nothing executed meanwhile. The answer
//! ([`Input::Synced`](crate::engine::Input)) is unverified: each block is executed only if its
//! commit certificate checks and the block is fully valid on top of the executed tip. The others
//! keep going meanwhile.
//!
//! STATUS messages carry each replica's view, executed tip (with its certificate) and stable
//! checkpoint; they are how a replica that was down learns what it missed, and how it gets the
//! NEW-VIEW of a view it skipped.

use synod_chain::codec;
use synod_chain::limits::MAX_PROOF_BYTES;

use super::certificate::CommitCertificate;
use super::messages::{PbftMessage, Status};
use super::{PbftEngine, SyncTarget};
use crate::engine::{Action, Millis, NodeId, SyncedBlock};

/// Unanswered block requests before a sync target is given up.
const MAX_SYNC_ATTEMPTS: u64 = 8;

impl PbftEngine {
    /// Remembers that blocks up to `height` were executed by an honest replica among `peers` (f+1
    /// of them, or a certificate, say so) and asks for them at once.
    pub(super) fn need_blocks(
        &mut self,
        now: Millis,
        height: u64,
        peers: Vec<NodeId>,
        out: &mut Vec<Action<PbftMessage>>,
    ) {
        if height <= self.executed() {
            return;
        }
        self.note_sync_target(height, peers, true);
        self.request_blocks(now, out);
    }

    /// Records a sync target (the highest one wins; its holders are kept). `proven`: an honest
    /// replica executed it; otherwise it is a hint (committed, maybe not executed yet), fetched
    /// on the next tick if nothing executes meanwhile.
    pub(super) fn note_sync_target(&mut self, height: u64, mut peers: Vec<NodeId>, proven: bool) {
        peers.retain(|p| *p != self.me && self.replicas.contains(p));
        peers.dedup();
        if peers.is_empty() || height <= self.executed() {
            return;
        }
        match self.sync.as_mut() {
            Some(target) if target.height == height => {
                target.proven |= proven;
                for peer in peers {
                    if !target.peers.contains(&peer) {
                        target.peers.push(peer);
                    }
                }
            }
            // A higher hint does not replace a proven target (nor the other way round).
            Some(target) if target.height > height && (target.proven || !proven) => {}
            _ => {
                let asked_at = self.sync.as_ref().and_then(|t| t.asked_at);
                self.sync = Some(SyncTarget {
                    height,
                    peers,
                    asked_at,
                    attempts: 0,
                    proven,
                });
            }
        }
    }

    /// Whether this replica knows it is behind what an honest replica executed.
    pub(super) fn known_behind(&self) -> bool {
        self.sync
            .as_ref()
            .is_some_and(|t| t.proven && t.height > self.executed())
    }

    /// Asks a replica that is ahead for the blocks after the executed tip, unless a request is
    /// still in flight.
    pub(super) fn request_blocks(&mut self, now: Millis, out: &mut Vec<Action<PbftMessage>>) {
        let executed = self.executed();
        let patience = 2 * self.tick_interval();
        let Some(target) = self.sync.as_mut() else {
            return;
        };
        if target.height <= executed {
            self.sync = None;
            return;
        }
        if target.asked_at.is_some_and(|at| now < at + patience) {
            return;
        }
        if target.attempts >= MAX_SYNC_ATTEMPTS {
            // Nobody answers with those blocks: the target was a hint that did not come true,
            // or its holders are down. Fresh evidence sets a new one.
            self.sync = None;
            return;
        }
        let start = self.rng.index(target.peers.len());
        let peer = target.peers[(start + target.attempts as usize) % target.peers.len()];
        target.attempts += 1;
        target.asked_at = Some(now);
        out.push(Action::RequestSync {
            from: peer,
            height: executed + 1,
        });
    }

    pub(super) fn on_synced(
        &mut self,
        now: Millis,
        blocks: Vec<SyncedBlock>,
        out: &mut Vec<Action<PbftMessage>>,
    ) {
        let mut executed_any = false;
        for synced in blocks {
            let height = synced.block.header.height;
            if height <= self.executed() {
                continue;
            }
            if height != self.executed() + 1 || self.halted {
                break;
            }
            let Ok(certificate) =
                codec::decode::<CommitCertificate>(&synced.proof, MAX_PROOF_BYTES)
            else {
                break;
            };
            let ballot = certificate.ballot;
            if ballot.seq != height
                || ballot.digest != synced.block.hash()
                || certificate
                    .check(
                        &self.replicas,
                        &self.chain_id,
                        self.commit_quorum(),
                        &self.verifier,
                    )
                    .is_err()
            {
                break;
            }
            if !self.execute_block(now, synced.block, certificate, out) {
                break;
            }
            executed_any = true;
        }
        if !executed_any {
            return;
        }
        if let Some(target) = self.sync.as_mut() {
            // Progress: ask again at once, and give the holders their attempts anew.
            target.asked_at = None;
            target.attempts = 0;
        }
        self.request_blocks(now, out);
        self.advance(now, out);
    }

    pub(super) fn broadcast_status(&self, out: &mut Vec<Action<PbftMessage>>) {
        out.push(Action::Broadcast(PbftMessage::Status(Box::new(Status {
            view: self.view,
            active: self.active,
            executed: self.committed_tip.clone(),
            checkpoint: self.stable.clone(),
        }))));
    }

    pub(super) fn on_status(
        &mut self,
        now: Millis,
        from: NodeId,
        status: Status,
        out: &mut Vec<Action<PbftMessage>>,
    ) {
        // A replica in an earlier view, or still waiting for this view's NEW-VIEW, missed it.
        if status.view < self.view || (status.view == self.view && !status.active) {
            self.relay_new_view(from, out);
        }
        if let Some(checkpoint) = &status.checkpoint {
            self.adopt_checkpoint(now, checkpoint, out);
        }
        // A certified tip above ours: the sender has blocks we lack (checked before trusted).
        if let Some(tip) = status
            .executed
            .filter(|t| t.header.height > self.executed())
            && tip
                .check(
                    &self.replicas,
                    &self.chain_id,
                    self.commit_quorum(),
                    &self.verifier,
                )
                .is_ok()
        {
            self.need_blocks(now, tip.header.height, vec![from], out);
        }
    }
}
