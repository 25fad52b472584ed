//! The engines' clock: wall-clock milliseconds at process start plus monotonic time elapsed since.
//! It never goes back and never jumps when the system clock is stepped, so election timeouts and
//! leader leases cannot be stalled by an NTP correction, while block timestamps stay close to
//! real time.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

fn origin() -> &'static (u64, Instant) {
    static ORIGIN: OnceLock<(u64, Instant)> = OnceLock::new();
    ORIGIN.get_or_init(|| {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        (wall, Instant::now())
    })
}

/// Milliseconds on the engines' monotonic clock.
pub fn now_ms() -> u64 {
    let (wall, start) = origin();
    wall + start.elapsed().as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_goes_back_and_tracks_the_wall_clock() {
        let a = now_ms();
        let b = now_ms();
        assert!(b >= a);
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        assert!(a.abs_diff(wall) < 60_000);
    }
}
