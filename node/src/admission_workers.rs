//! Where transactions are checked: a few threads of their own, at a lower CPU priority than the
//! engine's driver and the network. Signature checks are most of a loaded node's work; when the
//! machine is saturated the kernel then gives the processor to heartbeats, votes and blocks
//! first, admission slows down, and clients meet backpressure (a full queue here answers "busy")
//! instead of the cluster meeting elections nobody needed.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError, mpsc};

use tracing::warn;

type Job = Box<dyn FnOnce() + Send>;

/// A bounded queue of admission work and the threads that run it.
pub struct AdmissionWorkers {
    jobs: mpsc::SyncSender<Job>,
}

impl AdmissionWorkers {
    /// Starts `threads` workers taking jobs from a queue of at most `queue` waiting jobs.
    pub fn start(threads: usize, queue: usize) -> std::io::Result<Self> {
        let (jobs, inbox) = mpsc::sync_channel::<Job>(queue);
        let inbox = Arc::new(Mutex::new(inbox));
        for i in 0..threads.max(1) {
            let inbox = inbox.clone();
            std::thread::Builder::new()
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
        }
        Ok(AdmissionWorkers { jobs })
    }

    /// Runs `work` on an admission thread and waits for its result; `None` when the queue is full
    /// (the node is behind: the caller should answer "busy") or the workers are gone.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.jobs
            .try_send(Box::new(move || {
                let _ = reply.send(work());
            }))
            .ok()?;
        answer.await.ok()
    }

    /// Queues `work` without waiting for it. Returns whether there was room.
    pub fn spawn(&self, work: impl FnOnce() + Send + 'static) -> bool {
        self.jobs.try_send(Box::new(work)).is_ok()
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
        assert_eq!(runtime.block_on(workers.run(|| 6 * 7)), Some(42));
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
        assert_eq!(runtime.block_on(workers.run(|| 1)), None);
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
        let mut answer = None;
        while answer.is_none() && std::time::Instant::now() < deadline {
            answer = runtime.block_on(workers.run(|| 2));
        }
        assert_eq!(answer, Some(2));
    }
}
