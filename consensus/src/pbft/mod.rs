//! PBFT (Castro & Liskov, OSDI '99, the signed-message variant) as a block engine: n replicas
//! tolerate f = ⌊(n−1)/3⌋ Byzantine ones. Sequence number = block height; one block per sequence
//! number; the block is the batch. Pure state machine: no I/O, no clock, no OS randomness.
//!
//! | paper | here |
//! | --- | --- |
//! | §4.1 replicas, views, primary v mod n, quorums | [`replicas`] |
//! | §4.2 normal case: pre-prepare, prepare, commit, execute in order | `normal`, `proposal`, `validation` |
//! | §4.3 checkpoints, watermarks, garbage collection | `checkpoint` |
//! | §4.4 view changes, NEW-VIEW | `view_change`, [`new_view`] |
//! | §4.5 (signed variant) certificates | [`certificate`], [`signing`] |
//! | §5.3 state transfer | `state_transfer` |
//! | client requests, retransmission | `requests`, `retransmit` |
//! | §4.2 "messages are written to stable storage" | `storage` |
//!
//! # Chained blocks and view changes
//!
//! A block's parent hash fixes its predecessor, so the block chosen at n is usable only if the
//! block chosen at n−1 is its parent. Three rules make PBFT's per-sequence-number argument carry
//! over to a chain:
//!
//! 1. *Acceptance follows the chain.* A replica accepts PRE-PREPARE(v, n, B) only if B extends the
//!    block it executed at n−1 or accepted at (v, n−1), and B is fully valid on the state below it.
//! 2. *Votes follow the chain.* A replica sends PREPARE(v, n) — and also COMMIT(v, n) — only after
//!    it has prepared (v, n−1) or executed n−1. (The design we started from gated PREPARE only;
//!    that leaves the primary, which never sends PREPARE, and a replica prepared by others' votes
//!    able to COMMIT n without a certificate for n−1. The proof below needs it of every COMMIT
//!    signer, so COMMIT is gated too.) Hence an honest replica that sent COMMIT(v, n, B) holds a
//!    prepared certificate for (v, n, B) *and* one for (v, n−1, parent of B), or executed n−1.
//! 3. *NEW-VIEW follows the chain.* A VIEW-CHANGE carries the replica's stable checkpoint, the
//!    commit certificate of its highest executed block, and its prepared certificates above that
//!    height (each with its block; at most [`messages::MAX_PREPARED`] of them, the acceptance
//!    window). From a quorum of VIEW-CHANGEs the new primary — and every backup, recomputing it —
//!    takes the highest certified executed block c as the base, then for n = c+1, c+2, … the
//!    highest-view prepared certificate whose block's parent is the block chosen at n−1, stopping
//!    at the first height with none ([`new_view::select`]). The re-proposals are PRE-PREPAREs of
//!    the new view for the same blocks; fresh blocks go above them. A backup that recomputes a
//!    different choice moves to the next view. Replicas below c fetch blocks by state transfer.
//!
//! **Why a committed block survives.** Suppose a commit certificate exists for B at (v, n): a
//! quorum C signed COMMIT, so at least q−f ≥ f+1 honest replicas in C each hold prepared
//! certificates for (v, n, B) and (v, n−1, P = parent of B), or executed n−1 (rule 2); they
//! persisted them before sending the COMMIT and keep them until they execute n. Take any later
//! view w and the quorum S of VIEW-CHANGEs its NEW-VIEW is built from: |S ∩ C| ≥ 2q − n ≥ f+1,
//! so S holds an honest h ∈ C. By induction on the views between v and w (the base case is view
//! v itself, where a second prepared certificate at (v, n) would need an honest replica to
//! prepare two digests), every NEW-VIEW after v re-proposed P at n−1 and B at n, so h's newest
//! certificates at n−1 and n are still for P and B, and no certificate from a view ≥ v names
//! anything else there. Now either h executed n (then c ≥ n, and B is in the base chain: the base
//! block at c is certified, so the same argument at heights c, c−1, …, n+1 shows that its
//! ancestors are the blocks every NEW-VIEW keeps choosing there, down to B), or h executed n−1 (then
//! c ≥ n−1, the base holds P, and h's certificate for B is the highest-view one whose parent is
//! P), or h reports both certificates (then P is chosen at n−1 by the induction on heights, and B
//! at n: a higher-view certificate at n would need an honest replica to have prepared something
//! other than B at n in a view ≥ v). In every case the chain the NEW-VIEW chooses runs through
//! B, so no replica ever pre-prepares, prepares or commits anything else at n. Two commit
//! certificates at one height therefore name the same block, and since honest replicas execute a
//! block only with its certificate and in order, they agree on every block they execute.
//! Stopping at the first height with no candidate loses nothing: a committed block at that height
//! would have left a certificate in S. No null blocks are needed below a prepared block, because
//! rule 2 leaves no gaps below one.
//!
//! **Crashes.** The view, every accepted pre-prepare and every prepared certificate are written
//! before the message that depends on them leaves (see `storage`), so a replica that restarts
//! behaves like one that was slow, never like one that forgot.
//!
//! **Signatures.** Every statement is checked before it counts: a pre-prepare, a VIEW-CHANGE, a
//! NEW-VIEW and every certificate when they arrive; PREPAREs and COMMITs when they could first
//! complete a quorum, in one batch (a vote that fails is dropped, never counted). Only hints — whom
//! to ask for blocks — are taken from unchecked votes.
//!
//! **Liveness.** A backup that holds a transaction it can apply and sees it uncommitted for the
//! view-change timeout (a crashed, silent or censoring primary), or holds pre-prepares that stopped
//! committing, or sees proof of equivocation, an invalid block or a wrong NEW-VIEW, moves to the
//! next view; f+1 VIEW-CHANGEs for higher views pull a replica along; once a quorum has asked for
//! a view (or a later one) a timer runs that doubles with every failed view and resets on
//! progress. Lost messages are retransmitted on a tick while nothing commits, and STATUS messages
//! bring replicas that missed a NEW-VIEW or blocks up to date.

pub mod byzantine;
pub mod certificate;
mod checkpoint;
pub mod faults;
mod log;
pub mod messages;
pub mod new_view;
mod normal;
mod proposal;
pub mod replicas;
mod requests;
mod retransmit;
pub mod signing;
pub mod simulation;
mod speculation;
mod state_transfer;
mod storage;
mod validation;
mod view_change;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};

use synod_chain::hash::Hash;
use synod_chain::keys::{SecretKey, Signature};
use synod_chain::ledger::Ledger;
use synod_genesis::PbftParams;

use crate::engine::{
    Action, Command, Engine, EngineEvent, EngineStatus, Input, Millis, NodeId, Restored, Role,
    TimerId,
};
use crate::pool::TxPool;
use crate::rng::DetRng;
pub use byzantine::ByzantineBehaviour;
pub use certificate::{
    CertificateError, CheckpointCertificate, CommitCertificate, CommittedTip, PreparedCertificate,
    verify_commit_certificate,
};
pub use faults::PbftFault;
use log::Slot;
pub use messages::{
    Ballot, Checkpoint, Commit, Forward, NewView, PbftMessage, PrePrepare, Prepare, Status,
    ViewChange,
};
pub use replicas::Replicas;
pub use signing::{Signed, Statement, Verifier};
use speculation::Chain;
pub use storage::PbftStateError;
use storage::{NewViewRecord, PreparedRecord, ViewChangeRecord, ViewRecord};

/// A backup's suspicion of the primary: a transaction it holds has waited too long.
pub const REQUEST_TIMER: TimerId = TimerId(1);
/// A quorum asked for a new view and its NEW-VIEW has not come: try the next one.
pub const VIEW_CHANGE_TIMER: TimerId = TimerId(2);
/// The primary's batching delay.
pub const BATCH_TIMER: TimerId = TimerId(3);
/// Retransmission, status and re-forwarding.
pub const TICK_TIMER: TimerId = TimerId(4);

/// Sequence numbers the primary has in flight (pre-prepared, not executed) before it waits.
pub const PIPELINE_DEPTH: u64 = 8;
/// Sequence numbers above the high watermark whose votes are still kept (not dropped).
const BEYOND_HIGH_WATERMARK: u64 = 16;
/// Messages of a view this replica has not reached, kept per sender until it does.
const MAX_FUTURE_PER_SENDER: usize = 64;
/// How far past the parent's (or the local clock's) time a fresh block's timestamp may be.
pub const MAX_TIMESTAMP_AHEAD_MS: Millis = 5_000;
/// The timeouts double with each failed view change, at most this many times.
const MAX_TIMEOUT_DOUBLINGS: u32 = 6;
/// VIEW-CHANGEs kept per replica (for its highest views).
const MAX_VIEW_CHANGES_PER_REPLICA: usize = 4;
/// Ticks between status broadcasts and re-forwarding.
const TICKS_PER_STATUS: u64 = 8;

/// How a PBFT engine is set up.
#[derive(Clone, Debug)]
pub struct PbftConfig {
    /// This replica.
    pub me: NodeId,
    /// Its signing key (`me` is its public key): engines sign and verify their own messages.
    pub key: SecretKey,
    /// The validators, in genesis order (replica i is the primary of views i, i+n, ...).
    pub validators: Vec<NodeId>,
    /// Timing, checkpoints and batching from the genesis file.
    pub params: PbftParams,
    /// Seed of the engine's randomness (which peer to fetch blocks from).
    pub seed: u64,
    /// Most transactions the engine's pool holds.
    pub pool_capacity: usize,
    /// A Byzantine behaviour for experiments; `None` is an honest replica. The node allows it on
    /// dev chains only.
    pub behaviour: Option<ByzantineBehaviour>,
    /// Signature caches; clones share them.
    pub verifier: Verifier,
    /// Test-only broken rules; always [`PbftFault::None`] outside the `test-faults` feature.
    pub fault: PbftFault,
}

impl PbftConfig {
    /// An honest replica holding `key`, with the default pool size and its own caches.
    pub fn new(key: SecretKey, validators: Vec<NodeId>, params: PbftParams, seed: u64) -> Self {
        PbftConfig {
            me: key.public(),
            key,
            validators,
            params,
            seed,
            pool_capacity: 200_000,
            behaviour: None,
            verifier: Verifier::new(),
            fault: PbftFault::None,
        }
    }
}

/// Blocks this replica should fetch by state transfer.
#[derive(Clone, Debug)]
struct SyncTarget {
    /// Height known to be committed.
    height: u64,
    /// Replicas known to hold it.
    peers: Vec<NodeId>,
    /// When blocks were last requested.
    asked_at: Option<Millis>,
    /// Requests so far (rotates the peer).
    attempts: u64,
    /// Known to be executed by an honest replica (not just committed somewhere): a replica
    /// behind such a target does not blame the primary for what it has not seen.
    proven: bool,
}

/// The PBFT engine.
pub struct PbftEngine {
    me: NodeId,
    key: SecretKey,
    chain_id: String,
    replicas: Replicas,
    params: PbftParams,
    behaviour: Option<ByzantineBehaviour>,
    fault: PbftFault,
    verifier: Verifier,
    rng: DetRng,

    // Views (§4.4).
    view: u64,
    /// Operating in `view` (false: waiting for its NEW-VIEW).
    active: bool,
    failed_views: u32,
    view_started_at: Millis,
    /// When a block last executed.
    last_progress: Millis,
    /// The view the view-change timer runs for.
    view_change_timer: Option<u64>,
    /// The NEW-VIEW that started the current view (relayed to replicas that missed it).
    new_view: Option<NewViewRecord>,
    /// Our VIEW-CHANGE for `view`, while not active.
    own_view_change: Option<ViewChangeRecord>,
    /// Valid VIEW-CHANGEs by (view, replica), ours included, for views from the current one up
    /// (a few per replica).
    view_changes: BTreeMap<(u64, NodeId), ViewChangeRecord>,
    /// The NEW-VIEW's base height (replicas below it fetch blocks first).
    view_base: u64,
    /// The highest sequence number the NEW-VIEW re-proposed (fresh proposals go above).
    reproposal_end: u64,

    // Normal case (§4.2).
    chain: Chain,
    log: BTreeMap<u64, Slot>,
    prepared: BTreeMap<u64, PreparedRecord>,
    committed_tip: Option<CommittedTip>,
    future: BTreeMap<NodeId, VecDeque<PbftMessage>>,

    // Checkpoints (§4.3).
    stable: Option<CheckpointCertificate>,
    low_watermark: u64,
    checkpoint_votes: BTreeMap<u64, BTreeMap<NodeId, (Hash, Signature)>>,
    own_checkpoint: Option<Signed<Checkpoint>>,

    // Requests.
    pool: TxPool,
    /// Whether the pool is past its high-water mark.
    pressure: crate::pressure::Backpressure,
    /// Transactions in the order they reached this replica, with when (the request timer).
    arrivals: VecDeque<requests::Arrival>,
    batch_armed: bool,
    request_timer_armed: bool,

    // State transfer (§5.3) and retransmission.
    sync: Option<SyncTarget>,
    ticks: u64,
    executed_at_last_tick: u64,

    halted: bool,
}

impl PbftEngine {
    /// A PBFT engine restored from its persisted state (empty for a fresh node) and the chain.
    pub fn new(
        config: PbftConfig,
        ledger: Ledger,
        restored: Restored,
    ) -> Result<Self, PbftStateError> {
        if config.key.public() != config.me {
            return Err(PbftStateError::Config(
                "the signing key is not the replica's key".into(),
            ));
        }
        let replicas = Replicas::new(&config.validators);
        if replicas.is_empty() {
            return Err(PbftStateError::Config("no validators".into()));
        }
        if config.params.checkpoint_interval == 0
            || config.params.watermark_window < config.params.checkpoint_interval
        {
            return Err(PbftStateError::Config(
                "checkpoint_interval must be at least 1 and watermark_window at least that".into(),
            ));
        }
        let persisted = storage::restore(&restored.engine_state)?;
        let tip = restored.chain.tip;
        match &persisted.committed {
            Some(committed) if committed.header != tip => {
                return Err(PbftStateError::Inconsistent(format!(
                    "the committed record is for height {}, the chain tip is {}",
                    committed.header.height, tip.height
                )));
            }
            _ => {}
        }
        let low_watermark = persisted
            .checkpoint
            .as_ref()
            .map_or(0, |c| c.checkpoint.seq);
        if low_watermark > tip.height {
            return Err(PbftStateError::Inconsistent(format!(
                "stable checkpoint {low_watermark} is above the chain tip {}",
                tip.height
            )));
        }
        let chain_id = ledger.rules().chain_id.clone();
        let view = persisted.view;
        let mut engine = PbftEngine {
            me: config.me,
            key: config.key,
            chain_id,
            replicas,
            params: config.params,
            behaviour: config.behaviour,
            fault: config.fault,
            verifier: config.verifier,
            rng: DetRng::new(config.seed),
            view: view.view,
            active: view.active,
            failed_views: view.failed_views,
            view_started_at: 0,
            last_progress: 0,
            view_change_timer: None,
            new_view: persisted
                .new_view
                .filter(|nv| nv.new_view.body.view == view.view),
            own_view_change: persisted.view_change,
            view_changes: BTreeMap::new(),
            view_base: 0,
            reproposal_end: 0,
            chain: Chain::new(ledger, restored.chain),
            log: BTreeMap::new(),
            prepared: persisted
                .prepared
                .into_iter()
                .filter(|(seq, _)| *seq > tip.height)
                .collect(),
            committed_tip: persisted.committed,
            future: BTreeMap::new(),
            stable: persisted.checkpoint,
            low_watermark,
            checkpoint_votes: BTreeMap::new(),
            own_checkpoint: None,
            pool: TxPool::new(config.pool_capacity),
            pressure: crate::pressure::Backpressure::for_capacity(config.pool_capacity),
            arrivals: VecDeque::new(),
            batch_armed: false,
            request_timer_armed: false,
            sync: None,
            ticks: 0,
            executed_at_last_tick: tip.height,
            halted: false,
        };
        if let Some(record) = engine.own_view_change.clone() {
            engine
                .view_changes
                .insert((record.view_change.body.view, engine.me), record);
        }
        engine.restore_new_view_bounds();
        for (seq, record) in persisted.accepted {
            if record.view == engine.view && seq > tip.height && engine.active {
                engine.restore_accepted(seq, record);
            }
        }
        Ok(engine)
    }

    /// The current view.
    pub fn view(&self) -> u64 {
        self.view
    }

    /// Whether the replica operates in its view (false while it waits for a NEW-VIEW).
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// The stable checkpoint, if any.
    pub fn stable_checkpoint(&self) -> Option<&CheckpointCertificate> {
        self.stable.as_ref()
    }

    fn is_replica(&self) -> bool {
        self.replicas.contains(&self.me)
    }

    fn primary(&self) -> NodeId {
        self.replicas.primary(self.view)
    }

    fn is_primary(&self) -> bool {
        self.primary() == self.me
    }

    fn executed(&self) -> u64 {
        self.chain.executed_height()
    }

    /// H: the highest sequence number accepted now.
    fn high_watermark(&self) -> u64 {
        self.low_watermark + self.params.watermark_window
    }

    /// The base timeout, doubled for every view change that failed in a row.
    fn timeout(&self) -> Millis {
        self.params
            .view_change_timeout_ms
            .saturating_mul(1 << self.failed_views.min(MAX_TIMEOUT_DOUBLINGS))
    }

    fn tick_interval(&self) -> Millis {
        (self.params.view_change_timeout_ms / 4).max(10)
    }

    fn view_record(&self) -> ViewRecord {
        ViewRecord {
            view: self.view,
            active: self.active,
            failed_views: self.failed_views,
        }
    }

    fn role(&self) -> Role {
        if !self.is_replica() {
            Role::Observer
        } else if self.active && self.is_primary() {
            Role::Leader
        } else {
            Role::Follower
        }
    }

    fn announce_role(&self, out: &mut Vec<Action<PbftMessage>>) {
        out.push(Action::Event(EngineEvent::RoleChanged {
            role: self.role(),
            round: self.view,
            leader: self.active.then(|| self.primary()),
        }));
    }

    fn sign<S: Statement>(&self, body: S) -> Signed<S> {
        Signed::sign(&self.key, &self.chain_id, body)
    }

    fn reject_command(&self, reason: impl Into<String>, out: &mut Vec<Action<PbftMessage>>) {
        out.push(Action::Event(EngineEvent::CommandRejected {
            reason: reason.into(),
        }));
    }

    fn halt(&mut self, height: u64, detail: String, out: &mut Vec<Action<PbftMessage>>) {
        self.halted = true;
        out.push(Action::Event(EngineEvent::Divergence { height, detail }));
    }

    fn on_start(&mut self, now: Millis, out: &mut Vec<Action<PbftMessage>>) {
        out.push(Action::Event(EngineEvent::MembershipChanged {
            members: self.replicas.ids().to_vec(),
            committed: true,
        }));
        if !self.is_replica() {
            out.push(Action::Event(EngineEvent::RoleChanged {
                role: Role::Observer,
                round: self.view,
                leader: None,
            }));
            return;
        }
        self.view_started_at = now;
        self.last_progress = now;
        self.announce_role(out);
        out.push(Action::SetTimer {
            id: TICK_TIMER,
            after: self.tick_interval(),
        });
        self.broadcast_status(out);
        if let Some(record) = self.own_view_change.clone() {
            out.push(Action::Broadcast(PbftMessage::ViewChange {
                view_change: Box::new(record.view_change),
                blocks: record.blocks,
            }));
        }
        if self.active && self.executed() < self.view_base {
            // Restarted in a view whose base it had not reached yet.
            let holders = self.base_holders();
            self.need_blocks(now, self.view_base, holders, out);
        }
        self.advance(now, out);
    }

    fn on_message(
        &mut self,
        now: Millis,
        from: NodeId,
        msg: PbftMessage,
        out: &mut Vec<Action<PbftMessage>>,
    ) {
        // Twins share an id: a replica never takes its own messages back.
        if from == self.me || !self.replicas.contains(&from) || !self.is_replica() {
            return;
        }
        match msg {
            PbftMessage::PrePrepare { pre_prepare, block } => {
                self.on_pre_prepare(now, from, pre_prepare, block, out)
            }
            PbftMessage::Prepare(prepare) => self.on_prepare(now, from, prepare, out),
            PbftMessage::Commit(commit) => self.on_commit(now, from, commit, out),
            PbftMessage::Checkpoint(checkpoint) => self.on_checkpoint(now, from, checkpoint, out),
            PbftMessage::ViewChange {
                view_change,
                blocks,
            } => self.on_view_change(now, from, *view_change, blocks, out),
            PbftMessage::NewView { new_view, blocks } => {
                self.on_new_view(now, *new_view, blocks, out)
            }
            PbftMessage::Forward(forward) => self.on_forward(now, forward, out),
            PbftMessage::Status(status) => self.on_status(now, from, *status, out),
        }
    }

    fn on_timer(&mut self, now: Millis, id: TimerId, out: &mut Vec<Action<PbftMessage>>) {
        if !self.is_replica() {
            return;
        }
        match id {
            REQUEST_TIMER => self.on_request_timer(now, out),
            VIEW_CHANGE_TIMER => self.on_view_change_timer(now, out),
            BATCH_TIMER => {
                self.batch_armed = false;
                self.propose(now, proposal::Mode::BatchDue, out);
            }
            TICK_TIMER => self.on_tick(now, out),
            _ => {}
        }
    }

    fn on_command(&mut self, now: Millis, command: Command, out: &mut Vec<Action<PbftMessage>>) {
        match command {
            Command::Propose if self.active && self.is_primary() && !self.halted => {
                self.propose(now, proposal::Mode::Forced, out)
            }
            Command::Propose => {
                let primary = self.primary().short();
                self.reject_command(format!("not the active primary (primary: {primary})"), out)
            }
            Command::TransferLeadership(_) => self.reject_command(
                "pbft rotates the primary by view changes; it cannot be transferred",
                out,
            ),
            Command::AddValidator(_) | Command::RemoveValidator(_) => {
                self.reject_command("pbft's validator set is fixed by the genesis file", out)
            }
        }
    }
}

impl Engine for PbftEngine {
    type Message = PbftMessage;

    fn handle(
        &mut self,
        now: Millis,
        input: Input<PbftMessage>,
        out: &mut Vec<Action<PbftMessage>>,
    ) {
        let first = out.len();
        match input {
            Input::Start => self.on_start(now, out),
            Input::Message { from, msg } => self.on_message(now, from, msg, out),
            Input::Timer(id) => self.on_timer(now, id, out),
            Input::Transactions(txs) => self.on_transactions(now, txs, out),
            Input::Withdrawn(ids) => self.pool.withdraw(&ids),
            Input::Synced(blocks) => self.on_synced(now, blocks, out),
            Input::Command(command) => self.on_command(now, command, out),
            Input::BlockMined(_) => {}
        }
        let chain = &self.chain;
        self.pressure
            .observe(now, &self.pool, chain.pending_txs(), |a| {
                chain.next_nonce(a)
            });
        self.filter_outgoing(first, out);
    }

    fn status(&self) -> EngineStatus {
        EngineStatus {
            role: self.role(),
            round: self.view,
            leader: self.active.then(|| self.primary()),
            committed_height: self.executed(),
            last_height: self.chain.head_height(),
            members: self.replicas.ids().to_vec(),
            pending_txs: self.pool.len(),
            overloaded: self.pressure.is_on(),
        }
    }
}
