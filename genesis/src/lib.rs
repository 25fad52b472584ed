//! The genesis file and what is built from it: parsing with errors that name the field,
//! validation, the genesis hash, deterministic dev keys, node home folders and local testnet
//! folders.

pub mod dev_keys;
pub mod error;
pub mod home;
pub mod overrides;
pub mod params;
pub mod pow_params;
pub mod spec;
pub mod testnet;
pub mod time;

pub use error::{FieldError, GenesisError};
pub use home::{DEFAULT_MAX_PENDING_TXS, Home, LoadedHome, MiningConfig, NodeConfig, NodeRole};
pub use params::{EngineConfig, PbftParams, RaftParams};
pub use pow_params::{DifficultyAlgorithm, PowParams};
pub use spec::{Genesis, InitialAccount, Validator};
pub use testnet::{EngineKind, TestnetManifest, TestnetOptions};

#[cfg(test)]
mod tests;
