//! Proof-of-work targets and their compact ("bits") encoding, as Bitcoin defines them.
//!
//! A target is a 256-bit number; a header meets it when its id, read as a little-endian number,
//! is at most the target. The compact form is `exponent(8 bits) | mantissa(24 bits)` meaning
//! `mantissa * 256^(exponent - 3)` (see [`crate::pow::compact`]); a mantissa with its top bit set
//! would be negative and is refused, as are zero and targets wider than 256 bits, exactly the
//! checks of Bitcoin's `CheckProofOfWork`.

use super::compact::{decode_compact, encode_compact};
use super::uint256::U256;
use crate::hash::Hash;

/// A proof-of-work target: a number from 1 to 2²⁵⁶ − 1. Lower is harder. Ordered as numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Target(U256);

/// Why a compact target is not usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// The sign bit of the mantissa is set.
    #[error("compact target {0:08x} is negative")]
    Negative(u32),
    /// The target is zero: no hash could meet it.
    #[error("compact target {0:08x} is zero")]
    Zero(u32),
    /// The target does not fit in 256 bits.
    #[error("compact target {0:08x} overflows 256 bits")]
    Overflow(u32),
    /// The target is easier than the chain's proof-of-work limit allows.
    #[error("compact target {bits:08x} is easier than the limit {limit_bits:08x}")]
    AboveLimit {
        /// The refused bits.
        bits: u32,
        /// The limit's bits.
        limit_bits: u32,
    },
}

impl Target {
    /// Decodes compact bits, refusing what Bitcoin's `CheckProofOfWork` refuses: a negative
    /// value, one wider than 256 bits, and zero. Overflow is checked before zero because the
    /// bits that survive an overflowing shift may well be zero, and "overflow" says why.
    pub fn from_compact(bits: u32) -> Result<Target, TargetError> {
        let decoded = decode_compact(bits);
        if decoded.negative {
            return Err(TargetError::Negative(bits));
        }
        if decoded.overflow {
            return Err(TargetError::Overflow(bits));
        }
        Target::from_u256(decoded.value).ok_or(TargetError::Zero(bits))
    }

    /// Decodes compact bits and also refuses a target above `limit`: what a header's bits must
    /// pass before its proof of work counts.
    pub fn from_compact_at_most(bits: u32, limit: Target) -> Result<Target, TargetError> {
        let target = Target::from_compact(bits)?;
        if target > limit {
            return Err(TargetError::AboveLimit {
                bits,
                limit_bits: limit.to_compact(),
            });
        }
        Ok(target)
    }

    /// A target from its value; `None` for zero, which no hash can meet.
    pub fn from_u256(value: U256) -> Option<Target> {
        (!value.is_zero()).then_some(Target(value))
    }

    /// The target as a number.
    pub fn as_u256(&self) -> U256 {
        self.0
    }

    /// 32 big-endian bytes, the way targets are shown.
    pub fn to_be_bytes(&self) -> [u8; 32] {
        self.0.to_be_bytes()
    }

    /// The compact encoding (normalized and rounded toward zero as Bitcoin's `GetCompact` does).
    pub fn to_compact(&self) -> u32 {
        encode_compact(self.0, false)
    }

    /// Whether block id `hash` (a little-endian number) is at most this target.
    pub fn is_met_by(&self, hash: &Hash) -> bool {
        U256::from_le_bytes(hash.0) <= self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitcoin_limit_round_trips() {
        let t = Target::from_compact(0x1d00ffff).unwrap();
        assert_eq!(
            hex::encode(t.to_be_bytes()),
            "00000000ffff0000000000000000000000000000000000000000000000000000"
        );
        assert_eq!(t.to_compact(), 0x1d00ffff);
        assert_eq!(
            Target::from_compact(0x1d00d86a).unwrap().to_compact(),
            0x1d00d86a
        );
        assert_eq!(
            Target::from_compact(0x03123456).unwrap().to_be_bytes()[29..],
            [0x12, 0x34, 0x56]
        );
        assert_eq!(
            Target::from_compact(0x02123400).unwrap().to_be_bytes()[30..],
            [0x12, 0x34]
        );
    }

    #[test]
    fn bad_compacts_are_refused() {
        assert_eq!(
            Target::from_compact(0x1d800001),
            Err(TargetError::Negative(0x1d800001))
        );
        assert_eq!(
            Target::from_compact(0x1d000000),
            Err(TargetError::Zero(0x1d000000))
        );
        assert_eq!(
            Target::from_compact(0x01003456),
            Err(TargetError::Zero(0x01003456))
        );
        assert_eq!(
            Target::from_compact(0x22010000),
            Err(TargetError::Overflow(0x22010000))
        );
        // 0x21 with a small mantissa still fits in 256 bits.
        assert!(Target::from_compact(0x2100ffff).is_ok());
    }

    #[test]
    fn edge_compacts() {
        use TargetError::{Negative, Overflow, Zero};
        let refused = [
            // A sign bit on a mantissa shifted out below size 3 is zero, not negative (Bitcoin).
            (0x01803456, Zero(0x01803456)),
            // The sign bit alone, with no mantissa, is zero.
            (0x1d800000, Zero(0x1d800000)),
            // Both the sign and the overflow flag set: reported as negative.
            (0xff800001, Negative(0xff800001)),
            (0xff000001, Overflow(0xff000001)),
        ];
        for (bits, error) in refused {
            assert_eq!(Target::from_compact(bits), Err(error), "{bits:08x}");
        }
        // The smallest target, 1, and the widest encodable one.
        let one = Target::from_compact(0x01010000).unwrap();
        assert_eq!(one.as_u256(), U256::ONE);
        assert_eq!(one.to_compact(), 0x01010000);
        let widest = Target::from_compact(0x220000ff).unwrap();
        assert_eq!(widest.as_u256(), U256::from_u64(0xff) << 248);
        assert_eq!(widest.to_compact(), 0x2100ff00);
        // Non-normalized bits decode, and re-encode in normal form (0x04000001 is 0x100).
        assert_eq!(
            Target::from_compact(0x04000001).unwrap().to_compact(),
            0x02010000
        );
        assert_eq!(Target::from_u256(U256::ZERO), None);
    }

    #[test]
    fn the_limit_is_inclusive() {
        let limit = Target::from_compact(0x1d00ffff).unwrap();
        assert!(Target::from_compact_at_most(0x1d00ffff, limit).is_ok());
        assert!(Target::from_compact_at_most(0x1c7fffff, limit).is_ok());
        assert_eq!(
            Target::from_compact_at_most(0x1d010000, limit),
            Err(TargetError::AboveLimit {
                bits: 0x1d010000,
                limit_bits: 0x1d00ffff
            })
        );
        assert_eq!(
            Target::from_compact_at_most(0x1d800001, limit),
            Err(TargetError::Negative(0x1d800001))
        );
    }

    #[test]
    fn hashes_compare_as_little_endian_numbers() {
        let target = Target::from_u256(U256::from_u64(0x0100)).unwrap();
        let mut id = [0u8; 32];
        id[1] = 0x01; // 0x0100 little-endian: equal to the target
        assert!(target.is_met_by(&Hash(id)));
        id[0] = 0x01; // 0x0101
        assert!(!target.is_met_by(&Hash(id)));
        let mut id = [0u8; 32];
        id[0] = 0xff; // 0x00ff
        assert!(target.is_met_by(&Hash(id)));
        id[31] = 0x01; // the most significant byte is last
        assert!(!target.is_met_by(&Hash(id)));
    }
}
