//! The difficulty schedule: the bits every block must declare, from its parent and, for Bitcoin's
//! rule, the header that opens its retarget window. Genesis counts as carrying the genesis file's
//! initial bits whatever its seal says, so a chain's first blocks are held to them.

use synod_chain::BlockHeader;
use synod_chain::pow::asert::{AsertAnchor, AsertParams, next_bits_asert};
use synod_chain::pow::retarget::{BitcoinRetarget, next_bits_bitcoin};
use synod_chain::pow::timestamp::MEDIAN_TIME_SPAN;
use synod_chain::target::Target;
use synod_genesis::{DifficultyAlgorithm, PowParams};

/// Why the expected bits of a block could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DifficultyError {
    /// The header that opens the retarget window is not known (it lies below the retained chain).
    #[error("the header at height {0} that opens the retarget window is not known")]
    MissingWindowStart(u64),
    /// The rule refused its inputs (an unusable parent target).
    #[error("{0}")]
    Rule(String),
}

/// The chain's difficulty rule with its parameters checked once.
#[derive(Clone, Debug)]
pub enum DifficultyRule {
    /// Bitcoin's retarget every `window` blocks.
    Bitcoin {
        /// The checked parameters.
        rule: BitcoinRetarget,
        /// The bits genesis stands for.
        initial_bits: u32,
    },
    /// ASERT from the genesis anchor.
    Asert {
        /// The checked parameters.
        rule: AsertParams,
        /// Genesis as the anchor.
        anchor: AsertAnchor,
    },
}

impl DifficultyRule {
    /// The rule `params` choose, anchored at a genesis stamped `genesis_time_ms`.
    pub fn new(params: &PowParams, genesis_time_ms: u64) -> Result<DifficultyRule, String> {
        Target::from_compact_at_most(
            params.initial_bits,
            Target::from_compact(params.pow_limit_bits).map_err(|e| e.to_string())?,
        )
        .map_err(|e| format!("initial bits: {e}"))?;
        Ok(match params.difficulty {
            DifficultyAlgorithm::Bitcoin => DifficultyRule::Bitcoin {
                rule: params.bitcoin_retarget().map_err(|e| e.to_string())?,
                initial_bits: params.initial_bits,
            },
            DifficultyAlgorithm::Asert => DifficultyRule::Asert {
                rule: params.asert().map_err(|e| e.to_string())?,
                anchor: params.asert_anchor(genesis_time_ms),
            },
        })
    }

    /// The easiest target any block may have.
    pub fn pow_limit(&self) -> Target {
        match self {
            DifficultyRule::Bitcoin { rule, .. } => rule.pow_limit(),
            DifficultyRule::Asert { rule, .. } => rule.pow_limit(),
        }
    }

    /// How many headers below a block its validation reads: the median-time-past span, and for
    /// Bitcoin's rule the retarget window. The engine keeps this many below its finalized height,
    /// so a branch forking right above it can still be checked.
    pub fn ancestry(&self) -> u64 {
        let window = match self {
            DifficultyRule::Bitcoin { rule, .. } => rule.window(),
            DifficultyRule::Asert { .. } => 0,
        };
        window.max(MEDIAN_TIME_SPAN as u64)
    }

    /// The bits `header` declares, genesis standing for the initial bits.
    fn declared_bits(&self, header: &BlockHeader) -> u32 {
        match self {
            DifficultyRule::Bitcoin { initial_bits, .. } if header.height == 0 => *initial_bits,
            DifficultyRule::Asert { anchor, .. } if header.height == 0 => anchor.bits,
            _ => header.seal.bits,
        }
    }

    /// The bits required of the child of `parent`. `timestamp_at(h)` gives the timestamp of the
    /// parent's ancestor at height `h` (only asked for the header opening a retarget window).
    pub fn next_bits(
        &self,
        parent: &BlockHeader,
        timestamp_at: impl FnOnce(u64) -> Option<u64>,
    ) -> Result<u32, DifficultyError> {
        let height = parent.height + 1;
        match self {
            DifficultyRule::Bitcoin { rule, .. } => {
                let first = match rule.window_first_height(height) {
                    Some(h) => timestamp_at(h).ok_or(DifficultyError::MissingWindowStart(h))?,
                    None => 0,
                };
                next_bits_bitcoin(
                    rule,
                    height,
                    first,
                    parent.timestamp_ms,
                    self.declared_bits(parent),
                )
                .map_err(|e| DifficultyError::Rule(e.to_string()))
            }
            DifficultyRule::Asert { rule, anchor } => {
                next_bits_asert(rule, anchor, parent.height, parent.timestamp_ms)
                    .map_err(|e| DifficultyError::Rule(e.to_string()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use synod_chain::block::{HEADER_VERSION, Seal};
    use synod_chain::hash::Hash;
    use synod_chain::keys::PublicKey;

    fn header(height: u64, timestamp_ms: u64, bits: u32) -> BlockHeader {
        BlockHeader {
            version: HEADER_VERSION,
            parent: Hash::ZERO,
            height,
            timestamp_ms,
            tx_root: Hash::ZERO,
            state_root: Hash::ZERO,
            proposer: PublicKey::default(),
            seal: Seal {
                round: 0,
                bits,
                nonce: 0,
            },
        }
    }

    fn bitcoin(window: u64) -> (PowParams, DifficultyRule) {
        let params = PowParams {
            difficulty: DifficultyAlgorithm::Bitcoin,
            initial_bits: 0x207f_ffff,
            target_block_time_ms: 1_000,
            retarget_window: window,
            ..PowParams::default()
        };
        let rule = DifficultyRule::new(&params, 0).unwrap();
        (params, rule)
    }

    #[test]
    fn bitcoin_bits_change_only_at_the_window_boundary() {
        let (_, rule) = bitcoin(10);
        // Inside a window the parent's bits carry over, and the window start is never asked for.
        let parent = header(8, 8_000, 0x2000_ffff);
        let bits = rule.next_bits(&parent, |_| panic!("not a retarget height"));
        assert_eq!(bits, Ok(0x2000_ffff));
        // Genesis stands for the initial bits whatever its seal says.
        assert_eq!(rule.next_bits(&header(0, 0, 0), |_| None), Ok(0x207f_ffff));

        // Height 10 retargets from the timestamps of heights 0 and 9: nine intervals of 500 ms
        // against a timespan of ten 1 s blocks, so the target shrinks to 0.45 of the parent's.
        let parent = header(9, 4_500, 0x2000_ffff);
        let mut asked = None;
        let bits = rule
            .next_bits(&parent, |h| {
                asked = Some(h);
                Some(0)
            })
            .unwrap();
        assert_eq!(asked, Some(0));
        let expected = next_bits_bitcoin(
            &BitcoinRetarget::new(1_000, 10, 4, 0x207f_ffff).unwrap(),
            10,
            0,
            4_500,
            0x2000_ffff,
        )
        .unwrap();
        assert_eq!(bits, expected);
        assert_ne!(bits, 0x2000_ffff);
        // The first block after the boundary carries the new bits on.
        assert_eq!(rule.next_bits(&header(10, 5_000, bits), |_| None), Ok(bits));
        // Without the window's first header the bits cannot be known.
        assert_eq!(
            rule.next_bits(&parent, |_| None),
            Err(DifficultyError::MissingWindowStart(0))
        );
    }

    #[test]
    fn asert_follows_the_parent_and_the_anchor_only() {
        let params = PowParams {
            initial_bits: 0x2000_ffff,
            ..PowParams::default()
        };
        let rule = DifficultyRule::new(&params, 1_000_000).unwrap();
        // On schedule: block 1's parent is genesis at the genesis time.
        assert_eq!(
            rule.next_bits(&header(0, 1_000_000, 0), |_| None),
            Ok(0x2000_ffff)
        );
        // A half-life behind schedule doubles the target.
        let late = header(0, 1_000_000 + params.asert_half_life_ms, 0);
        assert_eq!(rule.next_bits(&late, |_| None), Ok(0x2001_fffe));
        assert_eq!(rule.ancestry(), MEDIAN_TIME_SPAN as u64);
        assert_eq!(bitcoin(20).1.ancestry(), 20);
    }

    #[test]
    fn unusable_parameters_are_refused() {
        let params = PowParams {
            initial_bits: 0x2100_ffff,
            ..PowParams::default()
        };
        assert!(DifficultyRule::new(&params, 0).is_err());
    }
}
