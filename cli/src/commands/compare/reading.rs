//! A short plain-language reading of each result, made from the numbers alone ("a crashed
//! leader: raft committed again after 410 ms and lost nothing").

use super::plan::FaultKind;
use super::report_json::{Report, Run};

fn ms(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.1} s", v / 1000.0)
    } else {
        format!("{v:.0} ms")
    }
}

fn what(fault: FaultKind) -> &'static str {
    match fault {
        FaultKind::None => "with no fault",
        FaultKind::CrashLeader => "a crashed leader",
        FaultKind::Partition => "a partitioned minority (the leader's side)",
        FaultKind::Byzantine => "a Byzantine leader",
    }
}

/// What one run shows, in a sentence or two.
pub fn run(run: &Run) -> String {
    let engine = &run.engine;
    if !run.ok() {
        return format!(
            "{engine} ({}): {}",
            run.fault,
            run.reason.as_deref().unwrap_or("did not run")
        );
    }
    let safety = &run.safety;
    let loss = if !safety.agreement {
        format!(
            "honest nodes diverged at height {}",
            safety
                .divergent_heights
                .first()
                .copied()
                .unwrap_or_default()
        )
    } else if safety.acknowledged_lost > 0 {
        format!(
            "{} transactions seen committed later vanished",
            safety.acknowledged_lost
        )
    } else if safety.uncommitted > 0 {
        format!(
            "lost nothing committed, but {} acknowledged transactions never committed",
            safety.uncommitted
        )
    } else {
        "lost nothing".to_string()
    };
    let tps = |phase: &str| run.phase(phase).map_or(0.0, |p| p.tx_per_s);
    match run.fault {
        FaultKind::None => format!(
            "{engine}, {} validators, {}: {:.0} tx/s committed, median latency {}, {:.0} messages per block; {loss}.",
            run.validators,
            what(run.fault),
            tps("before").max(tps("during")),
            run.phase("during")
                .map_or("-".into(), |p| ms(p.latency_ms.p50)),
            run.per_block().0.unwrap_or(0.0),
        ),
        fault => {
            let next = run
                .recovery
                .fault_to_next_commit_ms
                .map_or("never committed again during the run".into(), |v| {
                    format!("committed again after {}", ms(v))
                });
            let back = match run.recovery.fault_to_90pct_ms {
                Some(v) => format!("was back to 90% of its throughput after {}", ms(v)),
                None => "did not get back to 90% of its throughput".into(),
            };
            format!(
                "{}: {engine} ({} validators) {next}, {back} ({:.0} tx/s before, {:.0} during, {:.0} after), and {loss}.",
                capitalise(what(fault)),
                run.validators,
                tps("before"),
                tps("during"),
                tps("after"),
            )
        }
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().collect::<String>() + chars.as_str())
        .unwrap_or_default()
}

/// Readings across the whole report: each run's, then what the comparison as a whole shows.
pub fn report(report: &Report) -> Vec<String> {
    let mut out: Vec<String> = report.runs.iter().map(|r| r.reading.clone()).collect();
    for engine in &report.engines {
        if !engine.available {
            out.push(format!(
                "{} was not compared: {}.",
                engine.size.engine,
                engine.reason.as_deref().unwrap_or("not available")
            ));
        }
    }
    let baseline = |engine: &str| {
        report
            .runs
            .iter()
            .find(|r| r.ok() && r.engine == engine && r.fault == FaultKind::None)
            .and_then(|r| r.per_block().0)
    };
    if let (Some(raft), Some(pbft)) = (baseline("raft"), baseline("pbft")) {
        out.push(format!(
            "Per committed block PBFT sent {:.1}x the messages Raft did ({pbft:.0} against {raft:.0}): the price of not trusting the leader.",
            pbft / raft.max(1e-9)
        ));
    }
    out
}
