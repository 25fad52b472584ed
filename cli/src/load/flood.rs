//! A stranger flood beside a workload (`synod bench --flood N`): N libp2p peers with fresh keys,
//! none of them a validator, connect to every node and keep sending each one what a stranger can:
//! envelopes signed by a non-validator, bytes that are no envelope, messages larger than any the
//! node takes, and malformed sync requests, at a fixed total rate. Every one must be dropped at
//! the edge; the benchmark's rows with and without the flood show what dropping them costs.
//!
//! The strangers run in the benchmark's own process, so on a small machine they also take CPU
//! from the nodes: the offered rate is bounded for that reason, and printed with the result.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use synod_chain::hash::Hash;
use synod_chain::keys::{PublicKey, SecretKey};
use synod_node::net::{NetCommand, NetworkHandle, PeerId, peer_id_of, sender::start_sender};

/// Messages a stranger sends per round before the pacing sleep.
const ROUND: u64 = 16;
/// Every this many messages, one is larger than any consensus message a node accepts.
const OVERSIZED_EVERY: u64 = 64;
/// The oversized message (beyond the 16 MiB consensus limit).
const OVERSIZED_BYTES: usize = 17 << 20;

/// A running flood; [`Flood::stop`] ends it and reports what was sent.
pub struct Flood {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    refused: Arc<AtomicU64>,
    threads: Vec<JoinHandle<()>>,
    runtime: Option<tokio::runtime::Runtime>,
    strangers: usize,
    started: Instant,
}

/// What a flood sent.
#[derive(Clone, Copy, Debug)]
pub struct FloodReport {
    /// Strangers that flooded.
    pub strangers: usize,
    /// Messages handed to the strangers' networks (consensus envelopes and sync requests).
    pub sent: u64,
    /// Messages a stranger's own network queue refused (it was that far behind).
    pub refused: u64,
    /// How long it ran.
    pub elapsed: Duration,
}

impl Flood {
    /// Starts `strangers` strangers flooding `targets` (each node's key and p2p `host:port`) of
    /// the chain whose genesis hash is `chain`, at `rate` messages per second in all.
    pub fn start(
        strangers: usize,
        rate: u64,
        chain: Hash,
        targets: &[(PublicKey, String)],
    ) -> anyhow::Result<Flood> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .context("the flood's runtime")?;
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let refused = Arc::new(AtomicU64::new(0));
        anyhow::ensure!(
            !targets.is_empty(),
            "the testnet's genesis names no validators to flood (a proof-of-work network has none)"
        );
        anyhow::ensure!(
            rate >= strangers as u64,
            "a flood of {strangers} strangers needs at least {strangers} messages/s"
        );
        let per_stranger = rate as f64 / strangers.max(1) as f64;
        let pause = Duration::from_secs_f64(ROUND as f64 / per_stranger);
        let mut threads = Vec::with_capacity(strangers);
        for _ in 0..strangers {
            let key = SecretKey::generate();
            let (handle, task) = runtime
                .block_on(async { start_sender(&key, targets, false) })
                .context("a stranger's network")?;
            runtime.spawn(task);
            let stranger = Stranger {
                key,
                handle,
                chain,
                targets: targets
                    .iter()
                    .filter_map(|(k, _)| Some((*k, peer_id_of(k)?)))
                    .collect(),
            };
            let (stop, sent, refused) = (stop.clone(), sent.clone(), refused.clone());
            threads.push(std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..ROUND {
                        if stranger.send(n) {
                            sent.fetch_add(1, Ordering::Relaxed);
                        } else {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                        n += 1;
                    }
                    pace(pause, &stop);
                }
            }));
        }
        Ok(Flood {
            stop,
            sent,
            refused,
            threads,
            runtime: Some(runtime),
            strangers,
            started: Instant::now(),
        })
    }

    /// Stops the strangers (their connections close) and reports what they sent.
    pub fn stop(mut self) -> FloodReport {
        self.halt();
        FloodReport {
            strangers: self.strangers,
            sent: self.sent.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            elapsed: self.started.elapsed(),
        }
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

impl Drop for Flood {
    /// A benchmark that fails mid-run still stops its strangers.
    fn drop(&mut self) {
        self.halt();
    }
}

/// Sleeps `pause` in slices, returning early once `stop` is set.
fn pace(pause: Duration, stop: &AtomicBool) {
    let until = Instant::now() + pause;
    while !stop.load(Ordering::Relaxed) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(20)));
    }
}

/// One stranger's network and what it sends.
struct Stranger {
    key: SecretKey,
    handle: NetworkHandle,
    chain: Hash,
    /// Each node's key and its peer id.
    targets: Vec<(PublicKey, PeerId)>,
}

impl Stranger {
    /// Sends message number `n` of the rotation to the next node; false if the network's queue
    /// refused it.
    fn send(&self, n: u64) -> bool {
        let nodes = self.targets.len() as u64;
        let (node, peer) = self.targets[(n % nodes) as usize];
        // The kind turns once per pass over the nodes, so each node gets every kind.
        let kind = n / nodes;
        let command = if kind % OVERSIZED_EVERY == OVERSIZED_EVERY - 1 {
            NetCommand::Consensus {
                to: peer,
                bytes: vec![0; OVERSIZED_BYTES],
            }
        } else {
            match kind % 3 {
                // Well formed and signed, by a key that is no validator's.
                0 => NetCommand::Consensus {
                    to: peer,
                    bytes: synod_node::envelope::seal(
                        &self.key,
                        &self.chain,
                        &node,
                        &n.to_le_bytes(),
                    ),
                },
                // Not an envelope at all.
                1 => NetCommand::Consensus {
                    to: peer,
                    bytes: n.to_le_bytes().repeat(16),
                },
                // A sync request that decodes to nothing.
                _ => {
                    let (reply, _) = tokio::sync::oneshot::channel();
                    NetCommand::Sync {
                        to: peer,
                        bytes: vec![0xff; 64],
                        reply,
                    }
                }
            }
        };
        self.handle.send(command)
    }
}
