//! Which of a sender's pending transactions can execute next and which are queued behind a nonce
//! gap. A sender's *run* is the unbroken stretch of pending nonces from its committed nonce on:
//! those can go into the next blocks in order. Whatever lies past the first missing nonce is
//! queued: it holds a slot and cannot commit until the gap fills. Keeping the two apart lets
//! admission cap the queued ones and turn them away before any signature is checked, and lets
//! eviction take them first.
//!
//! The bookkeeping is incremental: the run's end only moves forward over nonces that arrive, and
//! back to a nonce that leaves without committing, so a sender with thousands of pending
//! transactions costs a step per change, not a scan.

use std::collections::{BTreeMap, HashMap};

use synod_chain::hash::Hash;
use synod_chain::keys::Address;

/// One sender's executable run: nonces in `[base, end)` are all pending, `end` is not.
#[derive(Clone, Copy, Debug)]
struct Run {
    /// The committed nonce, as last read from the chain.
    base: u64,
    /// The first nonce past the run (the next executable one the sender may send).
    end: u64,
    /// Pending transactions past `end`.
    queued: usize,
}

/// The executable runs of every sender with pending transactions, and the queued count.
#[derive(Debug, Default)]
pub(super) struct Runs {
    by_sender: HashMap<Address, Run>,
    queued: usize,
}

impl Runs {
    /// Pending transactions, over all senders, that wait behind a nonce gap.
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// `sender`'s queued transactions.
    pub fn queued_of(&self, sender: &Address) -> usize {
        self.by_sender.get(sender).map_or(0, |run| run.queued)
    }

    /// The nonce that would extend `sender`'s run, when it is known without reading the chain
    /// (the sender has pending transactions and its committed nonce is still `committed`, or any
    /// committed nonce when `committed` is `None`).
    pub fn next(&self, sender: &Address, committed: Option<u64>) -> Option<u64> {
        let run = self.by_sender.get(sender)?;
        committed.is_none_or(|c| c == run.base).then_some(run.end)
    }

    /// Whether `sender`'s pending transaction with `nonce` waits behind a gap.
    pub fn is_queued(&self, sender: &Address, nonce: u64) -> bool {
        self.by_sender
            .get(sender)
            .is_some_and(|run| nonce > run.end)
    }

    /// The chain says `sender`'s committed nonce is `committed` (it moves back only when a
    /// reorganisation undid blocks).
    pub fn rebase(&mut self, sender: &Address, committed: u64, pending: &BTreeMap<u64, Hash>) {
        let Some(run) = self.by_sender.get_mut(sender) else {
            return;
        };
        if committed == run.base {
            return;
        }
        if committed > run.base {
            run.end = run.end.max(committed);
        } else {
            run.end = committed;
        }
        run.base = committed;
        self.recount(sender, pending);
    }

    /// `sender` has a new pending transaction (its first one when it had no run: `committed` is
    /// then its committed nonce).
    pub fn inserted(&mut self, sender: &Address, committed: u64, pending: &BTreeMap<u64, Hash>) {
        self.by_sender.entry(*sender).or_insert(Run {
            base: committed,
            end: committed,
            queued: 0,
        });
        self.recount(sender, pending);
    }

    /// `sender`'s transaction with `nonce` left the pool; `pending` is what is left of its queue.
    /// One that leaves from the middle of the run without committing opens a gap there.
    pub fn removed(&mut self, sender: &Address, nonce: u64, pending: Option<&BTreeMap<u64, Hash>>) {
        let Some(pending) = pending.filter(|p| !p.is_empty()) else {
            if let Some(run) = self.by_sender.remove(sender) {
                self.queued = self.queued.saturating_sub(run.queued);
            }
            return;
        };
        let Some(run) = self.by_sender.get_mut(sender) else {
            return;
        };
        if (run.base..run.end).contains(&nonce) {
            run.end = nonce;
        }
        self.recount(sender, pending);
    }

    /// Extends `sender`'s run over the nonces now pending and counts what lies past it.
    fn recount(&mut self, sender: &Address, pending: &BTreeMap<u64, Hash>) {
        let Some(run) = self.by_sender.get_mut(sender) else {
            return;
        };
        while pending.contains_key(&run.end) {
            run.end += 1;
        }
        // Stale entries below the committed nonce are about to be pruned; they are not queued.
        let stale = pending.range(..run.base).count();
        let queued = pending
            .len()
            .saturating_sub(stale + (run.end - run.base) as usize);
        self.queued = self.queued.saturating_sub(run.queued) + queued;
        run.queued = queued;
    }

    /// Senders tracked (a refused sender must not add one).
    pub fn senders(&self) -> usize {
        self.by_sender.len()
    }
}
