//! The record of transactions that left the mempool without this node seeing them commit, with
//! the reason, so `get_transaction` can tell a user who holds an id what became of it: dropped
//! for good, or settled by a chain state this node installed without the blocks (a snapshot).
//! Bounded: the oldest records go first.

use std::collections::{HashMap, VecDeque};

use synod_chain::hash::Hash;

/// How a transaction left the mempool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Given up for good: it will not commit through this node.
    Dropped(String),
    /// Settled by an installed snapshot: committed, or replaced by another transaction with its
    /// nonce, in blocks this node has not stored yet.
    Settled(String),
}

/// Recently dropped transactions and why.
#[derive(Debug)]
pub struct RecentDrops {
    reasons: HashMap<Hash, Outcome>,
    order: VecDeque<Hash>,
    capacity: usize,
}

impl RecentDrops {
    /// A record of at most `capacity` drops.
    pub fn new(capacity: usize) -> Self {
        RecentDrops {
            reasons: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Records that `id` was dropped for `reason` (the first reason stays).
    pub fn record(&mut self, id: Hash, reason: String) {
        self.record_outcome(id, Outcome::Dropped(reason));
    }

    /// Records that `id` was settled by a snapshot.
    pub fn record_settled(&mut self, id: Hash, reason: String) {
        self.record_outcome(id, Outcome::Settled(reason));
    }

    fn record_outcome(&mut self, id: Hash, outcome: Outcome) {
        if self.reasons.contains_key(&id) {
            return;
        }
        if self.order.len() >= self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.reasons.remove(&oldest);
        }
        self.reasons.insert(id, outcome);
        self.order.push_back(id);
    }

    /// Forgets a drop (the transaction was admitted again).
    pub fn forget(&mut self, id: &Hash) {
        if self.reasons.remove(id).is_some() {
            self.order.retain(|x| x != id);
        }
    }

    /// How `id` left, if it did (and is still remembered).
    pub fn outcome(&self, id: &Hash) -> Option<&Outcome> {
        self.reasons.get(id)
    }

    /// How many drops are remembered.
    pub fn len(&self) -> usize {
        self.reasons.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.reasons.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_first_reason_and_forgets_the_oldest() {
        let mut drops = RecentDrops::new(2);
        drops.record(Hash([1; 32]), "expired".into());
        drops.record(Hash([1; 32]), "again".into());
        drops.record(Hash([2; 32]), "replaced".into());
        assert_eq!(
            drops.outcome(&Hash([1; 32])),
            Some(&Outcome::Dropped("expired".into()))
        );
        drops.record_settled(Hash([3; 32]), "snapshot".into());
        assert_eq!(drops.outcome(&Hash([1; 32])), None);
        assert_eq!(drops.len(), 2);
        drops.forget(&Hash([2; 32]));
        assert_eq!(drops.outcome(&Hash([2; 32])), None);
        assert!(matches!(
            drops.outcome(&Hash([3; 32])),
            Some(Outcome::Settled(_))
        ));
    }
}
