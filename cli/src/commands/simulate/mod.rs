//! `synod simulate`: the deterministic simulator, for users. Runs seeds of random fault
//! schedules (crashes, partitions, loss) with optional Byzantine nodes, every invariant checked
//! after every step, and reports each violation with the seed that replays it; `--trace` prints
//! the event log of one seed.

mod engines;

use std::collections::BTreeMap;

use anyhow::bail;
use clap::Args;
use synod_consensus::sim::SimFailure;
use synod_consensus::sim::scenario::FaultMix;

use crate::table::Table;
use engines::SeedSpec;

/// Arguments of `synod simulate`.
#[derive(Args, Debug)]
pub struct SimulateArgs {
    /// Engine to simulate.
    #[arg(long, default_value = "raft", value_parser = ["raft", "pbft", "pow"])]
    engine: String,
    /// Validators.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// How many nodes misbehave (nodes 0..K).
    #[arg(long, default_value_t = 0)]
    byzantine: usize,
    /// How they misbehave (Raft: equivocate, silent, replay; PBFT: equivocate, silent, censor,
    /// bad-block, bad-new-view, double-vote, amnesia; PoW: withhold, forge). Default:
    /// equivocate, or withhold for PoW.
    #[arg(long)]
    behaviour: Option<String>,
    /// Fault kinds the random schedules draw from: crash, partition, loss (or none).
    #[arg(long, value_delimiter = ',', default_value = "crash,partition,loss")]
    faults: Vec<String>,
    /// Seeds to run.
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    /// First seed (with --trace, the one seed to run).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Run only --seed and print its event log.
    #[arg(long)]
    trace: bool,
    /// Simulated milliseconds per seed (faults stop 4 s before the end, then liveness is checked;
    /// PoW: 3 s before the end, then the network has 20 s more to converge).
    #[arg(long, default_value_t = 10_000)]
    duration_ms: u64,
}

/// Events kept for `--trace` (a 10 s run of a few nodes has tens of thousands).
const TRACE_LINES: usize = 500_000;
/// Violations listed one by one; the rest are counted.
const LISTED: usize = 20;

impl SimulateArgs {
    /// The behaviour asked for, or the engine's first: PoW has no equivocation.
    fn behaviour(&self) -> String {
        self.behaviour.clone().unwrap_or_else(|| {
            if self.engine == "pow" {
                "withhold".into()
            } else {
                "equivocate".into()
            }
        })
    }
}

fn mix(faults: &[String]) -> anyhow::Result<FaultMix> {
    let mut mix = FaultMix::NONE;
    for f in faults {
        match f.as_str() {
            "crash" => mix.crash = true,
            "partition" => mix.partition = true,
            "loss" => mix.loss = true,
            "none" => {}
            other => bail!("unknown fault {other:?}; expected crash, partition, loss or none"),
        }
    }
    Ok(mix)
}

/// Runs `synod simulate`.
pub fn run(args: SimulateArgs) -> anyhow::Result<()> {
    if args.nodes == 0 || args.nodes > 64 {
        bail!("--nodes must be 1 to 64");
    }
    if args.duration_ms < 5_000 {
        bail!("--duration-ms must be at least 5000 (faults heal 4 s before the end)");
    }
    let spec = SeedSpec {
        nodes: args.nodes,
        byzantine: args.byzantine,
        behaviour: args.behaviour(),
        mix: mix(&args.faults)?,
        duration_ms: args.duration_ms,
        trace_lines: if args.trace { TRACE_LINES } else { 48 },
    };
    engines::check(&args.engine, &spec)?;
    if args.trace {
        return trace(&args, &spec);
    }
    let seeds: Vec<u64> = (args.seed..args.seed.saturating_add(args.seeds)).collect();
    let bar = indicatif::ProgressBar::new(seeds.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} seeds  {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut failures: Vec<SimFailure> = Vec::new();
    let (mut steps, mut commits) = (0u64, 0usize);
    for &seed in &seeds {
        match engines::run_seed(&args.engine, &spec, seed)? {
            Ok(passed) => {
                steps += passed.steps;
                commits += passed.commits;
            }
            Err(failure) => failures.push(failure),
        }
        bar.inc(1);
        bar.set_message(format!("{} violations", failures.len()));
    }
    bar.finish_and_clear();
    report(&args, &seeds, &failures, steps, commits);
    Ok(())
}

fn replay_line(args: &SimulateArgs, seed: u64) -> String {
    let mut line = format!(
        "synod simulate --engine {} --nodes {} --faults {}",
        args.engine,
        args.nodes,
        args.faults.join(",")
    );
    if args.byzantine > 0 {
        line.push_str(&format!(
            " --byzantine {} --behaviour {}",
            args.byzantine,
            args.behaviour()
        ));
    }
    if args.duration_ms != 10_000 {
        line.push_str(&format!(" --duration-ms {}", args.duration_ms));
    }
    line.push_str(&format!(" --seed {seed} --trace"));
    line
}

fn report(args: &SimulateArgs, seeds: &[u64], failures: &[SimFailure], steps: u64, commits: usize) {
    let who = if args.byzantine > 0 {
        format!(", {} {}", args.byzantine, args.behaviour())
    } else {
        String::new()
    };
    println!(
        "{} seeds of {} with {} nodes{who}, faults {}: {} violations ({steps} steps, {commits} commits in the passing seeds)",
        seeds.len(),
        args.engine,
        args.nodes,
        args.faults.join(","),
        failures.len()
    );
    if failures.is_empty() {
        return;
    }
    let mut by_kind: BTreeMap<&str, (usize, u64)> = BTreeMap::new();
    for f in failures {
        let entry = by_kind.entry(f.violation.kind).or_insert((0, f.seed));
        entry.0 += 1;
    }
    let mut table = Table::new(["seed", "violation", "at", "what"]);
    for f in failures.iter().take(LISTED) {
        let detail: String = f.violation.detail.chars().take(110).collect();
        table.row([
            f.seed.to_string(),
            f.violation.kind.to_string(),
            format!("{} ms", f.time),
            detail,
        ]);
    }
    println!("\n{}", table.render());
    if failures.len() > LISTED {
        println!("... and {} more", failures.len() - LISTED);
    }
    println!();
    for (kind, (count, seed)) in by_kind {
        println!(
            "{kind}: {count} seeds; replay the first: {}",
            replay_line(args, seed)
        );
    }
}

fn trace(args: &SimulateArgs, spec: &SeedSpec) -> anyhow::Result<()> {
    match engines::run_seed(&args.engine, spec, args.seed)? {
        Ok(passed) => {
            for line in &passed.trace {
                println!("{line}");
            }
            println!(
                "\nseed {}: no violation ({} steps, {} commits)",
                args.seed, passed.steps, passed.commits
            );
        }
        Err(failure) => {
            for line in &failure.trace {
                println!("{line}");
            }
            println!(
                "\nseed {}: {} violated at t={} ms: {}",
                failure.seed, failure.violation.kind, failure.time, failure.violation.detail
            );
        }
    }
    Ok(())
}
