//! The state root: a digest that any two nodes with the same ledger history agree on.
//!
//! It is a hash chain, not a merkle tree over all accounts: each block's root hashes the parent's
//! root, the height and every account the block touched (sorted, with its new balance and nonce).
//! That costs O(accounts touched) per block instead of O(all accounts), and still makes any
//! divergence in applied state visible at the first block where it happens. What it cannot do is
//! prove one account's balance to a light client; nothing in synod asks for that yet.

use std::collections::BTreeMap;

use super::{Account, AccountChange};
use crate::hash::{Hash, TaggedHasher};
use crate::keys::Address;

/// The state root of the genesis accounts.
pub fn genesis_state_root(accounts: &BTreeMap<Address, Account>) -> Hash {
    let mut h = TaggedHasher::new(b"synod/state/genesis");
    h.update_u64(accounts.len() as u64);
    for (address, account) in accounts {
        h.update(&address.0)
            .update_u64(account.balance)
            .update_u64(account.nonce);
    }
    h.finish()
}

/// The state root after a block at `height` that made `changes` on top of `parent_root`.
pub fn next_state_root(
    parent_root: &Hash,
    height: u64,
    changes: &BTreeMap<Address, AccountChange>,
) -> Hash {
    let mut h = TaggedHasher::new(b"synod/state/block");
    h.update(&parent_root.0)
        .update_u64(height)
        .update_u64(changes.len() as u64);
    for (address, change) in changes {
        h.update(&address.0)
            .update_u64(change.after.balance)
            .update_u64(change.after.nonce);
    }
    h.finish()
}
