//! Proof-of-work parameters: targets, the difficulty rule, the timestamp and reorganisation
//! bounds, the reward, and the rules that keep them sane.
//!
//! Every duration is in milliseconds, the unit of synod's header timestamps, so the engine can
//! hand them to `synod_chain::pow` unchanged.

use serde::{Deserialize, Serialize};
use synod_chain::pow::asert::{AsertAnchor, AsertParams, AsertParamsError};
use synod_chain::pow::retarget::{BitcoinRetarget, RetargetParamsError};
use synod_chain::target::Target;

/// How the target follows the hash rate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DifficultyAlgorithm {
    /// Bitcoin's rule: every `retarget_window` blocks, scaled by how long the window took and
    /// clamped by `retarget_clamp` (see `synod_chain::pow::retarget`).
    Bitcoin,
    /// ASERT (aserti3-2d, Bitcoin Cash): every block, from the genesis block as anchor, easing
    /// or tightening the target by 2× per `asert_half_life_ms` of schedule error (see
    /// `synod_chain::pow::asert`). The default: a testnet's hash power jumps by large factors as
    /// miner processes start and stop on shared cores, and Bitcoin's rule reacts only once per
    /// window and by at most `retarget_clamp`, so after a miner leaves the chain can crawl for a
    /// whole window. ASERT reacts within a half-life, never oscillates, and has no window to game.
    #[default]
    Asert,
}

/// Proof-of-work difficulty, retargeting, timestamp bounds and reward.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PowParams {
    /// Target of the first blocks, compact "bits" as hex (default `1e0fffff`, ~1 M hashes a block).
    #[serde(with = "bits_hex")]
    pub initial_bits: u32,
    /// Easiest target retargeting may reach (default `207fffff`, Bitcoin regtest's limit).
    #[serde(with = "bits_hex")]
    pub pow_limit_bits: u32,
    /// Desired time between blocks (default 5 s).
    pub target_block_time_ms: u64,
    /// Which difficulty rule applies (default `asert`; see [`DifficultyAlgorithm`] for why).
    pub difficulty: DifficultyAlgorithm,
    /// Blocks per retarget window, for `bitcoin` difficulty (default 20).
    pub retarget_window: u64,
    /// Most a single retarget may scale the target by, up or down, for `bitcoin` difficulty
    /// (default 4, as Bitcoin).
    pub retarget_clamp: u64,
    /// Schedule error that doubles or halves the target, for `asert` difficulty (default 60 s,
    /// 12 target block times). Shorter reacts faster to miners coming and going but lets each
    /// block's luck move the target more: the target's spread around its ideal is about
    /// 2^±(1/√(2·ln2·n)) for a half-life of n blocks, so ±19 % at 12 blocks, ±8 % at 60, while
    /// a halved hash rate is caught up after about n slow blocks. (Bitcoin Cash uses 2 days, 288
    /// blocks, for a network whose hash rate moves slowly.)
    pub asert_half_life_ms: u64,
    /// How far a block's timestamp may be ahead of the receiving node's clock (default 15 s).
    /// Bitcoin allows 2 h against a 2-day half-life; here it must stay well below the ASERT
    /// half-life, because a parent dated `d` ahead eases its child's target by 2^(d / half-life).
    /// Nodes on one host share a clock and NTP keeps hosts within milliseconds, so 15 s only
    /// costs a block that is early by more than that a short wait.
    pub max_future_block_time_ms: u64,
    /// Deepest reorganisation a node follows: a branch that would undo more of its blocks than
    /// this is refused, which makes older blocks final for it (default 1,000 blocks, about 83
    /// minutes at the default block time, far beyond any honest fork on a testnet).
    pub max_reorg_depth: u64,
    /// Minted to the miner of each block (default 50).
    pub block_reward: u64,
    /// Most transactions per block (default 5,000).
    pub max_block_txs: u32,
}

impl Default for PowParams {
    fn default() -> Self {
        PowParams {
            initial_bits: 0x1e0f_ffff,
            pow_limit_bits: 0x207f_ffff,
            target_block_time_ms: 5_000,
            difficulty: DifficultyAlgorithm::Asert,
            retarget_window: 20,
            retarget_clamp: 4,
            asert_half_life_ms: 60_000,
            max_future_block_time_ms: 15_000,
            max_reorg_depth: 1_000,
            block_reward: 50,
            max_block_txs: 5_000,
        }
    }
}

impl PowParams {
    /// Parameters for a local testnet (`synod testnet init --engine pow`): one-second blocks,
    /// with initial bits for about 25 M hashes a block, what four nodes mining with one thread
    /// each reach together on a 2-core machine with SHA extensions (measured: ~21 MH/s per core
    /// for one miner thread, a little less with four nodes sharing the cores). ASERT, with a
    /// 20-second half-life, then follows the hash power the testnet really has within a minute.
    pub fn testnet() -> PowParams {
        PowParams {
            initial_bits: TESTNET_INITIAL_BITS,
            target_block_time_ms: 1_000,
            asert_half_life_ms: 20_000,
            ..PowParams::default()
        }
    }
}

/// The testnet's initial bits: a target of 0xab8d × 256²⁷, about 25 M hashes a block.
pub const TESTNET_INITIAL_BITS: u32 = 0x1e00_ab8d;

/// The shortest future drift allowed: honest clocks differ by milliseconds, and a bound below
/// that would defer honest blocks.
const MIN_FUTURE_BLOCK_TIME_MS: u64 = 1_000;

impl PowParams {
    /// Bitcoin's retarget rule with these parameters, over millisecond timestamps. Cannot fail
    /// for a genesis that validated.
    pub fn bitcoin_retarget(&self) -> Result<BitcoinRetarget, RetargetParamsError> {
        BitcoinRetarget::new(
            self.target_block_time_ms,
            self.retarget_window,
            self.retarget_clamp,
            self.pow_limit_bits,
        )
    }

    /// The ASERT rule with these parameters, over millisecond timestamps. Cannot fail for a
    /// genesis that validated.
    pub fn asert(&self) -> Result<AsertParams, AsertParamsError> {
        AsertParams::new(
            self.target_block_time_ms,
            self.asert_half_life_ms,
            self.pow_limit_bits,
        )
    }

    /// The ASERT anchor of a chain whose genesis block (height 0, `initial_bits`) is stamped
    /// `genesis_time_ms`: its notional parent is one target block time earlier, so a chain that
    /// keeps to schedule keeps the initial bits.
    pub fn asert_anchor(&self, genesis_time_ms: u64) -> AsertAnchor {
        AsertAnchor {
            height: 0,
            parent_timestamp: genesis_time_ms.saturating_sub(self.target_block_time_ms),
            bits: self.initial_bits,
        }
    }

    /// Reports each broken rule through `fail(field, message)`, field names as in the file.
    pub(crate) fn validate(&self, fail: &mut dyn FnMut(&str, String)) {
        let initial = Target::from_compact(self.initial_bits);
        let limit = Target::from_compact(self.pow_limit_bits);
        if let Err(e) = initial {
            fail("initial_bits", e.to_string());
        }
        if let Err(e) = limit {
            fail("pow_limit_bits", e.to_string());
        }
        if let (Ok(initial), Ok(limit)) = (initial, limit)
            && initial > limit
        {
            fail(
                "initial_bits",
                format!(
                    "{:08x} is easier than pow_limit_bits {:08x}",
                    self.initial_bits, self.pow_limit_bits
                ),
            );
        }
        if self.target_block_time_ms == 0 {
            fail("target_block_time_ms", "must be at least 1".into());
        }
        if self.retarget_window < 2 {
            fail(
                "retarget_window",
                "must be at least 2 blocks (a window needs an interval to measure)".into(),
            );
        }
        if self.retarget_clamp < 1 {
            fail("retarget_clamp", "must be at least 1".into());
        }
        if let Err(e @ RetargetParamsError::Timespan { .. }) = self.bitcoin_retarget() {
            fail("retarget_window", e.to_string());
        }
        if self.asert_half_life_ms < self.target_block_time_ms.max(1) {
            fail(
                "asert_half_life_ms",
                format!(
                    "{} must be at least target_block_time_ms ({}), or one block's luck moves the target more than 2x",
                    self.asert_half_life_ms, self.target_block_time_ms
                ),
            );
        }
        if self.max_future_block_time_ms < MIN_FUTURE_BLOCK_TIME_MS {
            fail(
                "max_future_block_time_ms",
                format!(
                    "{} must be at least {MIN_FUTURE_BLOCK_TIME_MS}, or clock differences between honest nodes defer their blocks",
                    self.max_future_block_time_ms
                ),
            );
        }
        if self.difficulty == DifficultyAlgorithm::Asert
            && self.max_future_block_time_ms >= self.asert_half_life_ms
        {
            fail(
                "max_future_block_time_ms",
                format!(
                    "{} must be below asert_half_life_ms ({}), or one block dated that far ahead halves the next block's difficulty",
                    self.max_future_block_time_ms, self.asert_half_life_ms
                ),
            );
        }
        if self.max_reorg_depth == 0 {
            fail(
                "max_reorg_depth",
                "must be at least 1, or two miners that find a block at the same height never converge".into(),
            );
        }
    }
}

mod bits_hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bits: &u32, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&format!("{bits:08x}"))
        } else {
            s.serialize_u32(*bits)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        let text = String::deserialize(d)?;
        let digits = text.trim_start_matches("0x");
        if digits.len() != 8 {
            return Err(serde::de::Error::custom(format!(
                "expected 8 hex chars of compact target bits, got {:?}",
                text
            )));
        }
        u32::from_str_radix(digits, 16).map_err(|_| {
            serde::de::Error::custom(format!("expected compact target bits in hex, got {text:?}"))
        })
    }
}
