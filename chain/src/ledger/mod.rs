//! The ledger: account balances and nonces, and the state transition a block applies to them.
//!
//! Applying is split from storing: the ledger reads accounts through [`AccountSource`] and returns
//! a [`StateChanges`] (each touched account before and after, plus the new state root) that the
//! store writes in the same transaction as the block, and keeps as undo data for rewinds.

mod apply;
mod overlay;
mod state_root;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use apply::{ApplyTxError, BlockTemplate, BuiltBlock, Ledger, LedgerError, LedgerRules};
pub use overlay::StateOverlay;
pub use state_root::{genesis_state_root, next_state_root};

use crate::hash::Hash;
use crate::keys::Address;
use crate::store::StoreError;

/// One account's state. An account that was never touched has the default (zero) state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Account {
    /// Spendable funds.
    pub balance: u64,
    /// Number of transactions this account has sent; the next one must carry this nonce.
    pub nonce: u64,
}

/// Read access to the accounts as of the parent block.
pub trait AccountSource {
    /// The account at `address` (the default state if it does not exist).
    fn account(&self, address: &Address) -> Result<Account, StoreError>;
}

impl AccountSource for BTreeMap<Address, Account> {
    fn account(&self, address: &Address) -> Result<Account, StoreError> {
        Ok(self.get(address).copied().unwrap_or_default())
    }
}

impl AccountSource for std::collections::HashMap<Address, Account> {
    fn account(&self, address: &Address) -> Result<Account, StoreError> {
        Ok(self.get(address).copied().unwrap_or_default())
    }
}

/// An account's state before and after a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountChange {
    /// As of the parent block.
    pub before: Account,
    /// After this block.
    pub after: Account,
}

/// What applying a block did to the ledger.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateChanges {
    /// Every touched account, sorted by address.
    pub accounts: BTreeMap<Address, AccountChange>,
    /// The state root after the block.
    pub state_root: Hash,
}

#[cfg(test)]
mod tests;
