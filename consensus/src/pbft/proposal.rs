//! The primary's block production (paper §4.2, phase 1, with batching and pipelining): pending
//! transactions wait a short batching delay (or none, once a full block is waiting), then go into
//! a block built on the speculative state of the blocks still in flight, up to
//! [`PIPELINE_DEPTH`] of them and never above the high watermark. Sequence numbers are assigned
//! here; the PRE-PREPARE is written durably before it leaves.

use synod_chain::SignedTransaction;
use synod_chain::block::Seal;
use synod_chain::ledger::BlockTemplate;

use super::log::{Proposal, Slot};
use super::messages::{Ballot, MAX_PREPARED, PbftMessage, PrePrepare};
use super::storage::{self, AcceptedRecordRef};
use super::{BATCH_TIMER, PIPELINE_DEPTH, PbftEngine};
use crate::engine::{Action, EngineEvent, Millis};

/// Why the primary is asked to propose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mode {
    /// Something changed: propose if a full block waits, else start the batching delay.
    Normal,
    /// The batching delay is over: propose what waits.
    BatchDue,
    /// An operator asked for a block now, even an empty one.
    Forced,
}

impl PbftEngine {
    /// Up to `max` waiting transactions that can go into the next block: each sender's run of
    /// nonces from what the head state (executed plus in-flight blocks) expects next, so neither
    /// transactions already in flight nor ones behind a nonce gap take a slot, minus censored ones.
    fn proposable(&self, max: usize) -> Vec<SignedTransaction> {
        let mut candidates = self.pool.candidates(max, |a| self.chain.next_nonce(a));
        candidates.retain(|tx| !self.censors(tx));
        candidates
    }

    pub(super) fn propose(&mut self, now: Millis, mode: Mode, out: &mut Vec<Action<PbftMessage>>) {
        let max_txs = self.params.max_block_txs as usize;
        loop {
            if !self.active || self.halted || !self.is_primary() {
                return;
            }
            // A new primary first re-proposes what the NEW-VIEW fixed, on a chain it has.
            if self.executed() < self.view_base || self.chain.head_height() < self.reproposal_end {
                return;
            }
            // Backups accept at most MAX_PREPARED blocks above their executed height, so not even
            // an operator's request goes beyond that.
            let in_flight = self.chain.head_height() - self.executed();
            if (mode != Mode::Forced && in_flight >= PIPELINE_DEPTH)
                || in_flight >= MAX_PREPARED as u64
            {
                return;
            }
            if self.chain.head_height() + 1 > self.high_watermark() {
                return;
            }
            // The pool also holds what is in flight, so it bounds what can be proposed: a full
            // scan is only worth it when a full block might be waiting.
            let limit = if mode == Mode::Normal && self.pool.len() < max_txs {
                1
            } else {
                max_txs
            };
            let candidates = self.proposable(limit);
            let waiting = candidates.len();
            if waiting == 0 && mode != Mode::Forced {
                return;
            }
            if mode == Mode::Normal && waiting < max_txs {
                if !self.batch_armed {
                    self.batch_armed = true;
                    out.push(Action::SetTimer {
                        id: BATCH_TIMER,
                        after: self.params.batch_delay_ms,
                    });
                }
                return;
            }
            if !self.propose_block(now, candidates, mode == Mode::Forced, out)
                || mode == Mode::Forced
            {
                return;
            }
        }
    }

    /// Builds the next block from `candidates`, records and sends its PRE-PREPARE. False if no
    /// block came of it.
    fn propose_block(
        &mut self,
        now: Millis,
        candidates: Vec<SignedTransaction>,
        force: bool,
        out: &mut Vec<Action<PbftMessage>>,
    ) -> bool {
        let head = *self.chain.head_header();
        let template = BlockTemplate {
            proposer: self.me,
            timestamp_ms: now.max(head.timestamp_ms + 1),
            seal: Seal {
                round: self.view,
                bits: 0,
                nonce: 0,
            },
            max_txs: self.params.max_block_txs as usize,
        };
        let twin = self.equivocation_twin(&template, &candidates);
        let built = match self.chain.build(&template, candidates) {
            Ok(built) => built,
            Err(e) => {
                self.reject_command(format!("could not build a block: {e}"), out);
                return false;
            }
        };
        self.drop_rejected(&built.rejected, out);
        if built.block.txs.is_empty() && !force {
            // Nothing applicable (say, only nonces ahead of a gap): no empty block for that.
            self.chain.truncate_above(head.height);
            return false;
        }
        let block = self.corrupt_proposal(built.block);
        let seq = block.header.height;
        let digest = block.hash();
        let pre_prepare = self.sign(PrePrepare(Ballot {
            view: self.view,
            seq,
            digest,
        }));
        let record = AcceptedRecordRef {
            view: self.view,
            reproposal: false,
            signature: pre_prepare.signature,
            block: &block,
        };
        self.log.insert(
            seq,
            Slot {
                proposal: Some(Proposal {
                    signature: pre_prepare.signature,
                    block: block.clone(),
                    digest,
                    reproposal: false,
                }),
                accepted: true,
                ..Slot::default()
            },
        );
        // Written before it leaves: a restarted primary never assigns n twice in a view.
        out.push(Action::Persist(vec![storage::write_accepted(seq, &record)]));
        self.send_pre_prepare(pre_prepare, block, twin, out);
        true
    }

    /// Drops from the pool what a block builder refused for good, telling the node why.
    pub(super) fn drop_rejected(
        &mut self,
        rejected: &[(synod_chain::hash::Hash, synod_chain::TxError)],
        out: &mut Vec<Action<PbftMessage>>,
    ) {
        for (id, reason) in self.pool.remove_rejected(rejected) {
            out.push(Action::Event(EngineEvent::TxDropped { id, reason }));
        }
    }
}
