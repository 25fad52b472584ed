//! Bitcoin's compact number format ("nBits"), bit for bit as `arith_uint256::SetCompact` and
//! `GetCompact` define it.
//!
//! A compact value is `size(8 bits) | sign(1 bit) | mantissa(23 bits)` and means
//! `mantissa × 256^(size − 3)`. Decoding never fails: like Bitcoin it reports a set sign bit and a
//! value wider than 256 bits as flags and leaves the verdict to the caller ([`crate::pow::target`]
//! refuses both, and zero). Encoding keeps the top 23 significant bits and drops the rest, so it
//! rounds toward zero; a retarget's result is therefore always a little harder than computed.

use super::uint256::U256;

/// Mask of the sign bit in a compact value.
const SIGN_BIT: u32 = 0x0080_0000;
/// Mask of the mantissa in a compact value.
const MANTISSA: u32 = 0x007f_ffff;

/// What `SetCompact` produces: the value and the two flags it reports beside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodedCompact {
    /// The magnitude, with any bits beyond 256 discarded (meaningless when `overflow` is set).
    pub value: U256,
    /// The sign bit was set on a non-zero mantissa (after the mantissa was shifted down for
    /// sizes below 3, as Bitcoin does, so `0x01803456` is zero, not negative).
    pub negative: bool,
    /// The value needs more than 256 bits.
    pub overflow: bool,
}

/// Decodes compact `bits` as Bitcoin's `SetCompact`.
pub fn decode_compact(bits: u32) -> DecodedCompact {
    let size = bits >> 24;
    let mut mantissa = bits & MANTISSA;
    let value = if size <= 3 {
        mantissa >>= 8 * (3 - size);
        U256::from_u64(u64::from(mantissa))
    } else {
        U256::from_u64(u64::from(mantissa)) << (8 * (size - 3))
    };
    let negative = mantissa != 0 && bits & SIGN_BIT != 0;
    let overflow = mantissa != 0
        && (size > 34 || (mantissa > 0xff && size > 33) || (mantissa > 0xffff && size > 32));
    DecodedCompact {
        value,
        negative,
        overflow,
    }
}

/// Encodes `value` as Bitcoin's `GetCompact(negative)`: the shortest size whose mantissa keeps the
/// sign bit clear, the bits below the top 23 significant ones dropped, and the sign bit set only
/// when asked for and the mantissa is not zero.
pub fn encode_compact(value: U256, negative: bool) -> u32 {
    let mut size = value.bits().div_ceil(8);
    let mut compact = if size <= 3 {
        (value.low_u64() << (8 * (3 - size))) as u32
    } else {
        (value >> (8 * (size - 3))).low_u64() as u32
    };
    if compact & SIGN_BIT != 0 {
        compact >>= 8;
        size += 1;
    }
    compact |= size << 24;
    if negative && compact & MANTISSA != 0 {
        compact |= SIGN_BIT;
    }
    compact
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex_value(text: &str) -> U256 {
        let mut be = [0u8; 32];
        let digits = format!("{text:0>64}");
        hex::decode_to_slice(digits, &mut be).unwrap();
        U256::from_be_bytes(be)
    }

    /// The cases of Bitcoin Core's `arith_uint256_tests/bignum_SetCompact`: the value, the
    /// negative and overflow flags, and the normalized re-encoding.
    #[test]
    fn bitcoin_core_set_compact_cases() {
        #[rustfmt::skip]
        let cases: &[(u32, &str, bool, bool, u32)] = &[
            (0x00000000, "0", false, false, 0),
            (0x00123456, "0", false, false, 0),
            (0x01003456, "0", false, false, 0),
            (0x02000056, "0", false, false, 0),
            (0x03000000, "0", false, false, 0),
            (0x04000000, "0", false, false, 0),
            (0x00923456, "0", false, false, 0),
            (0x01803456, "0", false, false, 0),
            (0x02800056, "0", false, false, 0),
            (0x03800000, "0", false, false, 0),
            (0x04800000, "0", false, false, 0),
            (0x01123456, "12", false, false, 0x01120000),
            (0x01fedcba, "7e", true, false, 0x01fe0000),
            (0x02123456, "1234", false, false, 0x02123400),
            (0x03123456, "123456", false, false, 0x03123456),
            (0x04123456, "12345600", false, false, 0x04123456),
            (0x04923456, "12345600", true, false, 0x04923456),
            (0x05009234, "92340000", false, false, 0x05009234),
            (0x20123456, "1234560000000000000000000000000000000000000000000000000000000000", false, false, 0x20123456),
        ];
        for &(bits, value, negative, overflow, reencoded) in cases {
            let decoded = decode_compact(bits);
            assert_eq!(decoded.value, hex_value(value), "{bits:08x}");
            assert_eq!(decoded.negative, negative, "{bits:08x}");
            assert_eq!(decoded.overflow, overflow, "{bits:08x}");
            assert_eq!(
                encode_compact(decoded.value, decoded.negative),
                reencoded,
                "{bits:08x}"
            );
        }
        // 0xff123456 overflows; so does any size-34 value whose mantissa uses a second byte.
        assert!(decode_compact(0xff123456).overflow);
        assert!(decode_compact(0x22010000).overflow);
        assert!(!decode_compact(0x220000ff).overflow);
        assert!(decode_compact(0x21010000).overflow);
        assert!(!decode_compact(0x2100ffff).overflow);
        assert!(decode_compact(0x21800100).negative);
    }

    /// Bitcoin Core's `GetCompact` cases for values that do not come from a compact encoding.
    #[test]
    fn encoding_rounds_down_and_moves_the_sign_bit() {
        assert_eq!(encode_compact(U256::ZERO, false), 0);
        assert_eq!(encode_compact(U256::ZERO, true), 0);
        assert_eq!(encode_compact(U256::from_u64(0x80), false), 0x02008000);
        assert_eq!(
            encode_compact(U256::from_u64(0x12345678), false),
            0x04123456
        );
        assert_eq!(encode_compact(U256::from_u64(0x12345678), true), 0x04923456);
        assert_eq!(encode_compact(U256::MAX, false), 0x2100ffff);
        // Bitcoin's proof-of-work limit 2²²⁴ − 1 encodes as its well-known bits.
        assert_eq!(encode_compact(U256::MAX >> 32, false), 0x1d00ffff);
    }

    proptest! {
        /// Decoding what encode wrote gives the value with everything below its top 23 significant
        /// bits cleared (rounding toward zero), and re-encoding is stable.
        #[test]
        fn encode_then_decode_truncates(limbs in any::<[u64; 4]>(), shift in 0u32..256) {
            let value = U256::from_limbs(limbs) >> shift;
            let bits = encode_compact(value, false);
            let decoded = decode_compact(bits);
            prop_assert!(!decoded.negative && !decoded.overflow);
            prop_assert!(decoded.value <= value);
            // The mantissa unit is 256^(size − 3): every byte below it is dropped.
            let dropped = 8 * (bits >> 24).saturating_sub(3);
            prop_assert_eq!(decoded.value, value >> dropped << dropped, "{:08x}", bits);
            prop_assert_eq!(encode_compact(decoded.value, false), bits);
        }
    }
}
