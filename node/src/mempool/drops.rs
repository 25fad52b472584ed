//! The record of transactions the mempool gave up, with the reason, so `get_transaction` can tell
//! a user who holds an id what became of it. Bounded: the oldest records go first.

use std::collections::{HashMap, VecDeque};

use synod_chain::hash::Hash;

/// Recently dropped transactions and why.
#[derive(Debug)]
pub struct RecentDrops {
    reasons: HashMap<Hash, String>,
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
        if self.reasons.contains_key(&id) {
            return;
        }
        if self.order.len() >= self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.reasons.remove(&oldest);
        }
        self.reasons.insert(id, reason);
        self.order.push_back(id);
    }

    /// Forgets a drop (the transaction was admitted again).
    pub fn forget(&mut self, id: &Hash) {
        if self.reasons.remove(id).is_some() {
            self.order.retain(|x| x != id);
        }
    }

    /// Why `id` was dropped, if it was (and is still remembered).
    pub fn reason(&self, id: &Hash) -> Option<&str> {
        self.reasons.get(id).map(String::as_str)
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
        assert_eq!(drops.reason(&Hash([1; 32])), Some("expired"));
        drops.record(Hash([3; 32]), "replaced".into());
        assert_eq!(drops.reason(&Hash([1; 32])), None);
        assert_eq!(drops.len(), 2);
        drops.forget(&Hash([2; 32]));
        assert_eq!(drops.reason(&Hash([2; 32])), None);
    }
}
