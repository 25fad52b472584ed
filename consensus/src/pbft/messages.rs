//! PBFT's wire messages (paper §4.2–4.5, signed-message variant). A block is the batch: the
//! PRE-PREPARE for sequence number n carries the block at height n, and every vote names the
//! block by its id (the digest). Each protocol statement is a [`Signed`] value; certificates
//! gather the signatures of a quorum over one statement (see [`super::certificate`]). Two
//! messages carry no replica signature because they claim nothing a signature would back:
//! [`Forward`] (each transaction is signed by its sender) and [`Status`] (its claims come with
//! certificates).
//!
//! Every sequence off the wire is bounded before it is allocated
//! ([`synod_chain::codec::bounded_vec`]); a whole message is decoded with
//! [`PbftMessage::decode`], which bounds its size.

use serde::{Deserialize, Serialize};
use synod_chain::codec::{self, CodecError};
use synod_chain::hash::Hash;
use synod_chain::{Block, SignedTransaction};

use super::certificate::{CheckpointCertificate, CommittedTip, PreparedCertificate};
use super::signing::{Signed, Statement};
use crate::engine::Message;
use synod_chain::codec::bounded_vec;

/// Most replicas a certificate or a NEW-VIEW may name.
pub const MAX_REPLICAS: usize = 1_024;
/// Most prepared certificates (and blocks) one VIEW-CHANGE or NEW-VIEW carries: a replica accepts
/// pre-prepares at most this far above its executed height, so it never holds more.
pub const MAX_PREPARED: usize = 16;
/// Most transactions forwarded in one message.
pub const MAX_FORWARD_TXS: usize = 10_000;
/// Largest encoded message [`PbftMessage::decode`] accepts.
pub const MAX_MESSAGE_BYTES: usize = 16 << 20;

/// A vote's subject: the block `digest` at sequence number `seq` (its height) in `view`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Ballot {
    /// The view.
    pub view: u64,
    /// The sequence number, which is the block's height.
    pub seq: u64,
    /// The block's id.
    pub digest: Hash,
}

/// The primary's assignment of a block to a sequence number (§4.2, phase 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrePrepare(pub Ballot);

/// A backup's acceptance of a pre-prepare (§4.2, phase 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prepare(pub Ballot);

/// A replica's statement that the ballot is prepared (§4.2, phase 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit(pub Ballot);

impl Statement for PrePrepare {
    const KIND: &'static [u8] = b"pre-prepare";
}
impl Statement for Prepare {
    const KIND: &'static [u8] = b"prepare";
}
impl Statement for Commit {
    const KIND: &'static [u8] = b"commit";
}

/// A replica executed block `digest` at height `seq`, a multiple of the checkpoint interval
/// (§4.3). The block id commits to the state root, so it stands for the state digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The height.
    pub seq: u64,
    /// The block's id.
    pub digest: Hash,
}

impl Statement for Checkpoint {
    const KIND: &'static [u8] = b"checkpoint";
}

/// A replica's request to move to `view` (§4.4), with what the new primary must not lose: its
/// stable checkpoint, the commit certificate of its highest executed block, and its prepared
/// certificates above that height (the blocks travel beside the signed statement).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewChange {
    /// The view being moved to.
    pub view: u64,
    /// The replica's stable checkpoint, if it has one.
    pub checkpoint: Option<CheckpointCertificate>,
    /// Its highest executed block and that block's commit certificate (`None`: genesis).
    pub executed: Option<CommittedTip>,
    /// Its highest-view prepared certificate per sequence number above the executed height.
    #[serde(deserialize_with = "bounded_vec::<_, _, MAX_PREPARED>")]
    pub prepared: Vec<PreparedCertificate>,
}

impl Statement for ViewChange {
    const KIND: &'static [u8] = b"view-change";
}

/// The new primary's proof that `view` starts (§4.4): a quorum of VIEW-CHANGEs for it, and the
/// pre-prepares of `view` that re-propose the blocks chosen from them (see
/// [`super::new_view::select`]). Backups recompute the choice and refuse a NEW-VIEW that differs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewView {
    /// The view that starts.
    pub view: u64,
    /// The VIEW-CHANGEs the choice was made from.
    #[serde(deserialize_with = "bounded_vec::<_, _, MAX_REPLICAS>")]
    pub view_changes: Vec<Signed<ViewChange>>,
    /// One pre-prepare of `view` per re-proposed block, in height order.
    #[serde(deserialize_with = "bounded_vec::<_, _, MAX_PREPARED>")]
    pub pre_prepares: Vec<Signed<PrePrepare>>,
}

impl Statement for NewView {
    const KIND: &'static [u8] = b"new-view";
}

/// Transactions a backup hands to the primary (a client's request reaches one replica, which
/// forwards it so that the primary cannot claim not to have seen it), or that a replica between
/// views or about to suspect the primary shares with every replica, so that they time it too.
/// Not signed by the replica: every transaction carries its sender's signature, which the
/// receiver checks before it keeps it, so a replica's signature over the batch would prove
/// nothing more.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forward {
    /// The sender's view.
    pub view: u64,
    /// The transactions.
    #[serde(deserialize_with = "bounded_vec::<_, _, MAX_FORWARD_TXS>")]
    pub txs: Vec<SignedTransaction>,
}

/// Where a replica stands, sent when it starts and periodically. Unsigned on purpose: what it
/// claims is either proven by the certificates it carries (checked like any other) or only
/// prompts the receiver to send what proves itself (the NEW-VIEW of a view the sender missed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The replica's view.
    pub view: u64,
    /// Whether it operates in that view (false while changing views).
    pub active: bool,
    /// Its executed tip with the tip's commit certificate (`None`: genesis).
    pub executed: Option<CommittedTip>,
    /// Its stable checkpoint.
    pub checkpoint: Option<CheckpointCertificate>,
}

/// PBFT protocol messages. The driver authenticates the sender; the engine checks the signature
/// of every statement itself, and that the signer of a top-level statement is the sender.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PbftMessage {
    /// A pre-prepare with its block.
    PrePrepare {
        /// The primary's signed assignment.
        pre_prepare: Signed<PrePrepare>,
        /// The block it names (boxed, like the other large payloads, so that the votes that
        /// make up most of the traffic stay small values).
        block: Box<Block>,
    },
    /// A prepare.
    Prepare(Signed<Prepare>),
    /// A commit.
    Commit(Signed<Commit>),
    /// A checkpoint.
    Checkpoint(Signed<Checkpoint>),
    /// A view change with the blocks of its prepared certificates.
    ViewChange {
        /// The signed view change.
        view_change: Box<Signed<ViewChange>>,
        /// The blocks its prepared certificates name.
        #[serde(deserialize_with = "bounded_vec::<_, _, MAX_PREPARED>")]
        blocks: Vec<Block>,
    },
    /// A new view with the blocks it re-proposes (relayed by any replica that installed it).
    NewView {
        /// The new primary's signed NEW-VIEW.
        new_view: Box<Signed<NewView>>,
        /// The re-proposed blocks.
        #[serde(deserialize_with = "bounded_vec::<_, _, MAX_PREPARED>")]
        blocks: Vec<Block>,
    },
    /// Transactions forwarded to the primary, or shared with every replica.
    Forward(Forward),
    /// Where the sender stands.
    Status(Box<Status>),
}

impl Message for PbftMessage {
    fn kind(&self) -> &'static str {
        match self {
            PbftMessage::PrePrepare { .. } => "pre_prepare",
            PbftMessage::Prepare(_) => "prepare",
            PbftMessage::Commit(_) => "commit",
            PbftMessage::Checkpoint(_) => "checkpoint",
            PbftMessage::ViewChange { .. } => "view_change",
            PbftMessage::NewView { .. } => "new_view",
            PbftMessage::Forward(_) => "forward_txs",
            PbftMessage::Status(_) => "status",
        }
    }
}

impl PbftMessage {
    /// Decodes a message, refusing more than [`MAX_MESSAGE_BYTES`] and any oversized sequence.
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        codec::decode(bytes, MAX_MESSAGE_BYTES)
    }

    /// Canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// The normal-case ballot a pre-prepare, prepare or commit is about.
    pub fn ballot(&self) -> Option<Ballot> {
        match self {
            PbftMessage::PrePrepare { pre_prepare, .. } => Some(pre_prepare.body.0),
            PbftMessage::Prepare(p) => Some(p.body.0),
            PbftMessage::Commit(c) => Some(c.body.0),
            _ => None,
        }
    }
}
