//! What every part of a running node shares: the store, the mempool, the status, the metrics,
//! the allowed validator set, and the handles to the network and the driver.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock, RwLock};

use synod_chain::Store;
use synod_chain::hash::Hash;
use synod_chain::keys::{PublicKey, SecretKey};
use synod_chain::ledger::Ledger;
use synod_genesis::Genesis;

use crate::driver::DriverEvent;
use crate::mempool::Mempool;
use crate::metrics::Metrics;
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
    /// The node's status.
    pub status: RwLock<NodeStatus>,
    /// Metrics.
    pub metrics: Metrics,
    /// Validators whose consensus messages are accepted (genesis set plus membership changes).
    pub members: RwLock<HashSet<PublicKey>>,
    /// The network task.
    pub net: OnceLock<NetworkHandle>,
    /// The engine driver (absent on observers).
    pub driver: OnceLock<std::sync::mpsc::SyncSender<DriverEvent>>,
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

    /// Sends to the driver without blocking; false if it is gone or saturated.
    pub fn to_driver(&self, event: DriverEvent) -> bool {
        self.driver.get().is_some_and(|d| d.try_send(event).is_ok())
    }
}
