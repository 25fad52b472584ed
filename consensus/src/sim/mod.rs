//! `sim`: a deterministic network of N engines.
//!
//! One seeded scheduler orders every event (message deliveries, timers, client transactions,
//! faults) on a simulated clock. Links delay, reorder, lose and duplicate messages; partitions
//! start and heal; crashes drop everything an engine did not persist, and restarts build a new
//! engine from what it did; Byzantine nodes pass their outgoing messages through an
//! [`adversary::Adversary`]. After every step the [`checker::Checker`] verifies agreement,
//! validity and durability. A failure carries its seed and the last events; the same seed replays
//! the same run exactly. Proof-of-work networks add simulated mining, rewinds and probabilistic
//! finality ([`pow`], [`SimConfig::proof_of_work`]).

pub mod adversary;
pub mod bank;
pub mod checker;
mod finality;
pub mod network;
pub mod pow;
pub mod scenario;

use std::collections::{BTreeMap, HashMap, VecDeque};

use std::fmt;
use synod_chain::hash::Hash;

use synod_chain::keys::{Address, SecretKey};
use synod_chain::ledger::{Account, Ledger, LedgerRules, StateChanges};
use synod_chain::store::EngineWrite;
use synod_chain::{Block, BlockHeader, Finality, SignedTransaction};

use crate::engine::{
    Action, ChainState, Command, Engine, EngineEvent, EngineStatus, Input, Message, Millis, NodeId,
    Restored, Role, SyncedBlock, TimerId,
};
use crate::rng::DetRng;
use adversary::Adversary;
use checker::{Checker, Violation};
use network::{Network, NetworkConfig};

/// What a new engine is told about its place in the simulated network.
#[derive(Clone, Debug)]
pub struct NodeSetup {
    /// Index of the node in the simulation.
    pub index: usize,
    /// Its validator id.
    pub me: NodeId,
    /// The genesis validator set.
    pub validators: Vec<NodeId>,
    /// Seed for this incarnation's randomness.
    pub seed: u64,
    /// The chain's ledger rules.
    pub ledger: Ledger,
    /// Its signing key (engines that sign their own messages need it).
    pub key: SecretKey,
}

/// A test's hand on the network: sees every message at send time (now, from, to) and returns what
/// to deliver instead (`None` drops it). Lets a script reproduce an exact interleaving.
pub type Interceptor<M> = Box<dyn FnMut(Millis, usize, usize, M) -> Option<M>>;

/// Builds an engine for a node, fresh or from its persisted state.
pub type EngineFactory<E> = Box<dyn Fn(&NodeSetup, Restored) -> Result<E, String>>;

/// A node's durable chain: what its store would hold.
#[derive(Clone, Debug)]
struct DurableChain {
    tip: BlockHeader,
    accounts: BTreeMap<Address, Account>,
    blocks: BTreeMap<u64, Block>,
    /// Finality proofs of the stored blocks, by height.
    proofs: BTreeMap<u64, Vec<u8>>,
    /// Accounts before each tentative block, by height, until it is final (the store's undo).
    undo: BTreeMap<u64, Vec<(Address, Account)>>,
}

/// A commit the store wrote without its own fsync (`replayable`): lost if the node crashes before
/// the next durable write, as a real store would lose it.
#[derive(Clone, Debug)]
struct DeferredCommit {
    /// The tip before the commit.
    previous_tip: BlockHeader,
    height: u64,
    changes: StateChanges,
}

struct SimNode<E: Engine> {
    id: NodeId,
    engine: Option<E>,
    engine_state: BTreeMap<Vec<u8>, Vec<u8>>,
    chain: DurableChain,
    /// Commits not yet made durable by a later write, oldest first.
    deferred: Vec<DeferredCommit>,
    /// Transactions clients got accepted by this node and that it has not committed: the node's
    /// journaled mempool, which survives a crash and is handed to the restarted engine.
    mempool: BTreeMap<Hash, (u64, SignedTransaction)>,
    timers: HashMap<TimerId, u64>,
    incarnation: u64,
    /// Crash after this many more actions of the next step (crash between two writes).
    crash_after_actions: Option<usize>,
    adversary: Option<Box<dyn Adversary<E::Message>>>,
    /// Misbehaves (an adversary, or an engine built to): exempt from agreement and validity.
    byzantine: bool,
}

enum EventKind<M> {
    Deliver {
        to: usize,
        from: usize,
        msg: M,
    },
    Timer {
        node: usize,
        id: TimerId,
        generation: u64,
        incarnation: u64,
    },
    Transactions {
        node: usize,
        txs: Vec<SignedTransaction>,
    },
    Command {
        node: usize,
        command: Command,
    },
    Synced {
        node: usize,
        blocks: Vec<SyncedBlock>,
    },
    Mined {
        node: usize,
        generation: u64,
        incarnation: u64,
        block: Box<Block>,
    },
}

/// Most blocks one simulated sync answer carries.
const SYNC_BATCH: u64 = 64;

/// One line of the trace kept for failure reports.
#[derive(Clone, Debug)]
struct TraceLine {
    time: Millis,
    node: usize,
    what: String,
}

/// A failed run: the seed that replays it, the broken invariant and the events before it.
#[derive(Clone, Debug)]
pub struct SimFailure {
    /// The run's seed.
    pub seed: u64,
    /// Simulated time of the failure.
    pub time: Millis,
    /// What broke.
    pub violation: Violation,
    /// The last events before it, oldest first.
    pub trace: Vec<String>,
}

impl fmt::Display for SimFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} violated at t={}ms: {}",
            self.violation.kind, self.time, self.violation.detail
        )?;
        writeln!(f, "replay with SYNOD_SEED={}", self.seed)?;
        writeln!(f, "last events:")?;
        for line in &self.trace {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

/// How a simulation is set up.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Seed of the scheduler, the network and every engine.
    pub seed: u64,
    /// Number of validators.
    pub nodes: usize,
    /// Link behaviour.
    pub network: NetworkConfig,
    /// Trace lines kept for failure reports.
    pub trace_len: usize,
    /// A proof-of-work network: mining, rewinds and probabilistic finality.
    pub proof_of_work: Option<pow::PowSimConfig>,
    /// Twins: `(node, of)` makes node `node` run validator `of`'s key as a second engine. Both
    /// receive what is sent to that validator and both send as it; both count as Byzantine.
    pub twins: Vec<(usize, usize)>,
    /// Nodes whose engines are built to misbehave (exempt from agreement, like an adversary's).
    pub byzantine: Vec<usize>,
}

impl SimConfig {
    /// `nodes` validators, a fast clean network, seed `seed`.
    pub fn new(seed: u64, nodes: usize) -> Self {
        SimConfig {
            seed,
            nodes,
            network: NetworkConfig::default(),
            // `SYNOD_TRACE=<lines>` keeps a longer trace when replaying a failure.
            trace_len: std::env::var("SYNOD_TRACE")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(48),
            proof_of_work: None,
            twins: Vec::new(),
            byzantine: Vec::new(),
        }
    }
}

/// A simulation of `E` engines.
pub struct Sim<E: Engine> {
    config: SimConfig,
    rng: DetRng,
    now: Millis,
    seq: u64,
    queue: BTreeMap<(Millis, u64), EventKind<E::Message>>,
    nodes: Vec<SimNode<E>>,
    ids: Vec<NodeId>,
    factory: EngineFactory<E>,
    ledger: Ledger,
    network: Network,
    checker: Checker,
    clients: bank::Clients,
    trace: VecDeque<TraceLine>,
    events: Vec<(Millis, usize, EngineEvent)>,
    /// Every commit: (time, node, height).
    commit_log: Vec<(Millis, usize, u64)>,
    interceptor: Option<Interceptor<E::Message>>,
    /// Order in which clients' transactions were accepted (a node's mempool hands them back in it).
    accept_seq: u64,
    /// Which node led each round (election safety: at most one).
    leaders: HashMap<u64, usize>,
    steps: u64,
    proof_of_work: Option<pow::PowSim>,
}

impl<E: Engine> Sim<E> {
    /// A network of `config.nodes` engines built by `factory`, all started at time 0.
    pub fn new(config: SimConfig, factory: EngineFactory<E>) -> Result<Self, SimFailure> {
        let fixture = bank::fixture();
        let ids: Vec<NodeId> = (0..config.nodes)
            .map(|i| bank::validator_key(validator_of(&config, i)).public())
            .collect();
        let genesis = fixture.genesis.block.header;
        let chain = DurableChain {
            tip: genesis,
            accounts: fixture.genesis.accounts.clone(),
            blocks: BTreeMap::new(),
            proofs: BTreeMap::new(),
            undo: BTreeMap::new(),
        };
        let nodes = ids
            .iter()
            .map(|id| SimNode {
                id: *id,
                engine: None,
                engine_state: BTreeMap::new(),
                chain: chain.clone(),
                timers: HashMap::new(),
                incarnation: 0,
                crash_after_actions: None,
                adversary: None,
                deferred: Vec::new(),
                mempool: BTreeMap::new(),
                byzantine: false,
            })
            .collect();
        let ledger = match &config.proof_of_work {
            Some(pow) => Ledger::new(LedgerRules {
                block_reward: pow.block_reward,
                ..fixture.ledger.rules().clone()
            }),
            None => fixture.ledger.clone(),
        };
        let mut checker = Checker::new(
            config.nodes,
            ledger.clone(),
            genesis,
            fixture.genesis.accounts.clone(),
        );
        let proof_of_work = config.proof_of_work.clone().map(|pow| {
            checker.use_probabilistic_finality();
            pow::PowSim::new(pow, config.nodes, fixture.genesis.block.clone())
        });
        let mut sim = Sim {
            rng: DetRng::new(config.seed),
            network: Network::new(config.network.clone()),
            config,
            now: 0,
            seq: 0,
            queue: BTreeMap::new(),
            nodes,
            ids,
            factory,
            ledger,
            checker,
            clients: bank::Clients::new(),
            trace: VecDeque::new(),
            events: Vec::new(),
            commit_log: Vec::new(),
            interceptor: None,
            leaders: HashMap::new(),
            accept_seq: 0,
            steps: 0,
            proof_of_work,
        };
        let misbehaving: Vec<usize> = (sim.config.twins.iter())
            .flat_map(|(node, of)| [*node, *of])
            .chain(sim.config.byzantine.iter().copied())
            .collect();
        for i in misbehaving {
            sim.set_byzantine(i);
        }
        for i in 0..sim.nodes.len() {
            sim.start_node(i)?;
        }
        Ok(sim)
    }

    /// The run's seed.
    pub fn seed(&self) -> u64 {
        self.config.seed
    }

    /// Simulated time.
    pub fn now(&self) -> Millis {
        self.now
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the simulation has no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Validator id of node `i`.
    pub fn id(&self, i: usize) -> NodeId {
        self.ids[i]
    }

    /// Index of the node with id `id`.
    pub fn index_of(&self, id: &NodeId) -> Option<usize> {
        self.ids.iter().position(|x| x == id)
    }

    /// Whether node `i` is running.
    pub fn is_up(&self, i: usize) -> bool {
        self.nodes[i].engine.is_some()
    }

    /// Node `i`'s engine, if it is running (for engine-specific checks in tests).
    pub fn engine(&self, i: usize) -> Option<&E> {
        self.nodes[i].engine.as_ref()
    }

    /// Node `i`'s engine status, if it is running.
    pub fn status(&self, i: usize) -> Option<EngineStatus> {
        self.nodes[i].engine.as_ref().map(Engine::status)
    }

    /// Node `i`'s durable chain height.
    pub fn height(&self, i: usize) -> u64 {
        self.nodes[i].chain.tip.height
    }

    /// Node `i`'s durable chain tip.
    pub fn tip(&self, i: usize) -> BlockHeader {
        self.nodes[i].chain.tip
    }

    /// The block node `i` stored at `height`, if it has it (snapshots leave gaps).
    pub fn block(&self, i: usize, height: u64) -> Option<&Block> {
        self.nodes[i].chain.blocks.get(&height)
    }

    /// Node `i`'s accounts.
    pub fn accounts(&self, i: usize) -> &BTreeMap<Address, Account> {
        &self.nodes[i].chain.accounts
    }

    /// The checker.
    pub fn checker(&self) -> &Checker {
        &self.checker
    }

    /// Engine events seen so far: (time, node, event).
    pub fn events(&self) -> &[(Millis, usize, EngineEvent)] {
        &self.events
    }

    /// Every commit so far: (time, node, height).
    pub fn commit_log(&self) -> &[(Millis, usize, u64)] {
        &self.commit_log
    }

    /// The events kept in the trace (the last `trace_len` of them), oldest first: what
    /// `synod simulate --trace` prints, and what a failure report ends with.
    pub fn trace_lines(&self) -> Vec<String> {
        self.trace
            .iter()
            .map(|l| format!("t={:>6} node {} {}", l.time, l.node, l.what))
            .collect()
    }

    /// Steps executed so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The running node that leads with the highest round, if any.
    pub fn leader(&self) -> Option<usize> {
        (0..self.nodes.len())
            .filter_map(|i| self.status(i).map(|s| (i, s)))
            .filter(|(_, s)| s.role == Role::Leader)
            .max_by_key(|(_, s)| s.round)
            .map(|(i, _)| i)
    }

    /// Highest durable height among running nodes.
    pub fn max_height(&self) -> u64 {
        (0..self.nodes.len())
            .filter(|i| self.is_up(*i))
            .map(|i| self.height(i))
            .max()
            .unwrap_or(0)
    }

    /// Network links, for faults.
    pub fn network_mut(&mut self) -> &mut Network {
        &mut self.network
    }

    /// Makes node `i` Byzantine: its outgoing messages pass through `adversary`, and its commits
    /// are exempt from agreement.
    pub fn set_adversary(&mut self, i: usize, adversary: Box<dyn Adversary<E::Message>>) {
        self.nodes[i].adversary = Some(adversary);
        self.set_byzantine(i);
    }

    /// Marks node `i` Byzantine (its engine misbehaves by construction): its commits, divergence
    /// and leadership claims are exempt from the checks.
    pub fn set_byzantine(&mut self, i: usize) {
        self.nodes[i].byzantine = true;
        self.checker.set_byzantine(i);
    }

    /// Whether node `i` is Byzantine.
    pub fn is_byzantine(&self, i: usize) -> bool {
        self.nodes[i].byzantine
    }

    /// Installs (or with `None` removes) a network interceptor.
    pub fn set_interceptor(&mut self, interceptor: Option<Interceptor<E::Message>>) {
        self.interceptor = interceptor;
    }

    /// Runs in small steps until `done` holds, failing with a liveness violation at `deadline`.
    pub fn run_until_true(
        &mut self,
        deadline: Millis,
        what: &str,
        mut done: impl FnMut(&Self) -> bool,
    ) -> Result<(), SimFailure> {
        while !done(self) {
            if self.now >= deadline {
                return Err(self.failure(Violation::new(
                    "liveness",
                    format!("{what}: not reached by t={deadline}ms"),
                )));
            }
            let next = (self.now + 5).min(deadline);
            self.run_until(next)?;
        }
        Ok(())
    }

    /// Runs until every transaction a client got accepted by an honest node has committed or was
    /// reported dropped, failing with a transaction-loss violation at `deadline`.
    pub fn run_until_settled(&mut self, deadline: Millis) -> Result<(), SimFailure> {
        self.run_until_true(deadline, "every accepted transaction settles", |s| {
            s.checker.check_all_settled().is_ok()
        })
        .map_err(|mut failure| {
            if let Err(v) = self.checker.check_all_settled() {
                failure.violation = v;
            }
            failure
        })
    }

    fn failure(&self, violation: Violation) -> SimFailure {
        SimFailure {
            seed: self.config.seed,
            time: self.now,
            violation,
            trace: self.trace_lines(),
        }
    }

    fn record(&mut self, node: usize, what: impl FnOnce() -> String) {
        if self.config.trace_len == 0 {
            return;
        }
        if self.trace.len() == self.config.trace_len {
            self.trace.pop_front();
        }
        self.trace.push_back(TraceLine {
            time: self.now,
            node,
            what: what(),
        });
    }

    fn schedule(&mut self, at: Millis, event: EventKind<E::Message>) {
        self.seq += 1;
        self.queue.insert((at, self.seq), event);
    }

    fn start_node(&mut self, i: usize) -> Result<(), SimFailure> {
        let node = &mut self.nodes[i];
        node.incarnation += 1;
        let mut validators: Vec<NodeId> = Vec::with_capacity(self.ids.len());
        for id in &self.ids {
            if !validators.contains(id) {
                validators.push(*id);
            }
        }
        let setup = NodeSetup {
            index: i,
            me: node.id,
            validators,
            seed: self.config.seed ^ ((i as u64 + 1) << 32) ^ node.incarnation,
            ledger: self.ledger.clone(),
            key: bank::validator_key(validator_of(&self.config, i)),
        };
        let restored = Restored {
            engine_state: node.engine_state.clone(),
            chain: ChainState {
                tip: node.chain.tip,
                accounts: node.chain.accounts.clone(),
            },
            recent: self.recent_blocks(i),
        };
        let engine = (self.factory)(&setup, restored).map_err(|e| {
            self.failure(Violation::new(
                "durability",
                format!("node {i} failed to restart: {e}"),
            ))
        })?;
        self.nodes[i].engine = Some(engine);
        self.nodes[i].crash_after_actions = None;
        self.record(i, || "start".into());
        self.input(i, Input::Start)?;
        // The node re-admits its journaled mempool: what its chain has not settled yet.
        let node = &mut self.nodes[i];
        let accounts = &node.chain.accounts;
        node.mempool.retain(|_, (_, tx)| {
            let t = tx.tx();
            accounts
                .get(&tx.sender())
                .is_none_or(|a| t.nonce >= a.nonce)
        });
        let mut pending: Vec<(u64, SignedTransaction)> = node.mempool.values().cloned().collect();
        pending.sort_by_key(|(seq, _)| *seq);
        if pending.is_empty() {
            return Ok(());
        }
        let txs = pending.into_iter().map(|(_, tx)| tx).collect();
        self.input(i, Input::Transactions(txs))
    }

    /// Crashes node `i`: its engine, timers and unpersisted state are gone, including commits that
    /// were written without an fsync of their own.
    pub fn crash(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if node.engine.take().is_some() {
            node.timers.clear();
            node.crash_after_actions = None;
            let lost = std::mem::take(&mut node.deferred);
            if let Some(first) = lost.first() {
                let chain = &mut node.chain;
                for undo in lost.iter().rev() {
                    for (address, change) in &undo.changes.accounts {
                        if change.before == Account::default() {
                            chain.accounts.remove(address);
                        } else {
                            chain.accounts.insert(*address, change.before);
                        }
                    }
                    chain.blocks.remove(&undo.height);
                    chain.proofs.remove(&undo.height);
                }
                chain.tip = first.previous_tip;
                let height = chain.tip.height;
                self.checker.on_rollback(i, height);
                self.record(i, || format!("crash, back to durable height {height}"));
            } else {
                self.record(i, || "crash".into());
            }
        }
    }

    /// Crashes node `i` after it has executed `actions` more actions of its next step: between
    /// two persistence writes, or between a write and the message it allowed. A node that is down
    /// is left alone (the crash would otherwise fire after some later restart).
    pub fn crash_after_actions(&mut self, i: usize, actions: usize) {
        if self.is_up(i) {
            self.nodes[i].crash_after_actions = Some(actions);
        }
    }

    /// Cancels a crash armed on node `i` that has not fired yet.
    pub fn disarm_crash(&mut self, i: usize) {
        self.nodes[i].crash_after_actions = None;
    }

    /// Restarts node `i` from its persisted state.
    pub fn restart(&mut self, i: usize) -> Result<(), SimFailure> {
        if self.nodes[i].engine.is_none() {
            self.start_node(i)?;
        }
        Ok(())
    }

    /// Clients submit `count` new transactions, each to one running honest node chosen at random,
    /// which accepts it: it is journaled in that node's mempool and handed to its engine. Clients
    /// never resubmit, so every accepted transaction must commit (or be reported dropped) through
    /// the system alone; the checker holds the run to that. Returns how many were accepted (none
    /// if no honest node is up).
    ///
    /// Byzantine nodes get none: the system owes nothing to a client served by one (it may
    /// swallow the transaction, as a silent replica does), and because these clients never
    /// resubmit, a swallowed transaction would leave a nonce gap that blocks every later
    /// transaction of its sender at every honest node for good. No engine could commit those, nor
    /// report them dropped without risking that the gap fills and they commit after all.
    pub fn submit(&mut self, count: usize) -> usize {
        let running: Vec<usize> = (0..self.nodes.len())
            .filter(|i| self.is_up(*i) && !self.nodes[*i].byzantine)
            .collect();
        if running.is_empty() {
            return 0;
        }
        let fresh = self.clients.next(count);
        self.checker.on_submit(&fresh);
        let mut per_node: BTreeMap<usize, Vec<SignedTransaction>> = BTreeMap::new();
        for tx in fresh {
            let node = running[self.rng.index(running.len())];
            self.accept_seq += 1;
            self.checker.on_accept(&tx, node);
            self.nodes[node]
                .mempool
                .insert(tx.id(), (self.accept_seq, tx.clone()));
            per_node.entry(node).or_default().push(tx);
        }
        let mut accepted = 0;
        for (node, txs) in per_node {
            accepted += txs.len();
            self.schedule(self.now, EventKind::Transactions { node, txs });
        }
        accepted
    }

    /// Delivers an operator command to node `i` now.
    pub fn command(&mut self, i: usize, command: Command) {
        self.schedule(self.now, EventKind::Command { node: i, command });
    }

    /// Runs until simulated time `until` (or the queue empties), checking after every step.
    pub fn run_until(&mut self, until: Millis) -> Result<(), SimFailure> {
        while let Some(entry) = self.queue.first_entry() {
            if entry.key().0 > until {
                break;
            }
            let ((at, _), event) = entry.remove_entry();
            self.now = at;
            self.steps += 1;

            self.step(event)?;
        }
        self.now = self.now.max(until);
        Ok(())
    }

    fn step(&mut self, event: EventKind<E::Message>) -> Result<(), SimFailure> {
        match event {
            EventKind::Deliver { to, from, msg } => {
                if self.nodes[to].engine.is_none() {
                    return Ok(());
                }
                self.record(to, || format!("<- {from} {}", msg.kind()));
                let from = self.ids[from];
                self.input(to, Input::Message { from, msg })
            }
            EventKind::Timer {
                node,
                id,
                generation,
                incarnation,
            } => {
                let n = &self.nodes[node];
                if n.engine.is_none()
                    || n.incarnation != incarnation
                    || n.timers.get(&id) != Some(&generation)
                {
                    return Ok(());
                }
                self.nodes[node].timers.remove(&id);
                self.record(node, || format!("timer {}", id.0));
                self.input(node, Input::Timer(id))
            }
            EventKind::Transactions { node, txs } => {
                if self.nodes[node].engine.is_none() {
                    return Ok(());
                }
                self.record(node, || format!("{} client transactions", txs.len()));
                self.input(node, Input::Transactions(txs))
            }
            EventKind::Command { node, command } => {
                if self.nodes[node].engine.is_none() {
                    return Ok(());
                }
                self.record(node, || format!("command {command:?}"));
                self.input(node, Input::Command(command))
            }
            EventKind::Synced { node, blocks } => {
                if self.nodes[node].engine.is_none() {
                    return Ok(());
                }
                self.record(node, || format!("synced {} blocks", blocks.len()));
                self.input(node, Input::Synced(blocks))
            }
            EventKind::Mined {
                node,
                generation,
                incarnation,
                block,
            } => self.on_mined(node, generation, incarnation, *block),
        }
    }

    /// Feeds one input to node `i` and executes its actions in order.
    fn input(&mut self, i: usize, input: Input<E::Message>) -> Result<(), SimFailure> {
        let mut actions = Vec::new();
        let now = self.engine_now();
        match self.nodes[i].engine.as_mut() {
            Some(engine) => engine.handle(now, input, &mut actions),
            None => return Ok(()),
        }
        for action in actions {
            if let Some(left) = self.nodes[i].crash_after_actions.as_mut() {
                if *left == 0 {
                    self.crash(i);
                    return Ok(());
                }
                *left -= 1;
            }
            self.execute(i, action)?;
        }
        Ok(())
    }

    fn apply_writes(&mut self, i: usize, writes: &[EngineWrite]) {
        let state = &mut self.nodes[i].engine_state;
        for write in writes {
            match write {
                EngineWrite::Put(k, v) => {
                    state.insert(k.clone(), v.clone());
                }
                EngineWrite::Delete(k) => {
                    state.remove(k);
                }
                EngineWrite::DeleteRange(from, to) => {
                    let keys: Vec<Vec<u8>> = state
                        .range(from.clone()..to.clone())
                        .map(|(k, _)| k.clone())
                        .collect();
                    for k in keys {
                        state.remove(&k);
                    }
                }
            }
        }
    }

    fn send(&mut self, from: usize, to: usize, msg: E::Message) {
        let now = self.now;
        let outgoing = match self.nodes[from].adversary.as_mut() {
            Some(adversary) => adversary.outgoing(&mut self.rng, now, self.ids[to], msg),
            None => vec![adversary::Outgoing { delay: 0, msg }],
        };
        for out in outgoing {
            let out = match self.interceptor.as_mut() {
                Some(intercept) => match intercept(now, from, to, out.msg) {
                    Some(msg) => adversary::Outgoing {
                        delay: out.delay,
                        msg,
                    },
                    None => continue,
                },
                None => out,
            };
            for delay in self.network.route(&mut self.rng, from, to) {
                self.schedule(
                    now + out.delay + delay,
                    EventKind::Deliver {
                        to,
                        from,
                        msg: out.msg.clone(),
                    },
                );
            }
        }
    }

    /// Answers node `i`'s request for blocks from `height` on out of node `from`'s durable chain,
    /// after a round trip over the network (nothing if the peer is down or a link drops it).
    fn serve_sync(&mut self, i: usize, from: NodeId, height: u64) {
        let Some(j) = self.index_of(&from).filter(|j| *j != i && self.is_up(*j)) else {
            return;
        };
        let there = self.network.route(&mut self.rng, i, j);
        let back = self.network.route(&mut self.rng, j, i);
        let (Some(there), Some(back)) = (there.first(), back.first()) else {
            return;
        };
        let chain = &self.nodes[j].chain;
        let blocks: Vec<SyncedBlock> = (height..height.saturating_add(SYNC_BATCH))
            .map_while(|h| {
                let block = chain.blocks.get(&h)?;
                Some(SyncedBlock {
                    block: block.clone(),
                    proof: chain.proofs.get(&h).cloned().unwrap_or_default(),
                })
            })
            .collect();
        if !blocks.is_empty() {
            self.schedule(
                self.now + there + back,
                EventKind::Synced { node: i, blocks },
            );
        }
    }

    fn execute(&mut self, i: usize, action: Action<E::Message>) -> Result<(), SimFailure> {
        match action {
            Action::Send { to, msg } => {
                // Twins share an id: both get what is sent to it.
                let targets: Vec<usize> = (0..self.nodes.len())
                    .filter(|j| *j != i && self.ids[*j] == to)
                    .collect();
                for j in targets {
                    self.send(i, j, msg.clone());
                }
            }
            Action::Broadcast(msg) => {
                let me = self.ids[i];
                let targets: Vec<usize> = (0..self.nodes.len())
                    .filter(|j| self.ids[*j] != me)
                    .collect();
                for j in targets {
                    self.send(i, j, msg.clone());
                }
            }
            Action::SetTimer { id, after } => {
                let node = &mut self.nodes[i];
                let generation = node.timers.get(&id).map_or(1, |g| g + 1);
                node.timers.insert(id, generation);
                let incarnation = node.incarnation;
                self.schedule(
                    self.now + after,
                    EventKind::Timer {
                        node: i,
                        id,
                        generation,
                        incarnation,
                    },
                );
            }
            Action::CancelTimer(id) => {
                self.nodes[i].timers.remove(&id);
            }
            Action::Persist(writes) => {
                // A durable write also makes every commit written before it durable.
                self.nodes[i].deferred.clear();
                self.apply_writes(i, &writes)
            }
            Action::Commit(committed) => {
                self.record(i, || {
                    format!(
                        "commit {} ({} txs) {}",
                        committed.block.header.height,
                        committed.block.txs.len(),
                        committed.block.hash().short()
                    )
                });
                let now = self.now;
                self.checker
                    .on_commit(now, i, &committed.block)
                    .map_err(|v| self.failure(v))?;
                self.apply_writes(i, &committed.persist);
                self.commit_log
                    .push((now, i, committed.block.header.height));
                let node = &mut self.nodes[i];
                for tx in &committed.block.txs {
                    node.mempool.remove(&tx.id());
                }
                if committed.replayable && committed.persist.is_empty() {
                    node.deferred.push(DeferredCommit {
                        previous_tip: node.chain.tip,
                        height: committed.block.header.height,
                        changes: committed.changes.clone(),
                    });
                } else {
                    node.deferred.clear();
                }
                let chain = &mut self.nodes[i].chain;
                for (address, change) in &committed.changes.accounts {
                    if change.after == Account::default() {
                        chain.accounts.remove(address);
                    } else {
                        chain.accounts.insert(*address, change.after);
                    }
                }
                chain.tip = committed.block.header;
                let height = committed.block.header.height;
                if committed.finality == Finality::Tentative {
                    let undo = committed
                        .changes
                        .accounts
                        .iter()
                        .map(|(address, change)| (*address, change.before))
                        .collect();
                    chain.undo.insert(height, undo);
                }
                chain.proofs.insert(height, committed.proof);
                chain.blocks.insert(height, committed.block);
                self.check_node_state(i)?;
            }
            Action::InstallSnapshot(snapshot) => {
                self.record(i, || format!("install snapshot {}", snapshot.header.height));
                self.checker
                    .on_snapshot(i, &snapshot.header, &snapshot.accounts)
                    .map_err(|v| self.failure(v))?;
                self.apply_writes(i, &snapshot.persist);
                let node = &mut self.nodes[i];
                node.deferred.clear();
                let accounts = &snapshot.accounts;
                node.mempool.retain(|_, (_, tx)| {
                    let t = tx.tx();
                    accounts
                        .get(&tx.sender())
                        .is_none_or(|a| t.nonce >= a.nonce)
                });
                let chain = &mut node.chain;
                chain.tip = snapshot.header;
                chain.accounts = snapshot.accounts;
            }
            Action::RequestSync { from, height } => {
                self.record(i, || {
                    format!("sync request from {} at {height}", from.short())
                });
                self.serve_sync(i, from, height);
            }
            Action::Rewind { height } => self.rewind(i, height)?,
            Action::Finalize { height } => self.finalize(i, height)?,
            Action::Mine(block) => self.start_mining(i, *block),
            Action::StopMining => self.stop_mining(i),
            Action::Event(event) => {
                if let EngineEvent::Divergence { height, detail } = &event
                    && !self.nodes[i].byzantine
                {
                    return Err(self.failure(Violation::new(
                        "validity",
                        format!("node {i} diverged at {height}: {detail}"),
                    )));
                }
                if let EngineEvent::TxDropped { id, reason } = &event
                    && self.nodes[i].adversary.is_none()
                {
                    self.checker
                        .on_dropped(i, *id, reason)
                        .map_err(|v| self.failure(v))?;
                }
                if let EngineEvent::RoleChanged { role, round, .. } = &event {
                    self.record(i, || format!("{} in round {round}", role.as_str()));
                    if *role == Role::Leader && !self.nodes[i].byzantine {
                        match self.leaders.insert(*round, i) {
                            Some(other) if other != i => {
                                return Err(self.failure(Violation::new(
                                    "election safety",
                                    format!("nodes {other} and {i} both led round {round}"),
                                )));
                            }
                            _ => {}
                        }
                    }
                }
                self.events.push((self.now, i, event));
            }
        }
        Ok(())
    }
}

/// The validator whose key node `i` runs: its own, or its twin's.
fn validator_of(config: &SimConfig, i: usize) -> usize {
    config
        .twins
        .iter()
        .find(|(node, _)| *node == i)
        .map_or(i, |(_, of)| *of)
}
