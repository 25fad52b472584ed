//! `synod testnet partition | heal | delay`: live faults on a running dev testnet, through each
//! node's `inject_fault` / `heal_faults` admin RPC (authenticated with the cookie in its home).
//!
//! A partition is told to every node: each cuts off every node outside its own group, so links
//! between groups drop in both directions. Nodes named in no group form one more group together,
//! so `testnet partition node3` isolates node3 from the rest. A delay goes to every node, or with
//! `--node`, to that node (all its outbound links) and to every other node (their links toward
//! it). A node that is down is skipped, and a restarted node starts without faults.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Value, json};

use super::status::describe_faults;
use crate::cluster::Cluster;

/// Arguments of `synod testnet partition`.
#[derive(Args, Debug)]
pub struct PartitionArgs {
    /// Groups of nodes that can still reach each other, each a comma-separated list
    /// (`node0,node1 node2,node3`); nodes in no group form one more group.
    #[arg(required = true, value_name = "GROUP")]
    pub groups: Vec<String>,
    /// Testnet folder.
    #[arg(long, default_value = "testnet")]
    pub dir: PathBuf,
}

/// Arguments of `synod testnet delay`.
#[derive(Args, Debug)]
pub struct DelayArgs {
    /// Delay added to every outbound consensus message, in milliseconds.
    pub ms: u64,
    /// Extra random delay, uniform in [0, jitter], in milliseconds (reorders messages).
    #[arg(long, default_value_t = 0)]
    pub jitter: u64,
    /// Percentage of outbound consensus messages dropped.
    #[arg(long, default_value_t = 0.0)]
    pub loss: f64,
    /// Only this node's links (both directions); every link when not given.
    #[arg(long, value_name = "NODE")]
    pub node: Option<String>,
    /// Testnet folder.
    #[arg(long, default_value = "testnet")]
    pub dir: PathBuf,
}

/// What one node said to a fault call.
pub type NodeAnswer = (usize, anyhow::Result<Value>);

/// For each node, the nodes it must cut off so that only `groups` (node indices) can talk among
/// themselves; nodes in no group form one more group. Refuses a node named in two groups.
pub fn cut_plan(n: usize, groups: &[Vec<usize>]) -> anyhow::Result<Vec<Vec<usize>>> {
    let mut group_of: Vec<Option<usize>> = vec![None; n];
    for (g, group) in groups.iter().enumerate() {
        for &i in group {
            if i >= n {
                bail!("no node {i} in a testnet of {n}");
            }
            if group_of[i].replace(g).is_some() {
                bail!("node{i} is named in two groups");
            }
        }
    }
    let rest = groups.len();
    let group = |i: usize| group_of[i].unwrap_or(rest);
    Ok((0..n)
        .map(|i| (0..n).filter(|j| group(*j) != group(i)).collect())
        .collect())
}

fn call(cluster: &Cluster, i: usize, method: &str, params: Value) -> anyhow::Result<Value> {
    cluster
        .admin(i)
        .call(method, params)
        .with_context(|| format!("{} {method}", cluster.name(i)))
}

/// Partitions the running testnet into `groups` (node indices).
pub fn partition(cluster: &Cluster, groups: &[Vec<usize>]) -> anyhow::Result<Vec<NodeAnswer>> {
    let plan = cut_plan(cluster.len(), groups)?;
    Ok(plan
        .into_iter()
        .enumerate()
        .map(|(i, cut)| {
            let peers: Vec<&str> = cut.iter().map(|j| cluster.name(*j)).collect();
            let answer = call(
                cluster,
                i,
                "inject_fault",
                json!({ "kind": "partition", "peers": peers }),
            );
            (i, answer)
        })
        .collect())
}

/// Removes every fault from every node.
pub fn heal(cluster: &Cluster) -> Vec<NodeAnswer> {
    (0..cluster.len())
        .map(|i| (i, call(cluster, i, "heal_faults", json!({}))))
        .collect()
}

/// Slows links: every link, or only `node`'s (its own outbound links, and every other node's
/// links toward it).
pub fn delay(cluster: &Cluster, args: &DelayArgs) -> anyhow::Result<Vec<NodeAnswer>> {
    let only = match &args.node {
        Some(name) => Some(
            cluster
                .manifest
                .node_index(name)
                .with_context(|| format!("the testnet has no node {name:?}"))?,
        ),
        None => None,
    };
    Ok((0..cluster.len())
        .map(|i| {
            let peers: Vec<&str> = match only {
                Some(k) if k != i => vec![cluster.name(k)],
                _ => Vec::new(),
            };
            let params = json!({
                "kind": "delay",
                "ms": args.ms,
                "jitter_ms": args.jitter,
                "loss_pct": args.loss,
                "peers": peers,
            });
            (i, call(cluster, i, "inject_fault", params))
        })
        .collect())
}

/// Parses `node0,node1` groups into node indices.
pub fn parse_groups(cluster: &Cluster, groups: &[String]) -> anyhow::Result<Vec<Vec<usize>>> {
    groups
        .iter()
        .map(|group| {
            group
                .split(',')
                .filter(|name| !name.trim().is_empty())
                .map(|name| {
                    cluster
                        .manifest
                        .node_index(name.trim())
                        .with_context(|| format!("the testnet has no node {name:?}"))
                })
                .collect()
        })
        .collect()
}

/// Prints what each node answered; fails if no node took the fault.
pub fn report(cluster: &Cluster, answers: Vec<NodeAnswer>) -> anyhow::Result<()> {
    let mut took = 0;
    let mut refused = None;
    for (i, answer) in answers {
        match answer {
            Ok(value) => {
                took += 1;
                println!("{}: {}", cluster.name(i), describe_faults(&value["faults"]));
            }
            Err(e) => {
                println!("{}: not applied: {e:#}", cluster.name(i));
                refused.get_or_insert(e);
            }
        }
    }
    match (took, refused) {
        (0, Some(e)) => Err(e.context("no node took the fault")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn groups_cut_each_other_and_the_unnamed_form_a_group() {
        let plan = cut_plan(4, &[vec![0, 1], vec![2, 3]]).unwrap();
        assert_eq!(plan, vec![vec![2, 3], vec![2, 3], vec![0, 1], vec![0, 1]]);
        let isolate = cut_plan(4, &[vec![3]]).unwrap();
        assert_eq!(isolate, vec![vec![3], vec![3], vec![3], vec![0, 1, 2]]);
        assert!(cut_plan(3, &[vec![0], vec![0, 1]]).is_err());
        assert!(cut_plan(3, &[vec![5]]).is_err());
    }
}
