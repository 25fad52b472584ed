//! Deterministic funded chains for tests, benchmarks and the consensus simulator: keys derived
//! from an index, a genesis that funds them, and helpers that sign transfers between them.

use std::collections::BTreeMap;

use crate::block::Seal;
use crate::genesis_state::GenesisState;
use crate::hash::{Hash, TaggedHasher};
use crate::keys::{Address, SecretKey};
use crate::ledger::{Account, Ledger, LedgerRules};
use crate::tx::{Memo, SignedTransaction, Transaction};

/// A chain id, funded accounts with known keys, and its genesis.
#[derive(Clone, Debug)]
pub struct Fixture {
    /// Keys of the funded accounts, by index.
    pub keys: Vec<SecretKey>,
    /// Their addresses, by index.
    pub addresses: Vec<Address>,
    /// The genesis (block 0 and the balances).
    pub genesis: GenesisState,
    /// A ledger with this chain's rules.
    pub ledger: Ledger,
}

impl Fixture {
    /// `accounts` accounts holding `balance` each on chain `chain_id`, with `block_reward`.
    pub fn new(chain_id: &str, accounts: usize, balance: u64, block_reward: u64) -> Self {
        let keys: Vec<SecretKey> = (0..accounts as u64)
            .map(|i| {
                let seed = TaggedHasher::new(b"synod/fixture-key")
                    .update(chain_id.as_bytes())
                    .update_u64(i)
                    .finish();
                SecretKey::from_seed(seed.0)
            })
            .collect();
        let addresses: Vec<Address> = keys.iter().map(SecretKey::address).collect();
        let balances: BTreeMap<Address, Account> = addresses
            .iter()
            .map(|a| (*a, Account { balance, nonce: 0 }))
            .collect();
        let genesis_hash = TaggedHasher::new(b"synod/fixture-genesis")
            .update(chain_id.as_bytes())
            .update_u64(accounts as u64)
            .update_u64(balance)
            .finish();
        let genesis = GenesisState::new(
            chain_id.to_string(),
            genesis_hash,
            1_700_000_000_000,
            Seal::default(),
            balances,
        );
        let ledger = Ledger::new(LedgerRules {
            chain_id: chain_id.to_string(),
            block_reward,
        });
        Fixture {
            keys,
            addresses,
            genesis,
            ledger,
        }
    }

    /// A transfer of `amount` (fee `fee`) from account `from` to account `to` with `nonce`.
    pub fn transfer(
        &self,
        from: usize,
        to: usize,
        amount: u64,
        fee: u64,
        nonce: u64,
    ) -> SignedTransaction {
        Transaction {
            chain_id: self.genesis.chain_id.clone(),
            from: self.keys[from].public(),
            to: self.addresses[to],
            amount,
            fee,
            nonce,
            memo: Memo::default(),
        }
        .sign(&self.keys[from])
    }

    /// The genesis hash.
    pub fn genesis_hash(&self) -> Hash {
        self.genesis.genesis_hash
    }
}
