//! The proof-of-work flags `genesis new` and `testnet init` share, each mapped onto the generic
//! `--param name=value` it stands for, so it goes through the same parsing and validation as a
//! genesis file.

use anyhow::bail;
use clap::Args;

/// `--target-block-time`, `--initial-bits`, `--difficulty`.
#[derive(Args, Debug, Clone, Default)]
pub struct PowFlags {
    /// Proof of work: the target time between blocks in milliseconds (`target_block_time_ms`;
    /// a testnet's default is 1000).
    #[arg(long, value_name = "MS")]
    pub target_block_time: Option<u64>,
    /// Proof of work: the first blocks' target as compact bits in hex, e.g. 1e00ab8d
    /// (`initial_bits`; a testnet's default gives about one-second blocks to four nodes mining
    /// with one thread each on two cores).
    #[arg(long, value_name = "HEX")]
    pub initial_bits: Option<String>,
    /// Proof of work: the difficulty rule, `asert` (every block; the default) or `bitcoin`
    /// (every `retarget_window` blocks).
    #[arg(long, value_parser = ["bitcoin", "asert"])]
    pub difficulty: Option<String>,
}

impl PowFlags {
    /// The flags as engine parameters, refused for an engine other than proof of work.
    pub fn params(&self, engine: &str) -> anyhow::Result<Vec<(String, String)>> {
        let mut params = Vec::new();
        if let Some(ms) = self.target_block_time {
            params.push(("target_block_time_ms".to_string(), ms.to_string()));
        }
        if let Some(bits) = &self.initial_bits {
            // Quoted, so that bits made of digits only stay a hex string.
            params.push(("initial_bits".to_string(), format!("{bits:?}")));
        }
        if let Some(rule) = &self.difficulty {
            params.push(("difficulty".to_string(), rule.clone()));
        }
        if !params.is_empty() && engine != "pow" {
            bail!(
                "--target-block-time, --initial-bits and --difficulty are proof-of-work parameters; this is a {engine} chain"
            );
        }
        Ok(params)
    }
}
