//! The replica group (paper §4.1): replicas numbered 0..n−1 in genesis validator order, the
//! primary of view v is replica v mod n, f = ⌊(n−1)/3⌋ faults are tolerated.
//!
//! Quorums have size q = ⌈(n+f+1)/2⌉. For n = 3f+1 that is the paper's 2f+1; for other n (5, 6,
//! 8, ...) it is the smallest size for which any two quorums intersect in at least f+1 replicas
//! (2q − n ≥ f+1, so at least one honest replica is in both) while the n−f replicas that are not
//! faulty still form one (q ≤ n−f). Everything that counts votes asks this type.

use crate::engine::NodeId;

/// The validator set of a PBFT chain and its quorum arithmetic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replicas {
    ids: Vec<NodeId>,
}

impl Replicas {
    /// The replicas in genesis order. Duplicates are kept only once (the first position counts).
    pub fn new(validators: &[NodeId]) -> Self {
        let mut ids: Vec<NodeId> = Vec::with_capacity(validators.len());
        for id in validators {
            if !ids.contains(id) {
                ids.push(*id);
            }
        }
        Replicas { ids }
    }

    /// Number of replicas, n.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the set is empty (no chain can run on it).
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The replicas in genesis order.
    pub fn ids(&self) -> &[NodeId] {
        &self.ids
    }

    /// Faults tolerated: f = ⌊(n−1)/3⌋.
    pub fn f(&self) -> usize {
        self.ids.len().saturating_sub(1) / 3
    }

    /// Quorum size q = ⌈(n+f+1)/2⌉ (2f+1 when n = 3f+1).
    pub fn quorum(&self) -> usize {
        (self.ids.len() + self.f() + 2) / 2
    }

    /// f+1: enough replicas that at least one is honest.
    pub fn weak_quorum(&self) -> usize {
        self.f() + 1
    }

    /// The primary of `view`: replica `view mod n`.
    pub fn primary(&self, view: u64) -> NodeId {
        let n = self.ids.len().max(1) as u64;
        self.ids[(view % n) as usize]
    }

    /// Whether `id` is a replica.
    pub fn contains(&self, id: &NodeId) -> bool {
        self.ids.contains(id)
    }

    /// The position of `id` in genesis order.
    pub fn index(&self, id: &NodeId) -> Option<usize> {
        self.ids.iter().position(|x| x == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use synod_chain::keys::PublicKey;

    fn replicas(n: u8) -> Replicas {
        let ids: Vec<NodeId> = (0..n).map(|i| PublicKey([i; 32])).collect();
        Replicas::new(&ids)
    }

    #[test]
    fn quorums_intersect_in_an_honest_replica_and_stay_reachable() {
        for n in 1..=40u8 {
            let r = replicas(n);
            let (n, f, q) = (r.len(), r.f(), r.quorum());
            assert!(2 * q > n + f, "n={n}: two quorums share f+1 replicas");
            assert!(q <= n - f, "n={n}: the honest replicas alone form a quorum");
            if n % 3 == 1 {
                assert_eq!(q, 2 * f + 1, "n={n}: the paper's 2f+1");
            }
        }
        assert_eq!((replicas(5).f(), replicas(5).quorum()), (1, 4));
        assert_eq!((replicas(6).f(), replicas(6).quorum()), (1, 4));
        assert_eq!((replicas(7).f(), replicas(7).quorum()), (2, 5));
    }

    #[test]
    fn primary_rotates_in_genesis_order() {
        let r = replicas(4);
        assert_eq!(r.primary(0), PublicKey([0; 32]));
        assert_eq!(r.primary(5), PublicKey([1; 32]));
        assert_eq!(r.index(&PublicKey([3; 32])), Some(3));
        assert!(!r.contains(&PublicKey([9; 32])));
    }
}
