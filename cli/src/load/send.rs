//! Sending batches of signed transactions until each is acknowledged or refused for good:
//! "busy" answers are retried after a growing pause, and a node that stops answering is left
//! for the next one (a crashed leader must not stall the load).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use synod_node::rpc::client::{ClientError, RpcClient};

/// Refusals that mean a resent transaction already reached the chain's pools or the chain: the
/// first attempt, whose answer was lost with its node, got through.
const ALREADY_THERE: &[&str] = &["known", "stale_nonce", "nonce_taken"];

/// A client that moves on to the next node when its node stops answering.
pub struct Failover {
    targets: Vec<String>,
    current: usize,
    client: RpcClient,
}

impl Failover {
    /// A client for `targets[start]`, failing over through the others in turn.
    pub fn new(targets: Vec<String>, start: usize) -> Self {
        let current = start % targets.len().max(1);
        let client = RpcClient::new(targets.get(current).map_or("", String::as_str))
            .with_timeout(Duration::from_secs(5));
        Failover {
            targets,
            current,
            client,
        }
    }

    /// Switches to the next node.
    pub fn next(&mut self) {
        if self.targets.is_empty() {
            return;
        }
        self.current = (self.current + 1) % self.targets.len();
        self.client =
            RpcClient::new(&self.targets[self.current]).with_timeout(Duration::from_secs(5));
    }

    /// The current client.
    pub fn client(&mut self) -> &mut RpcClient {
        &mut self.client
    }
}

/// Sends `chunk` (index, hex transaction) until every one is admitted or refused for good,
/// retrying what the node answered "busy" for after a short pause and moving to another node
/// when one does not answer. Returns how many "busy" answers came.
pub fn send_until_settled(
    failover: &mut Failover,
    mut chunk: Vec<(usize, String)>,
    on_admitted: &mut dyn FnMut(usize, Instant),
    on_rejected: &mut dyn FnMut(String),
    deadline: Instant,
) -> usize {
    let mut busy = 0;
    let mut pause = Duration::from_millis(5);
    let mut resent = false;
    while !chunk.is_empty() && Instant::now() < deadline {
        let raw: Vec<&String> = chunk.iter().map(|(_, r)| r).collect();
        let now = Instant::now();
        let mut retry = Vec::new();
        match failover
            .client()
            .call("send_transactions", json!({ "raw": raw }))
        {
            Ok(Value::Array(results)) => {
                for ((i, raw), r) in chunk.into_iter().zip(results.iter()) {
                    let reason = r["reason"].as_str().unwrap_or_default();
                    match r.get("error") {
                        None => on_admitted(i, now),
                        Some(_) if r["retry"].as_bool() == Some(true) => {
                            busy += 1;
                            retry.push((i, raw));
                        }
                        Some(_) if resent && ALREADY_THERE.contains(&reason) => on_admitted(i, now),
                        Some(e) => on_rejected(e.to_string()),
                    }
                }
            }
            Ok(other) => {
                on_rejected(format!("unexpected answer: {other}"));
                return busy;
            }
            Err(ClientError::Rpc { code: -32012, .. }) => {
                busy += chunk.len();
                retry = chunk;
            }
            Err(ClientError::Io { .. }) => {
                // The node is down (or stuck): the same batch, to the next node.
                failover.next();
                resent = true;
                retry = chunk;
            }
            Err(e) => {
                for _ in &chunk {
                    on_rejected(e.to_string());
                }
                return busy;
            }
        }
        chunk = retry;
        if !chunk.is_empty() {
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }
    busy
}
