//! The block store on redb: blocks, the canonical index, transactions, accounts, engine state and
//! metadata in one file.
//!
//! Every block is committed in one durable (`fsync`ed) write transaction together with its
//! canonical index entry, its state changes and their undo data, so after a crash the file holds
//! each block entirely or not at all.
//!
//! The transaction-id index is derived data and is kept off that path, in a file of its own
//! (`tx_index`): a random 32-byte key dirties its own 4 KiB page, so indexing 1,000 transactions
//! inside each commit made it ~8x slower and growing with the chain. Blocks above the indexed
//! height are indexed in memory (rebuilt from their bodies at open) and
//! [`Store::index_transactions`] merges them into the index file in batches, sorted, on whatever
//! thread the node gives it: the index file has its own writer, so a merge never holds up a block
//! commit. Opening verifies every page checksum (redb's integrity check) and then the metadata,
//! and refuses a damaged file, a file of another chain or schema, or a file locked by another
//! process, each with its own error.

mod check;
mod error;
mod read;
mod recent;
mod tables;
mod tx_index;
mod write;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use redb::{Database, ReadableDatabase};
use serde::{Deserialize, Serialize};

pub use check::ChainReport;
pub use error::StoreError;
pub use read::{EngineEntries, StoreReader, TxLocation};
pub use recent::RecentBlock;
pub use tables::SCHEMA_VERSION;
pub use write::{CommitDurability, EngineWrite};

use crate::codec;
use crate::genesis_state::GenesisState;
use crate::hash::Hash;
use tables::*;

/// The head of the canonical chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainTip {
    /// Its height.
    pub height: u64,
    /// Its id.
    pub hash: Hash,
}

/// Whether a committed block is final (never rewound) or may still be replaced by a reorg.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finality {
    /// Final as soon as it is committed (Raft, PBFT): no undo data is kept.
    Final,
    /// May be rewound (proof of work): undo data is kept.
    Tentative,
}

/// What the store remembers about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Meta {
    genesis_hash: Hash,
    chain_id: String,
    tip: ChainTip,
    finalized: u64,
    /// Transactions of canonical blocks up to here are in the `tx_index` table.
    indexed: u64,
    /// A snapshot was installed at this height: blocks below it may be missing.
    base: u64,
}

/// What the store keeps in memory, behind one lock that also serializes writers.
struct State {
    meta: Meta,
    /// Transactions of canonical blocks above `meta.indexed`: id to (height, index).
    recent: HashMap<Hash, (u64, u32)>,
    /// The highest block whose commit is on disk (a deferred commit is not until the next
    /// durable one): the index file never names a block above it.
    durable: u64,
}

/// An open synod database.
pub struct Store {
    db: Database,
    /// The transaction-id index, in its own file.
    index: tx_index::TxIndexFile,
    /// Held by whoever writes the index file, for the whole write; taken before `state`.
    index_writer: Mutex<()>,
    /// Why the index file was started again at open, if it was.
    index_renewed: Option<String>,
    path: PathBuf,
    state: Mutex<State>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens the database at `path` for the chain `genesis`, creating it (with block 0 and the
    /// genesis accounts) if it does not exist. Refuses a database of another chain.
    pub fn open(path: &Path, genesis: &GenesisState) -> Result<Store, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let db = open_redb(path, true)?;
        let meta = match read_meta(&db)? {
            Some(meta) => meta,
            None => write::initialize(&db, genesis)?,
        };
        if meta.genesis_hash != genesis.genesis_hash {
            return Err(StoreError::WrongChain {
                expected: genesis.genesis_hash,
                expected_chain: genesis.chain_id.clone(),
                found: meta.genesis_hash,
                found_chain: meta.chain_id,
            });
        }
        Self::finish_open(db, path, meta, true)
    }

    /// Opens an existing database without knowing its genesis (for offline inspection). No file
    /// is changed: a transaction index that is not usable as it is is rebuilt in memory (see
    /// [`Store::tx_index_renewed`]).
    pub fn open_existing(path: &Path) -> Result<Store, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing(path.to_path_buf()));
        }
        let db = open_redb(path, false)?;
        let meta = read_meta(&db)?.ok_or_else(|| StoreError::Damaged {
            path: path.to_path_buf(),
            detail: "it holds no synod metadata".into(),
        })?;
        Self::finish_open(db, path, meta, false)
    }

    fn finish_open(
        db: Database,
        path: &Path,
        mut meta: Meta,
        writable: bool,
    ) -> Result<Store, StoreError> {
        let index_path = tx_index::index_path(path);
        let (index, mut covered, found) = tx_index::TxIndexFile::open(
            &index_path,
            &meta.genesis_hash,
            meta.tip.height,
            !writable,
        )?;
        if found == tx_index::Found::AsItWas && covered.high < meta.base {
            // A snapshot was installed and the index file did not hear of it: it holds every
            // block the chain had below it (merged before the install), and history filled in
            // below it goes in from the bottom of what it covers.
            covered = tx_index::Covered {
                low: meta.base + 1,
                high: meta.base,
            };
            if writable {
                index.add(&[], Some(covered.low), Some(covered.high))?;
            }
        }
        meta.indexed = covered.high;
        let store = Store {
            db,
            index,
            index_writer: Mutex::new(()),
            index_renewed: match found {
                tx_index::Found::AsItWas => None,
                tx_index::Found::Renewed(why) => Some(why),
            },
            path: path.to_path_buf(),
            state: Mutex::new(State {
                meta: meta.clone(),
                recent: HashMap::new(),
                durable: meta.tip.height,
            }),
        };
        // The tip must resolve to a header that hashes to it: a cheap check that the metadata
        // and the blocks agree (the full walk is `verify_chain`).
        let header = store
            .header(&meta.tip.hash)?
            .ok_or_else(|| StoreError::Damaged {
                path: path.to_path_buf(),
                detail: format!("tip block {} is missing", meta.tip.hash),
            })?;
        if header.height != meta.tip.height {
            return Err(StoreError::Damaged {
                path: path.to_path_buf(),
                detail: format!(
                    "tip header has height {}, metadata says {}",
                    header.height, meta.tip.height
                ),
            });
        }
        // Blocks below what the index file covers (history filled below a snapshot since it was
        // last written) go into it now (into memory when inspecting); those above it are
        // indexed in memory.
        let reader = store.reader()?;
        let mut recent = HashMap::new();
        if meta.base < covered.low {
            let mut below = Vec::new();
            for height in meta.base..covered.low {
                let Some(block) = reader.block_at(height)? else {
                    continue;
                };
                for (i, id) in block.tx_ids().into_iter().enumerate() {
                    below.push((id, (height, i as u32)));
                }
            }
            if writable {
                below.sort_unstable_by_key(|(id, _)| *id);
                store.index.add(&below, Some(meta.base), None)?;
            } else {
                recent.extend(below);
            }
        }
        for height in meta.indexed + 1..=meta.tip.height {
            let Some(block) = reader.block_at(height)? else {
                continue;
            };
            for (i, id) in block.tx_ids().into_iter().enumerate() {
                recent.insert(id, (height, i as u32));
            }
        }
        drop(reader);
        store.lock().recent = recent;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The transaction-index file that goes with it.
    pub fn index_path(&self) -> &Path {
        self.index.path()
    }

    /// Why the transaction-index file was started again at open (it was missing, damaged, of
    /// another chain or ahead of it), if it was: it is being refilled from the blocks. When
    /// inspecting, nothing is written and the index was rebuilt in memory.
    pub fn tx_index_renewed(&self) -> Option<&str> {
        self.index_renewed.as_deref()
    }

    /// The genesis hash this database belongs to.
    pub fn genesis_hash(&self) -> Hash {
        self.meta().genesis_hash
    }

    /// The chain id this database belongs to.
    pub fn chain_id(&self) -> String {
        self.meta().chain_id
    }

    /// The head of the canonical chain.
    pub fn tip(&self) -> ChainTip {
        self.meta().tip
    }

    /// The highest block that can never be rewound.
    pub fn finalized_height(&self) -> u64 {
        self.meta().finalized
    }

    /// Height of the last installed snapshot (0 if none): blocks below it may be missing.
    pub fn base_height(&self) -> u64 {
        self.meta().base
    }

    /// Every non-zero account, in address order.
    pub fn accounts(
        &self,
    ) -> Result<Vec<(crate::keys::Address, crate::ledger::Account)>, StoreError> {
        self.reader()?.accounts()
    }

    /// Canonical blocks whose transactions are indexed in the table (the rest are in memory).
    pub fn tx_indexed_height(&self) -> u64 {
        self.meta().indexed
    }

    fn meta(&self) -> Meta {
        self.lock().meta.clone()
    }

    /// The in-memory state. Writers hold this for their whole transaction, which keeps the cached
    /// metadata equal to what is on disk.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Opens (or, with `create`, creates) the redb file, verifying every page checksum.
fn open_redb(path: &Path, create: bool) -> Result<Database, StoreError> {
    let mut builder = redb::Builder::new();
    builder.set_check_integrity_on_open(true);
    let result = if create {
        builder.create(path)
    } else {
        builder.open(path)
    };
    result.map_err(|e| open_error(path, e))
}

fn open_error(path: &Path, e: redb::DatabaseError) -> StoreError {
    let path = path.to_path_buf();
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen | redb::DatabaseError::LockProtocolMismatch => {
            StoreError::Locked(path)
        }
        redb::DatabaseError::Storage(redb::StorageError::Io(io))
            if io.kind() == std::io::ErrorKind::InvalidData =>
        {
            StoreError::NotADatabase(path)
        }
        redb::DatabaseError::Storage(redb::StorageError::Io(source)) => {
            StoreError::Io { path, source }
        }
        redb::DatabaseError::Storage(redb::StorageError::Corrupted(detail)) => {
            StoreError::Damaged { path, detail }
        }
        other => StoreError::Damaged {
            path,
            detail: other.to_string(),
        },
    }
}

/// Reads the metadata; `None` if the database was never initialized.
fn read_meta(db: &Database) -> Result<Option<Meta>, StoreError> {
    let txn = db.begin_read()?;
    let table = match txn.open_table(META) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let get = |key: &'static str| -> Result<Option<Vec<u8>>, StoreError> {
        Ok(table.get(key)?.map(|v| v.value().to_vec()))
    };
    let Some(schema) = get(META_SCHEMA)? else {
        return Ok(None);
    };
    let found: u32 =
        codec::decode(&schema, 4).map_err(|e| StoreError::decode("meta", META_SCHEMA, e))?;
    if found != SCHEMA_VERSION {
        return Err(StoreError::SchemaVersion {
            found,
            expected: SCHEMA_VERSION,
        });
    }
    fn field<T: serde::de::DeserializeOwned>(
        value: Option<Vec<u8>>,
        key: &'static str,
    ) -> Result<T, StoreError> {
        let bytes = value.ok_or_else(|| StoreError::corrupt("meta", key, "missing"))?;
        codec::decode(&bytes, 1024).map_err(|e| StoreError::decode("meta", key, e))
    }
    // Heights added by later versions of the layout; absent means 0.
    fn counter(value: Option<Vec<u8>>, key: &'static str) -> Result<u64, StoreError> {
        value.map_or(Ok(0), |bytes| {
            codec::decode(&bytes, 8).map_err(|e| StoreError::decode("meta", key, e))
        })
    }
    Ok(Some(Meta {
        genesis_hash: field(get(META_GENESIS)?, META_GENESIS)?,
        chain_id: field(get(META_CHAIN_ID)?, META_CHAIN_ID)?,
        tip: field(get(META_TIP)?, META_TIP)?,
        finalized: field(get(META_FINALIZED)?, META_FINALIZED)?,
        // The index file says how far it covers (see `finish_open`).
        indexed: 0,
        base: counter(get(META_BASE)?, META_BASE)?,
    }))
}

#[cfg(test)]
mod tests;
