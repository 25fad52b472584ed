//! The miner: threads that search nonces for the block template the proof-of-work engine hands
//! the driver (`Action::Mine`), and hand a solution back (`Input::BlockMined`, through the
//! driver's inbox).
//!
//! Each thread runs the fastest kernel the CPU has ([`Kernel::fastest`]: SHA-NI where the CPU has
//! the SHA extensions, the portable `sha2` path otherwise) on the template's midstate, over its own
//! share of the nonce space ([`job`]), rolling the timestamp when the share is exhausted. A new
//! template replaces the old one at once: the threads see a new generation between two chunks
//! and switch, so a stale template never mines on. After a solution the miner idles until the
//! engine's next template (it always sends one on its new tip). Hashes and blocks found are
//! counted for `/metrics` and `get_mining_info` ([`stats`]).

pub mod bench;
pub mod job;
pub mod payout;
mod shared;
pub mod stats;
mod worker;

use std::sync::Arc;
use std::thread::JoinHandle;

use synod_chain::Block;
use synod_chain::pow::kernel::{Kernel, KernelKind};
use tracing::{debug, warn};

use job::{Job, NONCE_WINDOW};
use shared::Shared;
pub use shared::Sink;
use stats::MiningStats;

/// A kernel's name, as `get_mining_info` and `synod mine --bench` show it.
pub fn kernel_name(kernel: &Kernel) -> &'static str {
    match kernel.kind() {
        KernelKind::ShaNi => "sha-ni",
        KernelKind::Portable => "portable",
    }
}

/// The miner threads and the template they work on. Dropping it stops and joins the threads.
pub struct Miner {
    shared: Arc<Shared>,
    handles: Vec<JoinHandle<()>>,
    window: u64,
}

impl Miner {
    /// A miner with `threads` threads (none run while it has nothing to mine) using `kernel`,
    /// counting into `stats` and handing solutions to `sink`.
    pub fn new(kernel: Kernel, threads: usize, stats: Arc<MiningStats>, sink: Sink) -> Miner {
        let mut miner = Miner {
            shared: Arc::new(Shared::new(kernel, stats, sink)),
            handles: Vec::new(),
            window: NONCE_WINDOW,
        };
        miner.set_threads(threads);
        miner
    }

    /// The same with a smaller nonce window per timestamp, so tests can watch it roll.
    #[cfg(test)]
    fn with_window(mut self, window: u64) -> Miner {
        self.window = window;
        self
    }

    /// The kernel the threads run.
    pub fn kernel(&self) -> Kernel {
        self.shared.kernel
    }

    /// Threads running.
    pub fn threads(&self) -> usize {
        self.shared.lock().threads
    }

    /// Whether a template is being mined.
    pub fn is_mining(&self) -> bool {
        self.shared.lock().job.is_some()
    }

    /// Mines `template` from now on, replacing whatever was being mined.
    pub fn mine(&mut self, template: Block) {
        let mut state = self.shared.lock();
        let generation = self.shared.bump(&mut state);
        match Job::new(generation, template, state.threads, self.window) {
            Ok(job) => {
                debug!(
                    height = job.template.header.height,
                    bits = format_args!("{:08x}", job.template.header.seal.bits),
                    txs = job.template.txs.len(),
                    "mining a new template"
                );
                state.job = Some(Arc::new(job));
                self.shared.stats.set_active(state.threads > 0);
            }
            Err(e) => {
                warn!(error = %e, "a template with unusable bits; not mining it");
                state.job = None;
                self.shared.stats.set_active(false);
            }
        }
        drop(state);
        self.shared.wake_all();
    }

    /// Stops mining (the threads idle until the next template).
    pub fn stop(&mut self) {
        let mut state = self.shared.lock();
        if state.job.take().is_some() {
            self.shared.bump(&mut state);
        }
        self.shared.stats.set_active(false);
    }

    /// Runs `threads` threads from now on. The template being mined, if any, is split again
    /// between them.
    pub fn set_threads(&mut self, threads: usize) {
        {
            let mut state = self.shared.lock();
            state.threads = threads;
            if let Some(old) = state.job.take() {
                let generation = self.shared.bump(&mut state);
                state.job = Job::new(generation, old.template.clone(), threads, self.window)
                    .ok()
                    .map(Arc::new);
            } else {
                self.shared.bump(&mut state);
            }
            self.shared
                .stats
                .set_active(threads > 0 && state.job.is_some());
        }
        self.shared.wake_all();
        // Threads beyond the new count see it within one chunk and end.
        while self.handles.len() > threads {
            if let Some(handle) = self.handles.pop() {
                let _ = handle.join();
            }
        }
        while self.handles.len() < threads {
            let index = self.handles.len();
            let shared = self.shared.clone();
            match std::thread::Builder::new()
                .name(format!("miner-{index}"))
                .spawn(move || worker::run(index, shared))
            {
                Ok(handle) => self.handles.push(handle),
                Err(e) => {
                    warn!(error = %e, threads = index, "cannot start another miner thread");
                    self.shared.lock().threads = index;
                    break;
                }
            }
        }
        self.shared.stats.set_threads(self.handles.len());
    }
}

impl Drop for Miner {
    fn drop(&mut self) {
        {
            let mut state = self.shared.lock();
            state.shutdown = true;
            state.job = None;
            self.shared.bump(&mut state);
        }
        self.shared.wake_all();
        for handle in self.handles.drain(..) {
            let _ = handle.join();
        }
        self.shared.stats.set_threads(0);
        self.shared.stats.set_active(false);
    }
}

#[cfg(test)]
mod tests;
