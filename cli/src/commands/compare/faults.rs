//! Injecting and undoing each fault of the comparison on a live testnet, the same way for every
//! engine: the leader (or primary) is whichever node's `status` says role `leader`.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::CommandFactory;
use nix::sys::signal::Signal;

use synod_consensus::pbft::ByzantineBehaviour;
use synod_consensus::raft::simulation::RaftBehaviour;

use super::plan::{FaultKind, byzantine_f, crash_f};
use crate::cluster::Cluster;
use crate::commands::testnet::faults as live;
use crate::procs;

/// Whether this build's `synod node` takes `--byzantine <behaviour>` (the flag arrives with the
/// PBFT engine; until then the Byzantine fault is refused rather than faked).
pub fn byzantine_available() -> bool {
    crate::commands::Cli::command()
        .find_subcommand("node")
        .is_some_and(|node| {
            node.get_arguments()
                .any(|a| a.get_long() == Some("byzantine"))
        })
}

/// Refuses faults this build cannot inject, with the reason.
pub fn check_available(faults: &[FaultKind]) -> anyhow::Result<()> {
    if faults.contains(&FaultKind::Byzantine) && !byzantine_available() {
        bail!(
            "the byzantine fault is not available in this build: `synod node --byzantine <behaviour>` arrives with the PBFT engine; run without it (--faults none,crash-leader,partition)"
        );
    }
    Ok(())
}

/// Why `engine` cannot be run under `kind` on a live testnet, if it cannot: proof of work has
/// no leader to crash, isolate or turn (a lying miner is shown by `synod simulate` instead),
/// and a Byzantine `behaviour` must be one the engine has.
pub fn not_applicable(engine: &str, kind: FaultKind, behaviour: &str) -> Option<String> {
    if engine == "pow" && kind != FaultKind::None {
        return Some(format!(
            "proof of work has no leader for the {kind} fault to aim at; crash or isolate a miner with synod testnet kill / partition"
        ));
    }
    if kind != FaultKind::Byzantine {
        return None;
    }
    let known = match engine {
        "raft" => behaviour
            .parse::<RaftBehaviour>()
            .map(|_| ())
            .map_err(|e| e.to_string()),
        _ => behaviour
            .parse::<ByzantineBehaviour>()
            .map(|_| ())
            .map_err(|e| e.to_string()),
    };
    known
        .err()
        .map(|e| format!("a {engine} node cannot run --byzantine {behaviour}: {e}"))
}

/// A fault in force: what was done, and to whom.
#[derive(Clone, Debug, Default)]
pub struct Injected {
    /// What was done, in words (`SIGKILL node1 (the leader)`).
    pub detail: String,
    /// Nodes the fault acts on (killed, isolated, Byzantine).
    pub nodes: Vec<usize>,
    /// Nodes whose chain is not held to agreement (Byzantine ones).
    pub byzantine: Vec<usize>,
    /// When a Byzantine node began to run with its behaviour (restarting it takes a while, and
    /// the blocks it committed honestly until then show nothing about the fault).
    pub byzantine_since: Option<Instant>,
}

/// Waits (bounded) for a node that leads, so a fault aimed at the leader has one to aim at.
fn current_leader(cluster: &Cluster) -> anyhow::Result<usize> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(leader) = cluster.leader(None) {
            return Ok(leader);
        }
        if Instant::now() > deadline {
            bail!("no node reports role leader, so there is no leader to fault");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Asks whichever node leads to hand the leadership to node `to` until `to` reports role
/// `leader` (bounded).
fn lead_again(cluster: &Cluster, to: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = cluster.status(to);
        if status.as_ref().is_some_and(|s| s["role"] == "leader") {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{} is not the leader after 20 s", cluster.name(to));
        }
        if let (Some(key), Some(leader)) = (
            status.as_ref().and_then(|s| s["node_id"].as_str()),
            cluster.leader(Some(to)),
        ) {
            // Refusals (a transfer already under way, a target still catching up) are retried.
            let _ = cluster
                .admin(leader)
                .call("transfer_leadership", serde_json::json!({ "to": key }));
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Injects `kind`. Nodes the fault will act on are added to `avoid` first, so the commit
/// watcher reads elsewhere. `behaviour` is the Byzantine behaviour to start a node with.
pub fn inject(
    cluster: &Cluster,
    engine: &str,
    kind: FaultKind,
    behaviour: &str,
    avoid: &Arc<Mutex<BTreeSet<usize>>>,
) -> anyhow::Result<Injected> {
    let mark = |nodes: &[usize]| {
        avoid
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(nodes.iter().copied());
    };
    match kind {
        FaultKind::None => Ok(Injected {
            detail: "no fault".into(),
            ..Injected::default()
        }),
        FaultKind::CrashLeader => {
            let leader = current_leader(cluster)?;
            mark(&[leader]);
            procs::signal(&cluster.home(leader), Signal::SIGKILL)?;
            Ok(Injected {
                detail: format!("SIGKILL {} (the leader)", cluster.name(leader)),
                nodes: vec![leader],
                byzantine: Vec::new(),
                byzantine_since: None,
            })
        }
        FaultKind::Partition => {
            let leader = current_leader(cluster)?;
            let n = cluster.len();
            let f = if engine == "raft" {
                crash_f(n)
            } else {
                byzantine_f(n)
            }
            .max(1);
            let minority: Vec<usize> = std::iter::once(leader)
                .chain((0..n).filter(|i| *i != leader))
                .take(f)
                .collect();
            mark(&minority);
            live::partition(cluster, std::slice::from_ref(&minority))?
                .into_iter()
                .try_for_each(|(_, answer)| answer.map(|_| ()))?;
            let names: Vec<&str> = minority.iter().map(|i| cluster.name(*i)).collect();
            Ok(Injected {
                detail: format!("isolate {} (the leader's side, f = {f})", names.join(",")),
                nodes: minority,
                byzantine: Vec::new(),
                byzantine_since: None,
            })
        }
        FaultKind::Byzantine => {
            check_available(&[kind])?;
            let leader = current_leader(cluster)?;
            mark(&[leader]);
            let home = cluster.home(leader);
            procs::stop(&home, Duration::from_secs(5))?;
            procs::start_with(&home, &["--byzantine", behaviour])
                .with_context(|| format!("restarting {} Byzantine", cluster.name(leader)))?;
            let mut detail = format!(
                "restart {} (the leader) with --byzantine {behaviour}",
                cluster.name(leader)
            );
            // A restarted Raft node comes back a follower, and only a leader can equivocate or
            // replay its appends; a silent one cannot win an election (it is a crashed leader).
            if engine == "raft" && behaviour != "silent" {
                lead_again(cluster, leader).context(
                    "the Byzantine Raft node did not lead again, so the fault would show nothing",
                )?;
                detail.push_str(", and hand it the leadership");
            }
            let byzantine_since = Some(Instant::now());
            Ok(Injected {
                detail,
                nodes: vec![leader],
                byzantine: vec![leader],
                byzantine_since,
            })
        }
    }
}

/// Undoes `injected`: restarts killed nodes, heals partitions, restarts a Byzantine node honest.
pub fn recover(cluster: &Cluster, kind: FaultKind, injected: &Injected) -> anyhow::Result<()> {
    match kind {
        FaultKind::None => Ok(()),
        FaultKind::CrashLeader => {
            for &i in &injected.nodes {
                let home = cluster.home(i);
                let deadline = Instant::now() + Duration::from_secs(10);
                while procs::running_pid(&home).is_some() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
                procs::start(&home)?;
            }
            Ok(())
        }
        FaultKind::Partition => live::heal(cluster)
            .into_iter()
            .try_for_each(|(_, answer)| answer.map(|_| ())),
        FaultKind::Byzantine => {
            for &i in &injected.nodes {
                let home = cluster.home(i);
                procs::stop(&home, Duration::from_secs(5))?;
                procs::start(&home)?;
            }
            Ok(())
        }
    }
}
