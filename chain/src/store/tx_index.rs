//! The transaction-id index in a redb file of its own, next to the chain's: transaction id to
//! (height, index in the block), for the canonical blocks of a height range.
//!
//! It is derived data: every entry can be rebuilt from the block bodies, so a missing, damaged
//! or foreign index file is replaced by an empty one and filled again. Keeping it in a file of
//! its own gives it its own writer: merging into it is a cost that grows with the index (random
//! 32-byte keys touch most of its pages), and in the chain's file every merge held up the next
//! block commit, and with it a node's engine and its heartbeats. Here a merge runs beside block
//! commits.
//!
//! The file says which heights it covers: every canonical transaction at a height in
//! `[low, high]` is in it (entries below `low` may remain from before a snapshot, and are still
//! right). Its writes are ordered after the chain's, so it never claims a block the chain's file
//! could lose in a crash.

use std::path::{Path, PathBuf};

use redb::{Database, Durability, ReadableDatabase, ReadableTableMetadata, TableDefinition};

use super::{StoreError, open_redb};
use crate::codec;
use crate::hash::Hash;

/// Transaction id to (height, index in block).
const ENTRIES: TableDefinition<&[u8; 32], (u64, u32)> = TableDefinition::new("tx_index");
/// The file's own metadata.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const META_GENESIS: &str = "genesis_hash";
const META_LOW: &str = "low";
const META_HIGH: &str = "high";

/// The heights an index file covers: all canonical transactions in `[low, high]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Covered {
    /// Lowest height covered.
    pub low: u64,
    /// Highest height covered.
    pub high: u64,
}

/// An open index file.
pub(super) struct TxIndexFile {
    db: Database,
    path: PathBuf,
}

/// How an index file was found at open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Found {
    /// Whole, of this chain, not ahead of it.
    AsItWas,
    /// Started again empty (it was missing, damaged, foreign or ahead), for this reason.
    Renewed(String),
}

/// The index file that goes with the chain database at `chain`.
pub(super) fn index_path(chain: &Path) -> PathBuf {
    let stem = chain
        .file_stem()
        .map_or_else(|| "chain".into(), |s| s.to_string_lossy().into_owned());
    chain.with_file_name(format!("{stem}.txindex.redb"))
}

impl TxIndexFile {
    /// Opens the index file at `path` for the chain `genesis` whose tip is at `tip`. A file that
    /// is missing, damaged, of another chain, or ahead of the chain (the chain's file was
    /// replaced) is started again, empty; when `inspect`ing a chain offline no file is changed,
    /// and the empty index is kept in memory. A file another process holds is an error.
    pub fn open(
        path: &Path,
        genesis: &Hash,
        tip: u64,
        inspect: bool,
    ) -> Result<(Self, Covered, Found), StoreError> {
        let why = match Self::open_as_is(path, genesis, tip) {
            Ok(Ok((file, covered))) => return Ok((file, covered, Found::AsItWas)),
            Ok(Err(why)) => why,
            Err(e @ StoreError::Locked(_)) => return Err(e),
            // A disk that cannot be read now is no reason to delete the file.
            Err(StoreError::Io { path, source })
                if !inspect && source.kind() != std::io::ErrorKind::UnexpectedEof =>
            {
                return Err(StoreError::Io { path, source });
            }
            Err(e) => e.to_string(),
        };
        let db = if inspect {
            redb::Builder::new()
                .create_with_backend(redb::backends::InMemoryBackend::new())
                .map_err(|e| StoreError::Damaged {
                    path: path.to_path_buf(),
                    detail: e.to_string(),
                })?
        } else {
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(StoreError::Io {
                        path: path.to_path_buf(),
                        source,
                    });
                }
            }
            open_redb(path, true)?
        };
        let file = TxIndexFile {
            db,
            path: path.to_path_buf(),
        };
        let covered = file.start(genesis)?;
        Ok((file, covered, Found::Renewed(why)))
    }

    /// Writes an empty index's metadata; returns what it covers (nothing).
    fn start(&self, genesis: &Hash) -> Result<Covered, StoreError> {
        // Nothing covered yet: the chain's blocks are indexed from their bodies at open.
        let covered = Covered { low: 1, high: 0 };
        let txn = self.begin()?;
        txn.open_table(ENTRIES)?;
        put(&txn, META_LOW, &covered.low)?;
        put(&txn, META_HIGH, &covered.high)?;
        put(&txn, META_GENESIS, genesis)?;
        txn.commit()?;
        Ok(covered)
    }

    /// The file as it is, if it is whole, of this chain and not ahead of it; otherwise why not.
    #[allow(clippy::type_complexity)]
    fn open_as_is(
        path: &Path,
        genesis: &Hash,
        tip: u64,
    ) -> Result<Result<(Self, Covered), String>, StoreError> {
        if !path.exists() {
            return Ok(Err("it is missing".into()));
        }
        let db = open_redb(path, false)?;
        let txn = db.begin_read()?;
        let meta = txn.open_table(META)?;
        let get = |key: &'static str| -> Result<Option<Vec<u8>>, StoreError> {
            Ok(meta.get(key)?.map(|v| v.value().to_vec()))
        };
        let decode = |key: &'static str, bytes: Option<Vec<u8>>| -> Result<u64, StoreError> {
            let bytes = bytes.ok_or_else(|| StoreError::corrupt("tx index", key, "missing"))?;
            codec::decode(&bytes, 8).map_err(|e| StoreError::decode("tx index", key, e))
        };
        let Some(found) = get(META_GENESIS)? else {
            return Ok(Err("it holds no metadata".into()));
        };
        let found: Hash = codec::decode(&found, 64)
            .map_err(|e| StoreError::decode("tx index", META_GENESIS, e))?;
        let covered = Covered {
            low: decode(META_LOW, get(META_LOW)?)?,
            high: decode(META_HIGH, get(META_HIGH)?)?,
        };
        txn.open_table(ENTRIES)?;
        drop(meta);
        drop(txn);
        if found != *genesis {
            return Ok(Err("it belongs to another chain".into()));
        }
        if covered.high > tip {
            return Ok(Err(format!(
                "it covers height {} and the chain ends at {tip}",
                covered.high
            )));
        }
        Ok(Ok((
            TxIndexFile {
                db,
                path: path.to_path_buf(),
            },
            covered,
        )))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn begin(&self) -> Result<redb::WriteTransaction, StoreError> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        Ok(txn)
    }

    /// Adds `entries` (sorted by id, so each page is touched once) and moves the covered range's
    /// ends to `low` and `high` where given, in one durable transaction.
    pub fn add(
        &self,
        entries: &[(Hash, (u64, u32))],
        low: Option<u64>,
        high: Option<u64>,
    ) -> Result<(), StoreError> {
        let txn = self.begin()?;
        {
            let mut table = txn.open_table(ENTRIES)?;
            for (id, location) in entries {
                table.insert(&id.0, *location)?;
            }
        }
        if let Some(low) = low {
            put(&txn, META_LOW, &low)?;
        }
        if let Some(high) = high {
            put(&txn, META_HIGH, &high)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Removes `ids` (the transactions of blocks a reorganisation undid) and lowers the covered
    /// range's top to `high`, in one durable transaction.
    pub fn remove(&self, ids: &[Hash], high: u64) -> Result<(), StoreError> {
        let txn = self.begin()?;
        {
            let mut table = txn.open_table(ENTRIES)?;
            for id in ids {
                table.remove(&id.0)?;
            }
        }
        put(&txn, META_HIGH, &high)?;
        txn.commit()?;
        Ok(())
    }

    /// Where transaction `id` is, if the file has it.
    pub fn get(&self, id: &Hash) -> Result<Option<(u64, u32)>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(ENTRIES)?;
        Ok(table.get(&id.0)?.map(|v| v.value()))
    }

    /// A read snapshot of the entries (for a full check).
    pub fn snapshot(&self) -> Result<IndexSnapshot, StoreError> {
        let txn = self.db.begin_read()?;
        Ok(IndexSnapshot {
            table: txn.open_table(ENTRIES)?,
        })
    }
}

/// A consistent read view of an index file's entries.
pub(super) struct IndexSnapshot {
    table: redb::ReadOnlyTable<&'static [u8; 32], (u64, u32)>,
}

impl IndexSnapshot {
    /// Where transaction `id` is, if the file has it.
    pub fn get(&self, id: &Hash) -> Result<Option<(u64, u32)>, StoreError> {
        Ok(self.table.get(&id.0)?.map(|v| v.value()))
    }

    /// Entries in the file.
    pub fn len(&self) -> Result<u64, StoreError> {
        Ok(self.table.len()?)
    }
}

fn put<T: serde::Serialize>(
    txn: &redb::WriteTransaction,
    key: &str,
    value: &T,
) -> Result<(), StoreError> {
    super::write::put_encoded(txn, META, key, value)
}
