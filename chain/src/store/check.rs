//! Whole-database checks: the canonical chain links up, the indexes agree with the blocks, and
//! replaying every block from genesis reproduces the stored accounts and every state root.

use std::collections::BTreeMap;

use redb::ReadableTable;
use serde::Serialize;

use super::tables::*;
use super::{Store, StoreError};
use crate::genesis_state::GenesisState;
use crate::keys::Address;
use crate::ledger::{Account, Ledger};
use crate::verifier::TxVerifier;

/// What a full check found (all of it consistent, or the check would have failed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    /// Tip height.
    pub height: u64,
    /// Canonical transactions.
    pub transactions: u64,
    /// Non-zero accounts.
    pub accounts: u64,
    /// Sum of all balances.
    pub total_balance: u128,
    /// Whether the ledger replay ran (it needs the genesis).
    pub replayed: bool,
}

impl Store {
    /// Walks the canonical chain and the indexes. With `genesis` and `ledger`, also replays every
    /// block from the genesis accounts and compares state roots and the final accounts.
    pub fn verify_chain(
        &self,
        replay: Option<(&GenesisState, &Ledger)>,
    ) -> Result<ChainReport, StoreError> {
        let meta = self.meta();
        let reader = self.reader()?;
        // A replay needs every block from genesis: not possible across a snapshot.
        let replay = replay.filter(|_| meta.base == 0);
        let mut state: Option<BTreeMap<Address, Account>> =
            replay.map(|(genesis, _)| genesis.accounts.clone());
        let mut verifier = TxVerifier::default();
        let mut transactions = 0u64;
        // Each canonical transaction is in the index file (always, for heights it covers) or in
        // memory (above it); counted, so entries of no canonical transaction show up too.
        let mut in_file = 0u64;
        let mut in_memory = 0u64;
        let mut parent = None;
        let tx_index = self.index.snapshot()?;
        for height in 0..=meta.tip.height {
            let Some(block) = reader.block_at(height)? else {
                if height > meta.base {
                    return Err(StoreError::corrupt("canonical", height, "missing"));
                }
                if height == meta.base {
                    // The snapshot's header anchors the chain above it.
                    let header = reader.header_at(height)?.ok_or_else(|| {
                        StoreError::corrupt("canonical", height, "snapshot header missing")
                    })?;
                    parent = Some(header);
                }
                continue;
            };
            if block.header.height != height {
                return Err(StoreError::corrupt(
                    "canonical",
                    height,
                    format!("block has height {}", block.header.height),
                ));
            }
            match &parent {
                None if height == 0 && block.header.parent != meta.genesis_hash => {
                    return Err(StoreError::corrupt(
                        "canonical",
                        0,
                        "block 0 is not this genesis",
                    ));
                }
                Some(p)
                    if p.height + 1 == height
                        && block.header.parent != crate::block::BlockHeader::hash(p) =>
                {
                    return Err(StoreError::corrupt(
                        "canonical",
                        height,
                        "does not link to its parent",
                    ));
                }
                _ => {}
            }
            if let (0, Some((genesis, _))) = (height, replay)
                && block.hash() != genesis.block.hash()
            {
                return Err(StoreError::corrupt(
                    "canonical",
                    0,
                    "block 0 differs from the genesis block",
                ));
            }
            for (i, tx) in block.txs.iter().enumerate() {
                let id = tx.id();
                let location = if let Some(location) = self.lock().recent.get(&id).copied() {
                    in_memory += 1;
                    Some(location)
                } else {
                    in_file += 1;
                    tx_index.get(&id)?
                }
                .ok_or_else(|| StoreError::corrupt("tx_index", id, "missing"))?;
                if location != (height, i as u32) {
                    return Err(StoreError::corrupt(
                        "tx_index",
                        tx.id(),
                        format!("points at {location:?}, tx is at ({height}, {i})"),
                    ));
                }
            }
            transactions += block.txs.len() as u64;
            if let (Some(accounts), Some((_, ledger)), Some(p)) = (&mut state, replay, &parent) {
                let changes = ledger
                    .apply_block(&mut verifier, &*accounts, p, &block)
                    .map_err(|e| StoreError::corrupt("block", height, e))?;
                for (address, change) in changes.accounts {
                    accounts.insert(address, change.after);
                }
            }
            parent = Some(block.header);
        }
        if tx_index.len()? != in_file {
            return Err(StoreError::corrupt(
                "tx_index",
                "*",
                format!(
                    "{} entries for {in_file} indexed canonical transactions",
                    tx_index.len()?
                ),
            ));
        }
        let recent = self.lock().recent.len() as u64;
        if recent != in_memory {
            return Err(StoreError::corrupt(
                "tx_index",
                "memory",
                format!("{recent} in-memory entries for {in_memory} unindexed transactions"),
            ));
        }
        let undo = reader.txn.open_table(UNDO)?;
        for entry in undo.iter()? {
            let height = entry?.0.value();
            if height <= meta.finalized || height > meta.tip.height {
                return Err(StoreError::corrupt(
                    "undo",
                    height,
                    "undo data outside the rewindable range",
                ));
            }
        }
        let stored = reader.accounts()?;
        if let Some(replayed) = state {
            let replayed: Vec<(Address, Account)> = replayed
                .into_iter()
                .filter(|(_, a)| *a != Account::default())
                .collect();
            if replayed != stored {
                return Err(StoreError::corrupt(
                    "accounts",
                    "*",
                    "stored accounts differ from a replay of the chain",
                ));
            }
        }
        Ok(ChainReport {
            height: meta.tip.height,
            transactions,
            accounts: stored.len() as u64,
            total_balance: stored.iter().map(|(_, a)| a.balance as u128).sum(),
            replayed: replay.is_some(),
        })
    }
}
