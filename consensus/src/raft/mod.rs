//! Raft as a permissioned block engine (crash faults only; 2f+1 validators tolerate f).
//!
//! Log index = block height. Leaders batch pending transactions into blocks and pipeline them;
//! an entry commits only once a majority stores it *and* it is from the leader's current term (a
//! new leader commits an empty block to get there). Elections use pre-vote and a leader lease, and
//! leaders step down without a quorum (check-quorum), so a partitioned node rejoining cannot depose
//! a healthy leader. Snapshots are the chain state at a height; membership changes one server at a
//! time; leadership can be handed over. Followers trust the leader's transaction checks: that is
//! the crash-fault bargain the comparison with PBFT measures.

mod election;
mod log;
mod membership;
pub mod messages;
pub mod proof;
mod proposal;
mod replication;
pub mod simulation;
mod snapshot;
mod storage;

use std::collections::{BTreeMap, BTreeSet};

use synod_chain::SignedTransaction;
use synod_chain::hash::Hash;
use synod_chain::keys::SecretKey;
use synod_chain::ledger::Ledger;
use synod_genesis::RaftParams;

use crate::engine::{
    Action, ChainState, Command, Engine, EngineEvent, EngineStatus, Input, Millis, NodeId,
    Restored, Role, TimerId,
};
use crate::execution::Execution;
use crate::pool::TxPool;
use crate::rng::DetRng;
use log::RaftLog;
pub use messages::{ConfigChange, LogEntry, RaftMessage, SnapshotMeta};
use storage::HardState;
pub use storage::RaftStateError;

/// Fires when a follower has not heard from a leader: start a (pre-)election.
pub const ELECTION_TIMER: TimerId = TimerId(1);
/// The leader's heartbeat period.
pub const HEARTBEAT_TIMER: TimerId = TimerId(2);
/// The leader's batching delay.
pub const BATCH_TIMER: TimerId = TimerId(3);
/// The leader's check that a majority is still answering.
pub const CHECK_QUORUM_TIMER: TimerId = TimerId(4);
/// Abandons a leadership transfer that did not complete.
pub const TRANSFER_TIMER: TimerId = TimerId(5);
/// A follower's re-forwarding of transactions that are still pending.
pub const FORWARD_TIMER: TimerId = TimerId(6);

/// Uncommitted blocks a leader may have in flight before it waits for commits.
const MAX_UNCOMMITTED_BLOCKS: u64 = 16;
/// Appends in flight to one follower before the leader waits for answers.
const MAX_INFLIGHT_APPENDS: u32 = 8;
/// Entries per append message.
const MAX_APPEND_ENTRIES: usize = 64;
/// Approximate block bytes per append message.
const MAX_APPEND_BYTES: usize = 1 << 20;
/// Most transactions in one forward message.
const MAX_FORWARD_TXS: usize = 10_000;
/// Most transactions a follower forwards to a new leader in one go; the rest follow with the
/// resends.
const MAX_FORWARD_BURST: usize = 100_000;
/// Most transactions a follower re-forwards on one resend tick (a loaded leader must not be
/// flooded with copies of what it is already working through).
const MAX_RESEND_BURST: usize = 10_000;
/// Transactions at the front of each sender's queue a follower re-forwards per tick.
const RESEND_PER_SENDER: usize = 64;

/// How a Raft engine is set up.
#[derive(Clone, Debug)]
pub struct RaftConfig {
    /// This validator.
    pub me: NodeId,
    /// Its key: a leader signs every block it appends (the block's finality proof).
    pub key: SecretKey,
    /// The genesis validator set.
    pub validators: Vec<NodeId>,
    /// Timing and batching from the genesis file.
    pub params: RaftParams,
    /// Seed for election-timeout jitter.
    pub seed: u64,
    /// Most transactions the engine's pool holds.
    pub pool_capacity: usize,
    /// Test-only: a deliberately broken commit rule, to show the simulator's checkers catch it.
    /// Always [`RaftFault::None`] outside tests; no genesis or config file can set it.
    pub fault: RaftFault,
}

/// Deliberately broken rules, for tests of the simulator's checkers only. Without the
/// `test-faults` feature only [`RaftFault::None`] exists, so no build of the node can run another.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RaftFault {
    /// The correct rules.
    #[default]
    None,
    /// Commit entries of earlier terms by counting replicas: the bug of the Raft paper's Figure 8.
    #[cfg(feature = "test-faults")]
    CommitEntriesOfAnyTerm,
    /// Commit once one replica short of a majority stores an entry.
    #[cfg(feature = "test-faults")]
    CommitQuorumOffByOne,
    /// Grant a vote even after voting for another candidate in the same term.
    #[cfg(feature = "test-faults")]
    VoteTwice,
    /// Acknowledge appended entries without making them durable.
    #[cfg(feature = "test-faults")]
    AckBeforePersist,
    /// The leader silently loses every 16th transaction it is handed.
    #[cfg(feature = "test-faults")]
    LossyPool,
}

impl RaftConfig {
    /// A configuration for the validator holding `key`, with the default pool size.
    pub fn new(key: SecretKey, validators: Vec<NodeId>, params: RaftParams, seed: u64) -> Self {
        RaftConfig {
            me: key.public(),
            key,
            validators,
            params,
            seed,
            pool_capacity: 200_000,
            fault: RaftFault::None,
        }
    }
}

/// A follower's replication state, kept by the leader.
#[derive(Clone, Debug)]
struct Progress {
    /// Next index to send.
    next: u64,
    /// Highest index known to match.
    matched: u64,
    /// When the follower last answered in this term.
    last_ack: Millis,
    /// Appends sent and not yet answered.
    inflight: u32,
    /// Offset of the snapshot being sent, if any.
    snapshot_offset: Option<u64>,
    /// Looking for where the follower's log matches: one append at a time, and only the answer
    /// to the latest probe counts (duplicated or late rejections must not multiply sends).
    probing: bool,
}

impl Progress {
    /// A follower not heard from yet, probed from `next`.
    fn new(next: u64, now: Millis) -> Self {
        Progress {
            next,
            matched: 0,
            last_ack: now,
            inflight: 0,
            snapshot_offset: None,
            probing: true,
        }
    }
}

/// State only a leader has.
#[derive(Clone, Debug)]
struct LeaderState {
    progress: BTreeMap<NodeId, Progress>,
    /// Leadership being handed to this validator.
    transfer: Option<NodeId>,
    /// A snapshot being sent to lagging followers: its metadata and encoded chain state.
    outgoing: Option<(SnapshotMeta, Vec<u8>)>,
    /// A batch timer is armed.
    batch_armed: bool,
}

/// How a follower takes a message from a would-be leader.
enum LeaderContact {
    /// From an earlier term: answer with ours.
    Stale,
    /// This node stopped committing after a divergence: ignore.
    Halted,
    /// Follow it.
    Accepted,
}

/// A snapshot being received.
#[derive(Clone, Debug)]
struct IncomingSnapshot {
    meta: SnapshotMeta,
    total: u64,
    data: Vec<u8>,
}

/// The Raft engine.
pub struct RaftEngine {
    me: NodeId,
    key: SecretKey,
    chain_id: String,
    params: RaftParams,
    rng: DetRng,
    hard: HardState,
    log: RaftLog,
    /// Membership as of the snapshot; the current one adds the changes in the log.
    snapshot_members: Vec<NodeId>,
    members: Vec<NodeId>,
    role: Role,
    leader: Option<NodeId>,
    commit_index: u64,
    execution: Execution,
    pool: TxPool,
    /// Whether the backlog (blocks in flight plus the executable pool) is past its high-water
    /// mark: what a leader tells its followers.
    pressure: crate::pressure::Backpressure,
    /// Whether the leader said, in its last append, that its backlog is past its high-water
    /// mark, and when that append came.
    leader_overloaded: bool,
    leader_overloaded_at: Millis,
    /// When the current leader was last heard from (the leader lease).
    last_leader_contact: Option<Millis>,
    votes: BTreeSet<NodeId>,
    leader_state: Option<LeaderState>,
    incoming: Option<IncomingSnapshot>,
    /// Set when a committed block failed to apply: the engine stops rather than diverge.
    halted: bool,
    fault: RaftFault,
    /// The time of the input being handled.
    now: Millis,
    /// Transactions handed to a lossy pool (test faults only).
    #[cfg(feature = "test-faults")]
    lossy_count: u64,
}

impl RaftEngine {
    /// A Raft engine restored from its persisted state (empty for a fresh node) and the chain.
    pub fn new(
        config: RaftConfig,
        ledger: Ledger,
        restored: Restored,
    ) -> Result<Self, RaftStateError> {
        let persisted = storage::restore(&restored.engine_state)?;
        let chain: ChainState = restored.chain;
        let applied = chain.tip.height;
        let (snapshot_index, snapshot_term, snapshot_members, snapshot_signature) =
            match &persisted.snapshot {
                Some(meta) => (meta.index, meta.term, meta.members.clone(), meta.signature),
                None => (0, 0, config.validators.clone(), None),
            };
        if snapshot_index > applied {
            return Err(RaftStateError::Inconsistent(format!(
                "snapshot at {snapshot_index} is ahead of the chain tip {applied}"
            )));
        }
        let mut log = RaftLog::new(snapshot_index, snapshot_term, snapshot_signature);
        for entry in persisted.entries {
            if entry.index() <= snapshot_index {
                continue;
            }
            if entry.index() != log.last_index() + 1 {
                return Err(RaftStateError::Inconsistent(format!(
                    "log entry {} does not follow {}",
                    entry.index(),
                    log.last_index()
                )));
            }
            log.push(entry);
        }
        if applied > log.last_index() {
            return Err(RaftStateError::Inconsistent(format!(
                "chain tip {applied} is beyond the log's last index {}",
                log.last_index()
            )));
        }
        if let Some(entry) = log.entry(applied)
            && entry.block.hash() != chain.tip.hash()
        {
            return Err(RaftStateError::Inconsistent(format!(
                "log entry {applied} is not the chain's block at that height"
            )));
        }
        let mut engine = RaftEngine {
            me: config.me,
            chain_id: ledger.rules().chain_id.clone(),
            key: config.key,
            params: config.params,
            rng: DetRng::new(config.seed),
            hard: persisted.hard,
            log,
            snapshot_members,
            members: Vec::new(),
            role: Role::Follower,
            leader: None,
            commit_index: applied,
            execution: Execution::new(ledger, chain),
            pool: TxPool::new(config.pool_capacity),
            pressure: crate::pressure::Backpressure::for_capacity(config.pool_capacity),
            leader_overloaded: false,
            leader_overloaded_at: 0,
            last_leader_contact: None,
            votes: BTreeSet::new(),
            leader_state: None,
            incoming: None,
            halted: false,
            fault: config.fault,
            now: 0,
            #[cfg(feature = "test-faults")]
            lossy_count: 0,
        };
        engine.members = engine.members_at(u64::MAX);
        if !engine.is_member(&engine.me) {
            engine.role = Role::Observer;
        }
        Ok(engine)
    }

    /// Membership after applying the log's changes up to `index` to the snapshot's membership.
    fn members_at(&self, index: u64) -> Vec<NodeId> {
        let mut members = self.snapshot_members.clone();
        for change in self.log.changes_up_to(index) {
            match change {
                ConfigChange::Add(id) if !members.contains(&id) => members.push(id),
                ConfigChange::Remove(id) => members.retain(|m| *m != id),
                ConfigChange::Add(_) => {}
            }
        }
        members.sort();
        members
    }

    fn is_member(&self, id: &NodeId) -> bool {
        self.members.contains(id)
    }

    fn majority(&self) -> usize {
        self.members.len() / 2 + 1
    }

    /// Whether this node may start elections.
    fn can_campaign(&self) -> bool {
        self.is_member(&self.me) && !self.halted
    }

    fn applied(&self) -> u64 {
        self.execution.tip().height
    }

    fn set_role(&mut self, role: Role, out: &mut Vec<Action<RaftMessage>>) {
        let changed = self.role != role;
        self.role = role;
        if changed || role == Role::Leader {
            out.push(Action::Event(EngineEvent::RoleChanged {
                role,
                round: self.hard.term,
                leader: self.leader,
            }));
        }
    }

    fn persist_hard(&self, out: &mut Vec<Action<RaftMessage>>) {
        out.push(Action::Persist(vec![storage::write_hard(&self.hard)]));
    }

    fn reset_election_timer(&mut self, out: &mut Vec<Action<RaftMessage>>) {
        if self.can_campaign() {
            let after = self.rng.range(
                self.params.election_timeout_min_ms,
                self.params.election_timeout_max_ms,
            );
            out.push(Action::SetTimer {
                id: ELECTION_TIMER,
                after,
            });
        } else {
            out.push(Action::CancelTimer(ELECTION_TIMER));
        }
    }

    /// Becomes a follower in `term` (persisting the term if it is new).
    fn become_follower(
        &mut self,
        term: u64,
        leader: Option<NodeId>,
        out: &mut Vec<Action<RaftMessage>>,
    ) {
        if term > self.hard.term {
            self.hard = HardState {
                term,
                voted_for: None,
            };
            self.persist_hard(out);
        }
        let was_leader = self.role == Role::Leader;
        let leader_changed = self.leader != leader;
        self.leader = leader;
        if leader_changed {
            // What the old leader said of its pool says nothing of the new one's.
            self.leader_overloaded = false;
        }
        self.votes.clear();
        if was_leader {
            self.leader_state = None;
            self.pressure.reset();
            // Blocks this leader built but did not commit may be overwritten by the next leader.
            self.execution.truncate_above(self.commit_index);
            for id in [
                HEARTBEAT_TIMER,
                BATCH_TIMER,
                CHECK_QUORUM_TIMER,
                TRANSFER_TIMER,
            ] {
                out.push(Action::CancelTimer(id));
            }
        }
        if leader_changed
            && let Some(leader) = leader
            && leader != self.me
        {
            // The new leader may have missed what the old one held: hand it everything pending.
            let txs = self.pool.take_all_for_forward(self.now, MAX_FORWARD_BURST);
            self.forward(leader, txs, out);
        }
        let role = if self.is_member(&self.me) {
            Role::Follower
        } else {
            Role::Observer
        };
        if self.role != role || leader_changed {
            self.role = role;
            out.push(Action::Event(EngineEvent::RoleChanged {
                role,
                round: self.hard.term,
                leader,
            }));
        }
        self.reset_election_timer(out);
    }

    /// An append or snapshot from `from` claiming to lead `term`: follows it (stepping down or
    /// adopting the term if needed), resets the election timer and renews the leader lease.
    fn hear_from_leader(
        &mut self,
        now: Millis,
        from: NodeId,
        term: u64,
        out: &mut Vec<Action<RaftMessage>>,
    ) -> LeaderContact {
        if term < self.hard.term {
            return LeaderContact::Stale;
        }
        if term > self.hard.term || self.leader != Some(from) || self.role != Role::Follower {
            self.become_follower(term, Some(from), out);
        } else {
            self.reset_election_timer(out);
        }
        self.last_leader_contact = Some(now);
        if self.halted {
            LeaderContact::Halted
        } else {
            LeaderContact::Accepted
        }
    }

    /// A log entry of the current term for `block`, signed by this (leading) node.
    pub(super) fn signed_entry(
        &self,
        block: synod_chain::Block,
        change: Option<ConfigChange>,
    ) -> LogEntry {
        let signature = proof::sign_block(&self.key, &self.chain_id, &block.hash(), self.hard.term);
        LogEntry {
            term: self.hard.term,
            block,
            change,
            signature,
        }
    }

    /// Sends transactions to `leader` in messages of a bounded size.
    pub(super) fn forward(
        &self,
        leader: NodeId,
        txs: Vec<SignedTransaction>,
        out: &mut Vec<Action<RaftMessage>>,
    ) {
        for chunk in txs.chunks(MAX_FORWARD_TXS) {
            out.push(Action::Send {
                to: leader,
                msg: RaftMessage::Forward {
                    term: self.hard.term,
                    txs: chunk.to_vec(),
                },
            });
        }
    }

    /// A follower re-forwards what has waited long enough to have committed under a healthy
    /// leader: forwards can be lost (a busy or crashed leader, a dropped message), transactions
    /// cannot.
    fn on_forward_timer(&mut self, now: Millis, out: &mut Vec<Action<RaftMessage>>) {
        let interval = self.params.election_timeout_max_ms;
        out.push(Action::SetTimer {
            id: FORWARD_TIMER,
            after: interval,
        });
        self.pool.expire(now);
        if self.role == Role::Leader {
            return;
        }
        // Without a known leader (a removed member, a long election), any member relays.
        let others: Vec<NodeId> = self
            .members
            .iter()
            .copied()
            .filter(|m| *m != self.me)
            .collect();
        let target = match self.leader.filter(|l| *l != self.me) {
            Some(leader) => Some(leader),
            None if !others.is_empty() => Some(others[self.rng.index(others.len())]),
            None => None,
        };
        if let Some(target) = target {
            let txs = self.pool.take_due_for_resend(
                now,
                2 * interval,
                RESEND_PER_SENDER,
                MAX_RESEND_BURST,
            );
            self.forward(target, txs, out);
        }
    }

    pub(super) fn report_dropped(
        dropped: crate::pool::Dropped,
        out: &mut Vec<Action<RaftMessage>>,
    ) {
        for (id, reason) in dropped {
            out.push(Action::Event(EngineEvent::TxDropped { id, reason }));
        }
    }

    fn reject_command(&self, reason: impl Into<String>, out: &mut Vec<Action<RaftMessage>>) {
        out.push(Action::Event(EngineEvent::CommandRejected {
            reason: reason.into(),
        }));
    }

    fn on_message(
        &mut self,
        now: Millis,
        from: NodeId,
        msg: RaftMessage,
        out: &mut Vec<Action<RaftMessage>>,
    ) {
        match msg {
            RaftMessage::PreVote {
                term,
                last_index,
                last_term,
            } => self.on_pre_vote(now, from, term, last_index, last_term, out),
            RaftMessage::PreVoteResponse { term, granted } => {
                self.on_pre_vote_response(now, from, term, granted, out)
            }
            RaftMessage::Vote {
                term,
                last_index,
                last_term,
                transfer,
            } => self.on_vote(now, from, term, last_index, last_term, transfer, out),
            RaftMessage::VoteResponse { term, granted } => {
                self.on_vote_response(now, from, term, granted, out)
            }
            RaftMessage::Append {
                term,
                prev_index,
                prev_term,
                entries,
                commit,
                overloaded,
            } => {
                self.on_append(now, from, term, prev_index, prev_term, entries, commit, out);
                // Taken from the leader this node follows, in its term, and no one else.
                if self.leader == Some(from) && term == self.hard.term {
                    self.leader_overloaded = overloaded;
                    self.leader_overloaded_at = now;
                }
            }
            RaftMessage::AppendResponse {
                term,
                success,
                match_index,
                conflict,
            } => self.on_append_response(now, from, term, success, match_index, conflict, out),
            RaftMessage::Snapshot {
                term,
                meta,
                offset,
                total,
                data,
            } => self.on_snapshot(now, from, term, meta, offset, total, data, out),
            RaftMessage::SnapshotResponse {
                term,
                index,
                next_offset,
            } => self.on_snapshot_response(now, from, term, index, next_offset, out),
            RaftMessage::TimeoutNow { term } => self.on_timeout_now(now, from, term, out),
            // A follower relays what reached it instead of the leader (the sender's idea of the
            // leader was stale, or it had none): it keeps a copy and forwards it on, like its own.
            RaftMessage::Forward { txs, .. } => {
                self.on_transactions(now, txs.into_iter().take(MAX_FORWARD_TXS).collect(), out);
            }
        }
    }

    fn on_timer(&mut self, now: Millis, id: TimerId, out: &mut Vec<Action<RaftMessage>>) {
        match id {
            ELECTION_TIMER => self.on_election_timeout(now, out),
            HEARTBEAT_TIMER => self.on_heartbeat(now, out),
            BATCH_TIMER => self.on_batch_timer(now, out),
            CHECK_QUORUM_TIMER => self.on_check_quorum(now, out),
            TRANSFER_TIMER => self.on_transfer_timeout(out),
            FORWARD_TIMER => self.on_forward_timer(now, out),
            _ => {}
        }
    }

    fn on_command(&mut self, now: Millis, command: Command, out: &mut Vec<Action<RaftMessage>>) {
        if self.role != Role::Leader {
            let leader = self.leader.map_or("unknown".to_string(), |l| l.short());
            return self.reject_command(format!("not the leader (leader: {leader})"), out);
        }
        match command {
            Command::Propose => self.propose_block(now, true, out),
            Command::TransferLeadership(target) => self.start_transfer(now, target, out),
            Command::AddValidator(id) => self.propose_change(now, ConfigChange::Add(id), out),
            Command::RemoveValidator(id) => self.propose_change(now, ConfigChange::Remove(id), out),
        }
    }

    /// Transactions in log entries past the commit index (on a leader usually the pipeline's
    /// depth of blocks at most).
    fn uncommitted_txs(&self) -> usize {
        (self.commit_index + 1..=self.log.last_index())
            .filter_map(|index| self.log.entry(index))
            .map(|entry| entry.block.txs.len())
            .sum()
    }

    /// Whether this node's clients should be turned away for now: a leader goes by its own pool,
    /// a follower by what its leader last said of its pool (every transaction a follower admits
    /// ends up there) while that is recent, a node without a leader by nothing. A follower the
    /// leader stopped appending to (removed, cut off, halted, sent a snapshot instead) does not
    /// hold on to an old "overloaded".
    fn overloaded(&self) -> bool {
        let recent = self.now.saturating_sub(self.leader_overloaded_at)
            <= self.params.election_timeout_max_ms;
        match (self.role, self.leader) {
            (Role::Leader, _) => self.pressure.is_on(),
            (_, Some(leader)) if leader != self.me => self.leader_overloaded && recent,
            _ => false,
        }
    }

    /// The id of the block at the engine's committed tip.
    pub fn committed_hash(&self) -> Hash {
        self.execution.tip_hash()
    }
}

impl Engine for RaftEngine {
    type Message = RaftMessage;

    fn handle(
        &mut self,
        now: Millis,
        input: Input<RaftMessage>,
        out: &mut Vec<Action<RaftMessage>>,
    ) {
        self.now = now;
        match input {
            Input::Start => {
                out.push(Action::Event(EngineEvent::MembershipChanged {
                    members: self.members.clone(),
                    committed: true,
                }));
                self.reset_election_timer(out);
                out.push(Action::SetTimer {
                    id: FORWARD_TIMER,
                    after: self.params.election_timeout_max_ms,
                });
            }
            Input::Message { from, msg } => self.on_message(now, from, msg, out),
            Input::Timer(id) => self.on_timer(now, id, out),
            Input::Transactions(txs) => self.on_transactions(now, txs, out),
            Input::Withdrawn(ids) => self.pool.withdraw(&ids),
            // Raft brings lagging followers up with appends and snapshots, not block sync.
            Input::BlockMined(_) | Input::Synced(_) => {}
            Input::Command(command) => self.on_command(now, command, out),
        }
        if self.role == Role::Leader {
            let in_flight = self.uncommitted_txs();
            let execution = &self.execution;
            self.pressure
                .observe(now, &self.pool, in_flight, |a| execution.account(a).nonce);
        }
    }

    fn status(&self) -> EngineStatus {
        EngineStatus {
            role: self.role,
            round: self.hard.term,
            leader: self.leader,
            committed_height: self.applied(),
            last_height: self.log.last_index(),
            members: self.members.clone(),
            pending_txs: self.pool.len(),
            overloaded: self.overloaded(),
        }
    }
}

#[cfg(test)]
mod tests;
