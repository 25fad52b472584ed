//! What Raft persists in the engine-state table, and how it is read back after a restart.
//!
//! Keys: `raft/hard` (term and vote), `raft/snapshot` (the snapshot's metadata; its data is the
//! chain store's state), `raft/log/<index, big-endian>` (one entry each, so appends, truncation
//! and compaction touch only the keys they change).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use synod_chain::codec;
use synod_chain::limits::MAX_BLOCK_BYTES;
use synod_chain::store::EngineWrite;

use super::messages::{LogEntry, SnapshotMeta};
use crate::engine::NodeId;

const HARD_KEY: &[u8] = b"raft/hard";
const SNAPSHOT_KEY: &[u8] = b"raft/snapshot";
const LOG_PREFIX: &[u8] = b"raft/log/";
/// The first key after every log key (`/` + 1 = `0`).
const LOG_END: &[u8] = b"raft/log0";

/// Term and vote: written before any vote is granted or any message of a new term is sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    /// Current term.
    pub term: u64,
    /// Whom this node voted for in `term`.
    pub voted_for: Option<NodeId>,
}

/// Why persisted Raft state could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RaftStateError {
    /// A record does not decode.
    #[error("raft state {key} is corrupt: {detail}")]
    Corrupt {
        /// Which key.
        key: String,
        /// What is wrong.
        detail: String,
    },
    /// The records contradict each other or the chain.
    #[error("raft state is inconsistent: {0}")]
    Inconsistent(String),
}

fn log_key(index: u64) -> Vec<u8> {
    let mut key = LOG_PREFIX.to_vec();
    key.extend_from_slice(&index.to_be_bytes());
    key
}

/// Persists the hard state.
pub fn write_hard(state: &HardState) -> EngineWrite {
    EngineWrite::Put(HARD_KEY.to_vec(), codec::encode(state))
}

/// Persists one log entry.
pub fn write_entry(entry: &LogEntry) -> EngineWrite {
    EngineWrite::Put(log_key(entry.index()), codec::encode(entry))
}

/// Removes log entries from `index` on.
pub fn truncate_from(index: u64) -> EngineWrite {
    EngineWrite::DeleteRange(log_key(index), LOG_END.to_vec())
}

/// Records a snapshot and drops the log entries it covers (all of them if `drop_all`).
pub fn write_snapshot(meta: &SnapshotMeta, drop_all: bool) -> Vec<EngineWrite> {
    let end = if drop_all {
        LOG_END.to_vec()
    } else {
        log_key(meta.index + 1)
    };
    vec![
        EngineWrite::Put(SNAPSHOT_KEY.to_vec(), codec::encode(meta)),
        EngineWrite::DeleteRange(log_key(0), end),
    ]
}

/// Everything Raft persisted.
#[derive(Debug, Default)]
pub struct PersistedRaft {
    /// Term and vote.
    pub hard: HardState,
    /// The last snapshot's metadata.
    pub snapshot: Option<SnapshotMeta>,
    /// Log entries after the snapshot, in index order.
    pub entries: Vec<LogEntry>,
}

fn decode<T: serde::de::DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, RaftStateError> {
    codec::decode(bytes, MAX_BLOCK_BYTES + 4096).map_err(|e| RaftStateError::Corrupt {
        key: String::from_utf8_lossy(key).to_string(),
        detail: e.to_string(),
    })
}

/// Reads Raft's records out of the engine-state table.
pub fn restore(state: &BTreeMap<Vec<u8>, Vec<u8>>) -> Result<PersistedRaft, RaftStateError> {
    let hard = match state.get(HARD_KEY) {
        Some(bytes) => decode(HARD_KEY, bytes)?,
        None => HardState::default(),
    };
    let snapshot: Option<SnapshotMeta> = match state.get(SNAPSHOT_KEY) {
        Some(bytes) => Some(decode(SNAPSHOT_KEY, bytes)?),
        None => None,
    };
    let mut entries: Vec<LogEntry> = Vec::new();
    for (key, bytes) in state.range(log_key(0)..LOG_END.to_vec()) {
        let entry: LogEntry = decode(key, bytes)?;
        if key[LOG_PREFIX.len()..] != entry.index().to_be_bytes() {
            return Err(RaftStateError::Inconsistent(format!(
                "log key for index {} holds entry {}",
                u64::from_be_bytes(key[LOG_PREFIX.len()..].try_into().unwrap_or_default()),
                entry.index()
            )));
        }
        if let Some(prev) = entries.last()
            && prev.index() + 1 != entry.index()
        {
            return Err(RaftStateError::Inconsistent(format!(
                "log jumps from {} to {}",
                prev.index(),
                entry.index()
            )));
        }
        entries.push(entry);
    }
    Ok(PersistedRaft {
        hard,
        snapshot,
        entries,
    })
}
