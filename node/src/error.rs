//! Why a node refused to start or stopped.

use std::path::PathBuf;

/// A node failure, each variant with a message that says what to do.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The home folder, config, genesis or key is unusable.
    #[error(transparent)]
    Home(#[from] synod_genesis::GenesisError),
    /// The database could not be opened or written.
    #[error(transparent)]
    Store(#[from] synod_chain::StoreError),
    /// The node key is not one of the genesis validators.
    #[error(
        "this node's key {key} is not a validator of chain {chain_id:?}; set role = \"observer\" in config.toml to follow the chain without voting"
    )]
    NotAValidator {
        /// The node's public key.
        key: String,
        /// The chain.
        chain_id: String,
    },
    /// An address to listen on is taken or invalid.
    #[error("cannot listen on {what} address {addr}: {reason}")]
    Listen {
        /// p2p or rpc.
        what: &'static str,
        /// The address.
        addr: String,
        /// What the OS said.
        reason: String,
    },
    /// The genesis names an engine this build cannot run yet.
    #[error("the {0} engine is not available in this build of synod yet")]
    EngineUnavailable(String),
    /// The persisted engine state could not be restored.
    #[error("engine state in {path} cannot be restored: {reason}")]
    EngineState {
        /// The database.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A run option the chain does not allow (a Byzantine behaviour off a dev chain).
    #[error("{0}")]
    Refused(String),
    /// Setting up the network failed.
    #[error("network: {0}")]
    Network(String),
    /// Anything else at runtime.
    #[error("{0}")]
    Runtime(String),
}
