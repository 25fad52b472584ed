//! The engine contract: every consensus engine is a deterministic state machine driven through
//! [`Engine::handle`]. Inputs go in; [`Action`]s come out, to be executed by a driver (the node, or
//! the simulator) in the order given. Nothing here performs I/O, reads a clock or draws OS
//! randomness: time enters as `now` and as fired timers, randomness from a seed given at
//! construction, so the same inputs produce the same actions, bit for bit.
//!
//! The driver's obligations:
//! - Execute actions in order. A [`Action::Persist`] (and the writes carried by
//!   [`Action::Commit`] and [`Action::InstallSnapshot`]) is durable before any later
//!   [`Action::Send`] or [`Action::Broadcast`] leaves the node.
//! - Every write of one [`Engine::handle`] call is durable before the engine is handed its next
//!   input. Raft's leader counts its own log entry towards a commit on that promise; PBFT counts
//!   its own PREPARE and COMMIT, and relies on its accepted PRE-PREPAREs, prepared certificates,
//!   view and checkpoints being on disk before any later message of it can be answered.
//! - A commit marked `replayable` may be written without its own fsync: after a crash the store
//!   holds a prefix of the chain, and the engine's durable log replays the rest.
//! - `now` is monotonic: it never goes back and never jumps with the wall clock. (The node uses
//!   the wall clock at start plus a monotonic elapsed time, so block timestamps stay close to
//!   real time while timeouts and leases cannot be stalled by a clock step.)
//! - Restart an engine by constructing a new one from its persisted state ([`Restored`]).
//! - Drop, before the engine sees it, any message whose sender or signature fails.
//! - Answer [`Action::RequestSync`] by fetching committed blocks with their finality proofs from
//!   the named peer's store and handing them back as [`Input::Synced`] (or nothing, if the peer
//!   does not answer: the engine asks again).
//! - Proof of work: execute [`Action::Rewind`] with the store's undo data (`Store::rewind_to`)
//!   and hand the removed blocks' transactions back to the mempool (a reorg must not lose them);
//!   mark blocks final on [`Action::Finalize`] (`Store::set_finalized`); run the miner on
//!   [`Action::Mine`] until [`Action::StopMining`] or the next `Mine`; and on a restart fill
//!   [`Restored::recent`] from `Store::recent_blocks` with as many blocks as the engine asks for
//!   (the PoW engine's `restore_depth`).
//! - What PBFT relies on besides: a [`CommittedBlock`] whose `replayable` is false is durable
//!   (with its `persist` writes, in the same write) before any later send — PBFT drops a block's
//!   accepted pre-prepare and prepared certificate in that write, so nothing else could redo it.
//!   The `from` of [`Input::Message`] is the authenticated sender: PBFT requires the signer of a
//!   top-level statement to be that sender, and STATUS and FORWARD messages carry no signature of
//!   their own. [`Action::Broadcast`] reaches every other validator, never the sender itself (two
//!   engines running one key, as in the simulator's twins, do not hear each other).

use std::collections::BTreeMap;
use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;
use synod_chain::hash::Hash;
use synod_chain::keys::{Address, PublicKey};
use synod_chain::ledger::{Account, StateChanges};
use synod_chain::store::{EngineWrite, RecentBlock};
use synod_chain::{Block, BlockHeader, Finality, SignedTransaction};

/// A validator, named by its ed25519 public key (which is also its libp2p identity).
pub type NodeId = PublicKey;

/// Milliseconds on the driver's clock (any epoch; only differences matter to engines).
pub type Millis = u64;

/// An engine-defined timer. Setting a timer that is already set replaces it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(pub u32);

/// A request from an operator (CLI or RPC), routed to the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Cut a block now, even an empty one (leader or primary only).
    Propose,
    /// Hand leadership to this validator (Raft).
    TransferLeadership(NodeId),
    /// Add a validator to the set.
    AddValidator(NodeId),
    /// Remove a validator from the set.
    RemoveValidator(NodeId),
}

/// Something that happened to an engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input<M> {
    /// The engine was constructed (fresh or restored); arm timers, announce yourself.
    Start,
    /// A protocol message from another validator, already authenticated by the driver.
    Message {
        /// Its sender.
        from: NodeId,
        /// The message.
        msg: M,
    },
    /// A timer set with [`Action::SetTimer`] fired.
    Timer(TimerId),
    /// Transactions admitted by the node's mempool (signatures already verified once).
    Transactions(Vec<SignedTransaction>),
    /// A miner found a valid proof of work for this block (proof of work only).
    BlockMined(Block),
    /// An operator's request.
    Command(Command),
    /// Committed blocks with their finality proofs, fetched from a peer's store after an
    /// [`Action::RequestSync`], lowest first. Unverified: the engine checks every proof and block.
    Synced(Vec<SyncedBlock>),
    /// Transactions the node's mempool gave up (expired, evicted, replaced): the engine forgets
    /// them, so they cannot commit through it after the user was told they were dropped, and a
    /// replacement with the same nonce can take their place.
    Withdrawn(Vec<Hash>),
}

/// A committed block as a peer's store holds it: the block and its finality proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncedBlock {
    /// The block.
    pub block: Block,
    /// Its finality proof, as the engine that committed it wrote it.
    pub proof: Vec<u8>,
}

/// A block the engine has decided, with everything the driver needs to store it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedBlock {
    /// The block.
    pub block: Block,
    /// Its effect on the accounts (computed by the engine's ledger, so the driver need not
    /// re-execute it).
    pub changes: StateChanges,
    /// Engine-specific evidence of finality (Raft: term and leader; PBFT: a commit certificate).
    pub proof: Vec<u8>,
    /// Whether the block can ever be rewound.
    pub finality: Finality,
    /// Engine-state writes to make durable atomically with the block.
    pub persist: Vec<EngineWrite>,
    /// The engine's own durable log can replay this commit after a crash, so the driver need not
    /// fsync the block itself (it still must, if `persist` is not empty).
    pub replayable: bool,
}

/// The ledger's state at one block, replacing the driver's chain state wholesale (a Raft
/// InstallSnapshot for a far-behind node).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainSnapshot {
    /// The block the state is as of.
    pub header: BlockHeader,
    /// Every non-zero account after that block.
    pub accounts: BTreeMap<Address, Account>,
    /// Engine-specific evidence for the header.
    pub proof: Vec<u8>,
    /// Engine-state writes to make durable atomically with the snapshot.
    pub persist: Vec<EngineWrite>,
}

/// What an engine asks its driver to do. Executed strictly in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action<M> {
    /// Send `msg` to one validator.
    Send {
        /// The recipient.
        to: NodeId,
        /// The message.
        msg: M,
    },
    /// Send `msg` to every other validator.
    Broadcast(M),
    /// Fire [`Input::Timer`] with `id` after `after` ms, replacing any timer with that id.
    SetTimer {
        /// Which timer.
        id: TimerId,
        /// Delay in ms.
        after: Millis,
    },
    /// Forget a timer.
    CancelTimer(TimerId),
    /// Make these engine-state writes durable before any later send.
    Persist(Vec<EngineWrite>),
    /// Store this block as the next one of the chain.
    Commit(Box<CommittedBlock>),
    /// Replace the chain state with this snapshot.
    InstallSnapshot(Box<ChainSnapshot>),
    /// Fetch blocks from `height` upwards from `from` and feed them back (state transfer).
    RequestSync {
        /// A validator that has them.
        from: NodeId,
        /// First height wanted.
        height: u64,
    },
    /// Rewind the chain to `height` (a proof-of-work reorganisation): the blocks above it are
    /// removed and their state undone, durably; the `Commit`s that follow apply the new branch.
    /// The removed blocks' transactions go back to the driver's mempool.
    Rewind {
        /// The fork point, which stays.
        height: u64,
    },
    /// Every canonical block up to `height` is final: the engine will never rewind below it, so
    /// the store may drop their undo data (`Store::set_finalized`). Proof of work finalizes the
    /// blocks buried deeper than its reorganisation limit; engines with immediate finality
    /// commit with `Finality::Final` instead and never emit this.
    Finalize {
        /// The highest final height.
        height: u64,
    },
    /// Search nonces (rolling the timestamp when a range is exhausted) until `block`'s header
    /// meets the target its bits declare, then hand it back as [`Input::BlockMined`]. Replaces
    /// any template being mined: a stale template never mines on.
    Mine(Box<Block>),
    /// Stop mining.
    StopMining,
    /// Something worth a log line, a metric or a simulator check.
    Event(EngineEvent),
}

/// A validator's role, in any engine's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Follows a leader or primary.
    Follower,
    /// Asking for pre-votes (Raft).
    PreCandidate,
    /// Asking for votes (Raft).
    Candidate,
    /// Leads (Raft leader, PBFT primary).
    Leader,
    /// Not a member of the validator set; follows the chain without voting.
    Observer,
    /// Mining (proof of work).
    Miner,
}

impl Role {
    /// Lowercase name for tables and metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Follower => "follower",
            Role::PreCandidate => "precandidate",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
            Role::Observer => "observer",
            Role::Miner => "miner",
        }
    }
}

/// Engine events, for structured logs, metrics and the simulator's checkers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EngineEvent {
    /// The role or round changed.
    RoleChanged {
        /// The new role.
        role: Role,
        /// Raft term or PBFT view.
        round: u64,
        /// The leader, if known.
        leader: Option<NodeId>,
    },
    /// A leader gave up leadership (check-quorum, removal, transfer). PBFT: a replica gave up
    /// view `round` (its primary is suspected, or its NEW-VIEW failed), with the reason.
    SteppedDown {
        /// Its term.
        round: u64,
        /// Why.
        reason: &'static str,
    },
    /// The validator set changed.
    MembershipChanged {
        /// Members after the change.
        members: Vec<NodeId>,
        /// Whether the change is committed (true) or only appended (false).
        committed: bool,
    },
    /// A snapshot was sent to or installed from a peer.
    Snapshot {
        /// Its height.
        height: u64,
        /// True on the receiver.
        installed: bool,
    },
    /// A committed block did not reproduce its state root: replicas diverged. The engine stops
    /// committing rather than store a wrong state.
    Divergence {
        /// The block's height.
        height: u64,
        /// What went wrong.
        detail: String,
    },
    /// A command could not be carried out.
    CommandRejected {
        /// Why.
        reason: String,
    },
    /// A pending transaction was given up for good (it can never commit): the node reports the
    /// reason to whoever asks for the transaction.
    TxDropped {
        /// The transaction's id.
        id: Hash,
        /// Why.
        reason: String,
    },
    /// A block or header failed validation. The node logs it and lowers the sender's score.
    BlockRejected {
        /// The peer it came from (`None`: this node's own miner, or an unknown source).
        from: Option<NodeId>,
        /// The block's id.
        hash: Hash,
        /// The height its header claims.
        height: u64,
        /// Which rule it broke.
        reason: String,
    },
    /// A peer broke the protocol in a way that is not about one block (an invalid transaction
    /// relayed, an oversized message): for the node's peer scoring.
    PeerMisbehaved {
        /// The peer.
        peer: NodeId,
        /// What it did.
        reason: String,
    },
    /// The chain switched to a heavier branch (proof of work).
    Reorg {
        /// The last block both branches share.
        fork_height: u64,
        /// Blocks rewound from the old branch.
        removed: u64,
        /// Blocks committed from the new branch.
        added: u64,
        /// The new tip.
        tip: Hash,
    },
    /// A heavier branch was not followed because it forks below the finalized height: following
    /// it would undo blocks buried deeper than the reorganisation limit.
    ReorgRefused {
        /// Where the branch forks from this node's chain.
        fork_height: u64,
        /// This node's finalized height.
        finalized: u64,
        /// The refused branch's tip.
        tip: Hash,
    },
}

/// What an engine can report about itself at any time (status RPC, metrics, simulator).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineStatus {
    /// Current role.
    pub role: Role,
    /// Raft term, PBFT view, 0 for proof of work.
    pub round: u64,
    /// The leader or primary, if known.
    pub leader: Option<NodeId>,
    /// Height of the last committed block.
    pub committed_height: u64,
    /// Highest height in the engine's log or pipeline (>= committed).
    pub last_height: u64,
    /// Current validator set.
    pub members: Vec<NodeId>,
    /// Transactions waiting in the engine's pool.
    pub pending_txs: usize,
    /// Whether the chain cannot take more work for now (this node's backlog, or with Raft the
    /// leader's, is past its high-water mark: blocks in flight plus what could go into the
    /// next ones): the node answers its clients "busy" before admitting anything until it
    /// clears.
    pub overloaded: bool,
}

/// A protocol message: serializable for the wire, with a short kind name for metrics.
pub trait Message:
    Clone + Debug + PartialEq + Serialize + DeserializeOwned + Send + 'static
{
    /// Short name of the message type (`append_entries`, `prepare`, ...).
    fn kind(&self) -> &'static str;
}

/// The ledger state an engine starts from: the chain's committed tip and its accounts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainState {
    /// The committed tip's header.
    pub tip: BlockHeader,
    /// Every non-zero account at the tip.
    pub accounts: BTreeMap<Address, Account>,
}

/// What survives a restart: the engine-state table and the chain state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restored {
    /// Every key of the engine-state table.
    pub engine_state: BTreeMap<Vec<u8>, Vec<u8>>,
    /// The committed chain.
    pub chain: ChainState,
    /// The last canonical blocks, ending at `chain.tip`, lowest first, with their proofs and undo
    /// data (`Store::recent_blocks`). Engines that can rewind (proof of work) rebuild their view
    /// of the chain's recent past from these; the others are handed none.
    pub recent: Vec<RecentBlock>,
}

/// A consensus engine.
pub trait Engine {
    /// Its protocol messages.
    type Message: Message;

    /// Handles one input at time `now`, appending the resulting actions to `out`.
    fn handle(
        &mut self,
        now: Millis,
        input: Input<Self::Message>,
        out: &mut Vec<Action<Self::Message>>,
    );

    /// The engine's current status.
    fn status(&self) -> EngineStatus;
}
