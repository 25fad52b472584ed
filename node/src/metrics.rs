//! Prometheus metrics, served as text at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// A message-kind label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// The message kind (`append_entries`, `vote`, ...).
    pub kind: String,
}

/// A reason label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// Why.
    pub reason: String,
}

/// A role label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RoleLabel {
    /// The role.
    pub role: String,
}

/// The labels of a message an injected fault dropped.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FaultLabel {
    /// The fault (`partition`, `loss`).
    pub fault: String,
    /// Where the message was going (`consensus_out`, `gossip_in`, ...).
    pub channel: String,
}

/// Counts one message of `kind` in `family`.
pub fn count_kind(family: &Family<KindLabel, Counter>, kind: &str) {
    add_kind(family, kind, 1);
}

/// Adds `n` to the counter of `kind` in `family`.
pub fn add_kind(family: &Family<KindLabel, Counter>, kind: &str, n: u64) {
    family
        .get_or_create(&KindLabel {
            kind: kind.to_string(),
        })
        .inc_by(n);
}

/// Every metric the node exports.
pub struct Metrics {
    registry: Registry,
    /// Chain height.
    pub height: Gauge,
    /// Blocks committed.
    pub commits: Counter,
    /// Transactions committed.
    pub committed_txs: Counter,
    /// Seconds from admission at this node to commit, for transactions submitted here.
    pub commit_latency: Histogram,
    /// Consensus messages sent, by kind.
    pub messages_sent: Family<KindLabel, Counter>,
    /// Bytes of consensus envelopes sent, by message kind (what the comparison divides by
    /// committed blocks).
    pub bytes_sent: Family<KindLabel, Counter>,
    /// Consensus messages received (after the edge checks), by kind.
    pub messages_received: Family<KindLabel, Counter>,
    /// Messages dropped at the edge, by reason.
    pub messages_dropped: Family<ReasonLabel, Counter>,
    /// Connected peers.
    pub peers: Gauge,
    /// 1 for the current role.
    pub role: Family<RoleLabel, Gauge>,
    /// Raft term / PBFT view.
    pub round: Gauge,
    /// Messages dropped by an injected fault.
    pub fault_dropped: Family<FaultLabel, Counter>,
    /// Consensus messages held back by an injected delay.
    pub fault_delayed: Counter,
    /// Pending transactions in the mempool.
    pub mempool: Gauge,
    /// Of those, the ones queued behind a nonce gap.
    pub mempool_queued: Gauge,
    /// 1 while clients are answered "busy" for backpressure, 0 otherwise.
    pub overloaded: Gauge,
    /// Transactions admitted to the mempool.
    pub txs_admitted: Counter,
    /// Transactions refused, by reason.
    pub txs_rejected: Family<ReasonLabel, Counter>,
    /// Nonces hashed by this node's miner.
    pub hashes: Counter,
    /// Blocks this node's miner solved.
    pub blocks_mined: Counter,
    /// The miner's hashes per second over the last few seconds.
    pub hash_rate: Gauge<f64, AtomicU64>,
    /// Reorganisations onto a heavier branch.
    pub reorgs: Counter,
    /// Peers banned for invalid blocks or other misbehaviour.
    pub peers_banned: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric under the `synod` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("synod");
        let metrics = Metrics {
            height: Gauge::default(),
            commits: Counter::default(),
            committed_txs: Counter::default(),
            commit_latency: Histogram::new([
                0.0005, 0.001, 0.0015, 0.002, 0.003, 0.004, 0.005, 0.006, 0.008, 0.01, 0.015, 0.02,
                0.03, 0.05, 0.075, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
            ]),
            messages_sent: Family::default(),
            bytes_sent: Family::default(),
            messages_received: Family::default(),
            fault_dropped: Family::default(),
            fault_delayed: Counter::default(),
            messages_dropped: Family::default(),
            peers: Gauge::default(),
            role: Family::default(),
            round: Gauge::default(),
            mempool: Gauge::default(),
            mempool_queued: Gauge::default(),
            overloaded: Gauge::default(),
            txs_admitted: Counter::default(),
            txs_rejected: Family::default(),
            hashes: Counter::default(),
            blocks_mined: Counter::default(),
            hash_rate: Gauge::default(),
            reorgs: Counter::default(),
            peers_banned: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "height",
            "Height of the committed chain",
            metrics.height.clone(),
        );
        registry.register("commits", "Blocks committed", metrics.commits.clone());
        registry.register(
            "committed_txs",
            "Transactions committed",
            metrics.committed_txs.clone(),
        );
        registry.register(
            "commit_latency_seconds",
            "Time from admission at this node to commit",
            metrics.commit_latency.clone(),
        );
        registry.register(
            "messages_sent",
            "Consensus messages sent",
            metrics.messages_sent.clone(),
        );
        registry.register(
            "consensus_bytes_sent",
            "Bytes of consensus envelopes sent",
            metrics.bytes_sent.clone(),
        );
        registry.register(
            "fault_dropped",
            "Messages dropped by an injected fault (dev chains)",
            metrics.fault_dropped.clone(),
        );
        registry.register(
            "fault_delayed",
            "Consensus messages held back by an injected delay (dev chains)",
            metrics.fault_delayed.clone(),
        );
        registry.register(
            "messages_received",
            "Consensus messages received",
            metrics.messages_received.clone(),
        );
        registry.register(
            "messages_dropped",
            "Messages dropped at the edge (forged, malformed, not a validator)",
            metrics.messages_dropped.clone(),
        );
        registry.register("peers", "Connected peers", metrics.peers.clone());
        registry.register(
            "role",
            "Current role (1 for the role held)",
            metrics.role.clone(),
        );
        registry.register("round", "Raft term or PBFT view", metrics.round.clone());
        registry.register(
            "mempool_size",
            "Pending transactions",
            metrics.mempool.clone(),
        );
        registry.register(
            "mempool_queued",
            "Pending transactions queued behind a nonce gap (not executable yet)",
            metrics.mempool_queued.clone(),
        );
        registry.register(
            "overloaded",
            "1 while the chain's pending transactions are past the high-water mark and clients are answered busy",
            metrics.overloaded.clone(),
        );
        registry.register(
            "txs_admitted",
            "Transactions admitted",
            metrics.txs_admitted.clone(),
        );
        registry.register(
            "txs_rejected",
            "Transactions refused",
            metrics.txs_rejected.clone(),
        );
        registry.register(
            "hashes",
            "Nonces hashed by this node's miner",
            metrics.hashes.clone(),
        );
        registry.register(
            "blocks_mined",
            "Blocks this node's miner solved",
            metrics.blocks_mined.clone(),
        );
        registry.register(
            "hash_rate",
            "The miner's hashes per second over the last few seconds",
            metrics.hash_rate.clone(),
        );
        registry.register(
            "reorgs",
            "Reorganisations onto a heavier branch",
            metrics.reorgs.clone(),
        );
        registry.register(
            "peers_banned",
            "Peers banned for invalid blocks or other misbehaviour",
            metrics.peers_banned.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }

    /// Counts a dropped message.
    pub fn dropped(&self, reason: &str) {
        self.messages_dropped
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Marks `role` as the current role.
    pub fn set_role(&self, role: &str) {
        for r in [
            "follower",
            "precandidate",
            "candidate",
            "leader",
            "observer",
            "miner",
        ] {
            self.role
                .get_or_create(&RoleLabel {
                    role: r.to_string(),
                })
                .set(i64::from(r == role));
        }
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
