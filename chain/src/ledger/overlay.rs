//! Pending account writes on top of an [`AccountSource`], remembering each account's first value.

use std::collections::BTreeMap;

use super::{Account, AccountChange, AccountSource};
use crate::keys::Address;
use crate::store::StoreError;

/// Accounts as modified so far by the block being applied or built.
pub struct StateOverlay<'a, S: AccountSource + ?Sized> {
    source: &'a S,
    changes: BTreeMap<Address, AccountChange>,
}

impl<'a, S: AccountSource + ?Sized> StateOverlay<'a, S> {
    /// An overlay with no changes yet.
    pub fn new(source: &'a S) -> Self {
        StateOverlay {
            source,
            changes: BTreeMap::new(),
        }
    }

    /// The current value of an account.
    pub fn get(&self, address: &Address) -> Result<Account, StoreError> {
        match self.changes.get(address) {
            Some(change) => Ok(change.after),
            None => self.source.account(address),
        }
    }

    /// Sets an account, keeping the value it had before the block on first touch.
    pub fn set(&mut self, address: Address, account: Account) -> Result<(), StoreError> {
        match self.changes.get_mut(&address) {
            Some(change) => change.after = account,
            None => {
                let before = self.source.account(&address)?;
                self.changes.insert(
                    address,
                    AccountChange {
                        before,
                        after: account,
                    },
                );
            }
        }
        Ok(())
    }

    /// The accumulated changes.
    pub fn into_changes(self) -> BTreeMap<Address, AccountChange> {
        self.changes
    }
}
