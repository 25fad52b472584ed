//! The merkle root of a block's transactions.
//!
//! Leaves and inner nodes are hashed in separate domains, an odd node is promoted to the next level
//! unchanged (never paired with a copy of itself, the ambiguity that let Bitcoin's CVE-2012-2459
//! give two blocks one root), and the root commits to the leaf count.

use crate::hash::{Hash, TaggedHasher};

/// The merkle root over `leaves` (transaction ids, in block order).
pub fn merkle_root(leaves: &[Hash]) -> Hash {
    let mut level: Vec<Hash> = leaves
        .iter()
        .map(|leaf| {
            TaggedHasher::new(b"synod/merkle/leaf")
                .update(&leaf.0)
                .finish()
        })
        .collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [left, right] => TaggedHasher::new(b"synod/merkle/node")
                    .update(&left.0)
                    .update(&right.0)
                    .finish(),
                [odd] => *odd,
                _ => unreachable!("chunks(2) yields one or two items"),
            })
            .collect();
    }
    let top = level.first().copied().unwrap_or(Hash::ZERO);
    TaggedHasher::new(b"synod/merkle/root")
        .update_u64(leaves.len() as u64)
        .update(&top.0)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::sha256;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| sha256(&i.to_le_bytes())).collect()
    }

    #[test]
    fn duplicating_the_last_leaf_changes_the_root() {
        let three = leaves(3);
        let mut four = three.clone();
        four.push(three[2]);
        assert_ne!(merkle_root(&three), merkle_root(&four));
    }

    #[test]
    fn order_count_and_content_matter() {
        let a = leaves(5);
        let mut b = a.clone();
        b.swap(1, 2);
        assert_ne!(merkle_root(&a), merkle_root(&b));
        assert_ne!(merkle_root(&a), merkle_root(&a[..4]));
        assert_ne!(merkle_root(&[]), merkle_root(&leaves(1)));
        // A single inner node is not confusable with a leaf.
        assert_ne!(merkle_root(&leaves(2)), merkle_root(&leaves(1)));
        assert_eq!(merkle_root(&a), merkle_root(&leaves(5)));
    }
}
