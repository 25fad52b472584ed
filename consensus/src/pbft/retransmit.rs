//! Retransmission (paper §4.5.2 assumes messages are retransmitted until delivered): on a tick,
//! if nothing executed since the last one, a replica sends again what it already signed for the
//! sequence numbers in flight — the primary its PRE-PREPAREs, everyone their PREPAREs and COMMITs
//! — its unstable CHECKPOINT, its VIEW-CHANGE while it waits for a NEW-VIEW, and asks again for
//! blocks it is missing. Every few ticks it also multicasts its STATUS and re-forwards waiting
//! transactions. Receivers drop duplicates before checking any signature.

use super::log::Phase;
use super::messages::{Ballot, MAX_PREPARED, PbftMessage, PrePrepare};
use super::signing::Signed;
use super::{PbftEngine, TICK_TIMER, TICKS_PER_STATUS};
use crate::engine::{Action, Millis};

impl PbftEngine {
    pub(super) fn on_tick(&mut self, now: Millis, out: &mut Vec<Action<PbftMessage>>) {
        self.ticks += 1;
        self.pool.expire(now);
        out.push(Action::SetTimer {
            id: TICK_TIMER,
            after: self.tick_interval(),
        });
        let stalled = self.executed() == self.executed_at_last_tick;
        self.executed_at_last_tick = self.executed();
        let periodic = self.ticks.is_multiple_of(TICKS_PER_STATUS);
        if stalled {
            if self.active {
                self.retransmit_votes(out);
            } else if periodic && let Some(record) = &self.own_view_change {
                out.push(Action::Broadcast(PbftMessage::ViewChange {
                    view_change: Box::new(record.view_change.clone()),
                    blocks: record.blocks.clone(),
                }));
            }
            if let Some(checkpoint) = self.unstable_checkpoint() {
                out.push(Action::Broadcast(PbftMessage::Checkpoint(
                    checkpoint.clone(),
                )));
            }
            self.request_blocks(now, out);
        }
        if periodic {
            self.broadcast_status(out);
            self.reforward_and_prune(now, out);
        }
        self.check_stall(now, out);
        self.advance(now, out);
    }

    /// Sends again this replica's signed messages for the sequence numbers in flight.
    fn retransmit_votes(&self, out: &mut Vec<Action<PbftMessage>>) {
        let executed = self.executed();
        let primary = self.primary();
        for (seq, slot) in self
            .log
            .range(executed + 1..=executed + MAX_PREPARED as u64)
        {
            let Some(proposal) = slot.proposal.as_ref() else {
                continue;
            };
            let ballot = Ballot {
                view: self.view,
                seq: *seq,
                digest: proposal.digest,
            };
            if primary == self.me && slot.accepted {
                out.push(Action::Broadcast(PbftMessage::PrePrepare {
                    pre_prepare: Signed {
                        body: PrePrepare(ballot),
                        signer: self.me,
                        signature: proposal.signature,
                    },
                    block: Box::new(proposal.block.clone()),
                }));
            }
            for phase in [Phase::Prepare, Phase::Commit] {
                if let Some(vote) = slot.votes(phase).get(&self.me) {
                    let ballot = Ballot {
                        digest: vote.digest,
                        ..ballot
                    };
                    out.push(Action::Broadcast(phase.message(
                        ballot,
                        self.me,
                        vote.signature,
                    )));
                }
            }
        }
    }
}
