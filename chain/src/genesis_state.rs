//! The chain's starting point as the store needs it: block 0 and the initial accounts.
//!
//! The genesis *file* (parsing, validation, hashing) belongs to `synod-genesis`; it hands the
//! chain this value, which is all the ledger and the store need to know about it.

use std::collections::BTreeMap;

use crate::block::{Block, BlockHeader, HEADER_VERSION, Seal};
use crate::hash::Hash;
use crate::keys::{Address, PublicKey};
use crate::ledger::{Account, genesis_state_root};
use crate::merkle::merkle_root;

/// Block 0 and the accounts it starts with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenesisState {
    /// The chain id every transaction must carry.
    pub chain_id: String,
    /// Hash of the genesis file's canonical encoding; a database from any other genesis is refused.
    pub genesis_hash: Hash,
    /// Block 0: its parent is `genesis_hash`, so its id commits to the whole genesis file.
    pub block: Block,
    /// Initial balances.
    pub accounts: BTreeMap<Address, Account>,
}

impl GenesisState {
    /// Builds block 0 for a genesis file whose hash is `genesis_hash`.
    pub fn new(
        chain_id: String,
        genesis_hash: Hash,
        timestamp_ms: u64,
        seal: Seal,
        accounts: BTreeMap<Address, Account>,
    ) -> Self {
        let header = BlockHeader {
            version: HEADER_VERSION,
            parent: genesis_hash,
            height: 0,
            timestamp_ms,
            tx_root: merkle_root(&[]),
            state_root: genesis_state_root(&accounts),
            proposer: PublicKey::default(),
            seal,
        };
        GenesisState {
            chain_id,
            genesis_hash,
            block: Block {
                header,
                txs: Vec::new(),
            },
            accounts,
        }
    }
}
