//! Proof of work in the simulator: engine factories, the simulated network's parameters, random
//! fault schedules for sweeps, and the convergence a healed network must reach.

use std::sync::{Arc, Mutex};

use synod_chain::hash::Hash;
use synod_chain::merkle::merkle_root;
use synod_chain::{Block, BlockHeader, SignedTransaction};
use synod_consensus::engine::{Millis, NodeId};
use synod_consensus::pow::{PowConfig, PowEngine, PowFault, PowMessage};
use synod_consensus::rng::DetRng;
use synod_consensus::sim::adversary::{Adversary, Outgoing, Rewriter};
use synod_consensus::sim::network::NetworkConfig;
use synod_consensus::sim::pow::{MiningModel, PowSimConfig, solve};
use synod_consensus::sim::scenario::{Scenario, Step, Target};
use synod_consensus::sim::{EngineFactory, Sim, SimConfig, SimFailure, bank};
use synod_genesis::PowParams;

/// Regtest's limit: about two hashes a block, so simulated mining stays cheap.
pub const EASY_BITS: u32 = 0x207f_ffff;

/// Simulated clock 0 is one second after the simulated genesis.
fn clock_origin() -> Millis {
    bank::fixture().genesis.block.header.timestamp_ms + 1_000
}

/// How the simulated proof-of-work network is built.
#[derive(Clone, Debug)]
pub struct PowOptions {
    /// The chain's parameters.
    pub params: PowParams,
    /// Each node's share of the hash power (`None`: equal shares for every node).
    pub shares: Option<Vec<f64>>,
    /// Nodes that do not mine at all (validate and relay only).
    pub followers: Vec<usize>,
    /// How often the whole network finds a block at the initial bits (`None`: exactly the
    /// target block time, so the difficulty holds still on average).
    pub mining_block_time_ms: Option<Millis>,
    /// A deliberately broken rule (tests of the checkers).
    pub fault: PowFault,
}

impl Default for PowOptions {
    fn default() -> Self {
        PowOptions {
            params: sim_params(),
            shares: None,
            followers: Vec::new(),
            mining_block_time_ms: None,
            fault: PowFault::None,
        }
    }
}

/// Parameters for simulations: easy targets, quarter-second blocks, a reorganisation limit of 12
/// blocks (so sweeps of a few seconds finalize blocks), a reward to check the supply against.
pub fn sim_params() -> PowParams {
    PowParams {
        initial_bits: EASY_BITS,
        pow_limit_bits: EASY_BITS,
        target_block_time_ms: 250,
        asert_half_life_ms: 5_000,
        max_future_block_time_ms: 2_000,
        max_reorg_depth: 12,
        block_reward: 50,
        max_block_txs: 500,
        ..PowParams::default()
    }
}

impl PowOptions {
    /// The simulator's side: clock, reward, restore depth and hash power.
    pub fn sim_config(&self, nodes: usize) -> PowSimConfig {
        let genesis_time = bank::fixture().genesis.block.header.timestamp_ms;
        let shares: Vec<f64> = (0..nodes)
            .map(|i| {
                if self.followers.contains(&i) {
                    0.0
                } else {
                    self.shares
                        .as_ref()
                        .and_then(|s| s.get(i).copied())
                        .unwrap_or(1.0)
                }
            })
            .collect();
        PowSimConfig {
            clock_origin_ms: clock_origin(),
            block_reward: self.params.block_reward,
            restored_blocks: PowEngine::restore_depth(&self.params, genesis_time)
                .unwrap_or(u64::MAX),
            mining: MiningModel::with_shares(
                &shares,
                self.mining_block_time_ms
                    .unwrap_or(self.params.target_block_time_ms),
                self.params.initial_bits,
            ),
        }
    }
}

/// A factory building proof-of-work engines with `options`.
pub fn pow_factory(options: PowOptions) -> EngineFactory<PowEngine> {
    Box::new(move |setup, restored| {
        let genesis_time = bank::fixture().genesis.block.header.timestamp_ms;
        let mut config = PowConfig::new(
            setup.me,
            setup.validators.clone(),
            options.params.clone(),
            genesis_time,
            setup.seed,
        );
        config.mining = !options.followers.contains(&setup.index);
        config.fault = options.fault;
        PowEngine::new(config, setup.ledger.clone(), restored).map_err(|e| e.to_string())
    })
}

/// A scripted proof-of-work scenario with `options`.
pub fn pow_scenario(
    name: &str,
    nodes: usize,
    seed: u64,
    options: &PowOptions,
) -> Scenario<PowEngine> {
    Scenario::new(name, nodes, seed).proof_of_work(options.sim_config(nodes))
}

/// Whether every running node holds the same tip.
pub fn converged(sim: &Sim<PowEngine>) -> bool {
    let mut tips = (0..sim.len())
        .filter(|i| sim.is_up(*i))
        .map(|i| sim.tip(i).hash());
    match tips.next() {
        Some(first) => tips.all(|t| t == first),
        None => false,
    }
}

/// Runs until every running node holds the same tip and every transaction an honest node accepted
/// is on every honest chain (or was reported dropped), at one and the same moment; fails at
/// `deadline`. Miners keep mining meanwhile, as a healed network does.
pub fn run_until_converged_and_settled(
    sim: &mut Sim<PowEngine>,
    deadline: Millis,
) -> Result<(), SimFailure> {
    sim.run_until_true(
        deadline,
        "the healed network converges with every transaction settled",
        |s| converged(s) && s.checker().check_all_settled().is_ok(),
    )
    .map_err(|mut failure| {
        if converged(sim)
            && let Err(v) = sim.checker().check_all_settled()
        {
            failure.violation = v;
        }
        failure
    })
}

/// A random fault schedule for proof-of-work sweeps: for `duration − 3 s`, crashes (clean or
/// between two actions of a step), partitions, one-way cuts and lossy periods, each lasting at
/// most 1.5 s so that no branch outgrows the reorganisation limit; a light load of transactions;
/// then everything heals and restarts. The caller then runs until convergence
/// ([`run_until_converged_and_settled`]).
pub fn pow_random_faults(
    seed: u64,
    nodes: usize,
    duration: Millis,
    options: &PowOptions,
) -> Scenario<PowEngine> {
    let mut rng = DetRng::new(seed ^ 0x90f_fa17);
    let network = NetworkConfig::random(&mut rng);
    let heal_at = duration.saturating_sub(3_000);
    let mut scenario = pow_scenario("random pow faults", nodes, seed, options)
        .network(network)
        .load(20, 200, heal_at);
    let mut t = 300;
    while t < heal_at {
        let node = rng.index(nodes);
        let back = (t + rng.range(100, 1_500)).min(heal_at);
        scenario = match rng.range(0, 5) {
            0 | 1 => scenario
                .at(t, Step::Crash(Target::Node(node)))
                .at(back, Step::Restart(Target::Node(node))),
            2 => scenario
                .at(
                    t,
                    Step::CrashAfterActions(Target::Node(node), rng.range(0, 8) as usize),
                )
                .at(back, Step::RestartAll),
            3 => {
                let mut groups = vec![Vec::new(), Vec::new()];
                for i in 0..nodes {
                    groups[rng.index(2)].push(i);
                }
                scenario.at(t, Step::Partition(groups)).at(back, Step::Heal)
            }
            4 => {
                let other = rng.index(nodes);
                scenario
                    .at(t, Step::BlockOneWay(vec![node], vec![other]))
                    .at(back, Step::Heal)
            }
            _ => scenario.at(t, Step::Loss(0.3)).at(back, Step::Loss(0.0)),
        };
        t += rng.range(300, 1_200);
    }
    scenario
        .at(heal_at, Step::Heal)
        .at(heal_at, Step::Loss(0.0))
        .at(heal_at, Step::RestartAll)
}

/// The simulator's configuration for a proof-of-work network of `nodes` with `options`, for tests
/// that drive [`Sim`] by hand (interceptors, adversaries).
pub fn pow_sim_config(seed: u64, nodes: usize, options: &PowOptions) -> SimConfig {
    let mut config = SimConfig::new(seed, nodes);
    config.proof_of_work = Some(options.sim_config(nodes));
    config
}

/// A selfish miner's outgoing traffic: everything it sends before `release_at` is held back and
/// delivered at `release_at`, so its blocks stay private until then.
pub struct Withholder {
    /// When the held messages go out.
    pub release_at: Millis,
}

impl<M> Adversary<M> for Withholder {
    fn outgoing(&mut self, _: &mut DetRng, now: Millis, _: NodeId, msg: M) -> Vec<Outgoing<M>> {
        vec![Outgoing {
            delay: self.release_at.saturating_sub(now),
            msg,
        }]
    }
}

/// How a forging miner corrupts the blocks it announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forgery {
    /// Stamped with the genesis time: not after the median time past.
    StaleTimestamp,
    /// Harder bits than the schedule's (re-mined, so the work is real).
    WrongBits,
    /// A body whose one transaction carries a forged signature (the root matches it).
    BadSignature,
    /// An empty body with a state root that is not the ledger's.
    BadStateRoot,
}

/// A miner that, instead of announcing each new tip, pushes a forged sibling of it to every peer:
/// the same parent and height, corrupted by the forgeries in turn (by height), with a real nonce
/// for its bits. Forged ids go into `forged`.
pub fn forger(forgeries: Vec<Forgery>, forged: Arc<Mutex<Vec<Hash>>>) -> Rewriter<PowMessage> {
    Rewriter {
        rewrite: Box::new(move |_, _, msg| match msg {
            PowMessage::Announce { headers } => {
                let Some(header) = headers.last() else {
                    return Vec::new();
                };
                let forgery = forgeries[header.height as usize % forgeries.len()];
                let block = forge(header, forgery);
                if let Ok(mut list) = forged.lock() {
                    list.push(block.hash());
                }
                vec![PowMessage::Blocks {
                    blocks: vec![block],
                }]
            }
            other => vec![other],
        }),
    }
}

fn forge(header: &BlockHeader, forgery: Forgery) -> Block {
    let mut header = *header;
    let mut txs = Vec::new();
    match forgery {
        Forgery::StaleTimestamp => {
            header.timestamp_ms = bank::fixture().genesis.block.header.timestamp_ms;
        }
        Forgery::WrongBits => header.seal.bits = 0x2000_ffff,
        Forgery::BadSignature => {
            let (tx, mut signature) = bank::transfer(0, 0).clone().into_parts();
            signature.0[7] ^= 0x40;
            let tx = SignedTransaction::from_parts(tx, signature);
            header.tx_root = merkle_root(&[tx.id()]);
            txs.push(tx);
        }
        Forgery::BadStateRoot => {
            header.tx_root = merkle_root(&[]);
            header.state_root = Hash([0xab; 32]);
        }
    }
    // The forged block must differ from the real one even when the corruption happens to be a
    // no-op (an empty real block with the forged root), so the proposer changes too.
    header.proposer = bank::validator_key(99).public();
    solve(&mut header);
    Block { header, txs }
}
