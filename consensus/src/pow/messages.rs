//! Proof of work's wire messages and the bounds the engine holds every one of them to.
//!
//! Blocks spread by announce + fetch: a node that adopts a new tip announces its header (and the
//! headers of the branch it switched to), and peers fetch the bodies they lack by hash. A node
//! that fell behind sends a locator (hashes of its chain, dense near the tip, exponentially
//! sparser below) and receives the headers after the last block both chains share, then fetches
//! the bodies: headers first. Transactions are relayed by flooding, each node forwarding what was
//! new to it.

use serde::{Deserialize, Serialize};
use synod_chain::hash::Hash;
use synod_chain::{Block, BlockHeader, SignedTransaction};

use crate::engine::Message;

/// Most headers in one announcement (a reorganisation announces the tail of its new branch).
pub const MAX_ANNOUNCE_HEADERS: usize = 16;
/// Most hashes in a locator: 10 dense ones and exponential steps reach past 2⁵⁰ blocks.
pub const MAX_LOCATOR: usize = 64;
/// Most headers in one answer to a locator.
pub const MAX_HEADERS: usize = 256;
/// Most block ids in one fetch, and most blocks in one answer.
pub const MAX_BLOCKS_PER_MESSAGE: usize = 16;
/// Most transactions, summed over its blocks, one answer carries beyond its first block (about
/// one full block's worth, so an answer stays near the block size limit).
pub const MAX_TXS_PER_ANSWER: usize = synod_chain::limits::MAX_BLOCK_TXS;
/// Most transactions in one relay message.
pub const MAX_RELAY_TXS: usize = 2_000;
/// Most blocks of one store-sync answer the engine looks at.
pub const MAX_SYNCED_BLOCKS: usize = 512;

/// The proof-of-work protocol. The sender is known from the authenticated envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PowMessage {
    /// The sender adopted a new tip: these headers, lowest first, end at it.
    Announce {
        /// At most [`MAX_ANNOUNCE_HEADERS`], consecutive.
        headers: Vec<BlockHeader>,
    },
    /// Send me the headers of your chain after the first of these blocks you hold.
    GetHeaders {
        /// Block ids from the sender's tip downwards, at most [`MAX_LOCATOR`].
        locator: Vec<Hash>,
    },
    /// The answer to [`PowMessage::GetHeaders`].
    Headers {
        /// Consecutive canonical headers after the locator's match, at most [`MAX_HEADERS`];
        /// empty when the sender has nothing newer or no locator entry is in the part of its
        /// chain it serves.
        headers: Vec<BlockHeader>,
        /// The sender's canonical tip height: a requester that got no headers from a peer far
        /// ahead fetches the range from the peer's store instead ([`crate::Action::RequestSync`]).
        tip_height: u64,
    },
    /// Send me these blocks.
    GetBlocks {
        /// At most [`MAX_BLOCKS_PER_MESSAGE`] block ids.
        hashes: Vec<Hash>,
    },
    /// Blocks, fetched or pushed.
    Blocks {
        /// At most [`MAX_BLOCKS_PER_MESSAGE`].
        blocks: Vec<Block>,
    },
    /// Transactions for the miners' pools.
    Transactions {
        /// At most [`MAX_RELAY_TXS`].
        txs: Vec<SignedTransaction>,
    },
}

impl Message for PowMessage {
    fn kind(&self) -> &'static str {
        match self {
            PowMessage::Announce { .. } => "announce",
            PowMessage::GetHeaders { .. } => "get_headers",
            PowMessage::Headers { .. } => "headers",
            PowMessage::GetBlocks { .. } => "get_blocks",
            PowMessage::Blocks { .. } => "blocks",
            PowMessage::Transactions { .. } => "transactions",
        }
    }
}
