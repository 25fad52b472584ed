//! `report.json`: everything a comparison measured, in one document. The HTML report and the
//! terminal table are both made from it.
//!
//! Times are milliseconds; `t_ms` offsets count from the start of a run's workload. A run whose
//! engine this build cannot run has `status: "unavailable"` and the reason, and no phases.

use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use super::plan::{EngineSize, FaultKind, Schedule, Sizing};

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The synod version that ran it.
    pub synod_version: String,
    /// The command line.
    pub command: String,
    /// What was asked for.
    pub config: Config,
    /// Each engine at its size, and whether this build runs it.
    pub engines: Vec<EngineEntry>,
    /// One run per engine and fault.
    pub runs: Vec<Run>,
    /// The scaling runs (`--sizes`), if any.
    pub scaling: Vec<ScalePoint>,
    /// Plain-language readings of the results.
    pub readings: Vec<String>,
}

/// The comparison's settings.
#[derive(Clone, Debug, Serialize)]
pub struct Config {
    /// Engines compared.
    pub engines: Vec<String>,
    /// `--validators`.
    pub validators: usize,
    /// How engines were sized against each other.
    pub sizing: Sizing,
    /// Why that sizing.
    pub sizing_reason: String,
    /// Faults injected, one run each.
    pub faults: Vec<FaultKind>,
    /// Transactions per run.
    pub txs: usize,
    /// Offered tx/s.
    pub rate: usize,
    /// Transactions per RPC call.
    pub batch: usize,
    /// Funded accounts sending (the same keys on every engine).
    pub accounts: usize,
    /// The fault schedule every run shares.
    pub schedule: Schedule,
    /// Sizes of the scaling run.
    pub sizes: Vec<usize>,
}

/// An engine, its size, and whether this build runs it.
#[derive(Clone, Debug, Serialize)]
pub struct EngineEntry {
    /// Engine and size.
    #[serde(flatten)]
    pub size: EngineSize,
    /// Whether the node ran it.
    pub available: bool,
    /// Why not, when it did not.
    pub reason: Option<String>,
}

/// Latency percentiles.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
}

/// One phase of a run: before, during or after the fault.
#[derive(Clone, Debug, Serialize)]
pub struct Phase {
    /// `before`, `during` or `after`.
    pub phase: String,
    /// Start offset.
    pub start_ms: f64,
    /// End offset.
    pub end_ms: f64,
    /// Workload transactions first seen committed in the phase.
    pub committed_txs: usize,
    /// Of those, per second.
    pub tx_per_s: f64,
    /// Send-to-commit latency of the transactions sent in the phase.
    pub latency_ms: Latency,
    /// Transactions sent in the phase that never committed.
    pub uncommitted_sent: usize,
    /// Blocks committed in the phase.
    pub blocks: usize,
    /// Consensus messages sent by all nodes.
    pub messages: f64,
    /// Consensus bytes sent by all nodes.
    pub bytes: f64,
    /// Messages per committed block (null without blocks).
    pub messages_per_block: Option<f64>,
    /// Bytes per committed block (null without blocks).
    pub bytes_per_block: Option<f64>,
    /// CPU use of each node, in percent of one core.
    pub cpu_percent: Vec<f64>,
}

/// How the chain came back from the fault.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Recovery {
    /// Committed tx/s before the fault.
    pub pre_fault_tx_per_s: f64,
    /// From the fault to the next committed block.
    pub fault_to_next_commit_ms: Option<f64>,
    /// From the fault until the transactions committed since it reach 90% of what the pre-fault
    /// rate would have committed in that time (the stall made up for).
    pub fault_to_90pct_ms: Option<f64>,
    /// From the recovery (restart, heal) to the next committed block.
    pub recover_to_next_commit_ms: Option<f64>,
}

/// Whether the honest nodes kept one chain and every acknowledged commit.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Safety {
    /// The honest nodes hold the same block at every height they all finalized.
    pub agreement: bool,
    /// Heights compared across the honest nodes.
    pub heights_checked: u64,
    /// Heights where honest nodes hold different blocks.
    pub divergent_heights: Vec<u64>,
    /// Transactions seen committed during the run that the final chain does not hold.
    pub acknowledged_lost: usize,
    /// Heights whose block changed after it was first seen committed.
    pub reorgs: usize,
    /// Transactions nodes acknowledged that never committed by the end.
    pub uncommitted: usize,
    /// Honest nodes audited.
    pub honest_nodes: Vec<String>,
}

/// One engine under one fault.
#[derive(Clone, Debug, Serialize)]
pub struct Run {
    /// The engine.
    pub engine: String,
    /// The fault.
    pub fault: FaultKind,
    /// Validators.
    pub validators: usize,
    /// `ok`, `unavailable` or `failed`.
    pub status: String,
    /// Why it is not `ok`.
    pub reason: Option<String>,
    /// What the fault did, in words.
    pub fault_detail: String,
    /// Transactions acknowledged by a node.
    pub admitted: usize,
    /// Transactions refused for good.
    pub rejected: usize,
    /// Before, during, after.
    pub phases: Vec<Phase>,
    /// Recovery times.
    pub recovery: Recovery,
    /// The safety outcome.
    pub safety: Safety,
    /// Committed tx/s in half-second bins: (offset, tx/s).
    pub timeline: Vec<(f64, f64)>,
    /// Latency distribution: (latency, fraction of transactions at or below it).
    pub latency_cdf: Vec<(f64, f64)>,
    /// What this run shows, in one sentence.
    pub reading: String,
}

impl Run {
    /// A run that did not happen, with the reason.
    pub fn not_run(
        engine: &str,
        fault: FaultKind,
        validators: usize,
        status: &str,
        reason: String,
    ) -> Run {
        Run {
            engine: engine.to_string(),
            fault,
            validators,
            status: status.to_string(),
            reason: Some(reason),
            fault_detail: String::new(),
            admitted: 0,
            rejected: 0,
            phases: Vec::new(),
            recovery: Recovery::default(),
            safety: Safety::default(),
            timeline: Vec::new(),
            latency_cdf: Vec::new(),
            reading: String::new(),
        }
    }

    /// Whether the run happened.
    pub fn ok(&self) -> bool {
        self.status == "ok"
    }

    /// The phase called `name`.
    pub fn phase(&self, name: &str) -> Option<&Phase> {
        self.phases.iter().find(|p| p.phase == name)
    }

    /// Consensus messages and bytes per committed block over the whole run (every phase): a
    /// phase may hold no block at all (proof of work between two blocks), the run always does.
    pub fn per_block(&self) -> (Option<f64>, Option<f64>) {
        let blocks: usize = self.phases.iter().map(|p| p.blocks).sum();
        let per_block = |x: f64| (blocks > 0).then(|| x / blocks as f64);
        (
            per_block(self.phases.iter().map(|p| p.messages).sum()),
            per_block(self.phases.iter().map(|p| p.bytes).sum()),
        )
    }
}

/// One engine at one size in the scaling run.
#[derive(Clone, Debug, Serialize)]
pub struct ScalePoint {
    /// The engine.
    pub engine: String,
    /// Validators.
    pub validators: usize,
    /// `ok`, `unavailable` or `failed`.
    pub status: String,
    /// Committed tx/s over the run.
    pub tx_per_s: f64,
    /// Messages per committed block.
    pub messages_per_block: Option<f64>,
    /// Bytes per committed block.
    pub bytes_per_block: Option<f64>,
    /// Median latency.
    pub p50_ms: f64,
}

/// Writes `report` as pretty JSON to `path`.
pub fn write(report: &Report, path: &Path) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(report)?;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
