//! What every part of a running node shares: the store, the mempool and its journal, the status,
//! the metrics, the injected faults, the allowed validator set, the handles to the network and the driver, and the
//! health of each long-running task.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use synod_chain::Store;
use synod_chain::hash::Hash;
use synod_chain::keys::{PublicKey, SecretKey};
use synod_chain::ledger::Ledger;
use synod_genesis::Genesis;

use crate::faults::Faults;
use crate::health::Health;
use crate::inbox::{ControlEvent, DriverInbox};
use crate::mempool::Mempool;
use crate::mempool::journal::Journal;
use crate::metrics::Metrics;
use crate::miner::stats::MiningStats;
use crate::net::NetworkHandle;
use crate::status::NodeStatus;

/// Shared state of a running node.
pub struct NodeContext {
    /// The chain database.
    pub store: Store,
    /// The genesis this node runs.
    pub genesis: Genesis,
    /// Its hash (every envelope names it).
    pub genesis_hash: Hash,
    /// The ledger rules.
    pub ledger: Ledger,
    /// The node key.
    pub key: SecretKey,
    /// Its public key.
    pub me: PublicKey,
    /// The node's name.
    pub moniker: String,
    /// Pending transactions.
    pub mempool: Mutex<Mempool>,
    /// The threads that check and admit transactions, below the driver's priority.
    pub admission: crate::admission_workers::AdmissionWorkers,
    /// The journal of transactions acknowledged to this node's clients (validators and
    /// observers alike; `None` only in tests without a data folder).
    pub journal: Mutex<Option<Journal>>,
    /// The node's status.
    pub status: RwLock<NodeStatus>,
    /// Metrics.
    pub metrics: Metrics,
    /// Faults injected for experiments (dev chains only), applied by the network task.
    pub faults: Arc<Faults>,
    /// The Byzantine behaviour this node was started with (dev chains only), for `status`.
    pub byzantine: Option<String>,
    /// Validators whose consensus messages are accepted (genesis set plus membership changes).
    pub members: RwLock<HashSet<PublicKey>>,
    /// The network task.
    pub net: OnceLock<NetworkHandle>,
    /// The engine driver's inbox (absent on observers, which run no engine).
    pub inbox: Option<Arc<DriverInbox>>,
    /// Whether this node gossips the transactions its clients submit (a Raft validator forwards
    /// them to the leader through its engine instead; PBFT validators do both, see `run`).
    pub gossip_local_txs: bool,
    /// The tokio runtime, for work the driver thread starts (block fetches).
    pub runtime: tokio::runtime::Handle,
    /// Engine-clock time of the driver's last loop turn (0 before the first).
    pub driver_heartbeat: AtomicU64,
    /// The engine's backpressure, as of its last step: while set, clients are answered "busy"
    /// before anything is admitted.
    pub overloaded: AtomicBool,
    /// What is wrong, if anything, for `/health`.
    pub health: Health,
    /// The miner's counters and hash rate.
    pub mining: Arc<MiningStats>,
    /// The peers connected now, by key, with a version that changes with the list (the driver
    /// hands them to the engine when it does).
    pub connected: RwLock<(u64, Vec<PublicKey>)>,
}

impl NodeContext {
    /// The status, read.
    pub fn status(&self) -> NodeStatus {
        self.status
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Updates the status.
    pub fn update_status(&self, f: impl FnOnce(&mut NodeStatus)) {
        f(&mut self
            .status
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner));
    }

    /// The mempool, locked.
    pub fn mempool(&self) -> std::sync::MutexGuard<'_, Mempool> {
        self.mempool
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `key` may send consensus messages.
    pub fn is_member(&self, key: &PublicKey) -> bool {
        self.members
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(key)
    }

    /// Queues a control event for the driver; false if there is no driver or it is saturated.
    pub fn to_driver(&self, event: ControlEvent) -> bool {
        self.inbox.as_ref().is_some_and(|inbox| inbox.push(event))
    }

    /// Tells the driver that admitted transactions wait in the mempool.
    pub fn ring_driver(&self) {
        if let Some(inbox) = &self.inbox {
            inbox.ring_txs();
        }
    }

    /// The connected peers' keys and the list's version.
    pub fn connected_peers(&self) -> (u64, Vec<PublicKey>) {
        self.connected
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replaces the connected peers' keys (a new version).
    pub fn set_connected_peers(&self, peers: Vec<PublicKey>) {
        let mut connected = self
            .connected
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *connected = (connected.0 + 1, peers);
    }

    /// Records that the driver finished a loop turn (read by `/health`).
    pub fn heartbeat(&self) {
        self.driver_heartbeat
            .store(crate::clock::now_ms(), Ordering::Relaxed);
    }
}
