//! What PBFT persists in the engine-state table (keys under `pbft/`), and how it is read back.
//!
//! | key | record | written before |
//! | --- | --- | --- |
//! | `pbft/view` | view, whether it is active, failed view changes | any message of a new view, any VIEW-CHANGE |
//! | `pbft/view-change` | our VIEW-CHANGE and its blocks (while changing views) | that VIEW-CHANGE leaves |
//! | `pbft/new-view` | the NEW-VIEW that started the current view, with its blocks | our PREPAREs of that view |
//! | `pbft/accepted/<n>` | the pre-prepare accepted at sequence number n, with its block | our PREPARE (or, as primary, our PRE-PREPARE) for it |
//! | `pbft/prepared/<n>` | the highest-view prepared certificate at n, with its block | our COMMIT for it |
//! | `pbft/checkpoint` | the stable checkpoint's certificate | — (a cache of what others can resend) |
//! | `pbft/committed` | the executed tip's header and commit certificate | written atomically with each block |
//!
//! So a replica that restarts never PRE-PREPAREs or PREPAREs a second digest for a (view, n), never
//! goes back to an earlier view, still reports every prepared certificate a COMMIT of it relied
//! on, and can prove its executed height in its next VIEW-CHANGE. Sequence numbers are big-endian
//! in keys, so a range delete drops everything up to a height.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use synod_chain::Block;
use synod_chain::codec;
use synod_chain::keys::Signature;
use synod_chain::store::EngineWrite;

use super::certificate::{CheckpointCertificate, CommittedTip, PreparedCertificate};
use super::messages::{MAX_MESSAGE_BYTES, NewView, ViewChange};
use super::signing::Signed;

const VIEW_KEY: &[u8] = b"pbft/view";
const VIEW_CHANGE_KEY: &[u8] = b"pbft/view-change";
const NEW_VIEW_KEY: &[u8] = b"pbft/new-view";
const CHECKPOINT_KEY: &[u8] = b"pbft/checkpoint";
const COMMITTED_KEY: &[u8] = b"pbft/committed";
const ACCEPTED_PREFIX: &[u8] = b"pbft/accepted/";
const PREPARED_PREFIX: &[u8] = b"pbft/prepared/";

/// Why persisted PBFT state could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PbftStateError {
    /// A record does not decode.
    #[error("pbft state {key} is corrupt: {detail}")]
    Corrupt {
        /// Which key.
        key: String,
        /// What is wrong.
        detail: String,
    },
    /// The records contradict each other or the chain.
    #[error("pbft state is inconsistent: {0}")]
    Inconsistent(String),
    /// The configuration cannot run a chain.
    #[error("pbft configuration is unusable: {0}")]
    Config(String),
}

/// The view a replica is in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct ViewRecord {
    /// The view.
    pub view: u64,
    /// Whether the replica operates in it (false: it asked to move to it and waits for NEW-VIEW).
    pub active: bool,
    /// View changes that failed in a row (the view-change timeout doubles with each).
    pub failed_views: u32,
}

/// A VIEW-CHANGE with the blocks its prepared certificates name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct ViewChangeRecord {
    pub view_change: Signed<ViewChange>,
    pub blocks: Vec<Block>,
}

/// A NEW-VIEW with the blocks it re-proposes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct NewViewRecord {
    pub new_view: Signed<NewView>,
    pub blocks: Vec<Block>,
}

/// A pre-prepare this replica accepted (or, as primary, sent).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct AcceptedRecord {
    pub view: u64,
    /// Re-proposed by a NEW-VIEW (the block may come from an earlier view).
    pub reproposal: bool,
    /// The primary's PRE-PREPARE signature.
    pub signature: Signature,
    pub block: Block,
}

/// A prepared certificate with its block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct PreparedRecord {
    pub certificate: PreparedCertificate,
    pub block: Block,
}

fn seq_key(prefix: &[u8], seq: u64) -> Vec<u8> {
    let mut key = prefix.to_vec();
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

fn put<T: Serialize>(key: &[u8], value: &T) -> EngineWrite {
    EngineWrite::Put(key.to_vec(), codec::encode(value))
}

pub(super) fn write_view(record: &ViewRecord) -> EngineWrite {
    put(VIEW_KEY, record)
}

pub(super) fn write_view_change(record: &ViewChangeRecord) -> EngineWrite {
    put(VIEW_CHANGE_KEY, record)
}

pub(super) fn delete_view_change() -> EngineWrite {
    EngineWrite::Delete(VIEW_CHANGE_KEY.to_vec())
}

pub(super) fn write_new_view(record: &NewViewRecord) -> EngineWrite {
    put(NEW_VIEW_KEY, record)
}

pub(super) fn write_checkpoint(certificate: &CheckpointCertificate) -> EngineWrite {
    put(CHECKPOINT_KEY, certificate)
}

pub(super) fn write_committed(tip: &CommittedTip) -> EngineWrite {
    put(COMMITTED_KEY, tip)
}

/// [`AcceptedRecord`] by reference (the same encoding), so recording a block does not copy it.
#[derive(Serialize)]
pub(super) struct AcceptedRecordRef<'a> {
    pub view: u64,
    pub reproposal: bool,
    pub signature: Signature,
    pub block: &'a Block,
}

pub(super) fn write_accepted(seq: u64, record: &AcceptedRecordRef<'_>) -> EngineWrite {
    EngineWrite::Put(seq_key(ACCEPTED_PREFIX, seq), codec::encode(record))
}

pub(super) fn write_prepared(seq: u64, record: &PreparedRecord) -> EngineWrite {
    EngineWrite::Put(seq_key(PREPARED_PREFIX, seq), codec::encode(record))
}

/// Drops every accepted pre-prepare (they belong to a view this replica left).
pub(super) fn delete_all_accepted() -> EngineWrite {
    EngineWrite::DeleteRange(seq_key(ACCEPTED_PREFIX, 0), end_of(ACCEPTED_PREFIX))
}

/// Drops accepted pre-prepares and prepared certificates up to `seq` (executed).
pub(super) fn delete_through(seq: u64) -> Vec<EngineWrite> {
    let next = seq.saturating_add(1);
    vec![
        EngineWrite::DeleteRange(seq_key(ACCEPTED_PREFIX, 0), seq_key(ACCEPTED_PREFIX, next)),
        EngineWrite::DeleteRange(seq_key(PREPARED_PREFIX, 0), seq_key(PREPARED_PREFIX, next)),
    ]
}

/// The first key after every key with `prefix` (its last byte, `/`, plus one).
fn end_of(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    end
}

/// Everything PBFT persisted.
#[derive(Debug, Default)]
pub(super) struct PersistedPbft {
    pub view: ViewRecord,
    pub view_change: Option<ViewChangeRecord>,
    pub new_view: Option<NewViewRecord>,
    pub checkpoint: Option<CheckpointCertificate>,
    pub committed: Option<CommittedTip>,
    pub accepted: BTreeMap<u64, AcceptedRecord>,
    pub prepared: BTreeMap<u64, PreparedRecord>,
}

fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, PbftStateError> {
    codec::decode(bytes, MAX_MESSAGE_BYTES).map_err(|e| PbftStateError::Corrupt {
        key: String::from_utf8_lossy(key).to_string(),
        detail: e.to_string(),
    })
}

fn optional<T: DeserializeOwned>(
    state: &BTreeMap<Vec<u8>, Vec<u8>>,
    key: &[u8],
) -> Result<Option<T>, PbftStateError> {
    state.get(key).map(|bytes| decode(key, bytes)).transpose()
}

fn by_seq<T: DeserializeOwned>(
    state: &BTreeMap<Vec<u8>, Vec<u8>>,
    prefix: &[u8],
) -> Result<BTreeMap<u64, T>, PbftStateError> {
    let mut out = BTreeMap::new();
    for (key, bytes) in state.range(seq_key(prefix, 0)..end_of(prefix)) {
        let seq = key[prefix.len()..]
            .try_into()
            .map(u64::from_be_bytes)
            .map_err(|_| PbftStateError::Corrupt {
                key: String::from_utf8_lossy(key).to_string(),
                detail: "key does not end in a sequence number".into(),
            })?;
        out.insert(seq, decode(key, bytes)?);
    }
    Ok(out)
}

/// Reads PBFT's records out of the engine-state table.
pub(super) fn restore(state: &BTreeMap<Vec<u8>, Vec<u8>>) -> Result<PersistedPbft, PbftStateError> {
    let view: ViewRecord = optional(state, VIEW_KEY)?.unwrap_or(ViewRecord {
        view: 0,
        active: true,
        failed_views: 0,
    });
    // A VIEW-CHANGE record is only meaningful for the view being moved to.
    let view_change = optional::<ViewChangeRecord>(state, VIEW_CHANGE_KEY)?
        .filter(|record| !view.active && record.view_change.body.view == view.view);
    let persisted = PersistedPbft {
        view,
        view_change,
        new_view: optional(state, NEW_VIEW_KEY)?,
        checkpoint: optional(state, CHECKPOINT_KEY)?,
        committed: optional(state, COMMITTED_KEY)?,
        accepted: by_seq(state, ACCEPTED_PREFIX)?,
        prepared: by_seq(state, PREPARED_PREFIX)?,
    };
    for (seq, record) in &persisted.accepted {
        if record.block.header.height != *seq {
            return Err(PbftStateError::Inconsistent(format!(
                "accepted record {seq} holds block {}",
                record.block.header.height
            )));
        }
    }
    for (seq, record) in &persisted.prepared {
        let ballot = record.certificate.ballot;
        if ballot.seq != *seq || ballot.digest != record.block.hash() {
            return Err(PbftStateError::Inconsistent(format!(
                "prepared record {seq} does not hold the block it certifies"
            )));
        }
    }
    Ok(persisted)
}
