//! Proof of work as a pure state machine: permissionless SHA-256d mining on a block tree, the
//! heaviest valid chain as the canonical one, and reorganisations onto heavier branches.
//!
//! The engine keeps every valid block it learns of in a [`tree`], each with its cumulative work;
//! the canonical tip is the block with the most work whose branch is valid (the first seen wins
//! a tie). When a heavier branch appears the engine validates it against the state at the fork
//! point and, if it holds, asks the driver to rewind to the fork point and commit the branch
//! ([`fork_choice`]). Blocks buried deeper than `max_reorg_depth` are final: the engine never
//! rewinds them and tells the driver so ([`Action::Finalize`]). Mining is driven by actions: the
//! engine hands the driver a template ([`Action::Mine`]) whenever its tip or its pool changes and
//! validates what comes back like any other block ([`mining`]). Blocks spread by announce + fetch
//! and a node that fell behind catches up headers first ([`sync`]); transactions are relayed to
//! every miner ([`relay`]). Nothing is persisted beyond what the store keeps ([`restore`]).
//!
//! Time enters only as `now` (close to wall-clock milliseconds, used for template timestamps and
//! the future-timestamp rule) and randomness only from the configured seed. How the simulator
//! builds, sweeps and corrupts these engines is [`simulation`].

mod control;
mod difficulty;
mod early;
mod fork_choice;
mod intake;
mod ledger_view;
pub mod messages;
mod mining;
mod orphans;
mod relay;
mod restore;
pub mod simulation;
mod sync;
mod tree;
mod validation;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};

use synod_chain::TxVerifier;
use synod_chain::hash::Hash;
use synod_chain::keys::Address;
use synod_chain::ledger::{Account, Ledger};
use synod_genesis::PowParams;

use crate::engine::{
    Action, Command, Engine, EngineEvent, EngineStatus, Input, Millis, NodeId, Restored, Role,
    TimerId,
};
use crate::pool::TxPool;
use crate::rng::DetRng;
use difficulty::DifficultyRule;
use early::EarlyArrivals;
pub use messages::PowMessage;
use orphans::OrphanPool;
pub use restore::{PowStateError, chainwork_from_proof};
use tree::BlockTree;
pub use validation::Rejection;

/// The periodic sync: ask a peer for headers, re-request bodies that did not come, relay old
/// transactions again.
pub const SYNC_TIMER: TimerId = TimerId(1);
/// The pause after new transactions before the mining template is rebuilt.
pub const TEMPLATE_TIMER: TimerId = TimerId(2);
/// Blocks from the future are due.
pub const EARLY_TIMER: TimerId = TimerId(3);

/// Most peers remembered (the configured ones plus those heard from).
const MAX_PEERS: usize = 256;
/// Most ids of invalid blocks remembered, so re-announcements cost nothing.
const MAX_INVALID: usize = 10_000;
/// Most blocks off the canonical chain (side branches and headers ahead), beyond which the
/// lightest leaves are evicted.
const MAX_OFF_CHAIN: usize = 4_096;
/// Most block bodies being fetched at once.
const MAX_BODIES_IN_FLIGHT: usize = 64;

/// How a proof-of-work engine is set up.
#[derive(Clone, Debug)]
pub struct PowConfig {
    /// This node's key: the `proposer` of the blocks it mines, so the reward and the fees go to
    /// its address.
    pub me: NodeId,
    /// Peers known at start (the genesis miners); others are learned from their messages.
    pub peers: Vec<NodeId>,
    /// The chain's proof-of-work parameters (genesis).
    pub params: PowParams,
    /// The genesis timestamp, the anchor of ASERT difficulty.
    pub genesis_time_ms: u64,
    /// Whether this node mines (otherwise it validates and relays only).
    pub mining: bool,
    /// The key mined blocks name as proposer, which the ledger pays (default: `me`).
    pub payout: NodeId,
    /// Seed of the engine's randomness (which peer to sync from).
    pub seed: u64,
    /// Most transactions the pool holds.
    pub pool_capacity: usize,
    /// Period of the sync timer; also how long a body request may go unanswered.
    pub sync_interval_ms: Millis,
    /// Pause after new transactions before the template is rebuilt, so a burst costs one.
    pub template_delay_ms: Millis,
    /// How long a pending transaction waits before it is relayed again.
    pub relay_interval_ms: Millis,
    /// Test-only: a deliberately broken rule, to show the simulator's checkers catch it. Always
    /// [`PowFault::None`] outside tests; no genesis or config file can set it.
    pub fault: PowFault,
}

/// Deliberately broken rules, for tests of the simulator's checkers only. Without the
/// `test-faults` feature only [`PowFault::None`] exists, so no build of the node can run another.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PowFault {
    /// The correct rules.
    #[default]
    None,
    /// A reorganisation drops the abandoned blocks' transactions instead of giving them back.
    #[cfg(feature = "test-faults")]
    LoseAbandonedTransactions,
    /// A reorganisation rewinds the chain but not the engine's own accounts.
    #[cfg(feature = "test-faults")]
    KeepStateOnReorg,
}

impl PowFault {
    /// Whether a reorganisation gives the abandoned transactions back.
    fn gives_back(self) -> bool {
        match self {
            #[cfg(feature = "test-faults")]
            PowFault::LoseAbandonedTransactions => false,
            _ => true,
        }
    }

    /// Whether a reorganisation undoes the engine's accounts.
    fn undoes_state(self) -> bool {
        match self {
            #[cfg(feature = "test-faults")]
            PowFault::KeepStateOnReorg => false,
            _ => true,
        }
    }
}

impl PowConfig {
    /// A mining node with timings scaled to the target block time.
    pub fn new(
        me: NodeId,
        peers: Vec<NodeId>,
        params: PowParams,
        genesis_time_ms: u64,
        seed: u64,
    ) -> Self {
        let block = params.target_block_time_ms.max(1);
        PowConfig {
            me,
            peers,
            genesis_time_ms,
            mining: true,
            payout: me,
            seed,
            pool_capacity: 200_000,
            sync_interval_ms: (block / 2).clamp(100, 2_000),
            template_delay_ms: (block / 20).clamp(10, 500),
            relay_interval_ms: (4 * block).clamp(500, 30_000),
            fault: PowFault::None,
            params,
        }
    }
}

/// The blocks this engine fetches from a peer's store after falling too far behind for
/// headers-first sync.
#[derive(Clone, Copy, Debug)]
struct StoreSync {
    peer: NodeId,
    /// The peer's tip height as it last said.
    target: u64,
    asked_at: Millis,
}

/// Ids remembered up to a bound, the oldest forgotten first.
#[derive(Clone, Debug, Default)]
struct BoundedSet {
    set: HashSet<Hash>,
    order: VecDeque<Hash>,
}

impl BoundedSet {
    fn insert(&mut self, hash: Hash) {
        if self.set.insert(hash) {
            self.order.push_back(hash);
            while self.order.len() > MAX_INVALID {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }

    fn contains(&self, hash: &Hash) -> bool {
        self.set.contains(hash)
    }
}

/// The proof-of-work engine.
pub struct PowEngine {
    me: NodeId,
    /// The key mined blocks name as proposer (paid the reward and fees); `me` unless the
    /// operator said otherwise ([`PowEngine::set_mining`]).
    payout: NodeId,
    params: PowParams,
    ledger: Ledger,
    difficulty: DifficultyRule,
    rng: DetRng,
    tree: BlockTree,
    /// Accounts at the canonical tip.
    accounts: BTreeMap<Address, Account>,
    /// The highest height never to be rewound.
    finalized: u64,
    pool: TxPool,
    /// Whether the pool is past its high-water mark.
    pressure: crate::pressure::Backpressure,
    verifier: TxVerifier,
    peers: BTreeSet<NodeId>,
    invalid: BoundedSet,
    orphans: OrphanPool,
    early: EarlyArrivals,
    store_sync: Option<StoreSync>,
    /// The last store-sync answer did not connect above our tip: ask from the finalized height.
    store_sync_from_finalized: bool,
    mining: bool,
    template_armed: bool,
    sync_interval_ms: Millis,
    template_delay_ms: Millis,
    relay_interval_ms: Millis,
    fault: PowFault,
    now: Millis,
}

impl PowEngine {
    /// An engine resuming from the store's chain. `restored.recent` should hold the last
    /// [`PowEngine::restore_depth`] canonical blocks (all of them if the chain is shorter); with
    /// fewer, the engine treats everything it cannot rewind or validate above as final. It must
    /// end at the chain's tip and be consecutive, or the state is refused as inconsistent.
    pub fn new(
        config: PowConfig,
        ledger: Ledger,
        restored: Restored,
    ) -> Result<Self, PowStateError> {
        let difficulty = DifficultyRule::new(&config.params, config.genesis_time_ms)
            .map_err(PowStateError::Params)?;
        if config.params.max_reorg_depth == 0 {
            return Err(PowStateError::Params(
                "max_reorg_depth must be at least 1".into(),
            ));
        }
        let chain = restore::restore(&restored, config.params.initial_bits, difficulty.ancestry())?;
        let mut peers: BTreeSet<NodeId> = config.peers.iter().copied().collect();
        peers.remove(&config.me);
        let mut engine = PowEngine {
            me: config.me,
            payout: config.payout,
            ledger,
            difficulty,
            rng: DetRng::new(config.seed),
            tree: BlockTree::from_chain(chain.nodes),
            accounts: restored.chain.accounts,
            finalized: 0,
            pool: TxPool::new(config.pool_capacity),
            pressure: crate::pressure::Backpressure::for_capacity(config.pool_capacity),
            verifier: TxVerifier::default(),
            peers,
            invalid: BoundedSet::default(),
            orphans: OrphanPool::default(),
            early: EarlyArrivals::default(),
            store_sync: None,
            store_sync_from_finalized: false,
            mining: config.mining,
            template_armed: false,
            sync_interval_ms: config.sync_interval_ms.max(1),
            template_delay_ms: config.template_delay_ms,
            relay_interval_ms: config.relay_interval_ms,
            fault: config.fault,
            now: 0,
            params: config.params,
        };
        engine.set_finalized(chain.finalized);
        Ok(engine)
    }

    /// How many recent canonical blocks the driver must hand a restarting engine with these
    /// parameters ([`Restored::recent`], read with `Store::recent_blocks`).
    pub fn restore_depth(params: &PowParams, genesis_time_ms: u64) -> Result<u64, PowStateError> {
        let rule = DifficultyRule::new(params, genesis_time_ms).map_err(PowStateError::Params)?;
        Ok(restore::restore_depth(params, &rule))
    }

    /// The canonical tip's id.
    pub fn tip_hash(&self) -> Hash {
        self.tree.tip().hash
    }

    /// The canonical tip's cumulative work.
    pub fn tip_chainwork(&self) -> synod_chain::pow::work::Chainwork {
        self.tree.tip().chainwork
    }

    /// The highest height this engine will never rewind below.
    pub fn finalized_height(&self) -> u64 {
        self.finalized
    }

    /// Blocks and headers the engine holds (canonical, side branches, headers ahead).
    pub fn tree_len(&self) -> usize {
        self.tree.len()
    }

    /// Orphan blocks held.
    pub fn orphan_count(&self) -> usize {
        self.orphans.len()
    }

    /// Blocks and headers held because their timestamps are ahead of the clock.
    pub fn early_count(&self) -> usize {
        self.early.len()
    }

    fn role(&self) -> Role {
        if self.mining {
            Role::Miner
        } else {
            Role::Follower
        }
    }

    fn learn_peer(&mut self, peer: NodeId) {
        if peer != self.me && self.peers.len() < MAX_PEERS {
            self.peers.insert(peer);
        }
    }

    fn random_peer(&mut self) -> Option<NodeId> {
        if self.peers.is_empty() {
            return None;
        }
        let index = self.rng.index(self.peers.len());
        self.peers.iter().nth(index).copied()
    }

    /// Raises the finalized height (never lowers it) and drops what it makes unreachable.
    fn set_finalized(&mut self, height: u64) {
        if height < self.finalized {
            return;
        }
        let from = self.finalized;
        self.finalized = self.finalized.max(height);
        // Side branches forking below the finalized height can never be followed, and the
        // blocks at or below it are never rewound: their bodies and undo data can go.
        for h in from.max(self.tree.base())..=self.finalized {
            let Some(hash) = self.tree.canonical_at(h).map(|n| n.hash) else {
                continue;
            };
            if h < self.finalized {
                for side in self.tree.side_children(&hash) {
                    self.tree.remove_branch(&side);
                }
            }
            if h > 0
                && let Some(node) = self.tree.get_mut(&hash)
            {
                node.body = None;
                node.undo = None;
            }
        }
        self.tree
            .prune_below(self.finalized.saturating_sub(self.difficulty.ancestry()));
    }

    fn event(out: &mut Vec<Action<PowMessage>>, event: EngineEvent) {
        out.push(Action::Event(event));
    }

    fn on_command(&mut self, command: Command, out: &mut Vec<Action<PowMessage>>) {
        let reason = match command {
            Command::Propose => "proof of work mines continuously; there is nothing to propose",
            Command::TransferLeadership(_) => "proof of work has no leader",
            Command::AddValidator(_) | Command::RemoveValidator(_) => {
                "proof of work is permissionless: anyone may mine"
            }
        };
        Self::event(
            out,
            EngineEvent::CommandRejected {
                reason: reason.into(),
            },
        );
    }

    fn on_start(&mut self, out: &mut Vec<Action<PowMessage>>) {
        Self::event(
            out,
            EngineEvent::RoleChanged {
                role: self.role(),
                round: 0,
                leader: None,
            },
        );
        out.push(Action::Finalize {
            height: self.finalized,
        });
        let after = self.rng.range(1, self.sync_interval_ms);
        out.push(Action::SetTimer {
            id: SYNC_TIMER,
            after,
        });
        // Whatever happened while this node was away, its peers know: ask them all.
        let locator = self.locator(&self.tip_hash());
        out.push(Action::Broadcast(PowMessage::GetHeaders { locator }));
        if self.mining {
            self.refresh_template(out);
        } else {
            out.push(Action::StopMining);
        }
    }

    fn on_timer(&mut self, id: TimerId, out: &mut Vec<Action<PowMessage>>) {
        match id {
            SYNC_TIMER => {
                self.pool.expire(self.now);
                self.on_sync_timer(out)
            }
            TEMPLATE_TIMER => {
                self.template_armed = false;
                self.refresh_template(out);
            }
            EARLY_TIMER => self.on_early_timer(out),
            _ => {}
        }
    }

    fn on_message(&mut self, from: NodeId, msg: PowMessage, out: &mut Vec<Action<PowMessage>>) {
        self.learn_peer(from);
        match msg {
            PowMessage::Announce { headers } => self.on_announce(from, headers, out),
            PowMessage::GetHeaders { locator } => self.on_get_headers(from, locator, out),
            PowMessage::Headers {
                headers,
                tip_height,
            } => self.on_headers(from, headers, tip_height, out),
            PowMessage::GetBlocks { hashes } => self.on_get_blocks(from, hashes, out),
            PowMessage::Blocks { blocks } => self.on_blocks(Some(from), blocks, out),
            PowMessage::Transactions { txs } => self.on_relayed(from, txs, out),
        }
    }
}

impl Engine for PowEngine {
    type Message = PowMessage;

    fn handle(&mut self, now: Millis, input: Input<PowMessage>, out: &mut Vec<Action<PowMessage>>) {
        self.now = now;
        match input {
            Input::Start => self.on_start(out),
            Input::Message { from, msg } => self.on_message(from, msg, out),
            Input::Timer(id) => self.on_timer(id, out),
            Input::Transactions(txs) => self.on_transactions(txs, out),
            Input::BlockMined(block) => self.on_block_mined(block, out),
            Input::Command(command) => self.on_command(command, out),
            Input::Synced(blocks) => self.on_synced(blocks, out),
            Input::Withdrawn(ids) => self.pool.withdraw(&ids),
        }
        let accounts = &self.accounts;
        self.pressure.observe(now, &self.pool, 0, |a| {
            accounts.get(a).map_or(0, |account| account.nonce)
        });
    }

    fn status(&self) -> EngineStatus {
        let mut members: Vec<NodeId> = self.peers.iter().copied().collect();
        members.push(self.me);
        members.sort();
        EngineStatus {
            role: self.role(),
            round: 0,
            leader: None,
            committed_height: self.tree.tip().height(),
            last_height: self.tree.best().height().max(self.tree.tip().height()),
            members,
            pending_txs: self.pool.len(),
            overloaded: self.pressure.is_on(),
        }
    }
}
