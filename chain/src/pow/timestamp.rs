//! The timestamp rules of proof of work: after the median of the recent past, not too far ahead
//! of the local clock.
//!
//! Difficulty depends on timestamps, so a miner that could write any time could make its own
//! blocks easy. Bitcoin bounds them from both sides: a block must be later than the median of its
//! last [`MEDIAN_TIME_SPAN`] ancestors ("median time past", which one miner cannot move alone), and
//! not more than a fixed drift ahead of the receiving node's clock. The first rule is part of a
//! block's validity forever; the second depends on when the block is seen, so a block that fails
//! it is "not yet", not invalid, and may be reconsidered later.

/// How many recent timestamps the median is taken over (Bitcoin's 11).
pub const MEDIAN_TIME_SPAN: usize = 11;

/// A timestamp that breaks one of the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    /// Not later than the median time past.
    #[error("timestamp {timestamp} is not after the median time past {median}")]
    NotAfterMedianTimePast {
        /// The block's timestamp.
        timestamp: u64,
        /// The median of the parent and its ancestors.
        median: u64,
    },
    /// Further ahead of the local clock than allowed.
    #[error("timestamp {timestamp} is more than {max_drift} ahead of the local time {now}")]
    TooFarInFuture {
        /// The block's timestamp.
        timestamp: u64,
        /// The local clock.
        now: u64,
        /// The allowed drift.
        max_drift: u64,
    },
}

/// The median of the last [`MEDIAN_TIME_SPAN`] timestamps of `ancestors` (oldest first, ending
/// with the parent). Near genesis fewer exist and the median of those is used, with the upper
/// middle for an even count, as Bitcoin's `GetMedianTimePast`. `None` when there are none.
pub fn median_time_past(ancestors: &[u64]) -> Option<u64> {
    let recent = &ancestors[ancestors.len().saturating_sub(MEDIAN_TIME_SPAN)..];
    let mut sorted = [0u64; MEDIAN_TIME_SPAN];
    let sorted = &mut sorted[..recent.len()];
    sorted.copy_from_slice(recent);
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).copied()
}

/// The permanent rule: `timestamp` must be after the median time past of `ancestors` (oldest
/// first, ending with the parent; a block with no ancestors passes).
pub fn check_after_median_time_past(
    timestamp: u64,
    ancestors: &[u64],
) -> Result<(), TimestampError> {
    match median_time_past(ancestors) {
        Some(median) if timestamp <= median => {
            Err(TimestampError::NotAfterMedianTimePast { timestamp, median })
        }
        _ => Ok(()),
    }
}

/// The clock-dependent rule: `timestamp` may be at most `max_drift` ahead of `now`.
pub fn check_not_too_far_in_future(
    timestamp: u64,
    now: u64,
    max_drift: u64,
) -> Result<(), TimestampError> {
    if timestamp > now.saturating_add(max_drift) {
        return Err(TimestampError::TooFarInFuture {
            timestamp,
            now,
            max_drift,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_the_last_eleven() {
        assert_eq!(median_time_past(&[]), None);
        assert_eq!(median_time_past(&[7]), Some(7));
        // Even counts take the upper middle, as Bitcoin does.
        assert_eq!(median_time_past(&[1, 2]), Some(2));
        assert_eq!(median_time_past(&[5, 1, 4, 2]), Some(4));
        // Out of order timestamps are sorted first.
        let eleven = [10, 1, 9, 2, 8, 3, 7, 4, 6, 5, 11];
        assert_eq!(median_time_past(&eleven), Some(6));
        // Only the last eleven count.
        let mut longer = vec![1_000, 1_000, 1_000];
        longer.extend_from_slice(&eleven);
        assert_eq!(median_time_past(&longer), Some(6));
    }

    #[test]
    fn timestamps_must_pass_the_median_strictly() {
        let ancestors = [100, 200, 300];
        assert_eq!(
            check_after_median_time_past(200, &ancestors),
            Err(TimestampError::NotAfterMedianTimePast {
                timestamp: 200,
                median: 200
            })
        );
        assert_eq!(check_after_median_time_past(201, &ancestors), Ok(()));
        // Earlier than the parent is fine as long as it beats the median.
        assert_eq!(check_after_median_time_past(250, &ancestors), Ok(()));
        assert_eq!(check_after_median_time_past(0, &[]), Ok(()));
    }

    #[test]
    fn future_drift_is_bounded_inclusively() {
        assert_eq!(check_not_too_far_in_future(1_500, 1_000, 500), Ok(()));
        assert_eq!(
            check_not_too_far_in_future(1_501, 1_000, 500),
            Err(TimestampError::TooFarInFuture {
                timestamp: 1_501,
                now: 1_000,
                max_drift: 500
            })
        );
        assert_eq!(
            check_not_too_far_in_future(u64::MAX, u64::MAX - 1, 5),
            Ok(())
        );
    }
}
