//! `synod compare`: the same signed workload and the same fault schedule against each engine,
//! on real testnets (one fresh testnet per engine and fault, every node its own process), with a
//! table, `report.json` and a self-contained `report.html`.
//!
//! Engines the node cannot run yet are reported as unavailable, with the node's own reason; the
//! engine is only a parameter of `testnet init`, so they are compared as soon as the node runs
//! them.

mod charts;
mod faults;
mod measure;
mod phases;
mod plan;
mod reading;
mod report_html;
mod report_json;
mod run;
mod safety;
mod workload;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;

use crate::load::Offer;
use crate::table::Table;
use plan::{EngineSize, FaultKind, Schedule, Sizing};
use report_json::{Config, EngineEntry, Report, Run, ScalePoint};
use run::RunSpec;

/// Arguments of `synod compare`.
#[derive(Args, Debug)]
pub struct CompareArgs {
    /// Engines to compare.
    #[arg(long, value_delimiter = ',', default_value = "raft,pbft,pow")]
    engines: Vec<String>,
    /// Validators of the Byzantine engine (3f+1); Raft gets 2f+1 for the same f unless
    /// `--sizing same-n`.
    #[arg(long, default_value_t = 4)]
    validators: usize,
    /// How engines are sized: `same-f` (the same faults tolerated; the default) or `same-n`.
    #[arg(long, value_enum, default_value = "same-f")]
    sizing: Sizing,
    /// Faults, one run each: none, crash-leader, partition, byzantine.
    #[arg(
        long,
        value_delimiter = ',',
        value_enum,
        default_value = "none,crash-leader,partition"
    )]
    faults: Vec<FaultKind>,
    /// Transactions per run.
    #[arg(long, default_value_t = 3_000)]
    txs: usize,
    /// Offered tx/s.
    #[arg(long, default_value_t = 500)]
    rate: usize,
    /// Transactions per RPC call.
    #[arg(long, default_value_t = 50)]
    batch: usize,
    /// Funded accounts sending.
    #[arg(long, default_value_t = 16)]
    accounts: usize,
    /// Where report.json, report.html and the testnets go.
    #[arg(long, default_value = "compare-report")]
    out: PathBuf,
    /// Validator counts of a scaling run (fault-free), e.g. `4,7,10`.
    #[arg(long, value_delimiter = ',')]
    sizes: Vec<usize>,
    /// The Byzantine behaviour of the `byzantine` fault.
    #[arg(long, default_value = "equivocate")]
    behaviour: String,
    /// Keep each testnet (logs, databases) in OUT/testnets.
    #[arg(long)]
    keep: bool,
    /// An engine parameter for every testnet (`--param name=value`, as for `testnet init`).
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = synod_genesis::overrides::parse_param)]
    params: Vec<(String, String)>,
}

const SIZING_REASON: &str = "same f by default: each engine is sized to tolerate the same number of faulty nodes (PBFT 3f+1, Raft 2f+1), which is the choice a deployer faces; --sizing same-n runs every engine at the same n";

/// Runs `synod compare`.
pub fn run(args: CompareArgs) -> anyhow::Result<()> {
    let engines = plan::parse_engines(&args.engines)?;
    faults::check_available(&args.faults)?;
    if args.validators < 1 || args.validators > workload::MAX_VALIDATORS {
        bail!("--validators must be 1 to {}", workload::MAX_VALIDATORS);
    }
    let schedule = Schedule::for_load(args.txs, args.rate)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let signed = workload::sign(args.accounts.max(1), args.txs);
    let spec = RunSpec {
        workload: &signed,
        accounts: args.accounts.max(1),
        offer: Offer {
            rate: args.rate,
            batch: args.batch.max(1),
            slack: run::SLACK,
        },
        schedule,
        behaviour: args.behaviour.clone(),
        out: &args.out,
        keep: args.keep,
        params: args.params.clone(),
    };
    let bar = indicatif::ProgressBar::new_spinner();
    bar.enable_steady_tick(Duration::from_millis(150));
    let total = engines.len() * args.faults.len();

    let mut entries = Vec::new();
    let mut runs = Vec::new();
    for engine in &engines {
        let n = plan::size_for(engine, args.validators, args.sizing);
        let mut unavailable: Option<String> = None;
        for fault in &args.faults {
            let label = format!("[{}/{total}] {engine} n={n} {fault}", runs.len() + 1);
            let skipped = faults::not_applicable(engine, *fault, &args.behaviour);
            let mut result = match (&unavailable, skipped) {
                (Some(reason), _) => Run::not_run(engine, *fault, n, "unavailable", reason.clone()),
                (None, Some(reason)) => Run::not_run(engine, *fault, n, "not run", reason),
                (None, None) => match run::run(engine, n, *fault, &spec, &|line| {
                    bar.set_message(format!("{label}: {line}"))
                }) {
                    Ok(run) => run,
                    Err(e) => match run::unavailable_reason(&e) {
                        Some(reason) => {
                            unavailable = Some(reason.clone());
                            Run::not_run(engine, *fault, n, "unavailable", reason)
                        }
                        None => Run::not_run(engine, *fault, n, "failed", format!("{e:#}")),
                    },
                },
            };
            result.reading = reading::run(&result);
            bar.println(format!("{label}: {}", result.reading));
            runs.push(result);
        }
        entries.push(EngineEntry {
            size: EngineSize {
                engine: engine.clone(),
                validators: n,
                tolerates: plan::tolerated(engine, n),
            },
            available: unavailable.is_none(),
            reason: unavailable,
        });
    }
    let runnable: Vec<String> = entries
        .iter()
        .filter(|e| e.available)
        .map(|e| e.size.engine.clone())
        .collect();
    let scaling = scale(&args, &runnable, &spec, &bar);
    bar.finish_and_clear();

    let mut report = Report {
        synod_version: env!("CARGO_PKG_VERSION").to_string(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        config: Config {
            engines: engines.clone(),
            validators: args.validators,
            sizing: args.sizing,
            sizing_reason: SIZING_REASON.into(),
            faults: args.faults.clone(),
            txs: args.txs,
            rate: args.rate,
            batch: args.batch,
            accounts: spec.accounts,
            schedule,
            sizes: args.sizes.clone(),
        },
        engines: entries,
        runs,
        scaling,
        readings: Vec::new(),
    };
    report.readings = reading::report(&report);
    println!("{}", terminal_table(&report));
    let json = args.out.join("report.json");
    let html = args.out.join("report.html");
    report_json::write(&report, &json)?;
    report_html::write(&report, &html)?;
    let charts = args.out.join("charts");
    let drawn = report_html::write_charts(&report, &charts)?;
    println!("\n{}", report.readings.join("\n"));
    println!(
        "\nwrote {} and {} ({drawn} charts also in {})",
        json.display(),
        html.display(),
        charts.display()
    );
    Ok(())
}

/// The scaling run: each of Raft and PBFT (those compared, that this build runs) at each size,
/// without faults.
fn scale(
    args: &CompareArgs,
    engines: &[String],
    spec: &RunSpec<'_>,
    bar: &indicatif::ProgressBar,
) -> Vec<ScalePoint> {
    let mut points = Vec::new();
    for engine in engines.iter().filter(|e| *e != "pow") {
        for &size in &args.sizes {
            let n = plan::size_for(engine, size, args.sizing);
            let label = format!("[scaling] {engine} n={n}");
            let outcome = run::run(engine, n, FaultKind::None, spec, &|line| {
                bar.set_message(format!("{label}: {line}"))
            });
            let point = match outcome {
                Ok(run) => {
                    let all: Vec<_> = run.phases.iter().collect();
                    let (messages_per_block, bytes_per_block) = run.per_block();
                    let span = all.last().map_or(1.0, |p| p.end_ms) / 1000.0;
                    ScalePoint {
                        engine: engine.clone(),
                        validators: n,
                        status: "ok".into(),
                        tx_per_s: all.iter().map(|p| p.committed_txs).sum::<usize>() as f64
                            / span.max(1e-9),
                        messages_per_block,
                        bytes_per_block,
                        p50_ms: run.phase("during").map_or(0.0, |p| p.latency_ms.p50),
                    }
                }
                Err(e) => ScalePoint {
                    engine: engine.clone(),
                    validators: n,
                    status: if run::unavailable_reason(&e).is_some() {
                        "unavailable".into()
                    } else {
                        "failed".into()
                    },
                    tx_per_s: 0.0,
                    messages_per_block: None,
                    bytes_per_block: None,
                    p50_ms: 0.0,
                },
            };
            bar.println(format!(
                "{label}: {} {:.0} tx/s, {:.0} messages per block",
                point.status,
                point.tx_per_s,
                point.messages_per_block.unwrap_or(0.0)
            ));
            points.push(point);
        }
    }
    points
}

fn terminal_table(report: &Report) -> String {
    let mut table = Table::new([
        "engine",
        "n",
        "fault",
        "phase",
        "tx/s",
        "p50 ms",
        "p99 ms",
        "msgs/block",
        "kB/block",
        "cpu %",
        "next commit",
        "to 90%",
        "safety",
    ]);
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}"));
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0} ms"));
    for run in &report.runs {
        if !run.ok() {
            let mut cells = vec![
                run.engine.clone(),
                run.validators.to_string(),
                run.fault.to_string(),
                run.status.clone(),
            ];
            // The reason goes last, where a long line pads no other column.
            cells.resize(12, String::new());
            cells.push(run.reason.clone().unwrap_or_default());
            table.row(cells);
            continue;
        }
        for (k, p) in run.phases.iter().enumerate() {
            let cpu = p.cpu_percent.iter().sum::<f64>() / p.cpu_percent.len().max(1) as f64;
            let s = &run.safety;
            table.row([
                run.engine.clone(),
                run.validators.to_string(),
                run.fault.to_string(),
                p.phase.clone(),
                format!("{:.0}", p.tx_per_s),
                format!("{:.1}", p.latency_ms.p50),
                format!("{:.1}", p.latency_ms.p99),
                opt(p.messages_per_block),
                p.bytes_per_block
                    .map_or("-".into(), |b| format!("{:.1}", b / 1000.0)),
                format!("{cpu:.0}"),
                if k == 0 {
                    ms(run.recovery.fault_to_next_commit_ms)
                } else {
                    String::new()
                },
                if k == 0 {
                    ms(run.recovery.fault_to_90pct_ms)
                } else {
                    String::new()
                },
                if k > 0 {
                    String::new()
                } else if !s.agreement {
                    format!(
                        "DIVERGED at height {}",
                        s.divergent_heights.first().copied().unwrap_or_default()
                    )
                } else {
                    format!("ok, {} lost", s.acknowledged_lost)
                },
            ]);
        }
    }
    table.render()
}
