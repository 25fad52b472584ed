//! The safety audit at the end of a run, over RPC: do the honest nodes hold the same block at
//! every height they all finalized, did any block seen committed during the run get replaced
//! (a reorganisation), and did any transaction seen committed disappear from the final chain.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::json;
use synod_chain::hash::Hash;
use synod_node::rpc::client::RpcClient;

use super::report_json::Safety;
use crate::cluster::Cluster;
use crate::load::Trace;

/// How long the honest nodes get to reach one height after the load.
const SETTLE: Duration = Duration::from_secs(15);

fn client(cluster: &Cluster, i: usize) -> RpcClient {
    RpcClient::new(cluster.rpc(i)).with_timeout(Duration::from_secs(5))
}

/// Each honest node's (height, finalized height), waiting (bounded) until they agree on the
/// height, so that a node still catching up is not taken for a fork.
fn settled_heights(cluster: &Cluster, honest: &[usize]) -> Vec<(usize, u64, u64)> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let heights: Vec<(usize, u64, u64)> = honest
            .iter()
            .filter_map(|i| {
                let s = cluster.status(*i)?;
                Some((*i, s["height"].as_u64()?, s["finalized_height"].as_u64()?))
            })
            .collect();
        let same = heights.windows(2).all(|w| w[0].1 == w[1].1);
        if (same && heights.len() == honest.len()) || Instant::now() > deadline {
            return heights;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn hash_at(client: &mut RpcClient, height: u64) -> Option<String> {
    let block = client
        .call("get_block", json!({ "height": height, "txs": "none" }))
        .ok()?;
    block["hash"].as_str().map(str::to_string)
}

/// Audits the chain of the nodes not in `byzantine`, from `start` up.
pub fn audit(
    cluster: &Cluster,
    byzantine: &[usize],
    trace: &Trace,
    ids: &[Hash],
    start: u64,
) -> Safety {
    let honest: Vec<usize> = (0..cluster.len())
        .filter(|i| !byzantine.contains(i))
        .collect();
    let heights = settled_heights(cluster, &honest);
    let Some(&(reference, tip, _)) = heights.iter().max_by_key(|(_, h, _)| *h) else {
        return Safety {
            honest_nodes: honest
                .iter()
                .map(|i| cluster.name(*i).to_string())
                .collect(),
            ..Safety::default()
        };
    };
    let common = heights.iter().map(|(_, _, f)| *f).min().unwrap_or(0);
    let mut divergent = Vec::new();
    let mut clients: Vec<(usize, RpcClient)> = heights
        .iter()
        .map(|(i, _, _)| (*i, client(cluster, *i)))
        .collect();
    for height in start + 1..=common {
        let hashes: Vec<Option<String>> = clients
            .iter_mut()
            .map(|(_, c)| hash_at(c, height))
            .collect();
        if hashes.windows(2).any(|w| w[0] != w[1]) {
            divergent.push(height);
        }
    }
    // The final chain, as the highest honest node holds it.
    let mut reference_client = client(cluster, reference);
    let mut final_ids: HashSet<Hash> = HashSet::new();
    let mut final_hashes = std::collections::HashMap::new();
    for height in start + 1..=tip {
        let Ok(block) =
            reference_client.call("get_block", json!({ "height": height, "txs": "ids" }))
        else {
            continue;
        };
        if let Some(hash) = block["hash"].as_str() {
            final_hashes.insert(height, hash.to_string());
        }
        final_ids.extend(
            block["tx_ids"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|id| id.as_str()?.parse::<Hash>().ok()),
        );
    }
    let reorgs = trace
        .blocks
        .iter()
        .filter(|b| final_hashes.get(&b.height).is_some_and(|h| *h != b.hash))
        .count();
    let in_final = |i: usize| final_ids.contains(&ids[i]);
    let acknowledged_lost = (0..ids.len())
        .filter(|i| trace.committed[*i].is_some() && !in_final(*i))
        .count();
    let uncommitted = (0..ids.len())
        .filter(|i| trace.sent[*i].is_some() && !in_final(*i))
        .count();
    Safety {
        agreement: divergent.is_empty(),
        heights_checked: common.saturating_sub(start),
        divergent_heights: divergent,
        acknowledged_lost,
        reorgs,
        uncommitted,
        honest_nodes: honest
            .iter()
            .map(|i| cluster.name(*i).to_string())
            .collect(),
    }
}
