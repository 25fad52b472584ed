//! The engine's queue of transactions waiting for a block, in arrival order, bounded, without
//! duplicates. The node's mempool admits and gossips; this queue only orders what a proposer
//! will include next.

use std::collections::{HashSet, VecDeque};

use synod_chain::hash::Hash;
use synod_chain::{SignedTransaction, TxError};

/// Pending transactions, oldest first.
#[derive(Clone, Debug)]
pub struct TxPool {
    queue: VecDeque<(Hash, SignedTransaction)>,
    live: HashSet<Hash>,
    capacity: usize,
}

impl TxPool {
    /// A pool holding at most `capacity` transactions (the oldest are dropped beyond it).
    pub fn new(capacity: usize) -> Self {
        TxPool {
            queue: VecDeque::new(),
            live: HashSet::new(),
            capacity: capacity.max(1),
        }
    }

    /// Transactions waiting.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Whether `id` is waiting.
    pub fn contains(&self, id: &Hash) -> bool {
        self.live.contains(id)
    }

    /// Adds transactions not already waiting. Returns how many were new.
    pub fn add(&mut self, txs: impl IntoIterator<Item = SignedTransaction>) -> usize {
        let mut added = 0;
        for tx in txs {
            let id = tx.id();
            if self.live.insert(id) {
                self.queue.push_back((id, tx));
                added += 1;
            }
        }
        while self.live.len() > self.capacity {
            if let Some((id, _)) = self.queue.pop_front() {
                self.live.remove(&id);
            }
        }
        self.compact();
        added
    }

    /// Up to `max` waiting transactions, oldest first.
    pub fn candidates(&self, max: usize) -> Vec<SignedTransaction> {
        self.queue
            .iter()
            .filter(|(id, _)| self.live.contains(id))
            .take(max)
            .map(|(_, tx)| tx.clone())
            .collect()
    }

    /// Removes transactions (included in a block, or refused for good).
    pub fn remove<'a>(&mut self, ids: impl IntoIterator<Item = &'a Hash>) {
        for id in ids {
            self.live.remove(id);
        }
        self.compact();
    }

    /// Removes what a block builder refused, except transactions that may become valid later
    /// (a nonce ahead of the account's).
    pub fn remove_rejected(&mut self, rejected: &[(Hash, TxError)]) {
        let permanent = rejected.iter().filter_map(|(id, error)| match error {
            TxError::BadNonce { expected, got } if got > expected => None,
            _ => Some(id),
        });
        self.remove(permanent);
    }

    fn compact(&mut self) {
        if self.queue.len() > 2 * self.live.len() + 64 {
            let live = &self.live;
            self.queue.retain(|(id, _)| live.contains(id));
        }
        while self
            .queue
            .front()
            .is_some_and(|(id, _)| !self.live.contains(id))
        {
            self.queue.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use synod_chain::fixtures::Fixture;

    #[test]
    fn orders_dedups_bounds_and_removes() {
        let fx = Fixture::new("pool", 2, 100, 0);
        let txs: Vec<_> = (0..10).map(|n| fx.transfer(0, 1, 1, 0, n)).collect();
        let mut pool = TxPool::new(8);
        assert_eq!(pool.add(txs.clone()), 10);
        assert_eq!(pool.len(), 8);
        assert_eq!(pool.add(txs[5..].to_vec()), 0);
        let first = pool.candidates(3);
        assert_eq!(first, txs[2..5].to_vec());
        pool.remove(&[txs[2].id(), txs[4].id()]);
        assert_eq!(pool.candidates(2), vec![txs[3].clone(), txs[5].clone()]);
        pool.remove_rejected(&[
            (
                txs[3].id(),
                TxError::BadNonce {
                    expected: 0,
                    got: 3,
                },
            ),
            (
                txs[5].id(),
                TxError::BadNonce {
                    expected: 9,
                    got: 5,
                },
            ),
        ]);
        assert!(pool.contains(&txs[3].id()));
        assert!(!pool.contains(&txs[5].id()));
    }
}
