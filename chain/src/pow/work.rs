//! Block work and cumulative chainwork: what "heaviest chain" means.
//!
//! A block's work is the expected number of hashes it took, ⌊2²⁵⁶ / (target + 1)⌋ (Bitcoin's
//! `GetBlockProof`); a chain's work is the sum over its blocks. Fork choice compares sums, never
//! heights, so a short chain of hard blocks beats a long chain of easy ones.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::target::{Target, TargetError};
use super::uint256::U256;
use crate::fixed_bytes;

/// An amount of proof of work: one block's, or a chain's cumulative total. Ordered as numbers.
///
/// Serialized as 64 hex digits in human-readable formats (as bitcoind shows `chainwork`) and as 32
/// big-endian bytes in the canonical binary encoding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Chainwork(U256);

impl Chainwork {
    /// No work: the chainwork before genesis.
    pub const ZERO: Chainwork = Chainwork(U256::ZERO);

    /// The work of one block mined at `target`.
    pub fn of_target(target: &Target) -> Chainwork {
        Chainwork(target.as_u256().two_pow_256_div_succ())
    }

    /// An amount of work given as a number (e.g. read back from a store).
    pub fn from_u256(value: U256) -> Chainwork {
        Chainwork(value)
    }

    /// The amount as a number.
    pub fn as_u256(&self) -> U256 {
        self.0
    }
}

/// The work of one block whose header declares compact `bits`, or why the bits are unusable.
pub fn work(bits: u32) -> Result<Chainwork, TargetError> {
    Target::from_compact(bits).map(|target| Chainwork::of_target(&target))
}

/// Saturating: 2²⁵⁶ hashes are beyond any real chain, so a sum that large can only come from
/// forged bits, and saturating keeps comparison monotone without ever panicking on them.
impl Add for Chainwork {
    type Output = Chainwork;

    fn add(self, rhs: Chainwork) -> Chainwork {
        Chainwork(self.0.saturating_add(rhs.0))
    }
}

impl AddAssign for Chainwork {
    fn add_assign(&mut self, rhs: Chainwork) {
        *self = *self + rhs;
    }
}

impl Sum for Chainwork {
    fn sum<I: Iterator<Item = Chainwork>>(iter: I) -> Chainwork {
        iter.fold(Chainwork::ZERO, Add::add)
    }
}

/// 64 hex digits, most significant first.
impl fmt::Display for Chainwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Serialize for Chainwork {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        fixed_bytes::serialize(&self.0.to_be_bytes(), s)
    }
}

impl<'de> Deserialize<'de> for Chainwork {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Chainwork, D::Error> {
        fixed_bytes::deserialize::<D, 32>(d).map(|bytes| Chainwork(U256::from_be_bytes(bytes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;

    #[test]
    fn difficulty_one_and_the_easiest_and_hardest_targets() {
        assert_eq!(
            work(0x1d00ffff).unwrap().as_u256(),
            U256::from_u64(0x1_0001_0001)
        );
        assert_eq!(work(0x01010000).unwrap().as_u256(), U256::ONE << 255);
        // Regtest's limit 0x7fffff × 2²³² has work 2: two hashes on average.
        assert_eq!(work(0x207fffff).unwrap().as_u256(), U256::from_u64(2));
        assert_eq!(work(0x1d800001), Err(TargetError::Negative(0x1d800001)));
        assert_eq!(work(0), Err(TargetError::Zero(0)));
    }

    #[test]
    fn harder_targets_weigh_more_and_sums_saturate() {
        let easy = work(0x1d00ffff).unwrap();
        let hard = work(0x1d00d86a).unwrap();
        assert!(hard > easy);
        assert!(easy + easy > hard);
        let mut total = Chainwork::ZERO;
        total += easy;
        total += hard;
        assert_eq!(total, [easy, hard].into_iter().sum());
        let max = Chainwork::from_u256(U256::MAX);
        assert_eq!(max + easy, max);
    }

    #[test]
    fn serializes_as_hex_and_as_fixed_bytes() {
        let w = work(0x1d00ffff).unwrap();
        let json = serde_json::to_string(&w).unwrap();
        assert_eq!(json, format!("\"{}100010001\"", "0".repeat(55)));
        assert_eq!(serde_json::from_str::<Chainwork>(&json).unwrap(), w);
        let bytes = codec::encode(&w);
        assert_eq!(bytes.len(), 32);
        assert_eq!(bytes, w.as_u256().to_be_bytes());
        assert_eq!(codec::decode::<Chainwork>(&bytes, 32).unwrap(), w);
        assert!(serde_json::from_str::<Chainwork>("\"123\"").is_err());
    }
}
