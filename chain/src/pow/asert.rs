//! ASERT difficulty (aserti3-2d, the Bitcoin Cash rule of 2020-11-15), bit for bit as its spec.
//!
//! Every block's target follows from one fixed anchor block instead of a window:
//! `target = anchor_target × 2^((time_diff − ideal × (height_diff + 1)) / half_life)`, where
//! `time_diff` is the parent's timestamp minus the anchor's parent's and `height_diff` the parent's
//! height minus the anchor's. Being ahead of schedule by one half-life halves the target. Because
//! it depends only on the anchor and the parent, it has no window to game and no oscillation, and
//! it recovers within a half-life when hash power leaves — which is why synod's testnets use it.
//!
//! The power of two is computed exactly as the spec's integer code: a 16-bit fixed-point exponent
//! (truncated toward zero), split into whole shifts (floored) and a fraction approximated by the
//! spec's cubic polynomial with its rounding, then clamped to [1, pow limit]. The spec requires the
//! limit to be below 2²²⁴ so its 256-bit intermediate cannot overflow; here the intermediate is
//! 320 bits wide, so limits up to 2²⁵⁶ − 1 (synod's regtest-like testnets) work and every
//! result within the spec's domain is unchanged.

use std::num::NonZeroU64;

use super::compact::encode_compact;
use super::target::{Target, TargetError};
use super::uint256::U256;

/// The parameters of the rule, in the unit of the header timestamps (milliseconds for synod,
/// seconds in the spec's test vectors).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AsertParams {
    ideal_block_time: u64,
    half_life: NonZeroU64,
    pow_limit: Target,
}

/// Why ASERT parameters are unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AsertParamsError {
    /// The ideal block time is zero.
    #[error("ideal block time must be at least 1")]
    IdealBlockTime,
    /// The half-life is zero.
    #[error("half-life must be at least 1")]
    HalfLife,
    /// The proof-of-work limit is not a usable target.
    #[error("proof-of-work limit: {0}")]
    PowLimit(#[from] TargetError),
}

/// The block every target is computed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AsertAnchor {
    /// The anchor block's height.
    pub height: u64,
    /// The timestamp of the anchor block's parent (the spec's reference time). For a chain that
    /// starts with ASERT at genesis, use the genesis timestamp minus the ideal block time: then a
    /// chain that runs exactly on schedule keeps the genesis bits.
    pub parent_timestamp: u64,
    /// The anchor block's compact target.
    pub bits: u32,
}

/// Why no target could be computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AsertError {
    /// The parent is below the anchor, which only governs blocks after it.
    #[error("parent height {parent_height} is below the ASERT anchor at {anchor_height}")]
    BeforeAnchor {
        /// The parent's height.
        parent_height: u64,
        /// The anchor's height.
        anchor_height: u64,
    },
    /// The anchor's bits are not a target within the limit.
    #[error("ASERT anchor bits: {0}")]
    AnchorBits(#[from] TargetError),
}

impl AsertParams {
    /// Aim for one block per `ideal_block_time`, halving or doubling the target per `half_life`
    /// of schedule error, never easier than `pow_limit_bits`. The spec's values are
    /// `new(600, 172_800, 0x1d00ffff)` in seconds.
    pub fn new(
        ideal_block_time: u64,
        half_life: u64,
        pow_limit_bits: u32,
    ) -> Result<AsertParams, AsertParamsError> {
        if ideal_block_time == 0 {
            return Err(AsertParamsError::IdealBlockTime);
        }
        let half_life = NonZeroU64::new(half_life).ok_or(AsertParamsError::HalfLife)?;
        Ok(AsertParams {
            ideal_block_time,
            half_life,
            pow_limit: Target::from_compact(pow_limit_bits)?,
        })
    }

    /// The easiest target allowed.
    pub fn pow_limit(&self) -> Target {
        self.pow_limit
    }
}

/// The bits required of the child of the block at `parent_height` with `parent_timestamp`.
pub fn next_bits_asert(
    params: &AsertParams,
    anchor: &AsertAnchor,
    parent_height: u64,
    parent_timestamp: u64,
) -> Result<u32, AsertError> {
    let height_diff = parent_height
        .checked_sub(anchor.height)
        .ok_or(AsertError::BeforeAnchor {
            parent_height,
            anchor_height: anchor.height,
        })?;
    let anchor_target = Target::from_compact_at_most(anchor.bits, params.pow_limit)?;
    let time_diff = i128::from(parent_timestamp) - i128::from(anchor.parent_timestamp);
    // i128 holds every term for timestamps and heights up to 2⁶⁴; the products can only saturate
    // far outside the spec's domain (|lag| < 2⁴⁷), where the result is pinned to 1 or the limit
    // anyway, and saturation keeps the sign that decides which.
    let schedule = i128::from(params.ideal_block_time).saturating_mul(i128::from(height_diff) + 1);
    let lag = time_diff.saturating_sub(schedule);
    // Division truncates toward zero, as the spec's C++ does.
    let exponent = lag.saturating_mul(65_536) / i128::from(params.half_life.get());
    let next = scale_by_power_of_two(anchor_target.as_u256(), exponent, params.pow_limit);
    Ok(encode_compact(next, false))
}

/// `target × 2^(exponent / 65536)` with the spec's approximation, clamped to [1, limit].
fn scale_by_power_of_two(target: U256, exponent: i128, limit: Target) -> U256 {
    // Arithmetic shift floors, so the fraction is always in [0, 1).
    let whole = exponent >> 16;
    let factor = fixed_point_power_of_two(exponent as u16);
    // target × factor / 2¹⁶ × 2^whole: one shift of `whole − 16`.
    let shift = whole - 16;
    let scaled = if shift <= 0 {
        let right = shift.unsigned_abs();
        if right >= 17 {
            // ⌊⌊t × f / 2¹⁷⌋ / 2^(r − 17)⌋ = ⌊t × f / 2^r⌋; f < 2¹⁷ keeps the first step in range.
            target
                .mul_div_u64(factor, pow2(17))
                .map(|v| v >> u32::try_from(right - 17).unwrap_or(u32::MAX))
        } else {
            target.mul_div_u64(factor, pow2(right as u32))
        }
    } else {
        let left = u32::try_from(shift).unwrap_or(u32::MAX);
        target
            .checked_mul_u64(factor)
            .and_then(|v| v.checked_shl(left))
    };
    let limit = limit.as_u256();
    match scaled {
        // Too wide for 256 bits: certainly above any limit.
        None => limit,
        Some(v) if v.is_zero() => U256::ONE,
        Some(v) => v.min(limit),
    }
}

/// 2^(frac / 65536) × 65536, rounded as the spec: 65536 plus the cubic
/// `0.695502049·x + 0.2262698·x² + 0.0782318·x³` in 48-bit fixed point, rounded half up. The spec
/// computes the polynomial in 64 bits; the sum never exceeds them (checked for every `frac` in
/// the tests), so computing it in 128 bits gives the same numbers.
fn fixed_point_power_of_two(frac: u16) -> u64 {
    let x = u128::from(frac);
    let polynomial = 195_766_423_245_049 * x + 971_821_376 * x * x + 5_127 * x * x * x + (1 << 47);
    65_536 + (polynomial >> 48) as u64
}

/// 2^n for n ≤ 63, as a divisor.
fn pow2(n: u32) -> NonZeroU64 {
    // 1 << n is never zero for n < 64; the fallback is unreachable.
    NonZeroU64::new(1u64 << n).unwrap_or(NonZeroU64::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> AsertParams {
        AsertParams::new(600, 172_800, 0x1d00ffff).unwrap()
    }

    #[test]
    fn the_polynomial_fits_in_64_bits_for_every_fraction() {
        for frac in 0..=u16::MAX {
            let x = u64::from(frac);
            let sum = 195_766_423_245_049u64
                .checked_mul(x)
                .and_then(|a| {
                    971_821_376u64
                        .checked_mul(x * x)
                        .and_then(|b| a.checked_add(b))
                })
                .and_then(|ab| {
                    5_127u64
                        .checked_mul(x * x * x)
                        .and_then(|c| ab.checked_add(c))
                })
                .and_then(|abc| abc.checked_add(1 << 47))
                .unwrap();
            assert_eq!(fixed_point_power_of_two(frac), 65_536 + (sum >> 48));
        }
        assert_eq!(fixed_point_power_of_two(0), 65_536);
        // 2^0.5 × 65536 = 92681.9; the approximation is within 0.013 %.
        let half = fixed_point_power_of_two(32_768) as f64;
        assert!((half / 92_681.9 - 1.0).abs() < 0.000_13, "{half}");
        assert!(fixed_point_power_of_two(u16::MAX) < 131_072);
    }

    #[test]
    fn pow2_divisors() {
        assert_eq!(pow2(0).get(), 1);
        assert_eq!(pow2(17).get(), 1 << 17);
        assert_eq!(pow2(63).get(), 1 << 63);
    }

    #[test]
    fn on_schedule_keeps_the_anchor_bits_and_a_half_life_doubles() {
        let anchor = AsertAnchor {
            height: 1,
            parent_timestamp: 0,
            bits: 0x1c0fffff,
        };
        let p = spec();
        // The anchor (height 1) is on schedule at time 600, block 101 at 60,600.
        assert_eq!(next_bits_asert(&p, &anchor, 1, 600), Ok(0x1c0fffff));
        assert_eq!(next_bits_asert(&p, &anchor, 101, 60_600), Ok(0x1c0fffff));
        // One half-life late: twice the target. One early: half (rounded down).
        assert_eq!(
            next_bits_asert(&p, &anchor, 1, 600 + 172_800),
            Ok(0x1c1ffffe)
        );
        assert_eq!(
            next_bits_asert(&p, &anchor, 289, 600 + 288 * 600 - 172_800),
            Ok(0x1c07ffff)
        );
    }

    #[test]
    fn extremes_clamp_to_one_and_to_the_limit() {
        let p = spec();
        let anchor = AsertAnchor {
            height: 0,
            parent_timestamp: 0,
            bits: 0x1d00ffff,
        };
        assert_eq!(next_bits_asert(&p, &anchor, u64::MAX, 0), Ok(0x01010000));
        assert_eq!(next_bits_asert(&p, &anchor, 0, u64::MAX), Ok(0x1d00ffff));
        // Timestamps before the anchor's parent count as being ahead of schedule.
        let late_anchor = AsertAnchor {
            parent_timestamp: u64::MAX,
            ..anchor
        };
        assert_eq!(next_bits_asert(&p, &late_anchor, 0, 0), Ok(0x01010000));
    }

    #[test]
    fn wide_limits_keep_full_precision() {
        // A regtest-like limit near 2²⁵⁵, outside the spec's 2²²⁴ domain.
        let p = AsertParams::new(5_000, 60_000, 0x207fffff).unwrap();
        let anchor = AsertAnchor {
            height: 0,
            parent_timestamp: 0,
            bits: 0x207fffff,
        };
        assert_eq!(next_bits_asert(&p, &anchor, 0, 5_000), Ok(0x207fffff));
        // A half-life early halves it, a half-life late stays at the limit.
        assert_eq!(next_bits_asert(&p, &anchor, 12, 5_000), Ok(0x203fffff));
        assert_eq!(next_bits_asert(&p, &anchor, 0, 65_000), Ok(0x207fffff));
        // Slightly late: the product needs more than 256 bits before the shift back.
        let nearly = next_bits_asert(&p, &anchor, 0, 6_000).unwrap();
        assert_eq!(nearly, 0x207fffff);
        let below = AsertAnchor {
            bits: 0x203fffff,
            ..anchor
        };
        let t = Target::from_compact(next_bits_asert(&p, &below, 0, 6_000).unwrap()).unwrap();
        assert!(t > Target::from_compact(0x203fffff).unwrap());
    }

    #[test]
    fn bad_inputs_are_refused() {
        let p = spec();
        let anchor = AsertAnchor {
            height: 10,
            parent_timestamp: 0,
            bits: 0x1d00ffff,
        };
        assert_eq!(
            next_bits_asert(&p, &anchor, 9, 0),
            Err(AsertError::BeforeAnchor {
                parent_height: 9,
                anchor_height: 10
            })
        );
        let easy = AsertAnchor {
            bits: 0x1d010000,
            ..anchor
        };
        assert!(matches!(
            next_bits_asert(&p, &easy, 10, 0),
            Err(AsertError::AnchorBits(TargetError::AboveLimit { .. }))
        ));
        assert_eq!(
            AsertParams::new(0, 1, 0x1d00ffff),
            Err(AsertParamsError::IdealBlockTime)
        );
        assert_eq!(
            AsertParams::new(1, 0, 0x1d00ffff),
            Err(AsertParamsError::HalfLife)
        );
        assert_eq!(
            AsertParams::new(1, 1, 0x1d800001),
            Err(AsertParamsError::PowLimit(TargetError::Negative(
                0x1d800001
            )))
        );
    }
}
