//! Mining templates. When this node mines, every new tip (and, after a short pause, every batch
//! of new transactions) makes the engine build a block on the tip: the bits the schedule
//! requires, nonce 0, a timestamp of now (at least the median time past plus one), and as many
//! pool transactions as apply to the tip's state. The driver mines the template it was handed
//! last (a new one replaces it, so a stale template never mines on) and returns a solution as
//! [`crate::Input::BlockMined`], which is validated like any block from the network.

use synod_chain::block::Seal;
use synod_chain::ledger::BlockTemplate;
use synod_chain::pow::timestamp::{MEDIAN_TIME_SPAN, median_time_past};
use synod_chain::{Block, BlockHeader};

use super::{PowEngine, PowMessage, TEMPLATE_TIMER};
use crate::engine::{Action, EngineEvent};

impl PowEngine {
    /// Rebuilds the template after a short pause (new transactions tend to come in bursts).
    pub(super) fn schedule_template(&mut self, out: &mut Vec<Action<PowMessage>>) {
        if self.mining && !self.template_armed {
            self.template_armed = true;
            out.push(Action::SetTimer {
                id: TEMPLATE_TIMER,
                after: self.template_delay_ms,
            });
        }
    }

    /// Hands the driver a fresh template on the tip (nothing if this node does not mine).
    pub(super) fn refresh_template(&mut self, out: &mut Vec<Action<PowMessage>>) {
        if !self.mining {
            return;
        }
        if self.template_armed {
            self.template_armed = false;
            out.push(Action::CancelTimer(TEMPLATE_TIMER));
        }
        match self.build_template(out) {
            Ok(block) => out.push(Action::Mine(Box::new(block))),
            Err(reason) => {
                out.push(Action::StopMining);
                out.push(Action::Event(EngineEvent::CommandRejected {
                    reason: format!("cannot build a block template: {reason}"),
                }));
            }
        }
    }

    fn build_template(&mut self, out: &mut Vec<Action<PowMessage>>) -> Result<Block, String> {
        let tip = self.tree.tip();
        let parent: BlockHeader = tip.header;
        let bits = self
            .difficulty
            .next_bits(&parent, |h| {
                self.tree
                    .ancestor(&tip.hash, h)
                    .map(|n| n.header.timestamp_ms)
            })
            .map_err(|e| e.to_string())?;
        let timestamps = self.tree.timestamps(&tip.hash, MEDIAN_TIME_SPAN);
        let earliest = median_time_past(&timestamps).map_or(0, |m| m + 1);
        let template = BlockTemplate {
            proposer: self.payout,
            timestamp_ms: self.now.max(earliest),
            seal: Seal {
                round: 0,
                bits,
                nonce: 0,
            },
            max_txs: self.params.max_block_txs as usize,
        };
        let accounts = &self.accounts;
        let candidates = self.pool.candidates(template.max_txs, |a| {
            accounts.get(a).map_or(0, |account| account.nonce)
        });
        let built = self
            .ledger
            .build_block(accounts, &parent, &template, candidates)
            .map_err(|e| e.to_string())?;
        for (id, reason) in self.pool.remove_rejected(&built.rejected) {
            out.push(Action::Event(EngineEvent::TxDropped { id, reason }));
        }
        Ok(built.block)
    }

    /// A block the driver's miner solved: validated like any other, and the miner given new work
    /// (it stops after each solution).
    pub(super) fn on_block_mined(&mut self, block: Block, out: &mut Vec<Action<PowMessage>>) {
        self.offer_block(block, None, false, out);
        if !self.after_new_data(out) {
            self.refresh_template(out);
        }
    }
}
