//! The engine driver: one thread that owns the engine, feeds it inputs and executes its actions
//! in order. Engine-state writes are made durable before any later message leaves the node;
//! consecutive writes (and a commit that follows them) share one fsync. Timers live here too.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use synod_chain::SignedTransaction;
use synod_chain::codec;
use synod_chain::store::{CommitDurability, EngineWrite};
use synod_consensus::engine::{
    Action, Command, Engine, EngineEvent, Input, Message, NodeId, TimerId,
};
use tokio::sync::oneshot;
use tracing::{debug, error, info, warn};

use crate::context::NodeContext;
use crate::envelope;
use crate::error::NodeError;
use crate::net::{NetCommand, peer_id_of};

/// Largest engine message payload decoded.
const MAX_MESSAGE_BYTES: usize = 16 << 20;
/// Blocks above the tx-index watermark before the driver merges them (off the commit path).
const INDEX_BATCH: u64 = 32;

/// Inputs to the driver from the rest of the node.
pub enum DriverEvent {
    /// A consensus message that passed the edge checks.
    Message {
        /// The sender.
        from: NodeId,
        /// The encoded engine message.
        payload: Vec<u8>,
    },
    /// Transactions admitted to the mempool.
    Transactions(Vec<SignedTransaction>),
    /// An operator command; the reply says whether the engine took it.
    Command {
        /// The command.
        command: Command,
        /// Where the answer goes.
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// Stop.
    Shutdown,
}

/// Wall-clock milliseconds, the engines' `now`.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Runs an engine over a node's store and network.
pub struct Driver<E: Engine> {
    engine: E,
    ctx: Arc<NodeContext>,
    timers: HashMap<TimerId, Instant>,
    pending_writes: Vec<EngineWrite>,
    rejected: Option<String>,
}

impl<E: Engine> Driver<E> {
    /// A driver for `engine`.
    pub fn new(engine: E, ctx: Arc<NodeContext>) -> Self {
        Driver {
            engine,
            ctx,
            timers: HashMap::new(),
            pending_writes: Vec::new(),
            rejected: None,
        }
    }

    /// Runs until shutdown; an error means the node cannot continue safely.
    pub fn run(mut self, events: Receiver<DriverEvent>) -> Result<(), NodeError> {
        self.step(Input::Start)?;
        loop {
            let now = Instant::now();
            let next = self.timers.values().min().copied();
            let wait = next.map_or(Duration::from_millis(500), |t| {
                t.saturating_duration_since(now)
            });
            match events.recv_timeout(wait) {
                Ok(DriverEvent::Shutdown) => break,
                Ok(event) => {
                    self.on_event(event)?;
                    // Drain what queued up, merging transaction batches into one input.
                    let mut txs = Vec::new();
                    for event in events.try_iter().take(4096) {
                        match event {
                            DriverEvent::Transactions(more) => txs.extend(more),
                            DriverEvent::Shutdown => return self.finish(),
                            other => self.on_event(other)?,
                        }
                    }
                    if !txs.is_empty() {
                        self.step(Input::Transactions(txs))?;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    // Idle: merge the tx index now rather than inside a commit.
                    if self.ctx.store.tx_backlog() >= INDEX_BATCH {
                        self.ctx.store.index_transactions(INDEX_BATCH)?;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
            self.fire_timers()?;
            if self.ctx.store.tx_backlog() >= 16 * INDEX_BATCH {
                self.ctx.store.index_transactions(INDEX_BATCH)?;
            }
        }
        self.finish()
    }

    fn finish(&mut self) -> Result<(), NodeError> {
        self.flush()?;
        info!("engine driver stopped");
        Ok(())
    }

    fn on_event(&mut self, event: DriverEvent) -> Result<(), NodeError> {
        match event {
            DriverEvent::Message { from, payload } => {
                match codec::decode::<E::Message>(&payload, MAX_MESSAGE_BYTES) {
                    Ok(msg) => {
                        crate::metrics::count_kind(&self.ctx.metrics.messages_received, msg.kind());
                        self.step(Input::Message { from, msg })
                    }
                    Err(e) => {
                        self.ctx.metrics.dropped("malformed");
                        debug!(from = %from.short(), error = %e, "dropped a malformed consensus message");
                        Ok(())
                    }
                }
            }
            DriverEvent::Transactions(txs) => self.step(Input::Transactions(txs)),
            DriverEvent::Command { command, reply } => {
                self.rejected = None;
                self.step(Input::Command(command))?;
                let _ = reply.send(match self.rejected.take() {
                    Some(reason) => Err(reason),
                    None => Ok(()),
                });
                Ok(())
            }
            DriverEvent::Shutdown => Ok(()),
        }
    }

    fn fire_timers(&mut self) -> Result<(), NodeError> {
        let now = Instant::now();
        let mut due: Vec<(Instant, TimerId)> = self
            .timers
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(id, at)| (*at, *id))
            .collect();
        due.sort();
        for (_, id) in due {
            self.timers.remove(&id);
            self.step(Input::Timer(id))?;
        }
        Ok(())
    }

    /// Feeds one input and executes the actions.
    fn step(&mut self, input: Input<E::Message>) -> Result<(), NodeError> {
        let mut actions = Vec::new();
        self.engine.handle(now_ms(), input, &mut actions);
        for action in actions {
            self.execute(action)?;
        }
        self.flush()?;

        self.publish_status();
        Ok(())
    }

    /// Makes pending engine-state writes durable.
    fn flush(&mut self) -> Result<(), NodeError> {
        if !self.pending_writes.is_empty() {
            let writes = std::mem::take(&mut self.pending_writes);
            self.ctx.store.write_engine(&writes)?;
        }
        Ok(())
    }

    fn send(&self, to: NodeId, msg: &E::Message) {
        let Some(peer) = peer_id_of(&to) else {
            return;
        };
        let payload = codec::encode(msg);
        let bytes = envelope::seal(&self.ctx.key, &self.ctx.genesis_hash, &to, &payload);
        crate::metrics::count_kind(&self.ctx.metrics.messages_sent, msg.kind());
        if let Some(net) = self.ctx.net.get() {
            net.send(NetCommand::Consensus { to: peer, bytes });
        }
    }

    fn execute(&mut self, action: Action<E::Message>) -> Result<(), NodeError> {
        match action {
            Action::Send { to, msg } => {
                self.flush()?;
                self.send(to, &msg);
            }
            Action::Broadcast(msg) => {
                self.flush()?;
                let me = self.ctx.me;
                let members = self.engine.status().members;
                for to in members.into_iter().filter(|m| *m != me) {
                    self.send(to, &msg);
                }
            }
            Action::SetTimer { id, after } => {
                self.timers
                    .insert(id, Instant::now() + Duration::from_millis(after));
            }
            Action::CancelTimer(id) => {
                self.timers.remove(&id);
            }
            Action::Persist(writes) => self.pending_writes.extend(writes),
            Action::Commit(committed) => {
                let mut writes = std::mem::take(&mut self.pending_writes);
                writes.extend(committed.persist);
                let block = committed.block;
                let durability = if committed.replayable {
                    CommitDurability::Deferred
                } else {
                    CommitDurability::Immediate
                };
                self.ctx.store.commit_block_with(
                    &block,
                    &committed.changes,
                    &committed.proof,
                    committed.finality,
                    &writes,
                    durability,
                )?;
                self.on_committed(&block);
            }
            Action::InstallSnapshot(snapshot) => {
                let mut writes = std::mem::take(&mut self.pending_writes);
                writes.extend(snapshot.persist);
                self.ctx.store.install_snapshot(
                    &snapshot.header,
                    &snapshot.accounts,
                    &snapshot.proof,
                    &writes,
                )?;
                self.ctx.mempool().prune_all(&snapshot.accounts);
                info!(height = snapshot.header.height, "installed a snapshot");
            }
            Action::RequestSync { from, height } => {
                debug!(from = %from.short(), height, "engine asked for sync");
            }
            Action::Rewind { height } => {
                warn!(
                    height,
                    "engine asked for a rewind, which this driver does not support"
                );
            }
            Action::Finalize { height } => self.ctx.store.set_finalized(height)?,
            Action::Mine(_) | Action::StopMining => {
                warn!("engine asked for mining, which this driver does not support");
            }
            Action::Event(event) => self.on_engine_event(event)?,
        }
        Ok(())
    }

    fn on_committed(&mut self, block: &synod_chain::Block) {
        let ctx = &self.ctx;
        let latencies = match ctx.store.reader() {
            Ok(reader) => ctx.mempool().on_commit(block, &reader, Instant::now()),
            Err(e) => {
                warn!(error = %e, "cannot read accounts after a commit");
                Vec::new()
            }
        };
        for latency in latencies {
            ctx.metrics.commit_latency.observe(latency.as_secs_f64());
        }
        ctx.metrics.commits.inc();
        ctx.metrics.committed_txs.inc_by(block.txs.len() as u64);
        ctx.metrics.height.set(block.header.height as i64);
        info!(
            height = block.header.height,
            hash = %block.hash().short(),
            txs = block.txs.len(),
            "commit"
        );
    }

    fn on_engine_event(&mut self, event: EngineEvent) -> Result<(), NodeError> {
        match event {
            EngineEvent::RoleChanged {
                role,
                round,
                leader,
            } => {
                info!(role = role.as_str(), round, leader = ?leader.map(|l| l.short()), "role");
                self.ctx.metrics.set_role(role.as_str());
                self.ctx.metrics.round.set(round as i64);
            }
            EngineEvent::SteppedDown { round, reason } => {
                warn!(round, reason, "stepped down");
            }
            EngineEvent::MembershipChanged { members, committed } => {
                info!(members = members.len(), committed, "validator set");
                let mut allowed = self
                    .ctx
                    .members
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                allowed.extend(members);
            }
            EngineEvent::Snapshot { height, installed } => {
                info!(height, installed, "snapshot");
            }
            EngineEvent::Divergence { height, detail } => {
                error!(
                    height,
                    detail, "this node diverged from the chain and stopped committing"
                );
            }
            EngineEvent::CommandRejected { reason } => {
                debug!(reason, "command rejected");
                self.rejected = Some(reason);
            }
            EngineEvent::TxDropped { id, reason } => {
                debug!(tx = %id.short(), reason, "engine dropped a transaction");
            }
            EngineEvent::BlockRejected {
                from,
                hash,
                height,
                reason,
            } => {
                warn!(from = ?from.map(|p| p.short()), block = %hash.short(), height, reason, "rejected a block");
            }
            EngineEvent::PeerMisbehaved { peer, reason } => {
                warn!(peer = %peer.short(), reason, "peer misbehaved");
            }
            EngineEvent::Reorg {
                fork_height,
                removed,
                added,
                tip,
            } => {
                info!(fork_height, removed, added, tip = %tip.short(), "reorganised onto a heavier branch");
            }
            EngineEvent::ReorgRefused {
                fork_height,
                finalized,
                tip,
            } => {
                warn!(fork_height, finalized, tip = %tip.short(), "refused a branch that forks below the finalized height");
            }
        }
        Ok(())
    }

    fn publish_status(&self) {
        let engine = self.engine.status();
        let tip = self.ctx.store.tip();
        let mempool = self.ctx.mempool().len();
        self.ctx.metrics.mempool.set(mempool as i64);
        self.ctx.update_status(|s| {
            s.role = engine.role.as_str().to_string();
            s.round = engine.round;
            s.leader = engine.leader;
            s.height = tip.height;
            s.tip = tip.hash;
            s.last_height = engine.last_height;
            s.validators = engine.members;
            s.mempool = mempool;
            s.engine_pending = engine.pending_txs;
            s.committed_txs = self.ctx.metrics.committed_txs.get();
        });
    }
}
