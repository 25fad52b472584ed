//! The commit watcher: asks one node for each next block (one round trip per poll), stamps the
//! transactions in it when first seen, and moves to another node when its node goes down or is
//! put on the avoid list (a node a fault is about to isolate or kill). On a chain whose commits
//! are tentative (proof of work) it follows reorganisations: a block whose parent is not the
//! block it saw below undoes the stamps of the abandoned blocks, so what it counts is what the
//! node's current branch holds.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use synod_chain::hash::Hash;
use synod_node::rpc::client::{ClientError, RpcClient};

/// A committed block as the watcher first saw it.
#[derive(Clone, Debug)]
pub struct SeenBlock {
    /// Its height.
    pub height: u64,
    /// Its id.
    pub hash: String,
    /// When the watcher saw it.
    pub at: Instant,
    /// The validator that proposed it (its public key), as the block says.
    pub proposer: String,
}

/// How long a node that did not answer is left alone.
const DOWN_PAUSE: Duration = Duration::from_millis(500);

/// Which nodes the watcher may read, and from which height on.
#[derive(Clone, Debug)]
pub struct Watch {
    /// RPC addresses of the nodes, by index.
    pub nodes: Vec<String>,
    /// The node read while it is fine.
    pub preferred: usize,
    /// Nodes not to read (shared with whoever injects faults).
    pub avoid: Arc<Mutex<BTreeSet<usize>>>,
    /// The committed height before the workload.
    pub start_height: u64,
    /// Whether a committed block may be replaced (tentative finality): then the watcher checks
    /// each block's parent and steps back over abandoned blocks. Off, a replaced block stays
    /// counted, which is what a safety check of a final chain wants to see.
    pub follow_reorgs: bool,
}

impl Watch {
    /// Watches `nodes`, preferring `preferred`, from `start_height` on.
    pub fn new(nodes: Vec<String>, preferred: usize, start_height: u64) -> Self {
        Watch {
            nodes,
            preferred,
            avoid: Arc::new(Mutex::new(BTreeSet::new())),
            start_height,
            follow_reorgs: false,
        }
    }

    /// The same watcher, following reorganisations when `follow` holds (see
    /// [`Watch::follow_reorgs`]).
    pub fn following_reorgs(mut self, follow: bool) -> Self {
        self.follow_reorgs = follow;
        self
    }

    fn pick(&self, down: &[Option<Instant>]) -> Option<usize> {
        let avoid = self
            .avoid
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let usable = |i: &usize| !avoid.contains(i) && down[*i].is_none_or(|t| t <= Instant::now());
        let n = self.nodes.len();
        (0..n).map(|k| (self.preferred + k) % n).find(usable)
    }

    /// Watches until `finished()` holds and every `admitted()` transaction was seen, or until
    /// `deadline`. Returns when each transaction of `index` was first seen committed, and the
    /// blocks seen.
    pub fn run(
        &self,
        index: &HashMap<Hash, usize>,
        deadline: Instant,
        finished: &dyn Fn() -> bool,
        admitted: &dyn Fn() -> usize,
        progress: &(dyn Fn(usize, u64) + Sync),
    ) -> (Vec<Option<Instant>>, Vec<SeenBlock>) {
        let mut committed = vec![None; index.len()];
        let mut blocks = Vec::new();
        let mut seen = 0usize;
        let mut height = self.start_height;
        // The branch above `start_height` as seen: each block's id and the transactions it stamped.
        let mut branch: Vec<(String, Vec<usize>)> = Vec::new();
        let mut down: Vec<Option<Instant>> = vec![None; self.nodes.len()];
        let mut clients: Vec<RpcClient> = self
            .nodes
            .iter()
            .map(|a| RpcClient::new(a).with_timeout(Duration::from_secs(2)))
            .collect();
        let mut last_report = Instant::now();
        while Instant::now() < deadline {
            if let Some(node) = self.pick(&down) {
                loop {
                    let answer = clients[node]
                        .call("get_block", json!({ "height": height + 1, "txs": "ids" }));
                    let block = match answer {
                        Ok(block) => block,
                        Err(ClientError::Io { .. }) => {
                            down[node] = Some(Instant::now() + DOWN_PAUSE);
                            break;
                        }
                        Err(_) => break,
                    };
                    let hash = block["hash"].as_str().unwrap_or_default().to_string();
                    if self.follow_reorgs
                        && let Some((below, _)) = branch.last()
                        && block["parent"].as_str() != Some(below.as_str())
                    {
                        // The block below was abandoned: its transactions count again only
                        // when the node's branch holds them.
                        let (_, stamped) = branch.pop().expect("the branch has a last block");
                        for i in stamped {
                            committed[i] = None;
                            seen -= 1;
                        }
                        height -= 1;
                        continue;
                    }
                    height += 1;
                    let at = Instant::now();
                    let ids = block["tx_ids"].as_array().cloned().unwrap_or_default();
                    let mut stamped = Vec::new();
                    for id in &ids {
                        if let Some(i) = id
                            .as_str()
                            .and_then(|s| s.parse::<Hash>().ok())
                            .and_then(|h| index.get(&h))
                            && committed[*i].is_none()
                        {
                            committed[*i] = Some(at);
                            seen += 1;
                            stamped.push(*i);
                        }
                    }
                    if self.follow_reorgs {
                        branch.push((hash.clone(), stamped));
                    }
                    blocks.push(SeenBlock {
                        height,
                        hash,
                        at,
                        proposer: block["proposer"].as_str().unwrap_or_default().to_string(),
                    });
                }
            }
            if last_report.elapsed() >= Duration::from_millis(400) {
                progress(seen, height);
                last_report = Instant::now();
            }
            if finished() && seen >= admitted() {
                break;
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        progress(seen, height);
        (committed, blocks)
    }
}
