//! Size limits of chain data. Every length read from the wire or from disk is checked against
//! these before anything is allocated for it.

/// Longest chain id, in bytes.
pub const MAX_CHAIN_ID_BYTES: usize = 64;
/// Longest transaction memo, in bytes.
pub const MAX_MEMO_BYTES: usize = 256;
/// Largest encoded signed transaction: the fixed fields, the longest chain id and memo.
pub const MAX_TX_BYTES: usize = 8 + MAX_CHAIN_ID_BYTES + 32 + 20 + 8 * 3 + 8 + MAX_MEMO_BYTES + 64;
/// Most transactions in one block.
pub const MAX_BLOCK_TXS: usize = 20_000;
/// Largest encoded block (header and body).
pub const MAX_BLOCK_BYTES: usize = 8 << 20;
/// Largest encoded finality proof stored beside a block.
pub const MAX_PROOF_BYTES: usize = 1 << 20;
