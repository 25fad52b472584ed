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

/// A background thread that is told to stop (its flag set) and joined when this is dropped, even
/// when the test fails midway: a thread that holds the testnet must let go of it before the
/// testnet's drop can stop the nodes.
pub struct Background {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Background {
    /// Runs `body` on a thread; it should return soon after `stop` is set.
    pub fn spawn(
        body: impl FnOnce(std::sync::Arc<std::sync::atomic::AtomicBool>) + Send + 'static,
    ) -> Background {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        Background {
            stop,
            handle: Some(std::thread::spawn(move || body(flag))),
        }
    }

    /// Stops the thread and waits for it; panics if it panicked.
    pub fn finish(mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            handle.join().expect("the background thread panicked");
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

pub mod chain_audit;
pub mod decoders;
pub mod outsider;
pub mod pbft_sim;
pub mod pow_audit;
pub mod raft_sim;
pub mod sweep;
pub mod testnet;
