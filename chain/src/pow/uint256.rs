//! A 256-bit unsigned integer with only the arithmetic that proof of work needs.
//!
//! Targets, the work of a block and the cumulative work of a chain are 256-bit numbers. Difficulty
//! code uses Bitcoin's `arith_uint256` for shifts, comparison, addition, multiplication and division
//! by a machine word, and ⌊2²⁵⁶ / (t + 1)⌋; this type has exactly those, so it stays small enough to
//! check by reading. No operation wraps silently or panics: overflow is reported (`checked_*`),
//! saturates, or is documented as discarding the bits shifted out.

use std::cmp::Ordering;
use std::fmt;
use std::num::NonZeroU64;
use std::ops::{Shl, Shr};

/// An unsigned 256-bit integer: four 64-bit limbs, least significant first.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct U256([u64; 4]);

impl U256 {
    /// Zero.
    pub const ZERO: U256 = U256([0; 4]);
    /// One: the smallest valid proof-of-work target.
    pub const ONE: U256 = U256([1, 0, 0, 0]);
    /// 2²⁵⁶ − 1.
    pub const MAX: U256 = U256([u64::MAX; 4]);

    /// A small number.
    pub const fn from_u64(value: u64) -> U256 {
        U256([value, 0, 0, 0])
    }

    /// From limbs, least significant first (the layout a hash compares in, limb by limb).
    pub const fn from_limbs(limbs: [u64; 4]) -> U256 {
        U256(limbs)
    }

    /// The limbs, least significant first.
    pub const fn limbs(&self) -> [u64; 4] {
        self.0
    }

    /// From 32 big-endian bytes (how targets are written for people).
    pub fn from_be_bytes(bytes: [u8; 32]) -> U256 {
        let mut limbs = [0u64; 4];
        for (i, chunk) in bytes.chunks_exact(8).enumerate() {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            limbs[3 - i] = u64::from_be_bytes(word);
        }
        U256(limbs)
    }

    /// 32 big-endian bytes.
    pub fn to_be_bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, chunk) in out.chunks_exact_mut(8).enumerate() {
            chunk.copy_from_slice(&self.0[3 - i].to_be_bytes());
        }
        out
    }

    /// From 32 little-endian bytes: a block id read as a number, the way it is compared with a target.
    pub fn from_le_bytes(bytes: [u8; 32]) -> U256 {
        let mut limbs = [0u64; 4];
        for (limb, chunk) in limbs.iter_mut().zip(bytes.chunks_exact(8)) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            *limb = u64::from_le_bytes(word);
        }
        U256(limbs)
    }

    /// Whether this is zero.
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 4]
    }

    /// Number of significant bits: 0 for zero, 256 when the top bit is set.
    pub fn bits(&self) -> u32 {
        for (i, limb) in self.0.iter().enumerate().rev() {
            if *limb != 0 {
                return 64 * i as u32 + (64 - limb.leading_zeros());
            }
        }
        0
    }

    /// The least significant 64 bits.
    pub fn low_u64(&self) -> u64 {
        self.0[0]
    }

    /// `self + rhs`, or `None` if the sum needs 257 bits.
    pub fn checked_add(self, rhs: U256) -> Option<U256> {
        let (sum, carry) = self.overflowing_add(rhs);
        (!carry).then_some(sum)
    }

    /// `self + rhs`, or [`U256::MAX`] if the sum needs 257 bits.
    pub fn saturating_add(self, rhs: U256) -> U256 {
        self.checked_add(rhs).unwrap_or(U256::MAX)
    }

    /// `self × factor`, or `None` if the product needs more than 256 bits.
    pub fn checked_mul_u64(self, factor: u64) -> Option<U256> {
        let (low, high) = self.widening_mul_u64(factor);
        (high == 0).then_some(low)
    }

    /// `self << shift`, or `None` if any set bit would be shifted out.
    pub fn checked_shl(self, shift: u32) -> Option<U256> {
        if self.is_zero() {
            return Some(self);
        }
        let shifted = self << shift;
        (shift < 256 && shifted >> shift == self).then_some(shifted)
    }

    /// ⌊self × factor / divisor⌋, exact: the product is kept in 320 bits, so a retarget or an
    /// ASERT step cannot overflow on the way even when the target is close to 2²⁵⁶. `None` if the
    /// quotient itself needs more than 256 bits.
    pub fn mul_div_u64(self, factor: u64, divisor: NonZeroU64) -> Option<U256> {
        let (low, high) = self.widening_mul_u64(factor);
        let divisor = u128::from(divisor.get());
        // Long division from the top limb; every partial remainder is below the divisor, so each
        // step's dividend fits in 128 bits and each quotient digit in 64.
        let mut remainder = u128::from(high);
        if remainder >= divisor {
            return None;
        }
        let mut quotient = [0u64; 4];
        for i in (0..4).rev() {
            let dividend = (remainder << 64) | u128::from(low.0[i]);
            quotient[i] = (dividend / divisor) as u64;
            remainder = dividend % divisor;
        }
        Some(U256(quotient))
    }

    /// ⌊2²⁵⁶ / (self + 1)⌋: the expected number of hashes to find one at or below target `self`,
    /// which is how a block's work is defined. Zero would give 2²⁵⁶, which needs 257 bits; it
    /// saturates to [`U256::MAX`] (zero is never a valid target, so no block has that work).
    pub fn two_pow_256_div_succ(self) -> U256 {
        if self.is_zero() {
            return U256::MAX;
        }
        // Since 2²⁵⁶ − (t + 1) = !t, ⌊2²⁵⁶ / (t + 1)⌋ = ⌊!t / (t + 1)⌋ + 1 (Bitcoin's GetBlockProof
        // identity), which keeps every operand in 256 bits. For t = MAX, t + 1 is 2²⁵⁶ and the
        // answer is 1.
        let Some(divisor) = self.checked_add(U256::ONE) else {
            return U256::ONE;
        };
        let quotient = U256([!self.0[0], !self.0[1], !self.0[2], !self.0[3]]).div(divisor);
        // quotient ≤ ⌊(2²⁵⁶ − 2) / 2⌋ because the divisor is at least 2 here, so adding one fits.
        quotient.saturating_add(U256::ONE)
    }

    /// ⌊self / divisor⌋ by binary long division over the quotient's bits; `divisor` is not zero.
    fn div(self, divisor: U256) -> U256 {
        if self < divisor || divisor.is_zero() {
            return U256::ZERO;
        }
        let quotient_bits = self.bits() - divisor.bits();
        let mut shifted = divisor << quotient_bits;
        let mut remainder = self;
        let mut quotient = U256::ZERO;
        for bit in (0..=quotient_bits).rev() {
            if remainder >= shifted {
                remainder = remainder.overflowing_sub(shifted);
                quotient.0[(bit / 64) as usize] |= 1 << (bit % 64);
            }
            shifted = shifted >> 1;
        }
        quotient
    }

    fn overflowing_add(self, rhs: U256) -> (U256, bool) {
        let mut out = [0u64; 4];
        let mut carry = false;
        for (i, slot) in out.iter_mut().enumerate() {
            let (sum, c1) = self.0[i].overflowing_add(rhs.0[i]);
            let (sum, c2) = sum.overflowing_add(u64::from(carry));
            *slot = sum;
            carry = c1 || c2;
        }
        (U256(out), carry)
    }

    /// `self − rhs` modulo 2²⁵⁶; only called with `self >= rhs`.
    fn overflowing_sub(self, rhs: U256) -> U256 {
        let mut out = [0u64; 4];
        let mut borrow = false;
        for (i, slot) in out.iter_mut().enumerate() {
            let (diff, b1) = self.0[i].overflowing_sub(rhs.0[i]);
            let (diff, b2) = diff.overflowing_sub(u64::from(borrow));
            *slot = diff;
            borrow = b1 || b2;
        }
        U256(out)
    }

    /// The 320-bit product as its low 256 bits and the limb above them.
    fn widening_mul_u64(self, factor: u64) -> (U256, u64) {
        let mut out = [0u64; 4];
        let mut carry = 0u128;
        for (i, slot) in out.iter_mut().enumerate() {
            let product = u128::from(self.0[i]) * u128::from(factor) + carry;
            *slot = product as u64;
            carry = product >> 64;
        }
        (U256(out), carry as u64)
    }
}

/// Shifting left by 256 or more gives zero, and bits shifted past the top are discarded, as in
/// Bitcoin's `arith_uint256` (compact decoding relies on it).
impl Shl<u32> for U256 {
    type Output = U256;

    fn shl(self, shift: u32) -> U256 {
        if shift >= 256 {
            return U256::ZERO;
        }
        let limbs = (shift / 64) as usize;
        let bits = shift % 64;
        let mut out = [0u64; 4];
        for (i, slot) in out.iter_mut().enumerate().skip(limbs) {
            let source = i - limbs;
            *slot = self.0[source] << bits;
            if bits > 0 && source > 0 {
                *slot |= self.0[source - 1] >> (64 - bits);
            }
        }
        U256(out)
    }
}

/// Shifting right by 256 or more gives zero.
impl Shr<u32> for U256 {
    type Output = U256;

    fn shr(self, shift: u32) -> U256 {
        if shift >= 256 {
            return U256::ZERO;
        }
        let limbs = (shift / 64) as usize;
        let bits = shift % 64;
        let mut out = [0u64; 4];
        for (i, slot) in out.iter_mut().enumerate().take(4 - limbs) {
            let source = i + limbs;
            *slot = self.0[source] >> bits;
            if bits > 0 && source + 1 < 4 {
                *slot |= self.0[source + 1] << (64 - bits);
            }
        }
        U256(out)
    }
}

impl Ord for U256 {
    fn cmp(&self, other: &U256) -> Ordering {
        self.0.iter().rev().cmp(other.0.iter().rev())
    }
}

impl PartialOrd for U256 {
    fn partial_cmp(&self, other: &U256) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// 64 lowercase hex digits, most significant first (as bitcoind prints targets and chainwork).
impl fmt::Display for U256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.to_be_bytes()))
    }
}

impl fmt::Debug for U256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "U256(0x{self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn nz(v: u64) -> NonZeroU64 {
        NonZeroU64::new(v).unwrap()
    }

    fn any_u256() -> impl Strategy<Value = U256> {
        // Mix full-width values with short shifted ones so carries, borrows and limb edges occur.
        prop_oneof![
            any::<[u64; 4]>().prop_map(U256),
            (any::<u64>(), 0u32..256).prop_map(|(v, s)| U256::from_u64(v) << s),
        ]
    }

    #[test]
    fn byte_orders_and_bits() {
        let mut be = [0u8; 32];
        be[0] = 0x80;
        be[31] = 0x01;
        let v = U256::from_be_bytes(be);
        assert_eq!(v.limbs(), [1, 0, 0, 1 << 63]);
        assert_eq!(v.to_be_bytes(), be);
        let mut le = be;
        le.reverse();
        assert_eq!(U256::from_le_bytes(le), v);
        assert_eq!(v.bits(), 256);
        assert_eq!(U256::ZERO.bits(), 0);
        assert_eq!(U256::ONE.bits(), 1);
        assert_eq!((U256::ONE << 200).bits(), 201);
        assert_eq!(
            U256::from_u64(0x1234).to_string(),
            format!("{}1234", "0".repeat(60))
        );
    }

    #[test]
    fn shifts_at_the_edges() {
        assert_eq!(U256::ONE << 255, U256([0, 0, 0, 1 << 63]));
        assert_eq!(U256::ONE << 256, U256::ZERO);
        assert_eq!(U256::MAX << 1000, U256::ZERO);
        assert_eq!(U256::MAX >> 255, U256::ONE);
        assert_eq!(U256::MAX >> 256, U256::ZERO);
        assert_eq!(U256::MAX << 64, U256([0, u64::MAX, u64::MAX, u64::MAX]));
        assert_eq!(U256::MAX >> 64, U256([u64::MAX, u64::MAX, u64::MAX, 0]));
        assert_eq!(U256::MAX << 0, U256::MAX);
        assert_eq!(U256::from_u64(0b11) << 63, U256([1 << 63, 1, 0, 0]));
        assert_eq!(U256([0, 1, 0, 0]) >> 1, U256([1 << 63, 0, 0, 0]));
        assert_eq!(U256::ONE.checked_shl(255), Some(U256::ONE << 255));
        assert_eq!(U256::from_u64(2).checked_shl(255), None);
        assert_eq!(U256::ONE.checked_shl(256), None);
        assert_eq!(U256::ZERO.checked_shl(1000), Some(U256::ZERO));
    }

    #[test]
    fn add_and_mul_report_overflow() {
        assert_eq!(U256::MAX.checked_add(U256::ONE), None);
        assert_eq!(U256::MAX.saturating_add(U256::ONE), U256::MAX);
        assert_eq!(
            U256([u64::MAX, 0, 0, 0]).checked_add(U256::ONE),
            Some(U256([0, 1, 0, 0]))
        );
        assert_eq!(
            U256([u64::MAX, u64::MAX, u64::MAX, 0]).checked_add(U256::ONE),
            Some(U256([0, 0, 0, 1]))
        );
        assert_eq!(U256::MAX.checked_mul_u64(1), Some(U256::MAX));
        assert_eq!(U256::MAX.checked_mul_u64(2), None);
        // 3 × 2²⁵⁵ needs 257 bits; 3 × 2²⁵⁴ just fits.
        assert_eq!((U256::ONE << 255).checked_mul_u64(3), None);
        assert_eq!(
            (U256::ONE << 254).checked_mul_u64(3),
            Some((U256::ONE << 255).saturating_add(U256::ONE << 254))
        );
    }

    #[test]
    fn mul_div_keeps_the_wide_product() {
        // (2²⁵⁶ − 1) × 3 / 4 needs 258 bits on the way but fits at the end:
        // it is 3 × (2²⁵⁴ − 1) + ⌊3 × 3 / 4⌋ = 3 × (2²⁵⁴ − 1) + 2.
        let expected = (U256::MAX >> 2)
            .checked_mul_u64(3)
            .unwrap()
            .checked_add(U256::from_u64(2))
            .unwrap();
        assert_eq!(U256::MAX.mul_div_u64(3, nz(4)), Some(expected));
        assert_eq!(U256::MAX.mul_div_u64(5, nz(4)), None);
        assert_eq!(
            U256::MAX.mul_div_u64(u64::MAX, nz(u64::MAX)),
            Some(U256::MAX)
        );
        assert_eq!(
            U256::from_u64(10).mul_div_u64(1, nz(3)),
            Some(U256::from_u64(3))
        );
        assert_eq!(U256::MAX.mul_div_u64(0, nz(7)), Some(U256::ZERO));
    }

    #[test]
    fn work_of_known_targets() {
        // Bitcoin's difficulty-1 target 0xffff × 2²⁰⁸ has work 0x100010001.
        let limit = U256::from_u64(0xffff) << 208;
        assert_eq!(limit.two_pow_256_div_succ(), U256::from_u64(0x1_0001_0001));
        assert_eq!(U256::ONE.two_pow_256_div_succ(), U256::ONE << 255);
        assert_eq!(U256::MAX.two_pow_256_div_succ(), U256::ONE);
        assert_eq!((U256::MAX >> 1).two_pow_256_div_succ(), U256::from_u64(2));
        assert_eq!(U256::ZERO.two_pow_256_div_succ(), U256::MAX);
        // ⌊2²⁵⁶ / 3⌋ = 0x5555…55.
        assert_eq!(
            U256::from_u64(2).two_pow_256_div_succ(),
            U256([0x5555_5555_5555_5555; 4])
        );
    }

    /// ⌊2²⁵⁶ / (t + 1)⌋ by restoring division over the 257 bits of 2²⁵⁶, one bit at a time: an
    /// algorithm independent of the identity the fast version uses.
    fn work_by_restoring_division(t: U256) -> U256 {
        let succ = t.checked_add(U256::ONE).unwrap();
        // The dividend's leading 1 (bit 256) gives quotient bit 0 because succ ≥ 2.
        let mut remainder = U256::ONE;
        let mut quotient = U256::ZERO;
        for _ in 0..256 {
            let carry = remainder.bits() == 256;
            remainder = remainder << 1;
            quotient = quotient << 1;
            if carry || remainder >= succ {
                remainder = remainder.overflowing_sub(succ);
                quotient.0[0] |= 1;
            }
        }
        quotient
    }

    proptest! {
        #[test]
        fn small_values_agree_with_u128(a in any::<u64>(), b in any::<u64>(), m in any::<u64>(), d in 1u64..) {
            let (ua, ub) = (U256::from_u64(a), U256::from_u64(b));
            let wide = |v: u128| U256([v as u64, (v >> 64) as u64, 0, 0]);
            prop_assert_eq!(ua.checked_add(ub), Some(wide(u128::from(a) + u128::from(b))));
            let product = u128::from(a) * u128::from(m);
            prop_assert_eq!(ua.checked_mul_u64(m), Some(wide(product)));
            prop_assert_eq!(ua.mul_div_u64(m, nz(d)), Some(wide(product / u128::from(d))));
            prop_assert_eq!(ua.cmp(&ub), a.cmp(&b));
            prop_assert_eq!(ua.bits(), 64 - a.leading_zeros());
        }

        #[test]
        fn shifts_agree_with_multiplication(v in any_u256(), s in 0u32..256) {
            prop_assert_eq!((v >> s) << s >> s, v >> s);
            if v.bits() + s <= 256 {
                prop_assert_eq!((v << s) >> s, v);
                prop_assert_eq!(v.checked_shl(s), Some(v << s));
            } else {
                prop_assert_eq!(v.checked_shl(s), None);
            }
            if s < 64 {
                prop_assert_eq!(v >> s, v.mul_div_u64(1, nz(1 << s)).unwrap());
                prop_assert_eq!(v.checked_mul_u64(1 << s), v.checked_shl(s));
            }
        }

        #[test]
        fn add_is_ordered_and_carries(a in any_u256(), b in any_u256()) {
            match a.checked_add(b) {
                Some(sum) => {
                    prop_assert!(sum >= a && sum >= b);
                    prop_assert_eq!(sum.overflowing_sub(b), a);
                }
                None => prop_assert!(b > U256::MAX.overflowing_sub(a)),
            }
        }

        #[test]
        fn mul_div_is_the_floor_quotient(v in any_u256(), m in 1u64.., d in 1u64..) {
            prop_assert_eq!(v.mul_div_u64(m, nz(m)), Some(v));
            if let (Some(q), Some(product)) = (v.mul_div_u64(m, nz(d)), v.checked_mul_u64(m)) {
                let back = q.checked_mul_u64(d).unwrap();
                prop_assert!(back <= product);
                prop_assert!(product.overflowing_sub(back) < U256::from_u64(d));
            }
        }

        #[test]
        fn work_matches_restoring_division(t in any_u256()) {
            prop_assume!(!t.is_zero() && t != U256::MAX);
            prop_assert_eq!(t.two_pow_256_div_succ(), work_by_restoring_division(t));
        }
    }
}
