//! CPU priority for the node's background work. The engine's driver and the network run at the
//! process's own priority; work that can wait (checking transactions, merging the transaction
//! index) runs lower, so on a saturated machine heartbeats, votes and blocks get the processor
//! first.

use tracing::warn;

/// How much lower background work runs (a Linux nice value).
const NICE: i32 = 10;

/// Lowers the calling thread's CPU priority by [`NICE`] below the node's own (at most to 19, the
/// lowest; Linux only, elsewhere it keeps the node's priority).
#[allow(unsafe_code)]
pub fn lower_this_thread() {
    #[cfg(target_os = "linux")]
    {
        // On Linux the nice value is per thread, and `who = 0` names the calling thread.
        // (`getpriority` may return -1 as a value; a failure reads as that too, which only makes
        // the result one step less nice.)
        // SAFETY: `getpriority` takes two plain integers, reads no memory of this process and
        // writes none; any value it returns is a valid `c_int`.
        let current = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        let nice = (current + NICE).min(19);
        // SAFETY: `setpriority` takes three plain integers and touches no memory of this
        // process; it changes only the calling thread's scheduling priority.
        let result = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) };
        if result != 0 {
            warn!(
                error = %std::io::Error::last_os_error(),
                "cannot lower a background thread's priority"
            );
        }
    }
}
