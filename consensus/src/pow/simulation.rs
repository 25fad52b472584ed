//! Proof of work in the simulator: the engine factory with the knobs scenarios need, the
//! simulated network's parameters (easy targets, quarter-second blocks, hash-power shares), the
//! random fault schedules of seed sweeps, the convergence a healed network must reach, and the
//! misbehaving miners of [`byzantine`]. Shared by the test suites and `synod simulate`.
//!
//! Miners never stop extending the chain, so a healed network is not checked at a fixed time
//! (the next block could always be in flight): a sweep's seed runs its fault schedule and then
//! until every running honest node holds one tip with every accepted transaction on it
//! ([`run_random_schedule`]).

pub mod byzantine;

use synod_genesis::PowParams;

use super::{PowConfig, PowEngine, PowFault};
use crate::engine::Millis;
use crate::rng::DetRng;
use crate::sim::network::NetworkConfig;
use crate::sim::pow::{MiningModel, PowSimConfig};
use crate::sim::scenario::{FaultMix, Scenario, Step, Target};
use crate::sim::{EngineFactory, Sim, SimConfig, SimFailure, bank};

pub use byzantine::{Forgery, PowBehaviour, UnknownBehaviour, Withholder, adversary, forger};

/// Regtest's limit: about two hashes a block, so simulated mining stays cheap.
pub const EASY_BITS: u32 = 0x207f_ffff;

/// How long before its end a random schedule heals (every partition gone, every node up).
pub const HEAL_BEFORE_END_MS: Millis = 3_000;

/// How long after a random schedule's end the healed network may take to converge.
pub const SETTLE_MS: Millis = 20_000;

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

/// The simulator's configuration for a proof-of-work network of `nodes` with `options`, for
/// drivers that build a [`Sim`] by hand (interceptors, adversaries set mid-run).
pub fn pow_sim_config(seed: u64, nodes: usize, options: &PowOptions) -> SimConfig {
    let mut config = SimConfig::new(seed, nodes);
    config.proof_of_work = Some(options.sim_config(nodes));
    config
}

/// Whether every running node holds the same tip.
pub fn converged(sim: &Sim<PowEngine>) -> bool {
    tips_agree(sim, |_| true)
}

/// Whether every running honest node holds the same tip (a Byzantine miner may stay on a branch
/// of its own, beyond the reorganisation limit).
pub fn honest_converged(sim: &Sim<PowEngine>) -> bool {
    tips_agree(sim, |i| !sim.is_byzantine(i))
}

/// Whether the running nodes `counts` selects hold the same tip (false if there are none).
fn tips_agree(sim: &Sim<PowEngine>, counts: impl Fn(usize) -> bool) -> bool {
    let mut tips = (0..sim.len())
        .filter(|i| sim.is_up(*i) && counts(*i))
        .map(|i| sim.tip(i).hash());
    match tips.next() {
        Some(first) => tips.all(|t| t == first),
        None => false,
    }
}

/// Runs until every running node holds the same tip ([`converged`]) and every transaction an
/// honest node accepted is on every honest chain (or was reported dropped), at one and the same
/// moment; fails at `deadline`. Miners keep mining meanwhile, as a healed network does.
pub fn run_until_converged_and_settled(
    sim: &mut Sim<PowEngine>,
    deadline: Millis,
) -> Result<(), SimFailure> {
    run_until_one_tip_and_settled(sim, deadline, converged)
}

/// [`run_until_converged_and_settled`] with the convergence `on_one_tip` checks.
fn run_until_one_tip_and_settled(
    sim: &mut Sim<PowEngine>,
    deadline: Millis,
    on_one_tip: fn(&Sim<PowEngine>) -> bool,
) -> Result<(), SimFailure> {
    sim.run_until_true(
        deadline,
        "the healed network converges with every transaction settled",
        |s| on_one_tip(s) && s.checker().check_all_settled().is_ok(),
    )
    .map_err(|mut failure| {
        if on_one_tip(sim)
            && let Err(v) = sim.checker().check_all_settled()
        {
            failure.violation = v;
        }
        failure
    })
}

/// When a random schedule of `duration` heals: [`HEAL_BEFORE_END_MS`] before its end.
pub fn heal_time(duration: Millis) -> Millis {
    duration.saturating_sub(HEAL_BEFORE_END_MS)
}

/// A random fault schedule for proof-of-work sweeps: until [`heal_time`], crashes (clean or
/// between two actions of a step), partitions, one-way cuts and lossy periods, each lasting at
/// most 1.5 s so that no branch outgrows the reorganisation limit, on a network that loses and
/// duplicates messages; a light load of transactions; then everything heals and restarts. Run it
/// with [`run_random_schedule`].
pub fn pow_random_faults(
    seed: u64,
    nodes: usize,
    duration: Millis,
    options: &PowOptions,
) -> Scenario<PowEngine> {
    pow_random_faults_of(seed, nodes, duration, options, FaultMix::ALL)
}

/// [`pow_random_faults`] drawing only the kinds in `mix`: a slot whose kind is left out stays
/// quiet and skips that kind's own draws, so a seed replays exactly with the same mix, but the
/// same seed with another mix is another schedule. Without `loss` the network neither loses
/// nor duplicates messages.
pub fn pow_random_faults_of(
    seed: u64,
    nodes: usize,
    duration: Millis,
    options: &PowOptions,
    mix: FaultMix,
) -> Scenario<PowEngine> {
    let mut rng = DetRng::new(seed ^ 0x90f_fa17);
    let mut network = NetworkConfig::random(&mut rng);
    if !mix.loss {
        network.loss = 0.0;
        network.duplicate = 0.0;
    }
    let heal_at = heal_time(duration);
    let mut scenario = pow_scenario("random pow faults", nodes, seed, options)
        .network(network)
        .load(20, 200, heal_at);
    let mut t = 300;
    while t < heal_at {
        let node = rng.index(nodes);
        let back = (t + rng.range(100, 1_500)).min(heal_at);
        let kind = rng.range(0, 5);
        let allowed = match kind {
            0..=2 => mix.crash,
            3 | 4 => mix.partition,
            _ => mix.loss,
        };
        if allowed {
            scenario = match kind {
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
        }
        t += rng.range(300, 1_200);
    }
    scenario
        .at(heal_at, Step::Heal)
        .at(heal_at, Step::Loss(0.0))
        .at(heal_at, Step::RestartAll)
}

/// Runs `scenario`, a random schedule of `duration` ([`pow_random_faults`]), on engines built
/// with `options`; then runs until the honest nodes converged ([`honest_converged`]: Byzantine
/// ones are exempt, as everywhere in the simulator) with every transaction settled, failing
/// [`SETTLE_MS`] after `duration`.
pub fn run_random_schedule(
    scenario: Scenario<PowEngine>,
    options: PowOptions,
    duration: Millis,
) -> Result<Sim<PowEngine>, SimFailure> {
    let mut sim = scenario.run(pow_factory(options))?;
    run_until_one_tip_and_settled(&mut sim, duration + SETTLE_MS, honest_converged)?;
    Ok(sim)
}
