//! Writes: initialization, block commits, rewinds, finality, transaction indexing and engine
//! state. Each is one redb write transaction taken under the store's lock; the in-memory state
//! changes only after it commits.

use redb::{Database, Durability, ReadableTable, WriteTransaction};

use super::tables::*;
use super::{ChainTip, Finality, Meta, Store, StoreError};
use crate::block::{Block, BlockHeader};
use crate::codec;
use crate::genesis_state::GenesisState;
use crate::hash::Hash;
use crate::keys::Address;
use crate::ledger::{Account, StateChanges};
use crate::limits::{MAX_BLOCK_BYTES, MAX_PROOF_BYTES};
use crate::tx::SignedTransaction;

/// Heights one [`Store::backfill`] call settles at most.
const MAX_BACKFILL_PER_CALL: u64 = 1024;

/// Blocks waiting for the tx index beyond which a commit merges them itself, so memory stays
/// bounded even if nobody calls [`Store::index_transactions`].
const MAX_UNINDEXED_BLOCKS: u64 = 1024;

/// Whether a block commit waits for the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitDurability {
    /// fsynced before the call returns: the block survives any crash after it.
    Immediate,
    /// Written but not fsynced; made durable by the next immediate write. For engines whose own
    /// durable log can replay the commit after a crash (Raft's log is on a majority of disks), so
    /// the block need not cost a second fsync. After a crash the store holds a consistent prefix.
    Deferred,
}

/// One change to the engine-state table, applied atomically with the others in its batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EngineWrite {
    /// Set `key` to `value`.
    Put(Vec<u8>, Vec<u8>),
    /// Remove `key`.
    Delete(Vec<u8>),
    /// Remove every key in `[from, to)`.
    DeleteRange(Vec<u8>, Vec<u8>),
}

fn begin(db: &Database, durability: Durability) -> Result<WriteTransaction, StoreError> {
    let mut txn = db.begin_write()?;
    txn.set_durability(durability)?;
    Ok(txn)
}

fn put_meta<T: serde::Serialize>(
    txn: &WriteTransaction,
    key: &str,
    value: &T,
) -> Result<(), StoreError> {
    put_encoded(txn, META, key, value)
}

/// Writes `value`'s canonical encoding under `key` in a metadata `table` (the chain's or the
/// index file's).
pub(super) fn put_encoded<T: serde::Serialize>(
    txn: &WriteTransaction,
    table: redb::TableDefinition<&str, &[u8]>,
    key: &str,
    value: &T,
) -> Result<(), StoreError> {
    txn.open_table(table)?
        .insert(key, codec::encode(value).as_slice())?;
    Ok(())
}

fn write_accounts<'a>(
    txn: &WriteTransaction,
    accounts: impl IntoIterator<Item = (&'a Address, &'a Account)>,
) -> Result<(), StoreError> {
    let mut table = txn.open_table(ACCOUNTS)?;
    for (address, account) in accounts {
        if *account == Account::default() {
            table.remove(&address.0)?;
        } else {
            table.insert(&address.0, (account.balance, account.nonce))?;
        }
    }
    Ok(())
}

fn apply_engine_writes(txn: &WriteTransaction, writes: &[EngineWrite]) -> Result<(), StoreError> {
    if writes.is_empty() {
        return Ok(());
    }
    let mut table = txn.open_table(ENGINE)?;
    for write in writes {
        match write {
            EngineWrite::Put(key, value) => {
                table.insert(key.as_slice(), value.as_slice())?;
            }
            EngineWrite::Delete(key) => {
                table.remove(key.as_slice())?;
            }
            EngineWrite::DeleteRange(from, to) => {
                let keys: Vec<Vec<u8>> = table
                    .range(from.as_slice()..to.as_slice())?
                    .map(|entry| entry.map(|(k, _)| k.value().to_vec()))
                    .collect::<Result<_, _>>()?;
                for key in keys {
                    table.remove(key.as_slice())?;
                }
            }
        }
    }
    Ok(())
}

/// Drops undo data at or below `height`: those blocks are final and can never be rewound.
fn prune_undo(txn: &WriteTransaction, height: u64) -> Result<(), StoreError> {
    let mut undo = txn.open_table(UNDO)?;
    let heights: Vec<u64> = undo
        .range(..=height)?
        .map(|entry| entry.map(|(k, _)| k.value()))
        .collect::<Result<_, _>>()?;
    for h in heights {
        undo.remove(h)?;
    }
    Ok(())
}

fn check_proof(proof: &[u8]) -> Result<(), StoreError> {
    if proof.len() > MAX_PROOF_BYTES {
        return Err(StoreError::TooLarge {
            what: "finality proof",
            len: proof.len(),
            limit: MAX_PROOF_BYTES,
        });
    }
    Ok(())
}

/// Reads the canonical block at `height` inside a write transaction.
fn canonical_block(txn: &WriteTransaction, height: u64) -> Result<Block, StoreError> {
    let hash = txn
        .open_table(CANONICAL)?
        .get(height)?
        .map(|v| Hash(*v.value()))
        .ok_or_else(|| StoreError::corrupt("canonical", height, "missing"))?;
    let header_bytes = txn
        .open_table(HEADERS)?
        .get(&hash.0)?
        .map(|v| v.value().to_vec())
        .ok_or_else(|| StoreError::corrupt("headers", hash, "missing"))?;
    let header =
        BlockHeader::decode(&header_bytes).map_err(|e| StoreError::decode("headers", hash, e))?;
    let body_bytes = txn
        .open_table(BODIES)?
        .get(&hash.0)?
        .map(|v| v.value().to_vec())
        .ok_or_else(|| StoreError::corrupt("bodies", hash, "missing"))?;
    let txs: Vec<SignedTransaction> = codec::decode(&body_bytes, MAX_BLOCK_BYTES)
        .map_err(|e| StoreError::decode("bodies", hash, e))?;
    Ok(Block { header, txs })
}

/// Writes block 0, the genesis accounts and the metadata into an empty database.
pub(super) fn initialize(db: &Database, genesis: &GenesisState) -> Result<Meta, StoreError> {
    let block = &genesis.block;
    let hash = block.hash();
    let txn = begin(db, Durability::Immediate)?;
    // Create every table, so readers never meet a missing one.
    txn.open_table(PROOFS)?;
    txn.open_table(UNDO)?;
    txn.open_table(ENGINE)?;
    txn.open_table(HEADERS)?
        .insert(&hash.0, block.header.encode().as_slice())?;
    txn.open_table(BODIES)?
        .insert(&hash.0, codec::encode(&block.txs).as_slice())?;
    txn.open_table(CANONICAL)?.insert(0, &hash.0)?;
    write_accounts(&txn, &genesis.accounts)?;
    let meta = Meta {
        genesis_hash: genesis.genesis_hash,
        chain_id: genesis.chain_id.clone(),
        tip: ChainTip { height: 0, hash },
        finalized: 0,
        indexed: 0,
        base: 0,
    };
    put_meta(&txn, META_GENESIS, &meta.genesis_hash)?;
    put_meta(&txn, META_CHAIN_ID, &meta.chain_id)?;
    put_meta(&txn, META_TIP, &meta.tip)?;
    put_meta(&txn, META_FINALIZED, &meta.finalized)?;
    put_meta(&txn, META_BASE, &meta.base)?;
    // The schema version goes in last: a database without it is treated as uninitialized.
    put_meta(&txn, META_SCHEMA, &SCHEMA_VERSION)?;
    txn.commit()?;
    Ok(meta)
}

impl Store {
    /// Commits `block` on top of the tip, with its state changes, its finality proof and any
    /// engine-state writes, in one durable transaction. When this returns `Ok`, the block survives
    /// a crash; when it returns `Err`, nothing was written.
    pub fn commit_block(
        &self,
        block: &Block,
        changes: &StateChanges,
        proof: &[u8],
        finality: Finality,
        engine: &[EngineWrite],
    ) -> Result<ChainTip, StoreError> {
        self.commit_block_with(
            block,
            changes,
            proof,
            finality,
            engine,
            CommitDurability::Immediate,
        )
    }

    /// [`Store::commit_block`] with a choice of durability. Engine-state writes are never
    /// deferred: with any, the commit is immediate.
    pub fn commit_block_with(
        &self,
        block: &Block,
        changes: &StateChanges,
        proof: &[u8],
        finality: Finality,
        engine: &[EngineWrite],
        durability: CommitDurability,
    ) -> Result<ChainTip, StoreError> {
        // A safety valve for a node whose merges fell far behind; never waits for a merge that is
        // already running.
        if self.tx_backlog() >= MAX_UNINDEXED_BLOCKS {
            let writer = match self.index_writer.try_lock() {
                Ok(writer) => Some(writer),
                Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            };
            if let Some(writer) = writer {
                self.merge_index(&writer, MAX_UNINDEXED_BLOCKS)?;
            }
        }
        let mut state = self.lock();
        let meta = &mut state.meta;
        let header = &block.header;
        let hash = block.hash();
        if header.parent != meta.tip.hash || header.height != meta.tip.height + 1 {
            return Err(StoreError::NotOnTip {
                height: header.height,
                hash,
                tip_height: meta.tip.height,
                tip_hash: meta.tip.hash,
            });
        }
        if changes.state_root != header.state_root {
            return Err(StoreError::ChangesMismatch {
                header: header.state_root,
                changes: changes.state_root,
            });
        }
        let (body, ids) = block.encode_body_with_ids();
        if body.len() > MAX_BLOCK_BYTES {
            return Err(StoreError::TooLarge {
                what: "block body",
                len: body.len(),
                limit: MAX_BLOCK_BYTES,
            });
        }
        check_proof(proof)?;

        let durability = match durability {
            CommitDurability::Deferred if engine.is_empty() => Durability::None,
            _ => Durability::Immediate,
        };
        let durable = !matches!(durability, Durability::None);
        let txn = begin(&self.db, durability)?;
        txn.open_table(HEADERS)?
            .insert(&hash.0, header.encode().as_slice())?;
        txn.open_table(BODIES)?.insert(&hash.0, body.as_slice())?;
        if !proof.is_empty() {
            txn.open_table(PROOFS)?.insert(&hash.0, proof)?;
        }
        txn.open_table(CANONICAL)?.insert(header.height, &hash.0)?;
        write_accounts(
            &txn,
            changes
                .accounts
                .iter()
                .map(|(a, change)| (a, &change.after)),
        )?;
        let tip = ChainTip {
            height: header.height,
            hash,
        };
        let finalized = match finality {
            Finality::Final => {
                if meta.finalized + 1 < header.height {
                    prune_undo(&txn, header.height)?;
                }
                header.height
            }
            Finality::Tentative => {
                let undo: Vec<(Address, Account)> = changes
                    .accounts
                    .iter()
                    .map(|(a, change)| (*a, change.before))
                    .collect();
                txn.open_table(UNDO)?
                    .insert(header.height, codec::encode(&undo).as_slice())?;
                meta.finalized
            }
        };
        put_meta(&txn, META_TIP, &tip)?;
        if finalized != meta.finalized {
            put_meta(&txn, META_FINALIZED, &finalized)?;
        }
        apply_engine_writes(&txn, engine)?;
        txn.commit()?;
        meta.tip = tip;
        meta.finalized = finalized;
        if durable {
            state.durable = tip.height;
        }
        for (i, id) in ids.into_iter().enumerate() {
            state.recent.insert(id, (header.height, i as u32));
        }
        Ok(tip)
    }

    /// Replaces the chain state with a snapshot taken at `header` (a Raft InstallSnapshot): the
    /// accounts are replaced wholesale, `header` becomes the final tip, and the blocks between the
    /// old tip and it are missing (a snapshot stands in for them). One durable transaction,
    /// together with `engine` writes.
    pub fn install_snapshot(
        &self,
        header: &BlockHeader,
        accounts: &std::collections::BTreeMap<Address, Account>,
        proof: &[u8],
        engine: &[EngineWrite],
    ) -> Result<ChainTip, StoreError> {
        // Index what is pending first, so nothing below the new base is left unindexed: every
        // block, so those a deferred commit left off the disk go on it first (merges stop at
        // the durable tip).
        let writer = self.index_writer();
        {
            let mut state = self.lock();
            if state.durable < state.meta.tip.height {
                begin(&self.db, Durability::Immediate)?.commit()?;
                state.durable = state.meta.tip.height;
            }
        }
        self.merge_index(&writer, u64::MAX)?;
        let mut state = self.lock();
        let hash = header.hash();
        if header.height <= state.meta.tip.height {
            return Err(StoreError::NotOnTip {
                height: header.height,
                hash,
                tip_height: state.meta.tip.height,
                tip_hash: state.meta.tip.hash,
            });
        }
        check_proof(proof)?;
        let txn = begin(&self.db, Durability::Immediate)?;
        txn.delete_table(ACCOUNTS)?;
        write_accounts(&txn, accounts)?;
        txn.open_table(HEADERS)?
            .insert(&hash.0, header.encode().as_slice())?;
        if !proof.is_empty() {
            txn.open_table(PROOFS)?.insert(&hash.0, proof)?;
        }
        txn.open_table(CANONICAL)?.insert(header.height, &hash.0)?;
        prune_undo(&txn, header.height)?;
        let tip = ChainTip {
            height: header.height,
            hash,
        };
        put_meta(&txn, META_TIP, &tip)?;
        put_meta(&txn, META_FINALIZED, &header.height)?;
        put_meta(&txn, META_BASE, &header.height)?;
        apply_engine_writes(&txn, engine)?;
        txn.commit()?;
        state.meta.tip = tip;
        state.meta.finalized = header.height;
        state.meta.indexed = header.height;
        state.meta.base = header.height;
        state.durable = header.height;
        state.recent.clear();
        drop(state);
        // The blocks up to the snapshot are missing: the index file covers nothing new, and the
        // history filled in below it later goes in from the bottom of its range down. (Should
        // this not land, the next open sees the file short of the snapshot and does the same.)
        self.index
            .add(&[], Some(header.height + 1), Some(header.height))?;
        drop(writer);
        Ok(tip)
    }

    /// Fills history below an installed snapshot, from the top down: `blocks` (any order) are
    /// stored while each one is the block the chain links to at the highest height that may be
    /// missing (the snapshot's own block first, then its parent, ...); the first that is not
    /// stops the fill. Blocks already present are only checked. Returns how many heights were
    /// settled; when the last one is, the store holds every block from genesis again.
    ///
    /// No signature or state check is needed: each block is pinned by the hash its child names,
    /// up to the snapshot's header, which the engine accepted.
    pub fn backfill(&self, blocks: &[(Block, Vec<u8>)]) -> Result<u64, StoreError> {
        let by_height: std::collections::HashMap<u64, &(Block, Vec<u8>)> = blocks
            .iter()
            .map(|entry| (entry.0.header.height, entry))
            .collect();
        let _writer = self.index_writer();
        let mut state = self.lock();
        let mut base = state.meta.base;
        if base == 0 {
            return Ok(0);
        }
        // Durable before the index file names these blocks (it must never name a block the
        // chain's file could lose).
        let txn = begin(&self.db, Durability::Immediate)?;
        let mut settled = 0;
        let mut new_txs: Vec<(Hash, (u64, u32))> = Vec::new();
        // Bounded per call: walking down through blocks already present holds the store's lock,
        // and commits must not wait long for it.
        while base > 0 && settled < MAX_BACKFILL_PER_CALL {
            let indexed = txn
                .open_table(CANONICAL)?
                .get(base)?
                .map(|hash| Hash(*hash.value()));
            let expected = match indexed {
                Some(hash) => hash,
                None => {
                    let child_hash = txn
                        .open_table(CANONICAL)?
                        .get(base + 1)?
                        .map(|h| Hash(*h.value()))
                        .ok_or_else(|| StoreError::corrupt("canonical", base + 1, "missing"))?;
                    let child = txn
                        .open_table(HEADERS)?
                        .get(&child_hash.0)?
                        .map(|v| v.value().to_vec())
                        .ok_or_else(|| StoreError::corrupt("headers", child_hash, "missing"))?;
                    BlockHeader::decode(&child)
                        .map_err(|e| StoreError::decode("headers", child_hash, e))?
                        .parent
                }
            };
            let has_body = txn.open_table(BODIES)?.get(&expected.0)?.is_some();
            if !has_body {
                let Some((block, proof)) = by_height.get(&base) else {
                    break;
                };
                let got = block.hash();
                if got != expected {
                    return Err(StoreError::NotInChain {
                        height: base,
                        expected,
                        got,
                    });
                }
                block
                    .check_shape()
                    .map_err(|e| StoreError::corrupt("bodies", got, e))?;
                let (body, ids) = block.encode_body_with_ids();
                if body.len() > MAX_BLOCK_BYTES {
                    return Err(StoreError::TooLarge {
                        what: "block body",
                        len: body.len(),
                        limit: MAX_BLOCK_BYTES,
                    });
                }
                check_proof(proof)?;
                txn.open_table(HEADERS)?
                    .insert(&got.0, block.header.encode().as_slice())?;
                txn.open_table(BODIES)?.insert(&got.0, body.as_slice())?;
                let has_proof = txn.open_table(PROOFS)?.get(&got.0)?.is_some();
                if !proof.is_empty() && !has_proof {
                    txn.open_table(PROOFS)?.insert(&got.0, proof.as_slice())?;
                }
                txn.open_table(CANONICAL)?.insert(base, &got.0)?;
                new_txs.extend(
                    ids.into_iter()
                        .enumerate()
                        .map(|(i, id)| (id, (base, i as u32))),
                );
            }
            base -= 1;
            settled += 1;
        }
        if settled == 0 {
            return Ok(0);
        }
        new_txs.sort_unstable_by_key(|(id, _)| *id);
        put_meta(&txn, META_BASE, &base)?;
        txn.commit()?;
        state.meta.base = base;
        state.durable = state.meta.tip.height;
        // Commits need not wait for the index write; the index writer, still held, keeps it in
        // order with rewinds and merges.
        drop(state);
        // Every block above the new base is now in the chain and, with these, in the index
        // file. (A crash before this write is repaired at open.)
        self.index.add(&new_txs, Some(base + 1), None)?;
        Ok(settled)
    }

    /// Canonical blocks whose transactions are not yet in the tx-index table.
    pub fn tx_backlog(&self) -> u64 {
        let meta = &self.lock().meta;
        meta.tip.height - meta.indexed
    }

    /// Merges the transactions of up to `max_blocks` canonical blocks above the indexed height
    /// into the index file, sorted, in one durable transaction of the index file's own. Returns
    /// the number of blocks merged. Block commits go on meanwhile (the store's lock is held only
    /// to take the entries and, after the write, to forget them): a node runs this on a thread of
    /// its own, since a merge's cost grows with the index.
    pub fn index_transactions(&self, max_blocks: u64) -> Result<u64, StoreError> {
        let writer = self.index_writer();
        self.merge_index(&writer, max_blocks)
    }

    /// [`Store::index_transactions`], for a caller that holds the index writer. Only blocks
    /// whose commit is on disk are merged: the index file must never name a block a crash could
    /// take from the chain.
    fn merge_index(
        &self,
        _writer: &std::sync::MutexGuard<'_, ()>,
        max_blocks: u64,
    ) -> Result<u64, StoreError> {
        let (from, to, mut entries) = {
            let state = self.lock();
            let from = state.meta.indexed + 1;
            let to = state
                .meta
                .tip
                .height
                .min(state.durable)
                .min(state.meta.indexed.saturating_add(max_blocks));
            let entries: Vec<(Hash, (u64, u32))> = if from > to {
                Vec::new()
            } else {
                state
                    .recent
                    .iter()
                    .filter(|(_, (height, _))| (from..=to).contains(height))
                    .map(|(id, location)| (*id, *location))
                    .collect()
            };
            (from, to, entries)
        };
        if from > to {
            return Ok(0);
        }
        // Sorted keys touch each B-tree page once.
        entries.sort_unstable_by_key(|(id, _)| *id);
        self.index.add(&entries, None, Some(to))?;
        // No rewind ran meanwhile (it takes the index writer too), so these are still canonical.
        let mut state = self.lock();
        state.meta.indexed = to;
        for (id, _) in &entries {
            state.recent.remove(id);
        }
        Ok(to - from + 1)
    }

    /// The index file's writer: one at a time, taken before the store's lock.
    pub(super) fn index_writer(&self) -> std::sync::MutexGuard<'_, ()> {
        self.index_writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Removes canonical blocks above `target`, restoring the accounts they changed from undo data
    /// and dropping their transaction index entries. Their headers and bodies stay (a side branch
    /// may become canonical again). Returns the removed blocks, highest first.
    pub fn rewind_to(&self, target: u64) -> Result<Vec<Block>, StoreError> {
        let _writer = self.index_writer();
        let mut state = self.lock();
        let meta = state.meta.clone();
        if target < meta.finalized {
            return Err(StoreError::BelowFinalized {
                target,
                finalized: meta.finalized,
            });
        }
        if target >= meta.tip.height {
            return Ok(Vec::new());
        }
        if target < meta.indexed {
            // The index file first: it must not name blocks the chain no longer holds. Until
            // the chain's rewind commits, the entries live in memory again.
            let reader = self.reader_at_base(meta.base)?;
            let mut ids = Vec::new();
            for height in target + 1..=meta.indexed {
                let Some(block) = reader.block_at(height)? else {
                    continue;
                };
                for (i, id) in block.tx_ids().into_iter().enumerate() {
                    ids.push(id);
                    state.recent.insert(id, (height, i as u32));
                }
            }
            drop(reader);
            self.index.remove(&ids, target)?;
            state.meta.indexed = target;
        }
        let txn = begin(&self.db, Durability::Immediate)?;
        let mut removed = Vec::new();
        for height in (target + 1..=meta.tip.height).rev() {
            let block = canonical_block(&txn, height)?;
            let undo_bytes = txn
                .open_table(UNDO)?
                .remove(height)?
                .map(|v| v.value().to_vec())
                .ok_or(StoreError::NoUndo(height))?;
            let undo: Vec<(Address, Account)> = codec::decode(&undo_bytes, MAX_BLOCK_BYTES)
                .map_err(|e| StoreError::decode("undo", height, e))?;
            write_accounts(&txn, undo.iter().map(|(a, before)| (a, before)))?;
            txn.open_table(CANONICAL)?.remove(height)?;
            removed.push(block);
        }
        let new_tip = ChainTip {
            height: target,
            hash: canonical_block(&txn, target)?.hash(),
        };
        put_meta(&txn, META_TIP, &new_tip)?;
        txn.commit()?;
        state.meta.tip = new_tip;
        state.durable = target;
        state.recent.retain(|_, (height, _)| *height <= target);
        Ok(removed)
    }

    /// Marks every block up to `height` final and drops their undo data.
    pub fn set_finalized(&self, height: u64) -> Result<(), StoreError> {
        let mut state = self.lock();
        let meta = &mut state.meta;
        let height = height.min(meta.tip.height);
        if height <= meta.finalized {
            return Ok(());
        }
        let txn = begin(&self.db, Durability::Immediate)?;
        prune_undo(&txn, height)?;
        put_meta(&txn, META_FINALIZED, &height)?;
        txn.commit()?;
        meta.finalized = height;
        state.durable = state.meta.tip.height;
        Ok(())
    }

    /// Applies engine-state writes in one durable transaction. Returns once they are on disk.
    pub fn write_engine(&self, writes: &[EngineWrite]) -> Result<(), StoreError> {
        let mut state = self.lock();
        let txn = begin(&self.db, Durability::Immediate)?;
        apply_engine_writes(&txn, writes)?;
        txn.commit()?;
        // A durable commit makes the deferred ones before it durable too.
        state.durable = state.meta.tip.height;
        Ok(())
    }
}
