//! Cutting a run into phases (before, during and after the fault) and measuring each: committed
//! tx/s, latency percentiles, messages and bytes per block, CPU per node; and how the chain came
//! back: time to the next commit and until it has caught up to 90% of
//! the pre-fault throughput.

use std::time::{Duration, Instant};

use super::measure::{Sample, spent};
use super::plan::Schedule;
use super::report_json::{Latency, Phase, Recovery};
use crate::load::Trace;
use crate::load::stats::{millis, percentile};

/// Width of a throughput bin.
const BIN: Duration = Duration::from_millis(500);
/// Resolution of the time to 90% throughput.
const STEP: Duration = Duration::from_millis(100);

fn ms_since(t0: Instant, t: Instant) -> f64 {
    millis(t.saturating_duration_since(t0))
}

/// Commit times of the workload's transactions.
fn commit_times(trace: &Trace) -> Vec<Instant> {
    let mut times: Vec<Instant> = trace.committed.iter().flatten().copied().collect();
    times.sort();
    times
}

/// The phases of a run that ended at `end`.
pub fn phases(
    trace: &Trace,
    schedule: &Schedule,
    samples: &[Sample],
    nodes: usize,
    end: Instant,
) -> Vec<Phase> {
    let t0 = trace.started;
    let fault = t0 + schedule.fault_at;
    let recover = t0 + schedule.recover_at;
    let end = end.max(recover + Duration::from_millis(1));
    let commits = commit_times(trace);
    [
        ("before", t0, fault),
        ("during", fault, recover),
        ("after", recover, end),
    ]
    .into_iter()
    .map(|(name, from, to)| {
        let secs = to.saturating_duration_since(from).as_secs_f64().max(1e-9);
        let committed = commits.iter().filter(|t| **t >= from && **t < to).count();
        let latencies = trace.latencies(from, to);
        let uncommitted_sent = trace
            .sent
            .iter()
            .zip(&trace.committed)
            .filter(|(s, c)| s.is_some_and(|s| s >= from && s < to) && c.is_none())
            .count();
        let blocks = trace
            .blocks
            .iter()
            .filter(|b| b.at >= from && b.at < to)
            .count();
        // The last phase also counts what the nodes spent settling after the load.
        let spent_to = if name == "after" { end + BIN } else { to };
        let used = spent(samples, nodes, from, spent_to);
        let per_block = |x: f64| (blocks > 0).then(|| x / blocks as f64);
        Phase {
            phase: name.to_string(),
            start_ms: ms_since(t0, from),
            end_ms: ms_since(t0, to),
            committed_txs: committed,
            tx_per_s: committed as f64 / secs,
            latency_ms: Latency {
                p50: millis(percentile(&latencies, 50.0)),
                p90: millis(percentile(&latencies, 90.0)),
                p99: millis(percentile(&latencies, 99.0)),
            },
            uncommitted_sent,
            blocks,
            messages: used.messages,
            bytes: used.bytes,
            messages_per_block: per_block(used.messages),
            bytes_per_block: per_block(used.bytes),
            cpu_percent: used
                .cpu_s
                .iter()
                .map(|s| {
                    100.0 * s
                        / spent_to
                            .saturating_duration_since(from)
                            .as_secs_f64()
                            .max(1e-9)
                })
                .collect(),
        }
    })
    .collect()
}

/// Committed tx/s in [`BIN`]-wide bins from the start to `end`: (offset ms, tx/s).
pub fn timeline(trace: &Trace, end: Instant) -> Vec<(f64, f64)> {
    let commits = commit_times(trace);
    let t0 = trace.started;
    let bins =
        (end.saturating_duration_since(t0).as_secs_f64() / BIN.as_secs_f64()).ceil() as usize;
    let mut counts = vec![0usize; bins.max(1)];
    for t in commits {
        let i = (t.saturating_duration_since(t0).as_secs_f64() / BIN.as_secs_f64()) as usize;
        if let Some(c) = counts.get_mut(i) {
            *c += 1;
        }
    }
    counts
        .iter()
        .enumerate()
        .map(|(i, c)| (millis(BIN * i as u32), *c as f64 / BIN.as_secs_f64()))
        .collect()
}

/// The latency distribution of the whole run, at most 200 points: (ms, fraction at or below).
pub fn latency_cdf(trace: &Trace) -> Vec<(f64, f64)> {
    let all = trace.latencies(trace.started, Instant::now() + Duration::from_secs(3600));
    if all.is_empty() {
        return Vec::new();
    }
    let points = all.len().min(200);
    (1..=points)
        .map(|k| {
            let idx = (k * all.len() / points).saturating_sub(1);
            (millis(all[idx]), (idx + 1) as f64 / all.len() as f64)
        })
        .collect()
}

/// Whom a fault acted on, by validator key, for [`recovery`].
#[derive(Clone, Debug, Default)]
pub struct Faulted {
    /// Every node the fault acted on.
    pub nodes: Vec<String>,
    /// Those of them that ran a Byzantine behaviour.
    pub byzantine: Vec<String>,
    /// When the Byzantine behaviour began to run.
    pub byzantine_since: Option<Instant>,
}

/// How the chain came back from the fault injected at `fault` and undone at `recover`. The next
/// commit after the fault is the first block proposed by none of the crashed or cut-off nodes
/// (blocks a faulted leader decided just before the fault still reach the watcher a moment after
/// it); a Byzantine node's blocks count once it runs its behaviour, since a committed block
/// carries a quorum's certificate. After the recovery, no faulted node's block counts.
pub fn recovery(trace: &Trace, schedule: &Schedule, end: Instant, faulted: &Faulted) -> Recovery {
    let t0 = trace.started;
    let fault = t0 + schedule.fault_at;
    let recover = t0 + schedule.recover_at;
    let commits = commit_times(trace);
    // The pre-fault rate: the median of the full bins between the first commit and the fault
    // (robust to the burst of the pipeline filling), or the plain average if there are none.
    let first = commits.first().copied().unwrap_or(t0).min(fault);
    let before = commits.iter().filter(|t| **t < fault).count();
    let average = before as f64
        / fault
            .saturating_duration_since(first)
            .as_secs_f64()
            .max(1e-9);
    let mut bins: Vec<f64> = timeline(trace, fault)
        .into_iter()
        .filter(|(start, _)| {
            let start = t0 + Duration::from_secs_f64(start / 1000.0);
            start >= first && start + BIN <= fault
        })
        .map(|(_, rate)| rate)
        .collect();
    bins.sort_by(f64::total_cmp);
    // Throughput cannot outrun the offer for long: a burst in the bins is not the rate.
    let offered = trace.sent.len() as f64 / schedule.load.as_secs_f64().max(1e-9);
    let pre = bins
        .get(bins.len() / 2)
        .copied()
        .unwrap_or(average)
        .min(offered);
    let next_block = |from: Instant, after: Instant, excluded: &dyn Fn(&String) -> bool| {
        trace
            .blocks
            .iter()
            .find(|b| b.at > after && !excluded(&b.proposer))
            .map(|b| ms_since(from, b.at))
    };
    let misbehaving_from = faulted.byzantine_since.map_or(fault, |t| t.max(fault));
    let crashed = |key: &String| faulted.nodes.contains(key) && !faulted.byzantine.contains(key);
    let any_faulted = |key: &String| faulted.nodes.contains(key);
    // Caught up: from the fault to the first moment the chain has committed, since the fault,
    // at least 90% of what the pre-fault rate would have (backlog bursts count once the stall
    // is made up for, not before).
    let mut to_90 = None;
    let mut at = fault + STEP;
    while at <= end && pre > 0.0 {
        let n = commits.iter().filter(|t| **t >= fault && **t < at).count();
        // No more is offered after the load ends.
        let offered_until = at.min(t0 + schedule.load);
        let expected = pre * offered_until.saturating_duration_since(fault).as_secs_f64();
        if n as f64 >= 0.9 * expected {
            to_90 = Some(ms_since(fault, at));
            break;
        }
        at += STEP;
    }
    Recovery {
        pre_fault_tx_per_s: pre,
        fault_to_next_commit_ms: next_block(fault, misbehaving_from, &crashed),
        fault_to_90pct_ms: to_90,
        recover_to_next_commit_ms: next_block(recover, recover, &any_faulted),
    }
}
