//! What the nodes spend while the workload runs, sampled about twice a second from each node
//! process: consensus messages and bytes sent (its `/metrics`) and CPU time (`/proc/<pid>/stat`).
//! Counters restart with a restarted process; the sampler tells incarnations apart by pid.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use synod_node::rpc::client::RpcClient;

use crate::cluster::{Cluster, metric_sum};
use crate::procs;

/// One node's counters at one moment.
#[derive(Clone, Debug)]
pub struct Sample {
    /// When.
    pub at: Instant,
    /// Which node.
    pub node: usize,
    /// Its process (counters belong to one process).
    pub pid: i32,
    /// CPU seconds the process has used.
    pub cpu_s: f64,
    /// Consensus messages it has sent.
    pub messages: f64,
    /// Consensus bytes it has sent.
    pub bytes: f64,
}

/// How often the nodes are sampled.
const EVERY: Duration = Duration::from_millis(500);

/// Clock ticks per second of `/proc/<pid>/stat` times.
fn ticks_per_second() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map_or(100.0, |t| t as f64)
}

/// CPU seconds (user + system) of process `pid`.
pub fn cpu_seconds(pid: i32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; fields after it are space-separated.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3 of the man page, utime 14, stime 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks_per_second())
}

fn sample(cluster: &Cluster, node: usize) -> Option<Sample> {
    let pid = procs::running_pid(&cluster.home(node))?;
    let text = RpcClient::new(cluster.rpc(node))
        .with_timeout(Duration::from_millis(400))
        .metrics()
        .ok()?;
    Some(Sample {
        at: Instant::now(),
        node,
        pid,
        cpu_s: cpu_seconds(pid)?,
        messages: metric_sum(&text, "synod_messages_sent_total"),
        bytes: metric_sum(&text, "synod_consensus_bytes_sent_total"),
    })
}

/// Samples every node until `stop` is set.
pub fn sample_until(cluster: &Cluster, stop: &AtomicBool) -> Vec<Sample> {
    let mut out = Vec::new();
    loop {
        out.extend((0..cluster.len()).filter_map(|i| sample(cluster, i)));
        if stop.load(Ordering::SeqCst) {
            return out;
        }
        let next = Instant::now() + EVERY;
        while Instant::now() < next && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// What the nodes spent in `[from, to)`: messages, bytes, and CPU seconds per node. An increase
/// is counted in the window where it was observed; a new process counts from its start.
pub fn spent(samples: &[Sample], nodes: usize, from: Instant, to: Instant) -> Spent {
    let mut spent = Spent {
        cpu_s: vec![0.0; nodes],
        ..Spent::default()
    };
    for node in 0..nodes {
        let mut previous: Option<&Sample> = None;
        for s in samples.iter().filter(|s| s.node == node) {
            let (dm, db, dc) = match previous {
                Some(p) if p.pid == s.pid => (
                    s.messages - p.messages,
                    s.bytes - p.bytes,
                    s.cpu_s - p.cpu_s,
                ),
                Some(_) => (s.messages, s.bytes, s.cpu_s),
                None => (0.0, 0.0, 0.0),
            };
            if s.at >= from && s.at < to {
                spent.messages += dm.max(0.0);
                spent.bytes += db.max(0.0);
                spent.cpu_s[node] += dc.max(0.0);
            }
            previous = Some(s);
        }
    }
    spent
}

/// Totals over a window.
#[derive(Clone, Debug, Default)]
pub struct Spent {
    /// Consensus messages sent by all nodes.
    pub messages: f64,
    /// Consensus bytes sent by all nodes.
    pub bytes: f64,
    /// CPU seconds per node.
    pub cpu_s: Vec<f64>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_new_process_counts_from_its_start() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let s = |ms, pid, m| Sample {
            at: at(ms),
            node: 0,
            pid,
            cpu_s: 0.0,
            messages: m,
            bytes: 0.0,
        };
        let samples = vec![s(0, 1, 10.0), s(500, 1, 30.0), s(1000, 2, 5.0)];
        assert_eq!(spent(&samples, 1, at(0), at(2000)).messages, 25.0);
        assert_eq!(spent(&samples, 1, at(0), at(600)).messages, 20.0);
    }

    #[test]
    fn reads_our_own_cpu_time() {
        assert!(cpu_seconds(std::process::id() as i32).is_some());
    }
}
