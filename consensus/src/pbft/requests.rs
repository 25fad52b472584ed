//! Client requests (paper §4.1 and §4.4's request timer), as transactions.
//!
//! Every replica keeps each transaction it was given in its pool until the transaction commits,
//! or drops it for good with a reason ([`EngineEvent::TxDropped`]): its nonce was used by another
//! transaction, or a block builder refused it permanently. (A full pool refuses new ones; the
//! node keeps those and hands them in again.) Backups forward what they receive to the primary,
//! hand everything waiting to each new primary, and re-send what still waits on a timer with a
//! backoff: to the primary, or, while waiting for a NEW-VIEW, to every replica, since the others
//! may well operate in a view this replica failed to join. Transactions of blocks that were
//! accepted but abandoned by a view change return to the pool.
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
/// Most transactions a backup hands a new primary in one go; the rest follow with the resends.
const MAX_FORWARD_BURST: usize = 100_000;
/// Most transactions re-sent on one resend tick (a loaded primary must not be flooded with copies
/// of what it is already working through).
const MAX_RESEND_BURST: usize = 10_000;
/// Transactions at the front of each sender's queue re-sent per resend tick.
const RESEND_PER_SENDER: usize = 64;

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

    /// Hands everything waiting to the primary of a view just installed (it may have missed what
    /// the old one held), with the resend backoff started over.
    pub(super) fn forward_pending(&mut self, now: Millis, out: &mut Vec<Action<PbftMessage>>) {
        if !self.active || self.is_primary() || self.pool.is_empty() {
            return;
        }
        let txs = self.pool.take_all_for_forward(now, MAX_FORWARD_BURST);
        self.forward(txs, out);
    }

    /// Sends again what has waited a while without committing: forwards can be lost (a crashed,
    /// silent or partitioned primary, a dropped message), transactions cannot. An active backup
    /// sends to its primary; a replica waiting for a NEW-VIEW does not know which primary the
    /// others follow, so it sends to every replica and the active primary keeps them (a client
    /// whose request is not answered does the same, paper §4.1).
    fn resend_waiting(&mut self, now: Millis, out: &mut Vec<Action<PbftMessage>>) {
        if (self.active && self.is_primary()) || self.pool.is_empty() {
            return;
        }
        let min_age = TICKS_PER_STATUS * self.tick_interval();
        let txs = self
            .pool
            .take_due_for_resend(now, min_age, RESEND_PER_SENDER, MAX_RESEND_BURST);
        if txs.is_empty() {
            return;
        }
        if self.active {
            self.forward(txs, out);
        } else {
            self.broadcast_forward(txs, out);
        }
    }

    /// Transactions another replica sent: to the primary, forwards to order; to a backup, those a
    /// replica between views (or one about to suspect the primary) shares with every replica.
    /// Either way they are checked and kept like the node's own, so that a backup times them too
    /// and passes them on to its primary: f+1 honest replicas must be able to notice a primary
    /// that leaves them out (paper §4.4, a client broadcasting a request not answered in time).
    pub(super) fn on_forward(
        &mut self,
        now: Millis,
        forward: Forward,
        out: &mut Vec<Action<PbftMessage>>,
    ) {
        let txs: Vec<SignedTransaction> = forward
            .txs
            .into_iter()
            .filter(|tx| !self.pool.contains(&tx.id()))
            .collect();
        if txs.is_empty() {
            return;
        }
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
        let fresh = self.admit(now, valid);
        if fresh.is_empty() {
            return;
        }
        if self.active && !self.is_primary() {
            self.forward(fresh, out);
        }
        self.advance(now, out);
    }

    /// Sends what waits to every replica, before this backup gives up on a primary that left a
    /// transaction out: the others hold it too from now on, so they time it and suspect as well
    /// if the primary keeps leaving it out (one replica alone cannot change the view).
    fn share_waiting(&mut self, now: Millis, out: &mut Vec<Action<PbftMessage>>) {
        let txs = self.pool.take_all_for_forward(now, MAX_RESEND_BURST);
        self.broadcast_forward(txs, out);
    }

    /// Multicasts `txs` in messages of a bounded size.
    fn broadcast_forward(&self, txs: Vec<SignedTransaction>, out: &mut Vec<Action<PbftMessage>>) {
        for chunk in txs.chunks(MAX_FORWARD_TXS) {
            out.push(Action::Broadcast(PbftMessage::Forward(Forward {
                view: self.view,
                txs: chunk.to_vec(),
            })));
        }
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
                self.share_waiting(now, out);
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

    /// Re-forwards waiting transactions that have waited (see [`PbftEngine::resend_waiting`]),
    /// and drops those whose nonce another transaction used.
    pub(super) fn reforward_and_prune(&mut self, now: Millis, out: &mut Vec<Action<PbftMessage>>) {
        self.resend_waiting(now, out);
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
