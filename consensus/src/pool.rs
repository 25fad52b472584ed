//! The engine's pool of transactions waiting for a block: every transaction the node handed the
//! engine stays here until it commits or is given up for good with a reason, so a leader or
//! primary change, a dropped forward or an abandoned proposal never loses one.
//!
//! The node's mempool admits and answers users; this pool orders what a proposer includes next
//! (senders in the order their first transaction arrived, each sender's transactions in nonce
//! order) and remembers when each transaction was last forwarded, so a replica can re-forward
//! what is still pending after a leader change, backing off for each one that keeps waiting. It
//! never evicts: when it is full it refuses new transactions, which the node still holds and
//! hands in again later.
//!
//! What cannot apply costs a builder nothing: transactions behind a nonce gap are not candidates,
//! and a sender whose next transaction it cannot pay for is parked until a commit credits it (or a
//! short while passes). Entries expire after the mempool's lifetime, and the node withdraws what
//! its mempool gave up, so the pool never holds a transaction forever.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use synod_chain::hash::Hash;
use synod_chain::keys::Address;
use synod_chain::ledger::AccountSource;
use synod_chain::{SignedTransaction, TxError};

use crate::engine::Millis;

/// A waiting transaction and its bookkeeping.
#[derive(Clone, Debug)]
struct PoolEntry {
    tx: SignedTransaction,
    sender: Address,
    nonce: u64,
    /// When it was last handed to the leader (or first seen); resends wait for it to age.
    last_sent: Millis,
    /// Resends so far: each doubles the wait before the next (reset on a leader change).
    resends: u32,
    /// When it entered the pool.
    added: Millis,
}

/// How long a transaction may wait in a pool (the mempool's lifetime, so both forget it together).
pub const POOL_TTL_MS: Millis = 600_000;
/// How long a sender whose next transaction could not be paid for stays out of blocks, unless a
/// commit credits it sooner.
const PARK_MS: Millis = 5_000;
/// Most doublings of the resend wait (one: a lost forward must still be repaired promptly).
const MAX_RESEND_BACKOFF: u32 = 1;

/// Why transactions left the pool without committing, for [`crate::EngineEvent::TxDropped`].
pub type Dropped = Vec<(Hash, String)>;

/// Pending transactions.
#[derive(Clone, Debug)]
pub struct TxPool {
    entries: HashMap<Hash, PoolEntry>,
    /// Arrival order; ids no longer in `entries` are skipped and compacted away.
    order: VecDeque<Hash>,
    by_sender: HashMap<Address, BTreeMap<u64, Hash>>,
    /// Senders whose next transaction failed for want of balance, with when they were parked.
    parked: HashMap<Address, Millis>,
    capacity: usize,
}

impl TxPool {
    /// A pool holding at most `capacity` transactions.
    pub fn new(capacity: usize) -> Self {
        TxPool {
            entries: HashMap::new(),
            order: VecDeque::new(),
            by_sender: HashMap::new(),
            parked: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    /// Transactions waiting.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Senders with transactions waiting.
    pub fn senders(&self) -> usize {
        self.by_sender.len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `id` is waiting.
    pub fn contains(&self, id: &Hash) -> bool {
        self.entries.contains_key(id)
    }

    /// Adds transactions not already waiting, as seen (and sent on) at `now`. Returns the ones
    /// that were new; a full pool refuses the rest (the node keeps them and offers them again).
    pub fn add(
        &mut self,
        now: Millis,
        txs: impl IntoIterator<Item = SignedTransaction>,
    ) -> Vec<SignedTransaction> {
        self.insert(now, txs, self.capacity)
    }

    /// Takes back the transactions of blocks a reorganisation abandoned, past the capacity if
    /// need be: they were admitted once, and refusing them now would lose them. (Their number is
    /// bounded by the reorganisation limit times the block size.) Returns the ones that were new.
    pub fn give_back(
        &mut self,
        now: Millis,
        txs: impl IntoIterator<Item = SignedTransaction>,
    ) -> Vec<SignedTransaction> {
        self.insert(now, txs, usize::MAX)
    }

    fn insert(
        &mut self,
        now: Millis,
        txs: impl IntoIterator<Item = SignedTransaction>,
        capacity: usize,
    ) -> Vec<SignedTransaction> {
        let mut added = Vec::new();
        for tx in txs {
            if self.entries.len() >= capacity {
                break;
            }
            let id = tx.id();
            if self.entries.contains_key(&id) {
                continue;
            }
            let sender = tx.sender();
            let nonce = tx.tx().nonce;
            let slot = self.by_sender.entry(sender).or_default();
            if slot.contains_key(&nonce) {
                // Another transaction of this sender holds the nonce; only one can ever commit.
                continue;
            }
            slot.insert(nonce, id);
            self.order.push_back(id);
            self.entries.insert(
                id,
                PoolEntry {
                    tx: tx.clone(),
                    sender,
                    nonce,
                    last_sent: now,
                    resends: 0,
                    added: now,
                },
            );
            added.push(tx);
        }
        added
    }

    /// Up to `max` waiting transactions for a block: senders in the order their oldest waiting
    /// transaction arrived, each sender's run of consecutive nonces starting at `next_nonce` of
    /// that sender (what the block's parent state expects). Transactions behind a nonce gap are
    /// left out: they cannot apply yet, and a pool full of them must not cost a builder anything.
    pub fn candidates(
        &self,
        max: usize,
        next_nonce: impl Fn(&Address) -> u64,
    ) -> Vec<SignedTransaction> {
        let mut out = Vec::new();
        let mut expanded: HashSet<Address> = HashSet::new();
        for id in &self.order {
            // Once every sender was expanded the rest of the arrival order has nothing more to
            // give: without this a pool of many transactions from few senders was scanned to
            // the end for every block.
            if out.len() >= max || expanded.len() >= self.by_sender.len() {
                break;
            }
            let Some(entry) = self.entries.get(id) else {
                continue;
            };
            if !expanded.insert(entry.sender) || self.parked.contains_key(&entry.sender) {
                continue;
            }
            let Some(nonces) = self.by_sender.get(&entry.sender) else {
                continue;
            };
            let first = next_nonce(&entry.sender);
            for (expected, (nonce, id)) in (first..).zip(nonces.range(first..)) {
                if out.len() >= max || *nonce != expected {
                    break;
                }
                if let Some(e) = self.entries.get(id) {
                    out.push(e.tx.clone());
                }
            }
        }
        out
    }

    /// How many waiting transactions could go into blocks now, counted up to `limit`: each
    /// unparked sender's run of consecutive nonces from `next_nonce`. What waits behind a gap
    /// or is parked for want of funds is left out: it costs a builder nothing, so it is no measure of load (and a
    /// sender could otherwise fill a pool with it to make the node turn everyone away).
    pub fn executable(&self, limit: usize, next_nonce: impl Fn(&Address) -> u64) -> usize {
        let mut count = 0;
        for (sender, nonces) in &self.by_sender {
            if self.parked.contains_key(sender) {
                continue;
            }
            let first = next_nonce(sender);
            for (expected, (nonce, _)) in (first..).zip(nonces.range(first..)) {
                if count >= limit || *nonce != expected {
                    break;
                }
                count += 1;
            }
            if count >= limit {
                break;
            }
        }
        count
    }

    /// Up to `max` waiting transactions that pass `keep`, oldest first, leaving out parked senders
    /// (a PBFT replica forwards those not already in a block in flight).
    pub fn candidates_where(
        &self,
        max: usize,
        mut keep: impl FnMut(&Hash, &SignedTransaction) -> bool,
    ) -> Vec<SignedTransaction> {
        self.order
            .iter()
            .filter_map(|id| self.entries.get(id).map(|entry| (id, entry)))
            .filter(|(id, entry)| !self.parked.contains_key(&entry.sender) && keep(id, &entry.tx))
            .take(max)
            .map(|(_, entry)| entry.tx.clone())
            .collect()
    }

    /// Every waiting transaction, oldest first, at most `max`, marked as sent at `now` with the
    /// resend backoff reset (for a new leader).
    pub fn take_all_for_forward(&mut self, now: Millis, max: usize) -> Vec<SignedTransaction> {
        let mut out = Vec::new();
        for id in &self.order {
            if out.len() >= max {
                break;
            }
            if let Some(entry) = self.entries.get_mut(id) {
                entry.resends = 0;
                entry.last_sent = now;
                out.push(entry.tx.clone());
            }
        }
        out
    }

    /// What a follower re-forwards to its leader: for each sender, the first `per_sender` of its
    /// waiting transactions (in nonce order) that are due, at most `max` in all, marked as sent at
    /// `now`. A transaction is due `min_age` ms after it was last sent, twice that after a resend
    /// that did not get it committed.
    ///
    /// Only the front of each sender's queue goes again: the leader most likely holds the rest
    /// already (a lost forward shows as a gap the front fills), so a backlog that is merely slow
    /// to commit is not sent again in full to the leader that is working through it.
    pub fn take_due_for_resend(
        &mut self,
        now: Millis,
        min_age: Millis,
        per_sender: usize,
        max: usize,
    ) -> Vec<SignedTransaction> {
        let mut out = Vec::new();
        let mut seen: HashSet<Address> = HashSet::new();
        for id in &self.order {
            if out.len() >= max {
                break;
            }
            let Some(sender) = self.entries.get(id).map(|e| e.sender) else {
                continue;
            };
            if !seen.insert(sender) {
                continue;
            }
            let Some(nonces) = self.by_sender.get(&sender) else {
                continue;
            };
            for id in nonces.values().take(per_sender) {
                if out.len() >= max {
                    break;
                }
                let Some(entry) = self.entries.get_mut(id) else {
                    continue;
                };
                let wait = min_age.saturating_mul(1 << entry.resends.min(MAX_RESEND_BACKOFF));
                if now.saturating_sub(entry.last_sent) < wait {
                    continue;
                }
                entry.resends += 1;
                entry.last_sent = now;
                out.push(entry.tx.clone());
            }
        }
        out
    }

    /// Removes transactions (included in a block this node proposed or committed).
    pub fn remove<'a>(&mut self, ids: impl IntoIterator<Item = &'a Hash>) {
        for id in ids {
            self.remove_one(id);
        }
        self.compact();
    }

    fn remove_one(&mut self, id: &Hash) -> Option<PoolEntry> {
        let entry = self.entries.remove(id)?;
        if let Some(nonces) = self.by_sender.get_mut(&entry.sender) {
            nonces.remove(&entry.nonce);
            if nonces.is_empty() {
                self.by_sender.remove(&entry.sender);
                self.parked.remove(&entry.sender);
            }
        }
        Some(entry)
    }

    /// Removes what a block builder refused for good. A nonce ahead of the account's may become
    /// valid once the gap fills, and a balance may grow: those stay. A nonce behind it means the
    /// transaction is already in a block (committed or in flight) or was replaced: it leaves
    /// quietly, because the commit that settles it reports which. Returns the others removed, with
    /// their reasons.
    pub fn remove_rejected(&mut self, rejected: &[(Hash, TxError)]) -> Dropped {
        let mut dropped = Vec::new();
        for (id, error) in rejected {
            match error {
                TxError::BadNonce { expected, got } if got > expected => {}
                TxError::InsufficientBalance { .. } => {
                    // Its sender sits out until a commit credits it: the rest of its queue
                    // cannot apply before this one does.
                    if let Some(entry) = self.entries.get(id) {
                        self.parked.entry(entry.sender).or_insert(0);
                    }
                }
                TxError::BadNonce { .. } => {
                    self.remove_one(id);
                }
                _ => {
                    if self.remove_one(id).is_some() {
                        dropped.push((*id, error.to_string()));
                    }
                }
            }
        }
        self.compact();
        dropped
    }

    /// After a commit: drops every waiting transaction of `senders` whose nonce the committed
    /// state has passed. The ones in `committed` left because they committed; the others were
    /// made void by a committed transaction with their nonce, and are returned with that reason.
    pub fn prune_committed<S: AccountSource + ?Sized>(
        &mut self,
        senders: impl IntoIterator<Item = Address>,
        accounts: &S,
        committed: &HashSet<Hash>,
    ) -> Dropped {
        let mut dropped = Vec::new();
        for sender in senders {
            let Ok(account) = accounts.account(&sender) else {
                continue;
            };
            let stale: Vec<Hash> = self
                .by_sender
                .get(&sender)
                .map(|n| n.range(..account.nonce).map(|(_, id)| *id).collect())
                .unwrap_or_default();
            for id in stale {
                if self.remove_one(&id).is_some() && !committed.contains(&id) {
                    dropped.push((
                        id,
                        "replaced: a committed transaction used its nonce".to_string(),
                    ));
                }
            }
        }
        self.compact();
        dropped
    }

    /// Drops whatever the state (say, an installed snapshot) has made stale, for every sender.
    /// They were committed or replaced in blocks this node never saw, so nothing is reported: the
    /// chain holds the answer.
    pub fn prune_all<S: AccountSource + ?Sized>(&mut self, accounts: &S) {
        let senders: Vec<Address> = self.by_sender.keys().copied().collect();
        self.prune_committed(senders, accounts, &HashSet::new());
    }

    /// A block committed: every account it credited (recipients, its proposer) may pay for its
    /// parked transactions now.
    pub fn unpark_credited(&mut self, block: &synod_chain::Block) {
        if self.parked.is_empty() {
            return;
        }
        self.parked.remove(&block.header.proposer.address());
        for tx in &block.txs {
            self.parked.remove(&tx.tx().to);
            self.parked.remove(&tx.sender());
        }
    }

    /// Housekeeping at `now`: parks that have run their time are lifted (the stamp of a new park
    /// is set here), and transactions older than [`POOL_TTL_MS`] leave quietly (the node's mempool
    /// tells users it expired them). Returns how many expired.
    pub fn expire(&mut self, now: Millis) -> usize {
        self.parked.retain(|_, since| {
            if *since == 0 {
                *since = now.max(1);
            }
            now.saturating_sub(*since) < PARK_MS
        });
        let old: Vec<Hash> = self
            .entries
            .iter()
            .filter(|(_, e)| now.saturating_sub(e.added) > POOL_TTL_MS)
            .map(|(id, _)| *id)
            .collect();
        self.remove(&old);
        old.len()
    }

    /// Forgets transactions the node's mempool gave up (expired, evicted, replaced): they must not
    /// commit through this pool after the user was told so, and a same-nonce replacement must be
    /// able to take their place.
    pub fn withdraw(&mut self, ids: &[Hash]) {
        self.remove(ids);
    }

    fn compact(&mut self) {
        if self.order.len() > 2 * self.entries.len() + 64 {
            let entries = &self.entries;
            self.order.retain(|id| entries.contains_key(id));
        }
        while self
            .order
            .front()
            .is_some_and(|id| !self.entries.contains_key(id))
        {
            self.order.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use synod_chain::fixtures::Fixture;
    use synod_chain::ledger::Account;

    #[test]
    fn keeps_order_dedups_and_refuses_when_full() {
        let fx = Fixture::new("pool", 2, 100, 0);
        let txs: Vec<_> = (0..10).map(|n| fx.transfer(0, 1, 1, 0, n)).collect();
        let mut pool = TxPool::new(8);
        assert_eq!(pool.add(0, txs.clone()).len(), 8);
        assert_eq!(pool.len(), 8);
        // Full: nothing evicted, nothing new taken.
        assert!(pool.add(0, txs[8..].to_vec()).is_empty());
        assert_eq!(pool.candidates(3, |_| 0), txs[..3].to_vec());
        pool.remove(&[txs[0].id(), txs[2].id()]);
        // Nonce 2 is gone: 3 and later wait behind the gap.
        assert_eq!(pool.candidates(5, |_| 1), vec![txs[1].clone()]);
        assert_eq!(
            pool.candidates(2, |_| 3),
            vec![txs[3].clone(), txs[4].clone()]
        );
        assert_eq!(pool.add(0, txs[8..].to_vec()).len(), 2);
    }

    #[test]
    fn give_back_ignores_the_capacity() {
        let fx = Fixture::new("pool", 2, 100, 0);
        let txs: Vec<_> = (0..4).map(|n| fx.transfer(0, 1, 1, 0, n)).collect();
        let mut pool = TxPool::new(2);
        assert_eq!(pool.add(0, txs.clone()).len(), 2);
        assert_eq!(pool.give_back(0, txs.clone()).len(), 2);
        assert_eq!(pool.len(), 4);
        assert!(pool.add(0, vec![fx.transfer(1, 0, 1, 0, 0)]).is_empty());
    }

    #[test]
    fn each_sender_in_nonce_order() {
        let fx = Fixture::new("pool", 3, 100, 0);
        let mut pool = TxPool::new(100);
        // Nonce 1 of account 0 arrives before nonce 0 (a re-forward).
        pool.add(
            0,
            vec![
                fx.transfer(0, 1, 1, 0, 1),
                fx.transfer(1, 2, 1, 0, 0),
                fx.transfer(0, 1, 1, 0, 0),
            ],
        );
        let order: Vec<(Address, u64)> = pool
            .candidates(10, |_| 0)
            .iter()
            .map(|t| (t.sender(), t.tx().nonce))
            .collect();
        assert_eq!(
            order,
            vec![
                (fx.addresses[0], 0),
                (fx.addresses[0], 1),
                (fx.addresses[1], 0)
            ]
        );
    }

    #[test]
    fn rejected_and_pruned_are_reported() {
        let fx = Fixture::new("pool", 2, 100, 0);
        let txs: Vec<_> = (0..4).map(|n| fx.transfer(0, 1, 1, 0, n)).collect();
        let mut pool = TxPool::new(10);
        pool.add(0, txs.clone());
        let dropped = pool.remove_rejected(&[
            (
                txs[3].id(),
                TxError::BadNonce {
                    expected: 0,
                    got: 3,
                },
            ),
            (
                txs[2].id(),
                TxError::BadNonce {
                    expected: 9,
                    got: 2,
                },
            ),
            (txs[1].id(), TxError::AmountOverflow),
        ]);
        // The stale nonce leaves quietly; the overflow is reported; the nonce ahead stays.
        assert_eq!(
            dropped.iter().map(|d| d.0).collect::<Vec<_>>(),
            vec![txs[1].id()]
        );
        assert!(pool.contains(&txs[3].id()) && !pool.contains(&txs[2].id()));
        pool.add(0, vec![txs[1].clone()]);

        // Account 0's nonce moved to 2: nonce 0 committed, nonce 1 was replaced by another.
        let mut accounts = BTreeMap::new();
        accounts.insert(
            fx.addresses[0],
            Account {
                balance: 90,
                nonce: 2,
            },
        );
        let committed: HashSet<Hash> = [txs[0].id()].into_iter().collect();
        let dropped = pool.prune_committed([fx.addresses[0]], &accounts, &committed);
        assert_eq!(
            dropped.iter().map(|d| d.0).collect::<Vec<_>>(),
            vec![txs[1].id()]
        );
        assert_eq!(pool.len(), 1);
    }

    #[test]
    fn an_unpayable_sender_sits_out_until_credited_and_old_entries_expire() {
        let fx = Fixture::new("pool", 3, 100, 0);
        let mut pool = TxPool::new(100);
        let broke: Vec<_> = (0..3).map(|n| fx.transfer(0, 1, 1, 0, n)).collect();
        let fine = fx.transfer(1, 2, 1, 0, 0);
        pool.add(0, broke.clone());
        pool.add(0, vec![fine.clone()]);
        pool.remove_rejected(&[(
            broke[0].id(),
            TxError::InsufficientBalance {
                balance: 0,
                needed: 1,
            },
        )]);
        assert_eq!(pool.candidates(10, |_| 0), vec![fine.clone()], "parked");
        pool.expire(1_000);
        assert_eq!(
            pool.candidates(10, |_| 0),
            vec![fine.clone()],
            "still parked"
        );
        // A block crediting account 0 lifts the park at once.
        let credit = synod_chain::Block {
            header: fx.genesis.block.header,
            txs: vec![fx.transfer(2, 0, 1, 0, 0)],
        };
        pool.unpark_credited(&credit);
        assert_eq!(pool.candidates(10, |_| 0).len(), 4);
        // Parks also lapse on their own.
        pool.remove_rejected(&[(
            broke[0].id(),
            TxError::InsufficientBalance {
                balance: 0,
                needed: 1,
            },
        )]);
        pool.expire(2_000);
        assert_eq!(pool.candidates(10, |_| 0).len(), 1);
        pool.expire(2_000 + PARK_MS);
        assert_eq!(pool.candidates(10, |_| 0).len(), 4);
        // Withdrawn ones leave; a replacement with the same nonce can take their place.
        pool.withdraw(&[broke[2].id()]);
        assert_eq!(pool.add(3_000, vec![fx.transfer(0, 2, 9, 0, 2)]).len(), 1);
        // Everything expires after the pool's lifetime.
        assert_eq!(pool.expire(POOL_TTL_MS + 1), 3);
        assert_eq!(pool.len(), 1);
    }

    #[test]
    fn resends_back_off() {
        let fx = Fixture::new("pool", 2, 100, 0);
        let tx = fx.transfer(0, 1, 1, 0, 0);
        let mut pool = TxPool::new(10);
        pool.add(0, vec![tx.clone()]);
        assert_eq!(pool.take_due_for_resend(1_000, 1_000, 4, 10).len(), 1);
        // Next due after 2 s, and no later than that after any number of resends.
        assert!(pool.take_due_for_resend(2_500, 1_000, 4, 10).is_empty());
        assert_eq!(pool.take_due_for_resend(3_000, 1_000, 4, 10).len(), 1);
        assert!(pool.take_due_for_resend(4_500, 1_000, 4, 10).is_empty());
        assert_eq!(pool.take_due_for_resend(5_000, 1_000, 4, 10).len(), 1);
        assert_eq!(pool.take_due_for_resend(7_000, 1_000, 4, 10).len(), 1);
        // A new leader gets everything, and the backoff starts over.
        assert_eq!(pool.take_all_for_forward(7_100, 10).len(), 1);
        assert_eq!(pool.take_due_for_resend(8_100, 1_000, 4, 10).len(), 1);
    }

    #[test]
    fn resends_only_what_has_waited() {
        let fx = Fixture::new("pool", 2, 100, 0);
        let txs: Vec<_> = (0..3).map(|n| fx.transfer(0, 1, 1, 0, n)).collect();
        let mut pool = TxPool::new(10);
        pool.add(0, txs[..2].to_vec());
        pool.add(500, txs[2..].to_vec());
        assert_eq!(
            pool.take_due_for_resend(1_000, 1_000, 4, 10),
            txs[..2].to_vec()
        );
        // Just sent: nothing is due again until it has waited once more.
        assert!(pool.take_due_for_resend(1_200, 1_000, 4, 10).is_empty());
        assert_eq!(
            pool.take_due_for_resend(1_500, 1_000, 4, 10),
            txs[2..].to_vec()
        );
        // Only the front of a sender's queue goes again.
        assert_eq!(
            pool.take_due_for_resend(9_000, 1_000, 2, 10),
            txs[..2].to_vec()
        );
        assert_eq!(pool.take_all_for_forward(1_600, 10).len(), 3);
    }
}
