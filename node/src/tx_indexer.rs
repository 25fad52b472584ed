//! The thread that merges committed transactions into the store's transaction-id index. A merge
//! costs more as the index grows (its random keys touch most of its pages), so it runs here, at
//! background priority, beside the engine's driver instead of inside its loop: block commits and
//! heartbeats never wait for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing::{debug, error};

use crate::context::NodeContext;

/// Blocks waiting in memory before a merge starts while blocks keep coming.
const MERGE_AFTER_BLOCKS: u64 = 32;
/// Most blocks one merge takes.
const MERGE_MAX_BLOCKS: u64 = 256;
/// How often the thread looks.
const POLL: Duration = Duration::from_millis(50);
/// The pause after a failed merge.
const RETRY: Duration = Duration::from_secs(1);

/// The running indexer; stops when dropped.
pub struct TxIndexer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TxIndexer {
    /// Starts merging `ctx`'s store: when enough blocks wait, or when the chain went quiet with
    /// some waiting.
    pub fn start(ctx: Arc<NodeContext>) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("tx-index".into())
            .spawn(move || {
                crate::priority::lower_this_thread();
                let mut last_tip = ctx.store.tip().height;
                while !stopping.load(Ordering::Relaxed) {
                    std::thread::sleep(POLL);
                    let tip = ctx.store.tip().height;
                    let quiet = tip == last_tip;
                    last_tip = tip;
                    let waiting = ctx.store.tx_backlog();
                    if waiting == 0 || (waiting < MERGE_AFTER_BLOCKS && !quiet) {
                        continue;
                    }
                    match ctx.store.index_transactions(MERGE_MAX_BLOCKS) {
                        Ok(blocks) => {
                            ctx.health.clear("tx_index");
                            debug!(blocks, "merged into the transaction index");
                        }
                        Err(e) => {
                            error!(error = %e, "cannot merge into the transaction index");
                            ctx.health
                                .report("tx_index", format!("cannot merge the tx index: {e}"));
                            std::thread::sleep(RETRY);
                        }
                    }
                }
            })?;
        Ok(TxIndexer {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for TxIndexer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
