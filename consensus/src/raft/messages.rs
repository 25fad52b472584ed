//! Raft's wire messages and log entries. Log index = block height: every entry carries a block
//! (possibly empty, like the no-op a new leader commits), and a membership change rides on an
//! empty block.

use serde::{Deserialize, Serialize};
use synod_chain::hash::Hash;
use synod_chain::keys::Signature;
use synod_chain::{Block, SignedTransaction};

use crate::engine::{Message, NodeId};

/// A single-server membership change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfigChange {
    /// Add this validator.
    Add(NodeId),
    /// Remove this validator.
    Remove(NodeId),
}

/// One entry of the replicated log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Term in which the leader appended it.
    pub term: u64,
    /// The block at this height.
    pub block: Block,
    /// A membership change taking effect when the entry is appended.
    pub change: Option<ConfigChange>,
    /// The appending leader's signature over the block and term (the block's finality proof).
    pub signature: Signature,
}

impl LogEntry {
    /// The entry's index (its block's height).
    pub fn index(&self) -> u64 {
        self.block.header.height
    }
}

/// What a snapshot stands in for: the log up to `index` and the chain state at that block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// Last index the snapshot covers.
    pub index: u64,
    /// Term of that entry.
    pub term: u64,
    /// Id of the block at `index`.
    pub block: Hash,
    /// Membership as of `index`.
    pub members: Vec<NodeId>,
    /// The leader's signature over the block at `index` (none for the genesis).
    pub signature: Option<Signature>,
}

/// Where a follower's log diverges, so the leader can skip a whole term at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    /// The follower's term at the leader's `prev_index`, if it has that entry.
    pub term: Option<u64>,
    /// First index of that term in the follower's log, or the follower's last index + 1.
    pub index: u64,
}

/// Raft protocol messages. The sender is known from the authenticated envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RaftMessage {
    /// Would you vote for me in `term`? Changes no state on either side.
    PreVote {
        /// The term the sender would campaign in.
        term: u64,
        /// Sender's last log index.
        last_index: u64,
        /// Sender's last log term.
        last_term: u64,
    },
    /// Answer to [`RaftMessage::PreVote`].
    PreVoteResponse {
        /// The pre-vote term if granted, the responder's term otherwise.
        term: u64,
        /// Granted or not.
        granted: bool,
    },
    /// Vote for me in `term`.
    Vote {
        /// The candidate's term.
        term: u64,
        /// Candidate's last log index.
        last_index: u64,
        /// Candidate's last log term.
        last_term: u64,
        /// Sent on a leader's request (leadership transfer): voters skip the leader-lease check.
        transfer: bool,
    },
    /// Answer to [`RaftMessage::Vote`].
    VoteResponse {
        /// Responder's term.
        term: u64,
        /// Granted or not.
        granted: bool,
    },
    /// Entries to append after `prev_index` (empty: a heartbeat).
    Append {
        /// Leader's term.
        term: u64,
        /// Index before the first entry.
        prev_index: u64,
        /// Term of that entry.
        prev_term: u64,
        /// Entries, in index order.
        entries: Vec<LogEntry>,
        /// Leader's commit index.
        commit: u64,
        /// Whether the leader's backlog (uncommitted blocks plus what could go into the next
        /// ones) is past its high-water mark: followers turn their clients away ("busy") until
        /// an append says otherwise, as the leader does its own.
        overloaded: bool,
    },
    /// Answer to [`RaftMessage::Append`].
    AppendResponse {
        /// Responder's term.
        term: u64,
        /// Whether the entries were appended.
        success: bool,
        /// On success, the index up to which the follower's log matches the leader's; on a log
        /// mismatch, the rejected append's `prev_index` (so the leader can tell stale rejections).
        match_index: u64,
        /// On a log mismatch, where the follower's log diverges.
        conflict: Option<Conflict>,
    },
    /// One chunk of a snapshot.
    Snapshot {
        /// Leader's term.
        term: u64,
        /// What the snapshot covers.
        meta: SnapshotMeta,
        /// Byte offset of this chunk.
        offset: u64,
        /// Total bytes of the snapshot.
        total: u64,
        /// The chunk.
        data: Vec<u8>,
    },
    /// Answer to [`RaftMessage::Snapshot`].
    SnapshotResponse {
        /// Responder's term.
        term: u64,
        /// The snapshot's index.
        index: u64,
        /// The offset the follower wants next (== total when installed).
        next_offset: u64,
    },
    /// Start an election now (leadership transfer).
    TimeoutNow {
        /// Leader's term.
        term: u64,
    },
    /// Pending transactions a follower hands to a new leader, which may have missed them while
    /// it was down (followers forward client requests to the leader).
    Forward {
        /// The follower's term.
        term: u64,
        /// The transactions.
        txs: Vec<SignedTransaction>,
    },
}

impl Message for RaftMessage {
    fn kind(&self) -> &'static str {
        match self {
            RaftMessage::PreVote { .. } => "pre_vote",
            RaftMessage::PreVoteResponse { .. } => "pre_vote_response",
            RaftMessage::Vote { .. } => "vote",
            RaftMessage::VoteResponse { .. } => "vote_response",
            RaftMessage::Append { entries, .. } if entries.is_empty() => "heartbeat",
            RaftMessage::Append { .. } => "append_entries",
            RaftMessage::AppendResponse { .. } => "append_response",
            RaftMessage::Snapshot { .. } => "install_snapshot",
            RaftMessage::SnapshotResponse { .. } => "snapshot_response",
            RaftMessage::TimeoutNow { .. } => "timeout_now",
            RaftMessage::Forward { .. } => "forward_txs",
        }
    }
}

impl RaftMessage {
    /// The term the message carries.
    pub fn term(&self) -> u64 {
        match self {
            RaftMessage::PreVote { term, .. }
            | RaftMessage::PreVoteResponse { term, .. }
            | RaftMessage::Vote { term, .. }
            | RaftMessage::VoteResponse { term, .. }
            | RaftMessage::Append { term, .. }
            | RaftMessage::AppendResponse { term, .. }
            | RaftMessage::Snapshot { term, .. }
            | RaftMessage::SnapshotResponse { term, .. }
            | RaftMessage::TimeoutNow { term }
            | RaftMessage::Forward { term, .. } => *term,
        }
    }
}
