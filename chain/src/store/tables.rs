//! The redb tables and the metadata keys.

use redb::TableDefinition;

/// Layout version written by this code; a file with another is refused.
pub const SCHEMA_VERSION: u32 = 1;

/// Metadata by name (values are canonical encodings).
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Encoded headers by block id (canonical and side blocks alike).
pub(crate) const HEADERS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("headers");
/// Encoded bodies (`Vec<SignedTransaction>`) by block id.
pub(crate) const BODIES: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("bodies");
/// Engine finality proofs (opaque bytes) by block id.
pub(crate) const PROOFS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("proofs");
/// Canonical chain: height to block id.
pub(crate) const CANONICAL: TableDefinition<u64, &[u8; 32]> = TableDefinition::new("canonical");
/// Accounts: address to (balance, nonce). Absent means the zero account.
pub(crate) const ACCOUNTS: TableDefinition<&[u8; 20], (u64, u64)> =
    TableDefinition::new("accounts");
/// Per-height undo data (accounts before the block) above the finalized height.
pub(crate) const UNDO: TableDefinition<u64, &[u8]> = TableDefinition::new("undo");
/// Consensus engines' persisted state, by key.
pub(crate) const ENGINE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("engine");

pub(crate) const META_SCHEMA: &str = "schema_version";
pub(crate) const META_GENESIS: &str = "genesis_hash";
pub(crate) const META_CHAIN_ID: &str = "chain_id";
pub(crate) const META_TIP: &str = "tip";
pub(crate) const META_FINALIZED: &str = "finalized_height";
pub(crate) const META_BASE: &str = "snapshot_base";
