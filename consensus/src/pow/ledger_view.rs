//! The ledger state the engine validates against: the accounts at the canonical tip, and views of
//! the accounts at any block of the tree, built by undoing canonical blocks down to a fork point
//! and replaying a side branch's changes on top, without touching the tip's accounts.

use std::collections::BTreeMap;

use synod_chain::keys::Address;
use synod_chain::ledger::{Account, AccountSource, StateChanges};
use synod_chain::store::StoreError;

/// Writes `account` into `accounts`, where the zero account is stored as no entry.
fn set(accounts: &mut BTreeMap<Address, Account>, address: Address, account: Account) {
    if account == Account::default() {
        accounts.remove(&address);
    } else {
        accounts.insert(address, account);
    }
}

/// Moves `accounts` forward over a block's changes.
pub fn apply(accounts: &mut BTreeMap<Address, Account>, changes: &StateChanges) {
    for (address, change) in &changes.accounts {
        set(accounts, *address, change.after);
    }
}

/// Moves `accounts` back over a block, from the accounts as they were before it.
pub fn undo(accounts: &mut BTreeMap<Address, Account>, before: &[(Address, Account)]) {
    for (address, account) in before {
        set(accounts, *address, *account);
    }
}

/// The undo data of a block: every account it touched, as it was before.
pub fn undo_data(changes: &StateChanges) -> Vec<(Address, Account)> {
    changes
        .accounts
        .iter()
        .map(|(address, change)| (*address, change.before))
        .collect()
}

/// Accounts at some block, as differences from the accounts at the tip.
pub struct ForkView<'a> {
    tip: &'a BTreeMap<Address, Account>,
    differences: BTreeMap<Address, Account>,
}

impl<'a> ForkView<'a> {
    /// The accounts at the tip itself.
    pub fn at_tip(tip: &'a BTreeMap<Address, Account>) -> Self {
        ForkView {
            tip,
            differences: BTreeMap::new(),
        }
    }

    /// Steps back over a canonical block (undone from the highest down).
    pub fn undo(&mut self, before: &[(Address, Account)]) {
        for (address, account) in before {
            self.differences.insert(*address, *account);
        }
    }

    /// Steps forward over a block's changes.
    pub fn apply(&mut self, changes: &StateChanges) {
        for (address, change) in &changes.accounts {
            self.differences.insert(*address, change.after);
        }
    }
}

impl AccountSource for ForkView<'_> {
    fn account(&self, address: &Address) -> Result<Account, StoreError> {
        Ok(match self.differences.get(address) {
            Some(account) => *account,
            None => self.tip.get(address).copied().unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use synod_chain::hash::Hash;
    use synod_chain::ledger::AccountChange;

    fn account(balance: u64, nonce: u64) -> Account {
        Account { balance, nonce }
    }

    fn changes(list: &[(Address, Account, Account)]) -> StateChanges {
        StateChanges {
            accounts: list
                .iter()
                .map(|(a, before, after)| {
                    (
                        *a,
                        AccountChange {
                            before: *before,
                            after: *after,
                        },
                    )
                })
                .collect(),
            state_root: Hash::ZERO,
        }
    }

    #[test]
    fn undo_then_replay_a_side_branch_without_touching_the_tip() {
        let (a, b) = (Address([1; 20]), Address([2; 20]));
        let genesis: BTreeMap<Address, Account> = [(a, account(100, 0))].into_iter().collect();
        // Canonical block 1: a pays b 10.
        let block1 = changes(&[
            (a, account(100, 0), account(90, 1)),
            (b, Account::default(), account(10, 0)),
        ]);
        let mut tip = genesis.clone();
        apply(&mut tip, &block1);
        assert_eq!(tip.get(&b), Some(&account(10, 0)));

        // The view at genesis sees b empty again; a side block 1' pays 30 instead.
        let mut view = ForkView::at_tip(&tip);
        view.undo(&undo_data(&block1));
        assert_eq!(view.account(&a).unwrap(), account(100, 0));
        assert_eq!(view.account(&b).unwrap(), Account::default());
        view.apply(&changes(&[
            (a, account(100, 0), account(70, 1)),
            (b, Account::default(), account(30, 0)),
        ]));
        assert_eq!(view.account(&b).unwrap(), account(30, 0));
        assert_eq!(tip.get(&b), Some(&account(10, 0)));

        // Undoing on the tip's own map returns exactly to genesis (zero accounts leave the map).
        undo(&mut tip, &undo_data(&block1));
        assert_eq!(tip, genesis);
    }
}
