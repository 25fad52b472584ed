//! What the driver does with the engine's events: structured logs, metrics, the validator set
//! the edge admits, transactions the engine gave up, and the scores of peers that sent invalid
//! blocks or broke the protocol (banned for a while once their score is high enough).

use synod_consensus::engine::{EngineEvent, NodeId};
use tracing::{debug, error, info, warn};

use super::Driver;
use crate::engines::HostedEngine;
use crate::error::NodeError;
use crate::net::{NetCommand, peer_id_of};
use crate::peer_score;

impl<E: HostedEngine> Driver<E> {
    pub(super) fn on_engine_event(&mut self, event: EngineEvent) -> Result<(), NodeError> {
        match event {
            EngineEvent::RoleChanged {
                role,
                round,
                leader,
            } => {
                info!(role = role.as_str(), round, leader = ?leader.map(|l| l.short()), "role");
                self.ctx.metrics.set_role(role.as_str());
                self.ctx.metrics.round.set(round as i64);
            }
            EngineEvent::SteppedDown { round, reason } => {
                warn!(round, reason, "stepped down");
            }
            EngineEvent::MembershipChanged { members, committed } => {
                info!(members = members.len(), committed, "validator set");
                // The edge lets exactly the current members through: a removed validator loses
                // its pass as soon as the engine stops counting it.
                *self
                    .ctx
                    .members
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                    members.into_iter().collect();
            }
            EngineEvent::Snapshot { height, installed } => {
                info!(height, installed, "snapshot");
            }
            EngineEvent::Divergence { height, detail } => {
                error!(
                    height,
                    detail, "this node diverged from the chain and stopped committing"
                );
            }
            EngineEvent::CommandRejected { reason } => {
                debug!(reason, "command rejected");
                self.rejected = Some(reason);
            }
            EngineEvent::TxDropped { id, reason } => {
                debug!(tx = %id.short(), reason, "engine dropped a transaction");
                self.ctx.mempool().drop_tx(&id, reason);
            }
            EngineEvent::BlockRejected {
                from,
                hash,
                height,
                reason,
            } => {
                warn!(from = ?from.map(|p| p.short()), block = %hash.short(), height, reason, "rejected a block");
                if let Some(peer) = from {
                    self.penalize(peer, peer_score::INVALID_BLOCK, "sent an invalid block");
                }
            }
            EngineEvent::PeerMisbehaved { peer, reason } => {
                warn!(peer = %peer.short(), reason, "peer misbehaved");
                self.penalize(peer, peer_score::MISBEHAVIOUR, "misbehaved");
            }
            EngineEvent::Reorg {
                fork_height,
                removed,
                added,
                tip,
            } => {
                info!(fork_height, removed, added, tip = %tip.short(), "reorganised onto a heavier branch");
                self.ctx.metrics.reorgs.inc();
            }
            EngineEvent::ReorgRefused {
                fork_height,
                finalized,
                tip,
            } => {
                warn!(fork_height, finalized, tip = %tip.short(), "refused a branch that forks below the finalized height");
            }
        }
        Ok(())
    }

    /// Adds `points` to `peer`'s score and bans it once the score is high enough.
    fn penalize(&mut self, peer: NodeId, points: f64, what: &'static str) {
        if peer == self.ctx.me || !self.scores.penalize(peer, points) {
            return;
        }
        warn!(peer = %peer.short(), what, seconds = peer_score::BAN_DURATION.as_secs(), "banning a peer");
        self.ctx.metrics.peers_banned.inc();
        if let (Some(peer), Some(net)) = (peer_id_of(&peer), self.ctx.net.get()) {
            net.send(NetCommand::Ban {
                peer,
                duration: peer_score::BAN_DURATION,
            });
        }
    }
}
