//! Bitcoin's difficulty retarget, quirks included.
//!
//! Every `window` blocks the target is rescaled by how long the previous window took:
//! `new = old × actual / (window × spacing)`, with `actual` clamped to a factor of `clamp` either way
//! and the result capped at the proof-of-work limit. Bitcoin measures `actual` from the window's
//! first header to its last, which spans only `window − 1` intervals while the expected timespan
//! counts `window` of them (the famous off-by-one, kept here because it is consensus); blocks in
//! between keep their parent's bits.
//!
//! Timestamps are plain numbers in whatever unit the caller's `spacing` uses: milliseconds for synod
//! headers, seconds for Bitcoin's, so the same code is checked against Bitcoin's history.

use std::num::NonZeroU64;

use super::compact::encode_compact;
use super::target::{Target, TargetError};
use super::uint256::U256;

/// The parameters of Bitcoin's retarget, checked once so that [`next_bits_bitcoin`] cannot divide
/// by zero or overflow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BitcoinRetarget {
    window: u64,
    target_timespan: NonZeroU64,
    clamp: u64,
    pow_limit: Target,
}

/// Why retarget parameters are unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RetargetParamsError {
    /// A window needs at least two headers to measure one interval.
    #[error("retarget window must be at least 2 blocks, got {0}")]
    Window(u64),
    /// The desired block spacing is zero.
    #[error("block spacing must be at least 1")]
    Spacing,
    /// The clamp factor is zero.
    #[error("retarget clamp must be at least 1")]
    Clamp,
    /// `window × spacing × clamp` does not fit in 64 bits, or the timespan is shorter than the
    /// clamp (its lower bound would be zero, making the target zero).
    #[error("window × spacing ({timespan}) is unusable with clamp {clamp}")]
    Timespan {
        /// `window × spacing`, saturated.
        timespan: u64,
        /// The clamp factor.
        clamp: u64,
    },
    /// The proof-of-work limit is not a usable target.
    #[error("proof-of-work limit: {0}")]
    PowLimit(#[from] TargetError),
}

impl BitcoinRetarget {
    /// Retarget every `window` blocks toward one block per `spacing` (in the timestamps' unit),
    /// moving by at most a factor `clamp` each time and never easier than `pow_limit_bits`.
    /// Bitcoin mainnet is `new(600, 2016, 4, 0x1d00ffff)` in seconds.
    pub fn new(
        spacing: u64,
        window: u64,
        clamp: u64,
        pow_limit_bits: u32,
    ) -> Result<BitcoinRetarget, RetargetParamsError> {
        if window < 2 {
            return Err(RetargetParamsError::Window(window));
        }
        if spacing == 0 {
            return Err(RetargetParamsError::Spacing);
        }
        if clamp == 0 {
            return Err(RetargetParamsError::Clamp);
        }
        let timespan = window.saturating_mul(spacing);
        let usable = timespan.checked_mul(clamp).is_some() && timespan >= clamp;
        let (Some(target_timespan), true) = (NonZeroU64::new(timespan), usable) else {
            return Err(RetargetParamsError::Timespan { timespan, clamp });
        };
        Ok(BitcoinRetarget {
            window,
            target_timespan,
            clamp,
            pow_limit: Target::from_compact(pow_limit_bits)?,
        })
    }

    /// Blocks per window.
    pub fn window(&self) -> u64 {
        self.window
    }

    /// The easiest target allowed.
    pub fn pow_limit(&self) -> Target {
        self.pow_limit
    }

    /// Whether the block at `height` gets new bits (a non-zero multiple of the window).
    pub fn is_retarget_height(&self, height: u64) -> bool {
        height != 0 && height.is_multiple_of(self.window)
    }

    /// For a block at a retarget height, the height of the header whose timestamp opens the
    /// window (`height − window`); `None` elsewhere, where no earlier timestamp is needed.
    pub fn window_first_height(&self, height: u64) -> Option<u64> {
        self.is_retarget_height(height)
            .then(|| height - self.window)
    }
}

/// The bits required of the block at `height`, whose parent is at `height − 1`.
///
/// At a retarget height, `window_first_timestamp` is the timestamp of the header at
/// [`BitcoinRetarget::window_first_height`] and `last_header_timestamp` the parent's; elsewhere
/// both are ignored and the parent's `last_bits` are returned unchanged (height 0 included, as
/// genesis has no window). A timespan that runs backwards (timestamps are not monotone) is clamped
/// like any short one. The result is never zero: Bitcoin cannot reach a zero target, and if tiny
/// targets ever rounded down to it here the chain would stop, so the floor is 1.
pub fn next_bits_bitcoin(
    params: &BitcoinRetarget,
    height: u64,
    window_first_timestamp: u64,
    last_header_timestamp: u64,
    last_bits: u32,
) -> Result<u32, TargetError> {
    if !params.is_retarget_height(height) {
        return Ok(last_bits);
    }
    let timespan = params.target_timespan.get();
    let shortest = timespan / params.clamp;
    let longest = timespan * params.clamp; // checked in `new`
    let actual = i128::from(last_header_timestamp) - i128::from(window_first_timestamp);
    let actual = actual.clamp(i128::from(shortest), i128::from(longest)) as u64;
    let last = Target::from_compact(last_bits)?;
    let limit = params.pow_limit.as_u256();
    let next = match last.as_u256().mul_div_u64(actual, params.target_timespan) {
        Some(next) if next <= limit => next.max(U256::ONE),
        _ => limit,
    };
    Ok(encode_compact(next, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mainnet() -> BitcoinRetarget {
        BitcoinRetarget::new(600, 2016, 4, 0x1d00ffff).unwrap()
    }

    #[test]
    fn only_window_multiples_retarget() {
        let p = mainnet();
        assert_eq!(
            next_bits_bitcoin(&p, 2015, 0, 1, 0x1c0ffff0),
            Ok(0x1c0ffff0)
        );
        assert_eq!(next_bits_bitcoin(&p, 0, 0, 1, 0x1d00ffff), Ok(0x1d00ffff));
        // Non-retarget heights pass the parent's bits through without judging them.
        assert_eq!(next_bits_bitcoin(&p, 1, 0, 0, 0), Ok(0));
        assert_eq!(p.window_first_height(4032), Some(2016));
        assert_eq!(p.window_first_height(4031), None);
        assert_eq!(p.window_first_height(0), None);
    }

    /// Bitcoin Core's `pow_tests` vectors (mainnet windows, timestamps in seconds).
    #[test]
    fn bitcoin_core_vectors() {
        let p = mainnet();
        #[rustfmt::skip]
        let cases: &[(u64, u64, u64, u32, u32)] = &[
            // Block 32,256, the first change: 30,240 → 32,255 took 1,022,578 s of 1,209,600.
            (32_256, 1_261_130_161, 1_262_152_739, 0x1d00ffff, 0x1d00d86a),
            // Block 2,016: slower than planned, capped at the limit.
            (2_016, 1_231_006_505, 1_233_061_996, 0x1d00ffff, 0x1d00ffff),
            // Block 68,544: faster than a quarter of the timespan, clamped.
            (68_544, 1_279_008_237, 1_279_297_671, 0x1c05a3f4, 0x1c0168fd),
            // Block 48,384: slower than four timespans, clamped.
            (48_384, 1_263_163_443, 1_269_211_443, 0x1c387f6f, 0x1d00e1fd),
        ];
        for &(height, first, last, bits, expected) in cases {
            assert_eq!(
                next_bits_bitcoin(&p, height, first, last, bits),
                Ok(expected),
                "{height}"
            );
        }
    }

    #[test]
    fn clamps_both_ways_and_caps_at_the_limit() {
        let p = mainnet();
        let start = 1_000_000;
        let timespan = 2016 * 600;
        let at = |elapsed: i64, bits: u32| {
            next_bits_bitcoin(&p, 4032, start, (start as i64 + elapsed) as u64, bits).unwrap()
        };
        // Four times harder at most, however fast (even with time running backwards)...
        let quarter = at(timespan / 4, 0x1c00ffff);
        assert_eq!(quarter, 0x1b3fffc0);
        assert_eq!(at(1, 0x1c00ffff), quarter);
        assert_eq!(at(-1_000_000, 0x1c00ffff), quarter);
        // ... four times easier at most, however slow ...
        assert_eq!(at(timespan * 4, 0x1b00ffff), 0x1b03fffc);
        assert_eq!(at(timespan * 40, 0x1b00ffff), 0x1b03fffc);
        // ... and never easier than the limit.
        assert_eq!(at(timespan * 4, 0x1c7fffff), 0x1d00ffff);
        assert_eq!(at(timespan, 0x1d00ffff), 0x1d00ffff);
        // Bad parent bits at a retarget height are refused.
        assert_eq!(
            next_bits_bitcoin(&p, 4032, 0, 1, 0x1d800001),
            Err(TargetError::Negative(0x1d800001))
        );
    }

    #[test]
    fn wide_targets_do_not_overflow() {
        // Regtest-like limit near 2²⁵⁵: target × timespan needs more than 256 bits on the way.
        let p = BitcoinRetarget::new(5_000, 20, 4, 0x207fffff).unwrap();
        let timespan = 20 * 5_000;
        assert_eq!(
            next_bits_bitcoin(&p, 20, 0, timespan / 2, 0x207fffff),
            Ok(0x203fffff)
        );
        assert_eq!(
            next_bits_bitcoin(&p, 20, 0, timespan * 2, 0x207fffff),
            Ok(0x207fffff)
        );
        // The smallest target stays at 1 rather than reaching zero.
        let q = BitcoinRetarget::new(1, 4, 4, 0x207fffff).unwrap();
        assert_eq!(next_bits_bitcoin(&q, 4, 0, 0, 0x01010000), Ok(0x01010000));
    }

    #[test]
    fn bad_parameters_are_refused() {
        assert_eq!(
            BitcoinRetarget::new(600, 1, 4, 0x1d00ffff),
            Err(RetargetParamsError::Window(1))
        );
        assert_eq!(
            BitcoinRetarget::new(0, 2016, 4, 0x1d00ffff),
            Err(RetargetParamsError::Spacing)
        );
        assert_eq!(
            BitcoinRetarget::new(600, 2016, 0, 0x1d00ffff),
            Err(RetargetParamsError::Clamp)
        );
        assert!(matches!(
            BitcoinRetarget::new(u64::MAX / 2, 4, 4, 0x1d00ffff),
            Err(RetargetParamsError::Timespan { .. })
        ));
        assert!(matches!(
            BitcoinRetarget::new(1, 2, 4, 0x1d00ffff),
            Err(RetargetParamsError::Timespan {
                timespan: 2,
                clamp: 4
            })
        ));
        assert_eq!(
            BitcoinRetarget::new(600, 2016, 4, 0),
            Err(RetargetParamsError::PowLimit(TargetError::Zero(0)))
        );
    }
}
