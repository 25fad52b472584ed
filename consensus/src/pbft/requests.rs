//! Client requests (paper §4.1 and §4.4's request timer), as transactions.
//!
//! Every replica keeps each transaction it was given in its pool until the transaction commits,
//! or drops it for good with a reason ([`EngineEvent::TxDropped`]): its nonce was used by another
//! transaction, or a block builder refused it permanently, or the pool overflowed. Backups
//! forward what they receive to the primary, re-forward what still waits on a timer and to each
//! new primary; transactions of blocks that were accepted but abandoned by a view change return
//! to the pool.
//!
//! A backup *suspects* the primary when a transaction it holds could apply to the executed state
//! (next nonce, enough balance) and has waited longer than the view-change timeout in this view
//! — a crashed or silent primary (no pre-prepare at all), or a censoring one (other transactions
//! commit, this one never does) — or when pre-prepares it holds have not committed for that long
//! and nothing else has either: a stalled view. (A transaction whose nonce is ahead of its
//! account's does not count: no primary could include it, and suspecting an honest primary for
//! it would let any client stall the chain.)

use synod_chain::SignedTransaction;
use synod_chain::hash::Hash;
use synod_chain::keys::Address;

use super::messages::{Forward, MAX_FORWARD_TXS, PbftMessage};
use super::{PbftEngine, REQUEST_TIMER, TICKS_PER_STATUS};
use crate::engine::{Action, EngineEvent, Millis};

/// When a transaction reached this replica, and what decides whether it is due: its sender,
/// nonce and cost (amount plus fee; `None` if that overflows).
#[derive(Clone, Copy, Debug)]
pub(super) struct Arrival {
    at: Millis,
    id: Hash,
    sender: Address,
    nonce: u64,
    cost: Option<u64>,
}

impl Arrival {
    fn new(at: Millis, tx: &SignedTransaction) -> Self {
        let t = tx.tx();
        Arrival {
            at,
            id: tx.id(),
            sender: t.sender(),
            nonce: t.nonce,
            cost: t.amount.checked_add(t.fee),
        }
    }
}

/// Transactions looked at, oldest first, when looking for one that is due.
const DUE_SCAN: usize = 65_536;
/// Transactions looked at per sweep for ones whose nonce was used by another.
const PRUNE_SCAN: usize = 4_096;

impl PbftEngine {
    pub(super) fn on_transactions(
        &mut self,
        now: Millis,
        txs: Vec<SignedTransaction>,
        out: &mut Vec<Action<PbftMessage>>,
    ) {
        if !self.is_replica() {
            return;
        }
        let fresh = self.admit(now, txs);
        if fresh.is_empty() {
            return;
        }
        if self.active && !self.is_primary() {
            self.forward(fresh, out);
        }
        self.advance(now, out);
    }

    /// Adds transactions not already waiting; returns the new ones. A full pool refuses the rest:
    /// the node still holds them and hands them in again.
    fn admit(&mut self, now: Millis, txs: Vec<SignedTransaction>) -> Vec<SignedTransaction> {
        // A nonce below the executed account's is spent: by this very transaction (a client's
        // retry of one that committed) or by another. Either way it is not pending here.
        let fresh: Vec<SignedTransaction> = txs
            .into_iter()
            .filter(|tx| !self.pool.contains(&tx.id()) && !self.spent(&Arrival::new(now, tx)))
            .collect();
        let added = self.pool.add(now, fresh);
        self.arrivals
            .extend(added.iter().map(|tx| Arrival::new(now, tx)));
        added
    }

    /// Whether the transaction's nonce is below its account's on the executed state.
    fn spent(&self, arrival: &Arrival) -> bool {
        let account = self.chain.accounts().get(&arrival.sender);
        arrival.nonce < account.map_or(0, |a| a.nonce)
    }

    /// Puts the transactions of abandoned blocks back into the pool.
    pub(super) fn return_to_pool(&mut self, now: Millis, blocks: Vec<synod_chain::Block>) {
        let txs: Vec<SignedTransaction> = blocks
            .into_iter()
            .flat_map(|b| b.txs)
            .filter(|tx| !self.pool.contains(&tx.id()) && !self.spent(&Arrival::new(now, tx)))
            .collect();
        // Past the pool's capacity if need be: these were admitted once.
        let added = self.pool.give_back(now, txs);
        self.arrivals
            .extend(added.iter().map(|tx| Arrival::new(now, tx)));
    }

    /// Sends `txs` to the primary.
    fn forward(&self, txs: Vec<SignedTransaction>, out: &mut Vec<Action<PbftMessage>>) {
        let primary = self.primary();
        if primary == self.me {
            return;
        }
        let mut txs = txs;
        while !txs.is_empty() {
            let rest = txs.split_off(txs.len().min(MAX_FORWARD_TXS));
            let forward = Forward {
                view: self.view,
                txs,
            };
            out.push(Action::Send {
                to: primary,
                msg: PbftMessage::Forward(forward),
            });
            txs = rest;
        }
    }

    /// Forwards everything waiting (and not in a block in flight) to the primary.
    pub(super) fn forward_pending(&self, out: &mut Vec<Action<PbftMessage>>) {
        if !self.active || self.is_primary() || self.pool.is_empty() {
            return;
        }
        let txs = self
            .pool
            .candidates_where(MAX_FORWARD_TXS, |id, _| !self.chain.is_in_flight(id));
        self.forward(txs, out);
    }

    pub(super) fn on_forward(
        &mut self,
        now: Millis,
        forward: Forward,
        out: &mut Vec<Action<PbftMessage>>,
    ) {
        // Only the active primary orders requests; a backup re-forwards to each new primary.
        if !self.active || !self.is_primary() {
            return;
        }
        let txs: Vec<SignedTransaction> = forward
            .txs
            .into_iter()
            .filter(|tx| !self.pool.contains(&tx.id()))
            .collect();
        let ids: Vec<Hash> = txs.iter().map(SignedTransaction::id).collect();
        // Forwarded transactions come from another replica, not the node's mempool: check them.
        let results = self.verifier.with_txs(|v| v.verify_many(&txs, &ids));
        let chain_id = self.chain_id.clone();
        let valid: Vec<SignedTransaction> = txs
            .into_iter()
            .zip(results)
            .filter(|(tx, result)| result.is_ok() && tx.check_stateless(&chain_id).is_ok())
            .map(|(tx, _)| tx)
            .collect();
        if self.admit(now, valid).is_empty() {
            return;
        }
        self.advance(now, out);
    }

    /// Whether the transaction could go into the next block on the executed state.
    fn applicable(&self, arrival: &Arrival) -> bool {
        let account = self
            .chain
            .accounts()
            .get(&arrival.sender)
            .copied()
            .unwrap_or_default();
        arrival.nonce == account.nonce && arrival.cost.is_some_and(|cost| cost <= account.balance)
    }

    /// Since when the oldest transaction that is due has waited in this view (a scan of the
    /// arrival queue, run when the request timer fires, not per message).
    fn oldest_due(&mut self) -> Option<Millis> {
        while self
            .arrivals
            .front()
            .is_some_and(|arrival| !self.pool.contains(&arrival.id))
        {
            self.arrivals.pop_front();
        }
        if self.arrivals.len() > 2 * self.pool.len() + 64 {
            let pool = &self.pool;
            self.arrivals.retain(|arrival| pool.contains(&arrival.id));
        }
        self.arrivals
            .iter()
            .take(DUE_SCAN)
            .find(|arrival| self.pool.contains(&arrival.id) && self.applicable(arrival))
            .map(|arrival| arrival.at.max(self.view_started_at))
    }

    /// As a backup holding transactions, arms the timer that checks on the primary.
    pub(super) fn arm_request_timer(&mut self, now: Millis, out: &mut Vec<Action<PbftMessage>>) {
        if self.request_timer_armed || !self.active || self.is_primary() || self.pool.is_empty() {
            return;
        }
        let after = match self.oldest_due() {
            Some(since) => (since + self.timeout()).saturating_sub(now).max(1),
            None => self.timeout(),
        };
        self.request_timer_armed = true;
        out.push(Action::SetTimer {
            id: REQUEST_TIMER,
            after,
        });
    }

    pub(super) fn on_request_timer(&mut self, now: Millis, out: &mut Vec<Action<PbftMessage>>) {
        self.request_timer_armed = false;
        if !self.active || self.is_primary() {
            return;
        }
        // A replica that knows it is behind waits for its blocks before it blames the primary:
        // what looks due to it may have committed long ago.
        if self.known_behind() {
            self.request_timer_armed = true;
            out.push(Action::SetTimer {
                id: REQUEST_TIMER,
                after: self.timeout(),
            });
            return;
        }
        match self.oldest_due() {
            Some(since) if since + self.timeout() <= now => {
                self.suspect(now, "a transaction waited too long for the primary", out)
            }
            _ => self.arm_request_timer(now, out),
        }
    }

    /// As a backup: if pre-prepares of this view have waited a timeout without anything
    /// executing, the view is stuck (the primary, or too few replicas, in it): suspect.
    pub(super) fn check_stall(&mut self, now: Millis, out: &mut Vec<Action<PbftMessage>>) {
        // With blocks to fetch (even on a hint: COMMITs of a quorum above us), the view is not
        // stuck, this replica is: it fetches them instead.
        let fetching = self
            .sync
            .as_ref()
            .is_some_and(|target| target.height > self.executed());
        if !self.active || self.is_primary() || fetching {
            return;
        }
        let waiting = self
            .log
            .range(self.executed() + 1..)
            .any(|(_, slot)| slot.proposal.is_some());
        if waiting && now >= self.last_progress.max(self.view_started_at) + self.timeout() {
            self.suspect(now, "pre-prepared blocks stopped committing", out);
        }
    }

    /// Re-forwards waiting transactions if one has been due for a while (the primary may have
    /// missed them), and drops those whose nonce another transaction used.
    pub(super) fn reforward_and_prune(&mut self, now: Millis, out: &mut Vec<Action<PbftMessage>>) {
        let interval = TICKS_PER_STATUS * self.tick_interval();
        if self
            .oldest_due()
            .is_some_and(|since| since + interval <= now)
        {
            self.forward_pending(out);
        }
        let used: Vec<Hash> = self
            .arrivals
            .iter()
            .take(PRUNE_SCAN)
            .filter(|arrival| self.spent(arrival) && self.pool.contains(&arrival.id))
            .map(|arrival| arrival.id)
            .collect();
        self.pool.remove(&used);
        for id in used {
            out.push(Action::Event(EngineEvent::TxDropped {
                id,
                reason: "its nonce was used by another transaction".into(),
            }));
        }
    }
}
