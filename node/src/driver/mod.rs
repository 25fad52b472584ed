//! The engine driver: one thread that owns the engine, feeds it inputs and executes its actions
//! in order. Engine-state writes are made durable before any later message leaves the node;
//! consecutive writes (and a commit that follows them) share one fsync. Timers live here too.
//!
//! One loop turn takes every waiting control event (consensus messages, commands; bounded) in the
//! order they arrived, firing each timer that fell due before the next event arrived, so an
//! election timer never fires while the leader's heartbeat sits unread in the inbox and a leader's
//! heartbeat timer never waits behind a backlog of messages. Only then does it hand the engine one
//! bounded batch of admitted transactions from the mempool. Idle turns merge the transaction index.
//!
//! Proof of work adds a miner ([`mining`]), rewinds whose blocks give their transactions back to
//! the mempool, the connected peers handed to the engine (an open network has no member list),
//! and peer scores ([`events`]).

mod events;
mod mining;

pub use mining::{MiningRequest, MiningSetup, MiningState};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use synod_chain::codec;
use synod_chain::pow::kernel::Kernel;
use synod_chain::store::{CommitDurability, EngineWrite};
use synod_consensus::engine::{Action, Input, Message, NodeId, TimerId};
use tracing::{debug, info, warn};

use crate::clock::now_ms;
use crate::context::NodeContext;
use crate::engines::HostedEngine;
use crate::envelope;
use crate::error::NodeError;
use crate::inbox::{ControlEvent, DriverInbox};
use crate::miner::Miner;
use crate::net::{NetCommand, peer_id_of};
use crate::peer_score::PeerScores;
use mining::Mining;

/// Largest engine message payload decoded.
const MAX_MESSAGE_BYTES: usize = 16 << 20;
/// Control events handled per loop turn before transactions get their turn.
const MAX_CONTROL_PER_TURN: usize = 256;
/// Transactions handed to the engine per loop turn.
const MAX_TXS_PER_TURN: usize = 5_000;
/// How often the driver looks for transactions the engine was given long ago and still has not
/// committed, and how long they must have waited.
const REQUEUE_EVERY: Duration = Duration::from_secs(5);
const REQUEUE_AFTER: Duration = Duration::from_secs(20);
/// Most transactions handed in again per look.
const MAX_REQUEUE: usize = 20_000;
/// An engine step (the engine's handling plus its actions) this long is logged: every timer and
/// message of the node waits behind it.
const SLOW_STEP: Duration = Duration::from_millis(100);

/// What kind of input a step handled, for the slow-step log line.
fn input_label<M: Message>(input: &Input<M>) -> &'static str {
    match input {
        Input::Start => "start",
        Input::Message { msg, .. } => msg.kind(),
        Input::Timer(_) => "timer",
        Input::Transactions(_) => "transactions",
        Input::BlockMined(_) => "block_mined",
        Input::Command(_) => "command",
        Input::Synced(_) => "synced",
        Input::Withdrawn(_) => "withdrawn",
    }
}

/// Runs an engine over a node's store and network.
pub struct Driver<E: HostedEngine> {
    engine: E,
    ctx: Arc<NodeContext>,
    timers: HashMap<TimerId, Instant>,
    pending_writes: Vec<EngineWrite>,
    rejected: Option<String>,
    /// Admitted transactions still wait in the mempool after the last batch.
    more_txs: bool,
    last_requeue: Instant,
    mining: Mining,
    scores: PeerScores,
    /// The version of the node's connected-peer list the engine was last given.
    peers_seen: u64,
}

impl<E: HostedEngine> Driver<E> {
    /// A driver for `engine`, mining as `mining` says; the miner hands solutions to `inbox`.
    pub fn new(
        engine: E,
        ctx: Arc<NodeContext>,
        inbox: Arc<DriverInbox>,
        mining: MiningSetup,
    ) -> Self {
        let sink = Box::new(move |block| inbox.push_mined(block));
        let miner = Miner::new(Kernel::fastest(), 0, ctx.mining.clone(), sink);
        Driver {
            engine,
            ctx,
            timers: HashMap::new(),
            pending_writes: Vec::new(),
            rejected: None,
            more_txs: true,
            last_requeue: Instant::now(),
            mining: Mining::new(miner, mining),
            scores: PeerScores::default(),
            peers_seen: 0,
        }
    }

    /// Runs until shutdown; an error means the node cannot continue safely.
    pub fn run(mut self, inbox: &DriverInbox) -> Result<(), NodeError> {
        self.mining.start();
        self.step(Input::Start)?;
        loop {
            let wait = if self.more_txs {
                Duration::ZERO
            } else {
                self.timers
                    .values()
                    .min()
                    .map_or(Duration::from_millis(500), |t| {
                        t.saturating_duration_since(Instant::now())
                    })
                    .min(Duration::from_millis(500))
            };
            let delivery = inbox.wait(wait, MAX_CONTROL_PER_TURN);
            if delivery.shutdown {
                break;
            }
            let mut last_arrival = None;
            for (arrived, event) in delivery.control {
                self.fire_timers_due_by(arrived)?;
                self.on_control(event)?;
                last_arrival = Some(arrived);
            }
            // With events still waiting (the turn's share was taken), a timer may only fire up to
            // the last event handled: one of the waiting events could be the message that would
            // have reset it.
            let fire_until = match (delivery.more, last_arrival) {
                (true, Some(arrived)) => arrived,
                _ => Instant::now(),
            };
            self.fire_timers_due_by(fire_until)?;
            self.withdraw_dropped()?;
            if delivery.txs_ready || self.more_txs {
                self.feed_transactions()?;
            }
            self.housekeeping()?;
            self.finish_mine_request()?;
            self.ctx.heartbeat();
        }
        self.finish()
    }

    /// Tells the engine which transactions the mempool gave up, so none commits after its user
    /// was told it was dropped.
    fn withdraw_dropped(&mut self) -> Result<(), NodeError> {
        let withdrawn = self.ctx.mempool().take_withdrawn();
        if withdrawn.is_empty() {
            return Ok(());
        }
        self.step(Input::Withdrawn(withdrawn))
    }

    /// Hands the engine one bounded batch of admitted transactions.
    fn feed_transactions(&mut self) -> Result<(), NodeError> {
        let (txs, more) = {
            let mut mempool = self.ctx.mempool();
            let txs = mempool.take_for_engine(MAX_TXS_PER_TURN, Instant::now());
            (txs, mempool.has_handoff())
        };
        self.more_txs = more;
        if txs.is_empty() {
            return Ok(());
        }
        self.step(Input::Transactions(txs))
    }

    fn housekeeping(&mut self) -> Result<(), NodeError> {
        self.hand_over_peers();
        self.ctx.mining.sample();
        self.ctx.metrics.hash_rate.set(self.ctx.mining.hash_rate());
        if self.last_requeue.elapsed() >= REQUEUE_EVERY {
            self.last_requeue = Instant::now();
            let requeued =
                self.ctx
                    .mempool()
                    .requeue_stale(Instant::now(), REQUEUE_AFTER, MAX_REQUEUE);
            if requeued > 0 {
                debug!(
                    requeued,
                    "handing long-pending transactions to the engine again"
                );
                self.more_txs = true;
            }
        }
        Ok(())
    }

    /// Gives the engine the node's connected peers when they changed.
    fn hand_over_peers(&mut self) {
        let (version, peers) = self.ctx.connected_peers();
        if version != self.peers_seen {
            self.peers_seen = version;
            self.engine.connected(&peers);
            self.publish_status();
        }
    }

    fn finish(&mut self) -> Result<(), NodeError> {
        self.flush()?;
        info!("engine driver stopped");
        Ok(())
    }

    fn on_control(&mut self, event: ControlEvent) -> Result<(), NodeError> {
        match event {
            ControlEvent::Message { from, payload } => {
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
            ControlEvent::Command { command, reply } => {
                self.rejected = None;
                self.step(Input::Command(command))?;
                let _ = reply.send(match self.rejected.take() {
                    Some(reason) => Err(reason),
                    None => Ok(()),
                });
                Ok(())
            }
            ControlEvent::Synced(blocks) => self.step(Input::Synced(blocks)),
            ControlEvent::Mined(block) => self.on_mined(block),
            ControlEvent::Mining(request) => self.on_mining_request(request),
        }
    }

    /// Fires, oldest first, every timer that fell due at or before `by`.
    fn fire_timers_due_by(&mut self, by: Instant) -> Result<(), NodeError> {
        let mut due: Vec<(Instant, TimerId)> = self
            .timers
            .iter()
            .filter(|(_, at)| **at <= by)
            .map(|(id, at)| (*at, *id))
            .collect();
        due.sort();
        for (_, id) in due {
            // An earlier timer's step may have re-armed or cancelled this one.
            if self.timers.get(&id).is_some_and(|at| *at <= by) {
                self.timers.remove(&id);
                self.step(Input::Timer(id))?;
            }
        }
        Ok(())
    }

    /// Feeds one input and executes the actions.
    pub(super) fn step(&mut self, input: Input<E::Message>) -> Result<(), NodeError> {
        let started = Instant::now();
        let label = input_label(&input);
        let mut actions = Vec::new();
        self.engine.handle(now_ms(), input, &mut actions);
        let handled = started.elapsed();
        let count = actions.len();
        for action in actions {
            self.execute(action)?;
        }
        self.flush()?;

        self.publish_status();
        let took = started.elapsed();
        if took >= SLOW_STEP {
            warn!(
                input = label,
                engine_ms = handled.as_millis() as u64,
                total_ms = took.as_millis() as u64,
                actions = count,
                "slow engine step"
            );
        }
        Ok(())
    }

    /// Makes pending engine-state writes durable.
    pub(super) fn flush(&mut self) -> Result<(), NodeError> {
        if !self.pending_writes.is_empty() {
            let writes = std::mem::take(&mut self.pending_writes);
            self.ctx.store.write_engine(&writes)?;
        }
        Ok(())
    }

    /// Sends `msg` to each of `recipients`, encoding and hashing it once for all of them.
    fn send(&self, recipients: impl IntoIterator<Item = NodeId>, msg: &E::Message) {
        let payload = codec::encode(msg);
        let digest = envelope::PayloadDigest::of(&payload);
        for to in recipients {
            let Some(peer) = peer_id_of(&to) else {
                continue;
            };
            let bytes = envelope::seal_digested(
                &self.ctx.key,
                &self.ctx.genesis_hash,
                &to,
                &payload,
                digest,
            );
            crate::metrics::count_kind(&self.ctx.metrics.messages_sent, msg.kind());
            crate::metrics::add_kind(&self.ctx.metrics.bytes_sent, msg.kind(), bytes.len() as u64);
            if let Some(net) = self.ctx.net.get() {
                net.send(NetCommand::Consensus { to: peer, bytes });
            }
        }
    }

    pub(super) fn execute(&mut self, action: Action<E::Message>) -> Result<(), NodeError> {
        match action {
            Action::Send { to, msg } => {
                self.flush()?;
                self.send([to], &msg);
            }
            Action::Broadcast(msg) => {
                self.flush()?;
                let me = self.ctx.me;
                let members = self.engine.status().members;
                self.send(members.into_iter().filter(|m| *m != me), &msg);
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
                debug!(from = %from.short(), height, "engine asked for blocks");
                crate::sync::fetch_for_engine(&self.ctx, from, height);
            }
            Action::Rewind { height } => self.rewind(height)?,
            Action::Finalize { height } => self.ctx.store.set_finalized(height)?,
            Action::Mine(block) => self.mining.miner.mine(*block),
            Action::StopMining => self.mining.miner.stop(),
            Action::Event(event) => self.on_engine_event(event)?,
        }
        Ok(())
    }

    /// Rewinds the store to `height` (a reorganisation) and gives the removed blocks'
    /// transactions back to the mempool, so the node keeps reporting them pending until the new
    /// branch (or a later block) holds them. They were verified when first admitted and are not
    /// verified again; the engine keeps its own copies.
    fn rewind(&mut self, height: u64) -> Result<(), NodeError> {
        self.flush()?;
        let removed = self.ctx.store.rewind_to(height)?;
        let txs: Vec<synod_chain::SignedTransaction> =
            removed.iter().flat_map(|b| b.txs.iter().cloned()).collect();
        let returned = match self.ctx.store.reader() {
            Ok(reader) => self.ctx.mempool().give_back(txs, &reader, Instant::now()),
            Err(e) => {
                warn!(error = %e, "cannot read accounts after a rewind");
                0
            }
        };
        self.ctx.metrics.height.set(height as i64);
        info!(
            height,
            removed = removed.len(),
            returned,
            "rewound the chain for a reorganisation"
        );
        if returned > 0 {
            self.more_txs = true;
        }
        Ok(())
    }

    fn on_committed(&mut self, block: &synod_chain::Block) {
        self.credit_commit(block);
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

    pub(super) fn publish_status(&self) {
        let engine = self.engine.status();
        let tip = self.ctx.store.tip();
        let (mempool, queued) = {
            let pool = self.ctx.mempool();
            (pool.len(), pool.queued())
        };
        self.ctx.metrics.mempool.set(mempool as i64);
        self.ctx.metrics.mempool_queued.set(queued as i64);
        self.ctx
            .metrics
            .overloaded
            .set(i64::from(engine.overloaded));
        self.ctx
            .overloaded
            .store(engine.overloaded, std::sync::atomic::Ordering::Relaxed);
        self.ctx.update_status(|s| {
            s.role = engine.role.as_str().to_string();
            s.round = engine.round;
            s.leader = engine.leader;
            s.height = tip.height;
            s.tip = tip.hash;
            s.last_height = engine.last_height;
            s.validators = engine.members;
            s.mempool = mempool;
            s.mempool_queued = queued;
            s.engine_pending = engine.pending_txs;
            s.overloaded = engine.overloaded;
            s.committed_txs = self.ctx.metrics.committed_txs.get();
            s.pow = self.engine.pow_view();
            s.mine_request = self.mining.progress();
        });
    }
}
