//! Shared helpers for synod's scenario tests: seeds that replay, and child processes that are
//! always reaped.

use std::time::{SystemTime, UNIX_EPOCH};

/// The seed for a randomized test: `SYNOD_SEED` if set (to replay a failure), else the clock.
/// The test prints it, so any failure can be replayed.
pub fn test_seed() -> u64 {
    match std::env::var("SYNOD_SEED") {
        Ok(text) => text
            .parse()
            .unwrap_or_else(|_| panic!("SYNOD_SEED={text:?} is not a u64")),
        Err(_) => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
    }
}

/// A child process that is killed and reaped when dropped, so a failing test leaves nothing
/// running.
pub struct ChildGuard(pub std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub mod pow_sim;
pub mod raft_sim;
pub mod sweep;
pub mod testnet;
