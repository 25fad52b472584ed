//! What a comparison runs: which engines at which sizes, which faults, the workload, and the
//! fault schedule (the same offsets for every engine).
//!
//! Sizing: by default every engine is sized to tolerate the same number of faults f, which is the
//! question someone choosing an engine asks ("to survive one bad node, how many do I need, and
//! what does each cost?"): PBFT gets 3f+1 replicas, Raft 2f+1, proof of work the PBFT count.
//! `--sizing same-n` runs every engine at the same n instead (Raft then carries more replicas
//! than its f needs, and pays for them in messages).

use std::fmt;
use std::time::Duration;

use anyhow::bail;
use serde::Serialize;

/// The engines `compare` knows; the node decides at start which it runs.
pub const ENGINES: [&str; 3] = ["raft", "pbft", "pow"];

/// How engines are sized against each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Sizing {
    /// The same f: PBFT 3f+1, Raft 2f+1 (f from `--validators` as 3f+1).
    SameF,
    /// The same n for every engine.
    SameN,
}

/// A fault the comparison injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// No fault: the baseline.
    None,
    /// SIGKILL the leader (primary); restart it at the recovery offset.
    CrashLeader,
    /// Isolate a minority of f nodes, the leader among them; heal at the recovery offset.
    Partition,
    /// Restart one node (the leader) with a Byzantine behaviour; restart it honest at the
    /// recovery offset.
    Byzantine,
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FaultKind::None => "none",
            FaultKind::CrashLeader => "crash-leader",
            FaultKind::Partition => "partition",
            FaultKind::Byzantine => "byzantine",
        })
    }
}

/// The f that n validators tolerate as PBFT does (n = 3f+1, rounded down).
pub fn byzantine_f(n: usize) -> usize {
    n.saturating_sub(1) / 3
}

/// The f that n validators tolerate as Raft does (n = 2f+1, rounded down).
pub fn crash_f(n: usize) -> usize {
    n.saturating_sub(1) / 2
}

/// How many validators `engine` runs for the size `n` named on the command line.
pub fn size_for(engine: &str, n: usize, sizing: Sizing) -> usize {
    match (engine, sizing) {
        ("raft", Sizing::SameF) => 2 * byzantine_f(n).max(1) + 1,
        _ => n,
    }
}

/// The faults an engine of `n` validators tolerates: crash faults for Raft, Byzantine for PBFT,
/// and for proof of work none in count (it tolerates a minority of hash power).
pub fn tolerated(engine: &str, n: usize) -> usize {
    match engine {
        "raft" => crash_f(n),
        "pbft" => byzantine_f(n),
        _ => 0,
    }
}

/// When the fault starts and ends, as offsets from the start of the workload.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Schedule {
    /// How long the workload is offered.
    #[serde(serialize_with = "as_ms")]
    pub load: Duration,
    /// When the fault is injected.
    #[serde(serialize_with = "as_ms")]
    pub fault_at: Duration,
    /// When the fault is undone (restart, heal).
    #[serde(serialize_with = "as_ms")]
    pub recover_at: Duration,
}

fn as_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

impl Schedule {
    /// `txs` offered at `rate` tx/s, the fault at a third of the load and the recovery at two
    /// thirds, so each phase (before, during, after) gets a third.
    pub fn for_load(txs: usize, rate: usize) -> anyhow::Result<Schedule> {
        if rate == 0 {
            bail!("compare needs a finite offered rate (--rate > 0): phases are offsets in time");
        }
        let load = Duration::from_secs_f64(txs as f64 / rate as f64);
        if load < Duration::from_secs(3) {
            bail!(
                "{txs} txs at {rate} tx/s last {:.1} s; give at least 3 s of load so that each phase lasts a second",
                load.as_secs_f64()
            );
        }
        Ok(Schedule {
            load,
            fault_at: load / 3,
            recover_at: load * 2 / 3,
        })
    }
}

/// One engine at one size.
#[derive(Clone, Debug, Serialize)]
pub struct EngineSize {
    /// The engine.
    pub engine: String,
    /// Its validators.
    pub validators: usize,
    /// Faults of its kind it tolerates at that size.
    pub tolerates: usize,
}

/// Parses the `--engines` list.
pub fn parse_engines(list: &[String]) -> anyhow::Result<Vec<String>> {
    for e in list {
        if !ENGINES.contains(&e.as_str()) {
            bail!(
                "unknown engine {e:?}; expected some of {}",
                ENGINES.join(",")
            );
        }
    }
    Ok(list.to_vec())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn same_f_sizes_raft_2f_plus_1() {
        assert_eq!(size_for("raft", 4, Sizing::SameF), 3);
        assert_eq!(size_for("raft", 7, Sizing::SameF), 5);
        assert_eq!(size_for("raft", 10, Sizing::SameF), 7);
        assert_eq!(size_for("pbft", 7, Sizing::SameF), 7);
        assert_eq!(size_for("raft", 4, Sizing::SameN), 4);
        assert_eq!(tolerated("raft", 3), 1);
        assert_eq!(tolerated("pbft", 4), 1);
    }

    #[test]
    fn the_schedule_splits_the_load_in_thirds() {
        let s = Schedule::for_load(3_000, 500).unwrap();
        assert_eq!(s.load, Duration::from_secs(6));
        assert_eq!(s.fault_at, Duration::from_secs(2));
        assert_eq!(s.recover_at, Duration::from_secs(4));
        assert!(Schedule::for_load(100, 500).is_err());
        assert!(Schedule::for_load(100, 0).is_err());
    }
}
