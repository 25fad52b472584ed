//! The driver's inbox: consensus messages and operator commands in one bounded queue, a doorbell
//! for admitted transactions (which wait in the mempool itself, so no queue can lose them), and a
//! shutdown flag that no full queue can swallow.
//!
//! Priorities: the driver takes every control event that is waiting (bounded per turn) before it
//! takes a batch of transactions, so a heartbeat or a vote never waits behind bulk work.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use synod_chain::Block;
use synod_consensus::engine::{Command, NodeId, SyncedBlock};
use tokio::sync::oneshot;

use crate::driver::MiningRequest;

/// Control events waiting before senders see "busy".
pub const CONTROL_CAPACITY: usize = 16_384;

/// Something for the engine that is not a transaction.
pub enum ControlEvent {
    /// A consensus message that passed the edge checks.
    Message {
        /// The sender.
        from: NodeId,
        /// The encoded engine message.
        payload: Vec<u8>,
    },
    /// An operator command; the reply says whether the engine took it.
    Command {
        /// The command.
        command: Command,
        /// Where the answer goes.
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// Blocks fetched from a peer for the engine's state transfer.
    Synced(Vec<SyncedBlock>),
    /// A block this node's miner solved.
    Mined(Block),
    /// An operator's mining request.
    Mining(MiningRequest),
}

/// What one wait returned.
pub struct Delivery {
    /// Control events with the moment each arrived, oldest first.
    pub control: Vec<(Instant, ControlEvent)>,
    /// Admitted transactions wait in the mempool.
    pub txs_ready: bool,
    /// More control events wait than were taken.
    pub more: bool,
    /// Stop now.
    pub shutdown: bool,
}

#[derive(Default)]
struct InboxState {
    control: VecDeque<(Instant, ControlEvent)>,
    txs_ready: bool,
    shutdown: bool,
}

/// The driver's inbox, shared by the network, the RPC and the driver.
#[derive(Default)]
pub struct DriverInbox {
    state: Mutex<InboxState>,
    ready: Condvar,
}

impl DriverInbox {
    /// An empty inbox.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, InboxState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues a control event; false (the event is dropped) if the driver is that far behind or
    /// stopping.
    pub fn push(&self, event: ControlEvent) -> bool {
        let mut state = self.lock();
        if state.shutdown || state.control.len() >= CONTROL_CAPACITY {
            return false;
        }
        state.control.push_back((Instant::now(), event));
        drop(state);
        self.ready.notify_one();
        true
    }

    /// Queues a block this node's miner solved, whatever the backlog: a solution is rare and
    /// costly, and the miner idles until the engine, handed the block, sends new work.
    pub fn push_mined(&self, block: Block) {
        let mut state = self.lock();
        if state.shutdown {
            return;
        }
        state
            .control
            .push_back((Instant::now(), ControlEvent::Mined(block)));
        drop(state);
        self.ready.notify_one();
    }

    /// Tells the driver that admitted transactions wait in the mempool.
    pub fn ring_txs(&self) {
        self.lock().txs_ready = true;
        self.ready.notify_one();
    }

    /// Asks the driver to stop. Never lost, whatever is queued.
    pub fn shutdown(&self) {
        self.lock().shutdown = true;
        self.ready.notify_all();
    }

    /// Whether a shutdown was asked for.
    pub fn is_shutting_down(&self) -> bool {
        self.lock().shutdown
    }

    /// Control events waiting.
    pub fn backlog(&self) -> usize {
        self.lock().control.len()
    }

    /// Waits until something is there or `timeout` passes, then takes up to `max_control` control
    /// events and the transaction doorbell.
    pub fn wait(&self, timeout: Duration, max_control: usize) -> Delivery {
        let mut state = self.lock();
        if state.control.is_empty() && !state.txs_ready && !state.shutdown {
            state = self
                .ready
                .wait_timeout(state, timeout)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        let take = state.control.len().min(max_control);
        let control = state.control.drain(..take).collect();
        let txs_ready = std::mem::take(&mut state.txs_ready);
        Delivery {
            control,
            txs_ready,
            more: !state.control.is_empty(),
            shutdown: state.shutdown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use synod_chain::keys::PublicKey;

    fn message(n: u8) -> ControlEvent {
        ControlEvent::Message {
            from: PublicKey([n; 32]),
            payload: vec![n],
        }
    }

    #[test]
    fn takes_in_order_bounded_and_never_loses_a_shutdown() {
        let inbox = DriverInbox::new();
        for n in 0..5 {
            assert!(inbox.push(message(n)));
        }
        inbox.ring_txs();
        let first = inbox.wait(Duration::from_millis(1), 3);
        assert_eq!(first.control.len(), 3);
        assert!(first.txs_ready && first.more && !first.shutdown);
        let rest = inbox.wait(Duration::from_millis(1), 10);
        assert_eq!(rest.control.len(), 2);
        assert!(!rest.txs_ready && !rest.more);
        let empty = inbox.wait(Duration::from_millis(1), 10);
        assert!(empty.control.is_empty());

        for _ in 0..CONTROL_CAPACITY {
            assert!(inbox.push(message(9)));
        }
        assert!(!inbox.push(message(9)), "a full inbox refuses");
        inbox.shutdown();
        assert!(inbox.wait(Duration::from_millis(1), 1).shutdown);
        assert!(!inbox.push(message(1)), "a stopping inbox refuses");
    }
}
