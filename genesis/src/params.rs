//! Engine parameters, with the defaults a local testnet wants and the rules that keep them sane.

use serde::{Deserialize, Serialize};
use synod_chain::limits::MAX_BLOCK_TXS;

use crate::error::FieldError;
pub use crate::pow_params::{DifficultyAlgorithm, PowParams};

/// Which consensus engine orders blocks, and its parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum EngineConfig {
    /// Crash-fault Raft (permissioned; 2f+1 validators).
    Raft(RaftParams),
    /// Byzantine-fault PBFT (permissioned; 3f+1 validators).
    Pbft(PbftParams),
    /// SHA-256 proof of work (permissionless).
    Pow(PowParams),
}

/// Raft timing and batching. Election timeouts are drawn uniformly from `[min, max]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaftParams {
    /// Lower bound of the randomized election timeout (default 300 ms).
    pub election_timeout_min_ms: u64,
    /// Upper bound of the randomized election timeout (default 600 ms).
    pub election_timeout_max_ms: u64,
    /// Leader heartbeat period (default 50 ms); must be well below the election timeout.
    pub heartbeat_interval_ms: u64,
    /// Most transactions per block (default 5,000).
    pub max_block_txs: u32,
    /// How long the leader waits to fill a block once transactions are pending (default 2 ms).
    pub batch_delay_ms: u64,
    /// Blocks between snapshots; the log before a snapshot is compacted (default 1,000).
    pub snapshot_interval: u64,
}

impl Default for RaftParams {
    fn default() -> Self {
        RaftParams {
            election_timeout_min_ms: 300,
            election_timeout_max_ms: 600,
            heartbeat_interval_ms: 50,
            max_block_txs: 5_000,
            batch_delay_ms: 2,
            snapshot_interval: 1_000,
        }
    }
}

/// PBFT timing, checkpoints and batching.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PbftParams {
    /// How long a replica waits for a request to commit before suspecting the primary (default 2 s).
    pub view_change_timeout_ms: u64,
    /// Sequence numbers between checkpoints (default 100).
    pub checkpoint_interval: u64,
    /// Width of the sequence-number window above the last stable checkpoint (default 200).
    pub watermark_window: u64,
    /// Most transactions per block (default 5,000).
    pub max_block_txs: u32,
    /// How long the primary waits to fill a block once transactions are pending (default 2 ms).
    pub batch_delay_ms: u64,
}

impl Default for PbftParams {
    fn default() -> Self {
        PbftParams {
            view_change_timeout_ms: 2_000,
            checkpoint_interval: 100,
            watermark_window: 200,
            max_block_txs: 5_000,
            batch_delay_ms: 2,
        }
    }
}

impl EngineConfig {
    /// The engine's name as written in the file.
    pub fn kind(&self) -> &'static str {
        match self {
            EngineConfig::Raft(_) => "raft",
            EngineConfig::Pbft(_) => "pbft",
            EngineConfig::Pow(_) => "pow",
        }
    }

    /// Most transactions per block.
    pub fn max_block_txs(&self) -> u32 {
        match self {
            EngineConfig::Raft(p) => p.max_block_txs,
            EngineConfig::Pbft(p) => p.max_block_txs,
            EngineConfig::Pow(p) => p.max_block_txs,
        }
    }

    /// Whether the engine admits only the genesis validators.
    pub fn is_permissioned(&self) -> bool {
        !matches!(self, EngineConfig::Pow(_))
    }

    /// Appends one [`FieldError`] per broken rule.
    pub fn validate(&self, errors: &mut Vec<FieldError>) {
        let mut fail = |field: &str, message: String| {
            errors.push(FieldError::new(format!("engine.{field}"), message));
        };
        let max_txs = self.max_block_txs();
        if max_txs == 0 || max_txs as usize > MAX_BLOCK_TXS {
            fail(
                "max_block_txs",
                format!("must be between 1 and {MAX_BLOCK_TXS}, got {max_txs}"),
            );
        }
        match self {
            EngineConfig::Raft(p) => {
                if p.heartbeat_interval_ms == 0 {
                    fail("heartbeat_interval_ms", "must be at least 1".into());
                }
                if p.heartbeat_interval_ms >= p.election_timeout_min_ms {
                    fail(
                        "heartbeat_interval_ms",
                        format!(
                            "{} must be below election_timeout_min_ms ({}), or followers time out between heartbeats",
                            p.heartbeat_interval_ms, p.election_timeout_min_ms
                        ),
                    );
                }
                if p.election_timeout_min_ms > p.election_timeout_max_ms {
                    fail(
                        "election_timeout_max_ms",
                        format!(
                            "{} is below election_timeout_min_ms ({})",
                            p.election_timeout_max_ms, p.election_timeout_min_ms
                        ),
                    );
                }
                if p.batch_delay_ms >= p.election_timeout_min_ms {
                    fail(
                        "batch_delay_ms",
                        "must be below election_timeout_min_ms".into(),
                    );
                }
                if p.snapshot_interval == 0 {
                    fail("snapshot_interval", "must be at least 1".into());
                }
            }
            EngineConfig::Pbft(p) => {
                if p.view_change_timeout_ms == 0 {
                    fail("view_change_timeout_ms", "must be at least 1".into());
                }
                if p.checkpoint_interval == 0 {
                    fail("checkpoint_interval", "must be at least 1".into());
                }
                if p.watermark_window < 2 * p.checkpoint_interval {
                    fail(
                        "watermark_window",
                        format!(
                            "{} must be at least twice checkpoint_interval ({}), or the window closes before a checkpoint can stabilize",
                            p.watermark_window, p.checkpoint_interval
                        ),
                    );
                }
                if p.batch_delay_ms >= p.view_change_timeout_ms {
                    fail(
                        "batch_delay_ms",
                        "must be below view_change_timeout_ms".into(),
                    );
                }
            }
            EngineConfig::Pow(p) => p.validate(&mut fail),
        }
    }
}
