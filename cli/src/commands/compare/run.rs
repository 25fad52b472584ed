//! One run: a fresh testnet of one engine, the shared workload, the fault at its offset and its
//! recovery at the next, the nodes sampled throughout, then the phases, the recovery times and
//! the safety audit.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::faults::{self, Injected};
use super::measure;
use super::phases;
use super::plan::{FaultKind, Schedule};
use super::report_json::Run;
use super::safety;
use super::workload::{CHAIN_ID, FIRST_ACCOUNT_KEY, Workload};
use crate::commands::pow_flags::PowFlags;
use crate::commands::testnet::InitArgs;
use crate::load::{Offer, Watch, drive, lanes_by_account};
use crate::scratch::Scratch;

/// What a run needs besides the engine and the fault.
pub struct RunSpec<'a> {
    /// The signed workload.
    pub workload: &'a Workload,
    /// Funded accounts (the workload's senders).
    pub accounts: usize,
    /// Offered rate and batching.
    pub offer: Offer,
    /// When the fault comes and goes.
    pub schedule: Schedule,
    /// The Byzantine behaviour for the `byzantine` fault.
    pub behaviour: String,
    /// Where the testnets go.
    pub out: &'a Path,
    /// Keep each testnet's folder (logs, databases) after its run.
    pub keep: bool,
    /// Engine parameters for every testnet.
    pub params: Vec<(String, String)>,
}

/// Whether a failure to start means the node does not run this engine (rather than a fault of
/// the machine): the node says so in one line.
pub fn unavailable_reason(error: &anyhow::Error) -> Option<String> {
    let text = format!("{error:#}");
    text.lines()
        .find(|l| l.contains("not available in this build"))
        .map(|l| {
            l.split("error:")
                .last()
                .unwrap_or(l)
                .trim()
                .trim_matches('"')
                .to_string()
        })
}

/// Runs `engine` with `validators` under `fault`; `progress` gets a status line.
pub fn run(
    engine: &str,
    validators: usize,
    fault: FaultKind,
    spec: &RunSpec<'_>,
    progress: &(dyn Fn(String) + Sync),
) -> anyhow::Result<Run> {
    let dir = spec
        .out
        .join("testnets")
        .join(format!("{engine}-{fault}-n{validators}"));
    progress(format!("starting a {validators}-node {engine} testnet"));
    let scratch = Scratch::create(
        &InitArgs {
            engine: engine.to_string(),
            validators,
            accounts: spec.accounts,
            balance: 1_000_000_000_000,
            dir,
            chain_id: Some(CHAIN_ID.into()),
            base_port: 0,
            random_keys: false,
            force: true,
            params: spec.params.clone(),
            pow: PowFlags::default(),
            first_account_key: Some(FIRST_ACCOUNT_KEY),
            max_pending_txs: synod_genesis::DEFAULT_MAX_PENDING_TXS,
        },
        spec.keep,
    )?;
    let cluster = &scratch.cluster;
    let preferred = cluster.leader(None).unwrap_or(0);
    // Validator keys by node, to tell whose blocks come after a fault.
    let keys: Vec<String> = (0..cluster.len())
        .map(|i| {
            cluster
                .status(i)
                .and_then(|s| s["node_id"].as_str().map(str::to_string))
                .unwrap_or_default()
        })
        .collect();
    let start_height = cluster.max_height(None);
    let watch = Watch::new(
        (0..cluster.len())
            .map(|i| cluster.rpc(i).to_string())
            .collect(),
        preferred,
        start_height,
    )
    .following_reorgs(engine == "pow");
    let targets: Vec<String> = watch.nodes.clone();
    let stop_sampling = AtomicBool::new(false);
    let started = Instant::now();
    let schedule = spec.schedule;

    let (trace, samples, injected) = std::thread::scope(|scope| {
        let sampler = scope.spawn(|| measure::sample_until(cluster, &stop_sampling));
        let faulter = scope.spawn(|| -> anyhow::Result<Injected> {
            sleep_until(started + schedule.fault_at);
            let injected = faults::inject(cluster, engine, fault, &spec.behaviour, &watch.avoid)?;
            progress(format!("fault: {}", injected.detail));
            sleep_until(started + schedule.recover_at);
            faults::recover(cluster, fault, &injected)?;
            progress("recovered".into());
            Ok(injected)
        });
        let trace = drive(
            &spec.workload.raw,
            &spec.workload.ids,
            &targets,
            &lanes_by_account(spec.workload.raw.len(), spec.accounts, targets.len()),
            &spec.offer,
            &watch,
            &|seen, height| {
                progress(format!(
                    "{seen}/{} committed, height {height}, t = {:.1} s",
                    spec.workload.raw.len(),
                    started.elapsed().as_secs_f64()
                ))
            },
        );
        let injected = faulter
            .join()
            .map_err(|_| anyhow::anyhow!("the fault thread panicked"))
            .and_then(|r| r);
        stop_sampling.store(true, Ordering::SeqCst);
        let samples = sampler.join().unwrap_or_default();
        (trace, samples, injected)
    });
    let injected = injected.with_context(|| format!("injecting {fault}"))?;
    let end = trace
        .last_commit()
        .unwrap_or_else(Instant::now)
        .max(trace.started + schedule.load);
    progress("auditing the chains".into());
    let safety = safety::audit(
        cluster,
        &injected.byzantine,
        &trace,
        &spec.workload.ids,
        start_height,
    );
    Ok(Run {
        engine: engine.to_string(),
        fault,
        validators,
        status: "ok".into(),
        reason: None,
        fault_detail: injected.detail.clone(),
        admitted: trace.admitted(),
        rejected: trace.rejected.len(),
        phases: phases::phases(&trace, &schedule, &samples, cluster.len(), end),
        recovery: phases::recovery(
            &trace,
            &schedule,
            end,
            &phases::Faulted {
                nodes: injected.nodes.iter().map(|i| keys[*i].clone()).collect(),
                byzantine: injected
                    .byzantine
                    .iter()
                    .map(|i| keys[*i].clone())
                    .collect(),
                byzantine_since: injected.byzantine_since,
            },
        ),
        timeline: phases::timeline(&trace, end),
        latency_cdf: phases::latency_cdf(&trace),
        safety,
        reading: String::new(),
    })
}

fn sleep_until(at: Instant) {
    if let Some(wait) = at.checked_duration_since(Instant::now()) {
        std::thread::sleep(wait);
    }
}

/// How long after the last transaction is due a run keeps watching for commits.
pub const SLACK: Duration = Duration::from_secs(30);
