//! Reads, through a [`StoreReader`]: a consistent snapshot of the database. Every record read is
//! decoded with its bound and checked against its key, so damage surfaces as an error.

use redb::{ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};

use super::tables::*;
use super::{Store, StoreError};
use crate::block::{Block, BlockHeader};
use crate::codec;
use crate::hash::Hash;
use crate::keys::Address;
use crate::ledger::{Account, AccountSource};
use crate::limits::{MAX_BLOCK_BYTES, MAX_PROOF_BYTES};
use crate::tx::SignedTransaction;

/// Key/value pairs of the engine-state table, in key order.
pub type EngineEntries = Vec<(Vec<u8>, Vec<u8>)>;

/// Where a canonical transaction is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxLocation {
    /// The block's id.
    pub block: Hash,
    /// The block's height.
    pub height: u64,
    /// Position in the block's body.
    pub index: u32,
}

/// A read-only snapshot of the store.
pub struct StoreReader {
    pub(super) txn: ReadTransaction,
    /// Blocks at or below this height may be missing (a snapshot stood in for them).
    base: u64,
    accounts: ReadOnlyTable<&'static [u8; 20], (u64, u64)>,
}

impl Store {
    /// A consistent read snapshot.
    pub fn reader(&self) -> Result<StoreReader, StoreError> {
        self.reader_at_base(self.base_height())
    }

    /// A read snapshot for a caller that holds the store's lock (and so knows the base).
    pub(super) fn reader_at_base(&self, base: u64) -> Result<StoreReader, StoreError> {
        let txn = self.db.begin_read()?;
        let accounts = txn.open_table(ACCOUNTS)?;
        Ok(StoreReader {
            txn,
            base,
            accounts,
        })
    }

    /// The header of block `hash`, if stored.
    pub fn header(&self, hash: &Hash) -> Result<Option<BlockHeader>, StoreError> {
        self.reader()?.header(hash)
    }

    /// Block `hash`, if stored (canonical or not).
    pub fn block(&self, hash: &Hash) -> Result<Option<Block>, StoreError> {
        self.reader()?.block(hash)
    }

    /// The canonical block id at `height`.
    pub fn hash_at(&self, height: u64) -> Result<Option<Hash>, StoreError> {
        self.reader()?.hash_at(height)
    }

    /// The canonical header at `height`.
    pub fn header_at(&self, height: u64) -> Result<Option<BlockHeader>, StoreError> {
        self.reader()?.header_at(height)
    }

    /// The canonical block at `height`.
    pub fn block_at(&self, height: u64) -> Result<Option<Block>, StoreError> {
        self.reader()?.block_at(height)
    }

    /// The finality proof stored with block `hash` (empty if none).
    pub fn proof(&self, hash: &Hash) -> Result<Vec<u8>, StoreError> {
        self.reader()?.proof(hash)
    }

    /// An account's current state.
    pub fn account(&self, address: &Address) -> Result<Account, StoreError> {
        self.reader()?.account(address)
    }

    /// A canonical transaction and where it is.
    pub fn transaction(
        &self,
        id: &Hash,
    ) -> Result<Option<(SignedTransaction, TxLocation)>, StoreError> {
        // The location and the block are two reads: a reorganisation between them moves the
        // transaction, so a location that no longer holds it is looked up once more.
        let mut attempt = 0;
        loop {
            // Memory first: a merge writes the index file before it forgets an entry here.
            let recent = self.lock().recent.get(id).copied();
            let location = match recent {
                Some(location) => Some(location),
                None => self.index.get(id)?,
            };
            let Some((height, index)) = location else {
                return Ok(None);
            };
            match self.reader()?.transaction_at(id, height, index) {
                Err(_) if attempt == 0 => attempt += 1,
                found => return found.map(Some),
            }
        }
    }

    /// Whether transaction `id` is in the canonical chain, from the indexes alone: unlike
    /// [`Store::transaction`] it decodes no block, so asking about many transactions (a mempool
    /// journal replayed at start) costs one index lookup each.
    pub fn is_committed(&self, id: &Hash) -> Result<bool, StoreError> {
        if self.lock().recent.contains_key(id) {
            return Ok(true);
        }
        Ok(self.index.get(id)?.is_some())
    }

    /// A value from the engine-state table.
    pub fn engine_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.reader()?.engine_get(key)
    }

    /// Engine-state entries with keys in `[from, to)`, in key order.
    pub fn engine_range(&self, from: &[u8], to: &[u8]) -> Result<EngineEntries, StoreError> {
        self.reader()?.engine_range(from, to)
    }
}

impl StoreReader {
    /// The header of block `hash`, checked to hash to its key.
    pub fn header(&self, hash: &Hash) -> Result<Option<BlockHeader>, StoreError> {
        let table = self.txn.open_table(HEADERS)?;
        let Some(bytes) = table.get(&hash.0)? else {
            return Ok(None);
        };
        let header = BlockHeader::decode(bytes.value())
            .map_err(|e| StoreError::decode("headers", hash, e))?;
        if header.hash() != *hash {
            return Err(StoreError::corrupt(
                "headers",
                hash,
                "header does not hash to its key",
            ));
        }
        Ok(Some(header))
    }

    /// Block `hash`, its body checked against the header's tx root. `None` if it is not stored,
    /// or if only its header is (below a snapshot).
    pub fn block(&self, hash: &Hash) -> Result<Option<Block>, StoreError> {
        let Some(header) = self.header(hash)? else {
            return Ok(None);
        };
        let table = self.txn.open_table(BODIES)?;
        let Some(bytes) = table.get(&hash.0)? else {
            if header.height <= self.base {
                return Ok(None);
            }
            return Err(StoreError::corrupt("bodies", hash, "header without body"));
        };
        let txs: Vec<SignedTransaction> = codec::decode(bytes.value(), MAX_BLOCK_BYTES)
            .map_err(|e| StoreError::decode("bodies", hash, e))?;
        let block = Block { header, txs };
        block
            .check_shape()
            .map_err(|e| StoreError::corrupt("bodies", hash, e))?;
        Ok(Some(block))
    }

    /// The canonical block id at `height`.
    pub fn hash_at(&self, height: u64) -> Result<Option<Hash>, StoreError> {
        let table = self.txn.open_table(CANONICAL)?;
        Ok(table.get(height)?.map(|v| Hash(*v.value())))
    }

    /// The canonical header at `height`.
    pub fn header_at(&self, height: u64) -> Result<Option<BlockHeader>, StoreError> {
        match self.hash_at(height)? {
            Some(hash) => self
                .header(&hash)?
                .ok_or_else(|| StoreError::corrupt("canonical", height, "points at no header"))
                .map(Some),
            None => Ok(None),
        }
    }

    /// The canonical block at `height` (`None` above the tip, or below a snapshot).
    pub fn block_at(&self, height: u64) -> Result<Option<Block>, StoreError> {
        match self.hash_at(height)? {
            Some(hash) => match self.block(&hash)? {
                Some(block) => Ok(Some(block)),
                None if height <= self.base => Ok(None),
                None => Err(StoreError::corrupt(
                    "canonical",
                    height,
                    "points at no block",
                )),
            },
            None => Ok(None),
        }
    }

    /// The finality proof of block `hash` (empty if none).
    pub fn proof(&self, hash: &Hash) -> Result<Vec<u8>, StoreError> {
        let table = self.txn.open_table(PROOFS)?;
        match table.get(&hash.0)? {
            Some(v) if v.value().len() > MAX_PROOF_BYTES => {
                Err(StoreError::corrupt("proofs", hash, "longer than any proof"))
            }
            Some(v) => Ok(v.value().to_vec()),
            None => Ok(Vec::new()),
        }
    }

    /// An account's state.
    pub fn account(&self, address: &Address) -> Result<Account, StoreError> {
        Ok(self
            .accounts
            .get(&address.0)?
            .map(|v| {
                let (balance, nonce) = v.value();
                Account { balance, nonce }
            })
            .unwrap_or_default())
    }

    /// Every non-zero account, in address order.
    pub fn accounts(&self) -> Result<Vec<(Address, Account)>, StoreError> {
        self.accounts
            .iter()?
            .map(|entry| {
                let (k, v) = entry?;
                let (balance, nonce) = v.value();
                Ok((Address(*k.value()), Account { balance, nonce }))
            })
            .collect()
    }

    /// The transaction `id` at `index` of canonical block `height`, checked to be that one.
    fn transaction_at(
        &self,
        id: &Hash,
        height: u64,
        index: u32,
    ) -> Result<(SignedTransaction, TxLocation), StoreError> {
        let block = self
            .block_at(height)?
            .ok_or_else(|| StoreError::corrupt("tx_index", id, "points above the tip"))?;
        let tx = block
            .txs
            .get(index as usize)
            .filter(|tx| tx.id() == *id)
            .cloned()
            .ok_or_else(|| StoreError::corrupt("tx_index", id, "points at another transaction"))?;
        Ok((
            tx,
            TxLocation {
                block: block.hash(),
                height,
                index,
            },
        ))
    }

    /// A value from the engine-state table.
    pub fn engine_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let table = self.txn.open_table(ENGINE)?;
        Ok(table.get(key)?.map(|v| v.value().to_vec()))
    }

    /// Engine-state entries with keys in `[from, to)`.
    pub fn engine_range(&self, from: &[u8], to: &[u8]) -> Result<EngineEntries, StoreError> {
        let table = self.txn.open_table(ENGINE)?;
        table
            .range(from..to)?
            .map(|entry| {
                let (k, v) = entry?;
                Ok((k.value().to_vec(), v.value().to_vec()))
            })
            .collect()
    }
}

impl AccountSource for StoreReader {
    fn account(&self, address: &Address) -> Result<Account, StoreError> {
        StoreReader::account(self, address)
    }
}

impl AccountSource for Store {
    fn account(&self, address: &Address) -> Result<Account, StoreError> {
        Store::account(self, address)
    }
}
