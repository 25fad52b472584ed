//! Blocks: a fixed-layout header and a body of signed transactions.

use serde::{Deserialize, Serialize};

use crate::codec::{self, CodecError};
use crate::hash::{Hash, sha256d};
use crate::keys::PublicKey;
use crate::limits::{MAX_BLOCK_BYTES, MAX_BLOCK_TXS};
use crate::merkle::merkle_root;
use crate::tx::{SignedTransaction, TxError};

/// The header format version this code writes and accepts.
pub const HEADER_VERSION: u32 = 1;

/// Bytes in an encoded header; every header has exactly this many.
pub const HEADER_BYTES: usize = 168;

/// The engine-specific part of the header. It closes the header so that a proof-of-work miner can
/// hash the constant prefix once (SHA-256 midstate) and only the last block per nonce.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Seal {
    /// Raft term or PBFT view in which the block was proposed; 0 for proof of work.
    pub round: u64,
    /// Proof-of-work compact target ("bits"); 0 for the permissioned engines.
    pub bits: u32,
    /// Proof-of-work nonce; 0 for the permissioned engines.
    pub nonce: u64,
}

/// A block header. Its canonical encoding is a fixed 168-byte layout; the block id is SHA-256d of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlockHeader {
    /// [`HEADER_VERSION`].
    pub version: u32,
    /// Id of the previous block; for height 0, the genesis file's hash.
    pub parent: Hash,
    /// Height; genesis is 0.
    pub height: u64,
    /// Proposal time, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// [`merkle_root`] of the body's transaction ids.
    pub tx_root: Hash,
    /// The ledger's state digest after applying this block (see [`crate::ledger`]).
    pub state_root: Hash,
    /// Who proposed (or mined) the block; fees and the block reward go to its address.
    pub proposer: PublicKey,
    /// Engine-specific fields, last.
    pub seal: Seal,
}

impl BlockHeader {
    /// Canonical bytes ([`HEADER_BYTES`] long).
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes a header, refusing any other length.
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        codec::decode(bytes, HEADER_BYTES)
    }

    /// The block id: SHA-256d of the canonical header.
    pub fn hash(&self) -> Hash {
        sha256d(&self.encode())
    }
}

/// A header and its transactions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// The header.
    pub header: BlockHeader,
    /// The transactions, in the order they apply (a length prefix above [`MAX_BLOCK_TXS`] is
    /// refused before anything is allocated).
    #[serde(deserialize_with = "codec::bounded_vec::<_, _, MAX_BLOCK_TXS>")]
    pub txs: Vec<SignedTransaction>,
}

/// Why a block is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// The bytes are not a block.
    #[error("malformed block: {0}")]
    Encoding(#[from] CodecError),
    /// More than [`MAX_BLOCK_TXS`] transactions.
    #[error("block has {0} transactions, the limit is {MAX_BLOCK_TXS}")]
    TooManyTxs(usize),
    /// Unknown header version.
    #[error("header version {0} is not supported")]
    Version(u32),
    /// The header's tx root does not match the body.
    #[error("tx root {header} does not match the body's {computed}")]
    TxRootMismatch {
        /// In the header.
        header: Hash,
        /// Computed from the body.
        computed: Hash,
    },
    /// The block does not extend the expected parent.
    #[error("block {height} has parent {got}, expected {expected}")]
    WrongParent {
        /// The block's height.
        height: u64,
        /// The expected parent id.
        expected: Hash,
        /// The header's parent.
        got: Hash,
    },
    /// The block's height is not parent + 1.
    #[error("block height {got}, expected {expected}")]
    WrongHeight {
        /// The expected height.
        expected: u64,
        /// The header's height.
        got: u64,
    },
    /// The header's state root does not match the ledger's.
    #[error("state root {header} does not match the computed {computed}")]
    StateRootMismatch {
        /// In the header.
        header: Hash,
        /// Computed by applying the body.
        computed: Hash,
    },
    /// The same transaction appears twice.
    #[error("transaction {0} appears twice")]
    DuplicateTx(Hash),
    /// A transaction is invalid.
    #[error("transaction {index}: {error}")]
    Tx {
        /// Its position in the body.
        index: usize,
        /// Why it is refused.
        error: TxError,
    },
    /// Crediting the block reward or fees would overflow the proposer's balance.
    #[error("block reward overflows the proposer's balance")]
    RewardOverflow,
}

impl Block {
    /// The block id (hash of the header).
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    /// Ids of the body's transactions, in order.
    pub fn tx_ids(&self) -> Vec<Hash> {
        self.txs.iter().map(SignedTransaction::id).collect()
    }

    /// The body's canonical bytes (what `codec::encode(&self.txs)` gives) and every transaction id,
    /// computed in one pass: each transaction is encoded once, for both.
    pub fn encode_body_with_ids(&self) -> (Vec<u8>, Vec<Hash>) {
        let mut body = Vec::with_capacity(8 + self.txs.len() * 160);
        body.extend_from_slice(&(self.txs.len() as u64).to_le_bytes());
        let mut ids = Vec::with_capacity(self.txs.len());
        for tx in &self.txs {
            let bytes = tx.encode();
            ids.push(crate::hash::sha256(&bytes));
            body.extend_from_slice(&bytes);
        }
        (body, ids)
    }

    /// Canonical bytes of the whole block.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes a block and checks its shape (sizes, tx count, tx root); not signatures or state.
    pub fn decode(bytes: &[u8]) -> Result<Self, BlockError> {
        let block: Block = codec::decode(bytes, MAX_BLOCK_BYTES)?;
        block.check_shape()?;
        Ok(block)
    }

    /// Structural checks: version, tx count, per-tx sizes, and that the tx root commits to the body.
    pub fn check_shape(&self) -> Result<(), BlockError> {
        if self.header.version != HEADER_VERSION {
            return Err(BlockError::Version(self.header.version));
        }
        if self.txs.len() > MAX_BLOCK_TXS {
            return Err(BlockError::TooManyTxs(self.txs.len()));
        }
        let computed = merkle_root(&self.tx_ids());
        if computed != self.header.tx_root {
            return Err(BlockError::TxRootMismatch {
                header: self.header.tx_root,
                computed,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn block_with(n: usize) -> Block {
        let fx = crate::fixtures::Fixture::new("c", 1, 1_000, 0);
        let key = fx.keys[0].clone();
        let txs: Vec<SignedTransaction> = (0..n as u64)
            .map(|nonce| fx.transfer(0, 0, 1, 0, nonce))
            .collect();
        let tx_root = merkle_root(&txs.iter().map(SignedTransaction::id).collect::<Vec<_>>());
        Block {
            header: BlockHeader {
                version: HEADER_VERSION,
                parent: Hash([1; 32]),
                height: 7,
                timestamp_ms: 1_700_000_000_000,
                tx_root,
                state_root: Hash([2; 32]),
                proposer: key.public(),
                seal: Seal {
                    round: 3,
                    bits: 0x1d00ffff,
                    nonce: 0x0102030405060708,
                },
            },
            txs,
        }
    }

    #[test]
    fn header_is_fixed_layout_with_nonce_last() {
        let block = block_with(0);
        let bytes = block.header.encode();
        assert_eq!(bytes.len(), HEADER_BYTES);
        assert_eq!(
            &bytes[HEADER_BYTES - 8..],
            &0x0102030405060708u64.to_le_bytes()
        );
        assert_eq!(BlockHeader::decode(&bytes).unwrap(), block.header);
        assert!(BlockHeader::decode(&bytes[..HEADER_BYTES - 1]).is_err());
    }

    #[test]
    fn block_round_trip_and_shape() {
        let block = block_with(12);
        let back = Block::decode(&block.encode()).unwrap();
        assert_eq!(back, block);
        assert_eq!(back.hash(), block.hash());
    }

    #[test]
    fn one_pass_body_encoding_matches_the_codec() {
        let block = block_with(5);
        let (body, ids) = block.encode_body_with_ids();
        assert_eq!(body, codec::encode(&block.txs));
        assert_eq!(ids, block.tx_ids());
    }

    #[test]
    fn tampered_body_breaks_the_tx_root() {
        let mut block = block_with(3);
        block.txs.swap(0, 1);
        assert!(matches!(
            Block::decode(&block.encode()),
            Err(BlockError::TxRootMismatch { .. })
        ));
        let mut block = block_with(3);
        block.header.version = 9;
        assert_eq!(block.check_shape(), Err(BlockError::Version(9)));
    }

    #[test]
    fn absurd_tx_count_is_refused_before_allocation() {
        let block = block_with(0);
        let mut bytes = block.header.encode();
        bytes.extend_from_slice(&(u64::MAX).to_le_bytes());
        assert!(matches!(
            Block::decode(&bytes),
            Err(BlockError::Encoding(CodecError::Malformed(_)))
        ));
        let mut bytes = block.header.encode();
        bytes.extend_from_slice(&((MAX_BLOCK_TXS + 1) as u64).to_le_bytes());
        assert!(Block::decode(&bytes).is_err());
    }
}
