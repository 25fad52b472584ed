//! A testnet's nodes seen over JSON-RPC: each node's status, who leads, how high the chain is,
//! and an authenticated client for admin calls. Shared by `testnet`, `bench` and `compare`, which
//! all ask the same questions of a running testnet.
//!
//! The leader is whichever node's `status` says role `leader`, whatever the engine calls it
//! (Raft's leader, PBFT's primary).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use synod_genesis::{Home, TestnetManifest};
use synod_node::rpc::client::RpcClient;

/// The sum of every series of `metric` in a Prometheus text exposition.
pub fn metric_sum(text: &str, metric: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(metric)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// How long a status probe waits for a node.
const PROBE_TIMEOUT: Duration = Duration::from_millis(1_000);

/// A node's status over RPC, or `None` if it does not answer within `timeout`.
pub fn status_of(rpc: &str, timeout: Duration) -> Option<Value> {
    RpcClient::new(rpc)
        .with_timeout(timeout)
        .call("status", json!({}))
        .ok()
}

/// A testnet folder and its manifest.
#[derive(Clone, Debug)]
pub struct Cluster {
    /// The testnet folder.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: TestnetManifest,
}

impl Cluster {
    /// The testnet in `dir`.
    pub fn new(dir: &Path, manifest: TestnetManifest) -> Self {
        Cluster {
            dir: dir.to_path_buf(),
            manifest,
        }
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.manifest.nodes.len()
    }

    /// Node `i`'s name.
    pub fn name(&self, i: usize) -> &str {
        &self.manifest.nodes[i].name
    }

    /// Node `i`'s RPC address.
    pub fn rpc(&self, i: usize) -> &str {
        &self.manifest.nodes[i].rpc
    }

    /// Node `i`'s home folder.
    pub fn home(&self, i: usize) -> PathBuf {
        self.dir.join(&self.manifest.nodes[i].home)
    }

    /// A client for node `i` carrying its credential (the `.cookie` it wrote at start), for
    /// admin methods.
    pub fn admin(&self, i: usize) -> RpcClient {
        RpcClient::new(self.rpc(i))
            .with_timeout(Duration::from_secs(5))
            .with_token(Home::new(self.home(i)).read_cookie())
    }

    /// Node `i`'s status, if it answers.
    pub fn status(&self, i: usize) -> Option<Value> {
        status_of(self.rpc(i), PROBE_TIMEOUT)
    }

    /// The node whose status says it leads, skipping `skip`.
    pub fn leader(&self, skip: Option<usize>) -> Option<usize> {
        (0..self.len())
            .filter(|i| Some(*i) != skip)
            .find(|i| self.status(*i).is_some_and(|s| s["role"] == "leader"))
    }

    /// The highest committed height among the nodes that answer, skipping `skip`.
    pub fn max_height(&self, skip: Option<usize>) -> u64 {
        (0..self.len())
            .filter(|i| Some(*i) != skip)
            .filter_map(|i| self.status(i)?["height"].as_u64())
            .max()
            .unwrap_or(0)
    }

    /// Consensus messages and bytes every node has sent so far, summed over the nodes (counters
    /// start at zero with each node process); `None` if a node did not answer, since a sum over
    /// fewer nodes compared with one over all of them means nothing.
    pub fn traffic(&self) -> Option<(f64, f64)> {
        (0..self.len())
            .map(|i| {
                let text = RpcClient::new(self.rpc(i))
                    .with_timeout(PROBE_TIMEOUT)
                    .metrics()
                    .ok()?;
                Some((
                    metric_sum(&text, "synod_messages_sent_total"),
                    metric_sum(&text, "synod_consensus_bytes_sent_total"),
                ))
            })
            .try_fold((0.0, 0.0), |(m, b), node| {
                node.map(|(dm, db)| (m + dm, b + db))
            })
    }

    /// The highest round (Raft term, PBFT view) any node reports.
    pub fn max_round(&self) -> u64 {
        (0..self.len())
            .filter_map(|i| self.status(i)?["round"].as_u64())
            .max()
            .unwrap_or(0)
    }
}

impl Cluster {
    /// The testnet's funded account keys, in manifest order.
    pub fn account_keys(&self) -> anyhow::Result<Vec<synod_chain::keys::SecretKey>> {
        let keys: Vec<_> = self
            .manifest
            .accounts
            .iter()
            .map(|a| synod_chain::keyfile::read_key_file(&self.dir.join(&a.key)))
            .collect::<Result<_, _>>()?;
        if keys.is_empty() {
            anyhow::bail!("the testnet has no funded accounts");
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_every_series_of_a_metric() {
        let text = "# HELP synod_messages_sent_total x\nsynod_messages_sent_total{kind=\"vote\"} 3\nsynod_messages_sent_total{kind=\"append_entries\"} 7\nsynod_messages_sent_totally 100\n";
        assert_eq!(metric_sum(text, "synod_messages_sent_total"), 10.0);
    }
}
