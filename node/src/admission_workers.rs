//! Where transactions are checked: a few threads of their own, at a lower CPU priority than the
//! engine's driver and the network. Signature checks are most of a loaded node's work; when the
//! machine is saturated the kernel then gives the processor to heartbeats, votes and blocks
//! first, admission slows down, and clients meet backpressure (a full queue here answers "busy")
//! instead of the cluster meeting elections nobody needed.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc};
use std::thread::JoinHandle;

use tracing::warn;

type Job = Box<dyn FnOnce() + Send>;

/// A bounded queue of admission work and the threads that run it.
pub struct AdmissionWorkers {
    /// `None` once shut down.
    jobs: Mutex<Option<mpsc::SyncSender<Job>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// Why work did not run to an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotRun {
    /// The queue was full (the node is behind) or the workers are shut down: nothing was done,
    /// the caller should answer "busy".
    Busy,
    /// The work started and did not finish (it panicked): its outcome is unknown.
    Lost,
}

impl AdmissionWorkers {
    /// Starts `threads` workers taking jobs from a queue of at most `queue` waiting jobs.
    pub fn start(threads: usize, queue: usize) -> std::io::Result<Self> {
        let (jobs, inbox) = mpsc::sync_channel::<Job>(queue);
        let inbox = Arc::new(Mutex::new(inbox));
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let inbox = inbox.clone();
            let handle = std::thread::Builder::new()
                .name(format!("admission-{i}"))
                .spawn(move || {
                    crate::priority::lower_this_thread();
                    loop {
                        let job = inbox.lock().unwrap_or_else(PoisonError::into_inner).recv();
                        let Ok(job) = job else {
                            return;
                        };
                        // A job that panics must not take the worker with it.
                        if std::panic::catch_unwind(AssertUnwindSafe(job)).is_err() {
                            warn!("an admission job panicked");
                        }
                    }
                })?;
            handles.push(handle);
        }
        Ok(AdmissionWorkers {
            jobs: Mutex::new(Some(jobs)),
            threads: Mutex::new(handles),
        })
    }

    fn sender(&self) -> MutexGuard<'_, Option<mpsc::SyncSender<Job>>> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn try_send(&self, job: Job) -> bool {
        self.sender()
            .as_ref()
            .is_some_and(|jobs| jobs.try_send(job).is_ok())
    }

    /// Takes no more work, lets the workers finish what is queued, and waits for them: what a
    /// client was told was admitted is in the journal before the node exits.
    pub fn shutdown(&self) {
        self.sender().take();
        let threads =
            std::mem::take(&mut *self.threads.lock().unwrap_or_else(PoisonError::into_inner));
        for thread in threads {
            let _ = thread.join();
        }
    }

    /// Runs `work` on an admission thread and waits for its result.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, NotRun> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        if !self.try_send(Box::new(move || {
            let _ = reply.send(work());
        })) {
            return Err(NotRun::Busy);
        }
        answer.await.map_err(|_| NotRun::Lost)
    }

    /// Queues `work` without waiting for it. Returns whether there was room.
    pub fn spawn(&self, work: impl FnOnce() + Send + 'static) -> bool {
        self.try_send(Box::new(work))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_work_and_refuses_past_the_queue() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let workers = AdmissionWorkers::start(1, 1).expect("a worker");
        assert_eq!(runtime.block_on(workers.run(|| 6 * 7)), Ok(42));
        // Hold the only worker, fill the one queue slot: the next job is refused.
        let (release, hold) = mpsc::channel::<()>();
        let (started, running) = mpsc::channel::<()>();
        assert!(workers.spawn(move || {
            let _ = started.send(());
            let _ = hold.recv();
        }));
        running.recv().expect("the worker took the job");
        assert!(workers.spawn(|| {}));
        assert!(!workers.spawn(|| {}));
        assert_eq!(runtime.block_on(workers.run(|| 1)), Err(NotRun::Busy));
        release.send(()).expect("the worker waits");
        // A panicking job leaves the worker running.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !workers.spawn(|| panic!("a test panic")) {
            assert!(
                std::time::Instant::now() < deadline,
                "the queue never drained"
            );
            std::thread::yield_now();
        }
        let mut answer = Err(NotRun::Busy);
        while answer == Err(NotRun::Busy) && std::time::Instant::now() < deadline {
            answer = runtime.block_on(workers.run(|| 2));
        }
        assert_eq!(answer, Ok(2));
        // Work that panics is reported lost, not busy: it may have done part of its job.
        assert_eq!(
            runtime.block_on(workers.run(|| -> u8 { panic!("a test panic") })),
            Err(NotRun::Lost)
        );
        // After a shutdown nothing more is taken.
        workers.shutdown();
        assert!(!workers.spawn(|| {}));
    }
}
