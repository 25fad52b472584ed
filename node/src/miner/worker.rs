//! A miner thread: waits for a job, hashes its share of the nonce space in chunks with the
//! kernel, rolls the timestamp when the share is exhausted, and hands a solution back. Between
//! chunks it checks that its job is still the current one, so a replaced or stopped template is
//! abandoned within one chunk (about 10 ms with SHA-NI).

use std::sync::Arc;

use synod_chain::pow::kernel::Solution;

use super::job::Job;
use super::shared::Shared;
use crate::clock::now_ms;

/// Nonces hashed between two checks for a newer job.
const CHUNK: u64 = 1 << 18;

/// Runs worker `index` until the miner shuts down or no longer needs this many threads.
pub(super) fn run(index: usize, shared: Arc<Shared>) {
    let mut last_generation = 0;
    while let Some(job) = shared.next_job(index, last_generation) {
        last_generation = job.generation;
        if let Some((epoch, solution)) = mine(index, &job, &shared) {
            shared.submit(&job, &epoch, solution);
        }
    }
}

/// Mines `job` until it is solved (the solution and the epoch it was found in) or superseded.
fn mine(index: usize, job: &Job, shared: &Shared) -> Option<(Arc<super::job::Epoch>, Solution)> {
    let share = job.share(index);
    let mut epoch = job.current_epoch();
    let mut next = share.start;
    while shared.is_current(job.generation) {
        let end = next.saturating_add(CHUNK).min(share.end);
        let scan = shared.kernel.scan(&epoch.midstate, &job.target, next..end);
        shared.stats.hashes.inc_by(scan.hashes);
        if let Some(solution) = scan.found {
            return Some((epoch, solution));
        }
        next = end;
        if next >= share.end {
            epoch = job.next_epoch(&epoch, now_ms());
            next = share.start;
        }
    }
    None
}
