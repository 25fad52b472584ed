//! What the node knows about itself, shared between the driver (which updates it) and the RPC.

use serde::Serialize;
use synod_chain::hash::Hash;
use synod_chain::keys::PublicKey;

/// The node's current state, as `status` reports it.
#[derive(Clone, Debug, Serialize)]
pub struct NodeStatus {
    /// Role (`leader`, `follower`, `observer`, ...).
    pub role: String,
    /// Raft term / PBFT view.
    pub round: u64,
    /// The current leader, if known.
    pub leader: Option<PublicKey>,
    /// Committed height.
    pub height: u64,
    /// Committed tip.
    pub tip: Hash,
    /// Highest height in the engine's log (>= height).
    pub last_height: u64,
    /// Current validator set.
    pub validators: Vec<PublicKey>,
    /// Connected peers.
    pub peers: usize,
    /// Transactions in the mempool.
    pub mempool: usize,
    /// Of those, the ones queued behind a nonce gap.
    pub mempool_queued: usize,
    /// Transactions waiting in the engine.
    pub engine_pending: usize,
    /// Whether clients are being answered "busy" because the chain cannot take more work for
    /// now (this engine's backlog, or with Raft the leader's, is past its high-water mark).
    pub overloaded: bool,
    /// Transactions committed since start.
    pub committed_txs: u64,
    /// Proof-of-work figures (absent on other chains).
    pub pow: Option<PowView>,
    /// Blocks found and wanted by the `mine` request in progress, if any.
    pub mine_request: Option<(u64, u64)>,
}

/// What a proof-of-work engine reports for `status` and `get_mining_info`.
#[derive(Clone, Debug, Serialize)]
pub struct PowView {
    /// Whether the engine hands the miner templates.
    pub mining: bool,
    /// The key mined blocks pay.
    pub payout: PublicKey,
    /// The bits the next block must declare.
    pub next_bits: Option<u32>,
    /// The tip's cumulative work (64 hex digits).
    pub chainwork: String,
    /// The highest height the engine will never rewind below.
    pub finalized: u64,
}

impl NodeStatus {
    /// Status before the engine has reported anything.
    pub fn initial(height: u64, tip: Hash, validators: Vec<PublicKey>, role: &str) -> Self {
        NodeStatus {
            role: role.to_string(),
            round: 0,
            leader: None,
            height,
            tip,
            last_height: height,
            validators,
            peers: 0,
            mempool: 0,
            mempool_queued: 0,
            engine_pending: 0,
            overloaded: false,
            committed_txs: 0,
            pow: None,
            mine_request: None,
        }
    }
}
