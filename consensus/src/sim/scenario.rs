//! Scenarios that read as sentences: crash the leader at t, partition {0,1}|{2,3,4} for 2 s,
//! heal, expect height >= h by t + 5 s. Also the random fault schedules of the seed sweeps.

use super::adversary::Adversary;
use super::network::NetworkConfig;
use super::{EngineFactory, Sim, SimConfig, SimFailure};
use crate::engine::{Command, Engine, Millis, Role};
use crate::sim::checker::Violation;

/// Which node a step acts on, resolved when the step runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Node `i`.
    Node(usize),
    /// The current leader (highest round among running leaders).
    Leader,
    /// The `k`-th running node that is not the leader.
    Follower(usize),
}

/// A custom check run at a point of a scenario.
pub type CheckFn<E> = Box<dyn Fn(&Sim<E>) -> Result<(), String>>;

/// A fault or action at a point in simulated time.
pub enum Step<E: Engine> {
    /// Crash a node.
    Crash(Target),
    /// Crash the leader, if there is one at that moment.
    CrashLeaderIfAny,
    /// Crash a node after it executes this many actions of its next step.
    CrashAfterActions(Target, usize),
    /// Restart a node from its persisted state.
    Restart(Target),
    /// Restart every crashed node and disarm every crash armed with [`Step::CrashAfterActions`]
    /// that has not fired yet (it would otherwise fire after the restart).
    RestartAll,
    /// Split into groups that cannot reach each other.
    Partition(Vec<Vec<usize>>),
    /// Cut the current leader off from everyone.
    IsolateLeader,
    /// Drop messages from these nodes to those (one direction).
    BlockOneWay(Vec<usize>, Vec<usize>),
    /// Remove all partitions.
    Heal,
    /// Set the loss probability.
    Loss(f64),
    /// Submit this many client transactions.
    Submit(usize),
    /// Send an operator command to a node.
    Command(Target, Command),
    /// A custom check; an error fails the run.
    Check(&'static str, CheckFn<E>),
}

/// What must hold at a given time.
#[derive(Clone, Debug)]
enum Expectation {
    /// Some running node's chain reaches this height.
    Height(u64),
    /// Every running honest node has the same chain tip.
    Converged,
    /// Commits resumed after `since`: the decided height grew by at least `blocks`.
    ProgressSince { since: Millis, blocks: u64 },
    /// These nodes committed nothing since `since`.
    NoCommits { nodes: Vec<usize>, since: Millis },
    /// Every transaction an honest node accepted has committed or was reported dropped.
    AllSettled,
}

/// A scripted simulation.
pub struct Scenario<E: Engine> {
    name: String,
    config: SimConfig,
    steps: Vec<(Millis, Step<E>)>,
    expectations: Vec<(Millis, Expectation)>,
    load: Option<(usize, Millis, Millis)>,
    end: Millis,
    adversaries: Vec<(usize, BoxedAdversary<E>)>,
}

/// A Byzantine node's adversary, as a scenario holds it.
pub type BoxedAdversary<E> = Box<dyn Adversary<<E as Engine>::Message>>;

impl<E: Engine> Scenario<E> {
    /// A scenario called `name` with `nodes` validators and seed `seed`.
    pub fn new(name: &str, nodes: usize, seed: u64) -> Self {
        Scenario {
            name: name.to_string(),
            config: SimConfig::new(seed, nodes),
            steps: Vec::new(),
            expectations: Vec::new(),
            load: None,
            end: 0,
            adversaries: Vec::new(),
        }
    }

    /// Makes node `node` Byzantine from the start: its outgoing messages pass through
    /// `adversary` (and its commits are exempt from agreement).
    pub fn adversary(mut self, node: usize, adversary: BoxedAdversary<E>) -> Self {
        self.adversaries.push((node, adversary));
        self
    }

    /// Keeps the last `lines` events for the failure report and [`Sim::trace_lines`].
    pub fn trace(mut self, lines: usize) -> Self {
        self.config.trace_len = lines;
        self
    }

    /// Uses this network.
    pub fn network(mut self, network: NetworkConfig) -> Self {
        self.config.network = network;
        self
    }

    /// Plays a proof-of-work network (mining, rewinds, probabilistic finality).
    pub fn proof_of_work(mut self, pow: super::pow::PowSimConfig) -> Self {
        self.config.proof_of_work = Some(pow);
        self
    }

    /// Marks `nodes` Byzantine: their engines are built to misbehave (the factory decides how),
    /// so they are exempt from agreement and from convergence.
    pub fn byzantine(mut self, nodes: Vec<usize>) -> Self {
        self.config.byzantine = nodes;
        self
    }

    /// Runs twins: each `(node, of)` makes `node` a second engine with validator `of`'s key.
    pub fn twins(mut self, pairs: Vec<(usize, usize)>) -> Self {
        self.config.twins = pairs;
        self
    }

    /// Does `step` at time `at`.
    pub fn at(mut self, at: Millis, step: Step<E>) -> Self {
        self.end = self.end.max(at);
        self.steps.push((at, step));
        self
    }

    /// Submits `per_second` client transactions per second between `from` and `until`.
    pub fn load(mut self, per_second: usize, from: Millis, until: Millis) -> Self {
        self.load = Some((per_second, from, until));
        self.end = self.end.max(until);
        self
    }

    /// Expects some running node to reach `height` by time `by`.
    pub fn expect_height(mut self, height: u64, by: Millis) -> Self {
        self.end = self.end.max(by);
        self.expectations.push((by, Expectation::Height(height)));
        self
    }

    /// Expects every running honest node to hold the same chain at time `by`.
    pub fn expect_converged(mut self, by: Millis) -> Self {
        self.end = self.end.max(by);
        self.expectations.push((by, Expectation::Converged));
        self
    }

    /// Expects at least `blocks` new decided blocks between `since` and `by`.
    pub fn expect_progress(mut self, since: Millis, blocks: u64, by: Millis) -> Self {
        self.end = self.end.max(by);
        self.expectations
            .push((by, Expectation::ProgressSince { since, blocks }));
        self
    }

    /// Expects every transaction a client got accepted by an honest node to have committed (or
    /// to have been reported dropped with a reason) by `by`.
    pub fn expect_all_committed(mut self, by: Millis) -> Self {
        self.end = self.end.max(by);
        self.expectations.push((by, Expectation::AllSettled));
        self
    }

    /// Expects `nodes` to commit nothing between `since` and `by`.
    pub fn expect_no_commits(mut self, nodes: Vec<usize>, since: Millis, by: Millis) -> Self {
        self.end = self.end.max(by);
        self.expectations
            .push((by, Expectation::NoCommits { nodes, since }));
        self
    }

    /// Runs the scenario; on failure the error names the scenario, the seed and the last events.
    pub fn run(self, factory: EngineFactory<E>) -> Result<Sim<E>, SimFailure> {
        let mut sim = Sim::new(self.config.clone(), factory)?;
        for (node, adversary) in self.adversaries {
            if node < sim.len() {
                sim.set_adversary(node, adversary);
            }
        }
        enum Point<E: Engine> {
            Step(Step<E>),
            Expect(Expectation),
            Load(usize),
            Mark(Millis),
        }
        let mut points: Vec<(Millis, u64, Point<E>)> = Vec::new();
        let mut order = 0u64;
        let mut push = |points: &mut Vec<(Millis, u64, Point<E>)>, at: Millis, p: Point<E>| {
            order += 1;
            points.push((at, order, p));
        };
        // Decided heights at every `since` of a progress expectation.
        for (_, e) in &self.expectations {
            if let Expectation::ProgressSince { since, .. } = e {
                push(&mut points, *since, Point::Mark(*since));
            }
        }
        for (at, step) in self.steps {
            push(&mut points, at, Point::Step(step));
        }
        if let Some((per_second, from, until)) = self.load {
            let tick = 50;
            let per_tick = (per_second * tick as usize / 1000).max(1);
            let mut t = from;
            while t < until {
                push(&mut points, t, Point::Load(per_tick));
                t += tick;
            }
        }
        for (at, e) in self.expectations {
            push(&mut points, at, Point::Expect(e));
        }
        points.sort_by_key(|(at, order, _)| (*at, *order));
        let mut marks: Vec<(Millis, u64)> = Vec::new();
        let name = self.name;
        let fail = |sim: &Sim<E>, kind: &'static str, detail: String| SimFailure {
            seed: sim.seed(),
            time: sim.now(),
            violation: Violation::new(kind, format!("[{name}] {detail}")),
            trace: Vec::new(),
        };
        for (at, _, point) in points {
            sim.run_until(at)?;
            match point {
                Point::Step(step) => apply_step(&mut sim, step).map_err(|e| match e {
                    StepError::Failed(failure) => failure,
                    StepError::Invalid(detail) => fail(&sim, "scenario", detail),
                })?,
                Point::Load(n) => {
                    sim.submit(n);
                }
                Point::Mark(since) => marks.push((since, sim.checker().decided_height())),
                Point::Expect(e) => check(&sim, &e, &marks).map_err(|detail| {
                    let kind = match e {
                        Expectation::NoCommits { .. } => "safety",
                        Expectation::AllSettled => "transaction loss",
                        _ => "liveness",
                    };
                    let mut failure = fail(&sim, kind, detail);
                    failure.trace = sim.trace_lines();
                    failure
                })?,
            }
        }
        sim.run_until(self.end)?;
        Ok(sim)
    }
}

fn resolve<E: Engine>(sim: &Sim<E>, target: Target) -> Result<usize, String> {
    match target {
        Target::Node(i) if i < sim.len() => Ok(i),
        Target::Node(i) => Err(format!("no node {i}")),
        Target::Leader => sim.leader().ok_or_else(|| "there is no leader".to_string()),
        Target::Follower(k) => (0..sim.len())
            .filter(|i| sim.is_up(*i) && sim.status(*i).is_some_and(|s| s.role != Role::Leader))
            .nth(k)
            .ok_or_else(|| format!("there is no running follower #{k}")),
    }
}

/// Why a step could not be carried out.
enum StepError {
    /// The step made the run fail a check (a restart that finds its state broken).
    Failed(SimFailure),
    /// The step itself makes no sense at this point (no leader to crash, say).
    Invalid(String),
}

impl From<String> for StepError {
    fn from(detail: String) -> Self {
        StepError::Invalid(detail)
    }
}

fn apply_step<E: Engine>(sim: &mut Sim<E>, step: Step<E>) -> Result<(), StepError> {
    let n = sim.len();
    match step {
        Step::Crash(t) => {
            let i = resolve(sim, t)?;
            sim.crash(i);
        }
        Step::CrashLeaderIfAny => {
            if let Some(i) = sim.leader() {
                sim.crash(i);
            }
        }
        Step::CrashAfterActions(t, k) => {
            let i = resolve(sim, t)?;
            sim.crash_after_actions(i, k);
        }
        Step::Restart(t) => {
            let i = resolve(sim, t)?;
            sim.restart(i).map_err(StepError::Failed)?;
        }
        Step::RestartAll => {
            for i in 0..n {
                sim.disarm_crash(i);
                sim.restart(i).map_err(StepError::Failed)?;
            }
        }
        Step::Partition(groups) => sim.network_mut().partition(n, &groups),
        Step::IsolateLeader => {
            let leader = resolve(sim, Target::Leader)?;
            let rest: Vec<usize> = (0..n).filter(|i| *i != leader).collect();
            sim.network_mut().partition(n, &[vec![leader], rest]);
        }
        Step::BlockOneWay(from, to) => sim.network_mut().block_one_way(&from, &to),
        Step::Heal => sim.network_mut().heal(),
        Step::Loss(p) => sim.network_mut().config.loss = p,
        Step::Submit(count) => {
            sim.submit(count);
        }
        Step::Command(t, command) => {
            let i = resolve(sim, t)?;
            sim.command(i, command);
        }
        Step::Check(what, check) => {
            check(sim).map_err(|e| StepError::Invalid(format!("{what}: {e}")))?
        }
    }
    Ok(())
}

fn check<E: Engine>(sim: &Sim<E>, e: &Expectation, marks: &[(Millis, u64)]) -> Result<(), String> {
    let running: Vec<usize> = (0..sim.len()).filter(|i| sim.is_up(*i)).collect();
    match e {
        Expectation::Height(h) => {
            let max = sim.max_height();
            if max < *h {
                return Err(format!(
                    "expected height >= {h} by now, highest running node is at {max}"
                ));
            }
        }
        Expectation::Converged => {
            if running.is_empty() {
                return Err("no node is running, so none has converged".into());
            }
            // Byzantine nodes owe nobody a chain.
            let running: Vec<usize> = running
                .into_iter()
                .filter(|i| !sim.is_byzantine(*i))
                .collect();
            let tips: Vec<(usize, u64)> = running.iter().map(|i| (*i, sim.height(*i))).collect();
            let first = running.first().map(|i| sim.tip(*i).hash());
            if running.iter().any(|i| Some(sim.tip(*i).hash()) != first) {
                return Err(format!(
                    "running nodes have not converged: heights {tips:?}"
                ));
            }
        }
        Expectation::ProgressSince { since, blocks } => {
            let before = marks
                .iter()
                .find(|(t, _)| t == since)
                .map_or(0, |(_, h)| *h);
            let now = sim.checker().decided_height();
            if now < before + blocks {
                return Err(format!(
                    "expected {blocks} new blocks since t={since}ms, decided height went {before} -> {now}"
                ));
            }
        }
        Expectation::AllSettled => {
            sim.checker().check_all_settled().map_err(|v| v.detail)?;
        }
        Expectation::NoCommits { nodes, since } => {
            for (at, node, height) in &sim.commit_log {
                if at >= since && nodes.contains(node) {
                    return Err(format!("node {node} committed height {height} at t={at}ms"));
                }
            }
        }
    }
    Ok(())
}

/// Which kinds of fault a random schedule draws from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultMix {
    /// Crashes and restarts (of any node, of the leader, between two writes).
    pub crash: bool,
    /// Partitions, symmetric and one-way.
    pub partition: bool,
    /// Lost and duplicated messages (a lossy network throughout, and bursts of 30% loss).
    pub loss: bool,
}

impl FaultMix {
    /// Every kind.
    pub const ALL: FaultMix = FaultMix {
        crash: true,
        partition: true,
        loss: true,
    };
    /// None: a clean network, nothing crashes.
    pub const NONE: FaultMix = FaultMix {
        crash: false,
        partition: false,
        loss: false,
    };
}

/// A random fault schedule for seed sweeps: faults of every kind for `duration - 4 s`, then
/// everything heals and restarts, the load stops, and commits must resume and converge.
pub fn random_faults<E: Engine>(seed: u64, nodes: usize, duration: Millis) -> Scenario<E> {
    random_faults_of(seed, nodes, duration, FaultMix::ALL)
}

/// [`random_faults`] drawing only the kinds in `mix`: a slot whose kind is left out stays quiet
/// and skips that kind's own draws, so a seed replays exactly with the same mix, but the same
/// seed with another mix is another schedule.
pub fn random_faults_of<E: Engine>(
    seed: u64,
    nodes: usize,
    duration: Millis,
    mix: FaultMix,
) -> Scenario<E> {
    let mut rng = crate::rng::DetRng::new(seed ^ 0xfa17_5eed);
    let mut network = NetworkConfig::random(&mut rng);
    if !mix.loss {
        network.loss = 0.0;
        network.duplicate = 0.0;
    }
    let heal_at = duration.saturating_sub(4_000);
    let mut scenario = Scenario::new("random faults", nodes, seed)
        .network(network)
        .load(200, 200, heal_at + 1_000);
    let mut t = 300;
    while t < heal_at {
        let node = rng.index(nodes);
        let kind = rng.range(0, 7);
        let allowed = match kind {
            0..=3 => mix.crash,
            4 | 5 => mix.partition,
            _ => mix.loss,
        };
        if !allowed {
            t += rng.range(150, 900);
            continue;
        }
        scenario = match kind {
            0 | 1 => {
                let back = (t + rng.range(100, 1_500)).min(heal_at);
                scenario
                    .at(t, Step::Crash(Target::Node(node)))
                    .at(back, Step::Restart(Target::Node(node)))
            }
            2 => {
                let back = (t + rng.range(100, 1_500)).min(heal_at);
                scenario
                    .at(t, Step::CrashLeaderIfAny)
                    .at(back, Step::RestartAll)
            }
            3 => {
                let back = (t + rng.range(100, 1_500)).min(heal_at);
                scenario
                    .at(
                        t,
                        Step::CrashAfterActions(Target::Node(node), rng.range(0, 6) as usize),
                    )
                    .at(back, Step::RestartAll)
            }
            4 => {
                let mut groups = vec![Vec::new(), Vec::new()];
                for i in 0..nodes {
                    groups[rng.index(2)].push(i);
                }
                let back = (t + rng.range(200, 2_000)).min(heal_at);
                scenario.at(t, Step::Partition(groups)).at(back, Step::Heal)
            }
            5 => {
                let other = rng.index(nodes);
                let back = (t + rng.range(200, 2_000)).min(heal_at);
                scenario
                    .at(t, Step::BlockOneWay(vec![node], vec![other]))
                    .at(back, Step::Heal)
            }
            _ => {
                let back = (t + rng.range(200, 1_000)).min(heal_at);
                scenario.at(t, Step::Loss(0.3)).at(back, Step::Loss(0.0))
            }
        };
        t += rng.range(150, 900);
    }
    scenario
        .at(heal_at, Step::Heal)
        .at(heal_at, Step::Loss(0.0))
        .at(heal_at, Step::RestartAll)
        .expect_progress(heal_at, 1, duration)
        .expect_converged(duration)
        .expect_all_committed(duration)
}
