//! Store errors: each says which of the ways a database can be unusable applies.

use std::path::PathBuf;

use crate::codec::CodecError;
use crate::hash::Hash;

/// Why the store refused or failed an operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be read, written or created.
    #[error("database {path}: {source}")]
    Io {
        /// The database file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Opening an existing database, but there is none.
    #[error("no database at {0}")]
    Missing(PathBuf),
    /// Another process (or handle) holds the database open.
    #[error("database {0} is locked by another process (is a node already running on this home?)")]
    Locked(PathBuf),
    /// The file is not a redb database at all.
    #[error("{0} is not a synod database")]
    NotADatabase(PathBuf),
    /// Checksums or structure do not hold: the file was damaged outside synod.
    #[error("database {path} is damaged: {detail}")]
    Damaged {
        /// The database file.
        path: PathBuf,
        /// What redb or synod found.
        detail: String,
    },
    /// Written by a version of synod with another layout.
    #[error("database schema version {found}, this synod reads version {expected}")]
    SchemaVersion {
        /// In the file.
        found: u32,
        /// What this code reads.
        expected: u32,
    },
    /// The database belongs to another chain.
    #[error(
        "database belongs to chain {found_chain:?} (genesis {found}), not {expected_chain:?} (genesis {expected})"
    )]
    WrongChain {
        /// The genesis hash this node runs.
        expected: Hash,
        /// Its chain id.
        expected_chain: String,
        /// The genesis hash in the file.
        found: Hash,
        /// The chain id in the file.
        found_chain: String,
    },
    /// A record in the database does not decode or does not match its key.
    #[error("stored {what} {key} is corrupt: {detail}")]
    CorruptRecord {
        /// Which table.
        what: &'static str,
        /// Which key.
        key: String,
        /// What is wrong.
        detail: String,
    },
    /// A block was offered that does not extend the current tip.
    #[error("block {height} ({hash}) does not extend the tip {tip_height} ({tip_hash})")]
    NotOnTip {
        /// The block's height.
        height: u64,
        /// The block's id.
        hash: Hash,
        /// The tip's height.
        tip_height: u64,
        /// The tip's id.
        tip_hash: Hash,
    },
    /// The block's state changes were computed for another state root.
    #[error("state changes are for root {changes}, block header has {header}")]
    ChangesMismatch {
        /// In the header.
        header: Hash,
        /// In the changes.
        changes: Hash,
    },
    /// A rewind would remove finalized blocks.
    #[error("cannot rewind to height {target}: blocks up to {finalized} are final")]
    BelowFinalized {
        /// Requested height.
        target: u64,
        /// Finalized height.
        finalized: u64,
    },
    /// Undo data for a block is gone (only kept above the finalized height).
    #[error("no undo data for height {0}")]
    NoUndo(u64),
    /// An encoded value is too large to store.
    #[error("{what} of {len} bytes is larger than the limit {limit}")]
    TooLarge {
        /// What was being stored.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// A block offered to fill history below a snapshot is not the one the chain links to.
    #[error("block {got} does not fill height {height}: the chain links to {expected}")]
    NotInChain {
        /// The height being filled.
        height: u64,
        /// The id the chain expects there.
        expected: crate::hash::Hash,
        /// The offered block's id.
        got: crate::hash::Hash,
    },
    /// Any other failure inside redb.
    #[error("database error: {0}")]
    Db(String),
}

impl StoreError {
    pub(crate) fn corrupt(what: &'static str, key: impl ToString, detail: impl ToString) -> Self {
        StoreError::CorruptRecord {
            what,
            key: key.to_string(),
            detail: detail.to_string(),
        }
    }

    pub(crate) fn decode(what: &'static str, key: impl ToString, e: CodecError) -> Self {
        Self::corrupt(what, key, e)
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Db(e.to_string())
            }
        }
    )*};
}
from_redb!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError,
    redb::DatabaseError
);
