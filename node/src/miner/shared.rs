//! The state the miner's handle and its threads share: the current job, how many threads should
//! run, the generation counter that makes a superseded job visible to threads without a lock, and
//! where solutions go.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use synod_chain::Block;
use synod_chain::pow::kernel::{Kernel, Solution};
use tracing::{error, info};

use super::job::{Epoch, Job};
use super::stats::MiningStats;

/// Where a solved block goes (the node: the driver's inbox, as `Input::BlockMined`).
pub type Sink = Box<dyn Fn(Block) + Send + Sync>;

/// What the handle and the threads share.
pub(super) struct Shared {
    pub kernel: Kernel,
    pub stats: Arc<MiningStats>,
    state: Mutex<State>,
    wake: Condvar,
    /// The generation of the job threads should be mining (bumped whenever it is replaced,
    /// stopped or solved).
    current: AtomicU64,
    sink: Sink,
}

#[derive(Default)]
pub(super) struct State {
    pub job: Option<Arc<Job>>,
    pub threads: usize,
    pub shutdown: bool,
    pub last_generation: u64,
}

impl Shared {
    pub fn new(kernel: Kernel, stats: Arc<MiningStats>, sink: Sink) -> Shared {
        Shared {
            kernel,
            stats,
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            current: AtomicU64::new(0),
            sink,
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A new generation number: everything mined so far is superseded.
    pub fn bump(&self, state: &mut State) -> u64 {
        state.last_generation += 1;
        self.current.store(state.last_generation, Ordering::Release);
        state.last_generation
    }

    /// Wakes every thread (a new job, fewer threads, or shutdown).
    pub fn wake_all(&self) {
        self.wake.notify_all();
    }

    /// Whether `generation` is still the job to mine.
    pub fn is_current(&self, generation: u64) -> bool {
        self.current.load(Ordering::Acquire) == generation
    }

    /// Waits for a job newer than `after` for thread `index`; `None` when the thread should end.
    pub fn next_job(&self, index: usize, after: u64) -> Option<Arc<Job>> {
        let mut state = self.lock();
        loop {
            if state.shutdown || index >= state.threads {
                return None;
            }
            if let Some(job) = state.job.as_ref().filter(|j| j.generation > after) {
                return Some(job.clone());
            }
            state = self
                .wake
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    /// Hands a solution of `job` on, unless the job was superseded meanwhile (a stale template
    /// is never submitted). Mining stops until the engine sends the next template.
    pub fn submit(&self, job: &Job, epoch: &Epoch, solution: Solution) {
        {
            let mut state = self.lock();
            if state.job.as_ref().map(|j| j.generation) != Some(job.generation) {
                return;
            }
            state.job = None;
            self.bump(&mut state);
            self.stats.set_active(false);
        }
        let block = job.solved(epoch, solution.nonce);
        let hash = block.hash();
        if hash != solution.hash || !job.target.is_met_by(&hash) {
            error!(
                height = block.header.height,
                nonce = solution.nonce,
                "the mining kernel reported a nonce that does not solve the block; dropped"
            );
            return;
        }
        self.stats.blocks_found.inc();
        info!(
            height = block.header.height,
            hash = %hash.short(),
            nonce = solution.nonce,
            "mined a block"
        );
        (self.sink)(block);
    }
}
