//! synod's chain data: hashes, keys and addresses, signed transactions, blocks and their canonical
//! encoding, the merkle root, the ledger's state transition, the redb block store, and the
//! proof-of-work arithmetic and mining kernels.
//!
//! This crate knows nothing of consensus, networking or async runtimes; everything above it
//! (genesis, consensus engines, the node) builds on these types.

pub mod block;
pub mod codec;
pub mod fixed_bytes;
pub mod fixtures;
pub mod genesis_state;
pub mod hash;
pub mod keyfile;
pub mod keys;
pub mod ledger;
pub mod limits;
pub mod merkle;
pub mod pow;
pub mod store;
pub mod tx;
pub mod verifier;
pub mod verify;

pub use block::{Block, BlockError, BlockHeader, Seal};
pub use genesis_state::GenesisState;
pub use hash::Hash;
pub use keys::{Address, PublicKey, SecretKey, Signature};
pub use ledger::{Account, Ledger, LedgerRules, StateChanges};
/// Targets live with the rest of proof of work; this path is the one other crates import.
pub use pow::target;
pub use store::{ChainTip, Finality, Store, StoreError};
pub use tx::{Memo, SignedTransaction, Transaction, TxError};
pub use verifier::TxVerifier;
