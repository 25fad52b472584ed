//! Hashing a header for many nonces: the SHA-256 midstate of its constant prefix.
//!
//! A header encodes to [`HEADER_BYTES`] = 168 bytes with the nonce in the last 8 (little-endian).
//! SHA-256 eats 64-byte blocks, so the first 128 bytes (two blocks) never change while mining and
//! are compressed once per template. Per nonce there remain two compressions: the 40-byte tail
//! padded to one block, then the second SHA-256 over the 32-byte digest, also one padded block.
//! The block id is the second digest, and it meets a target when read as a little-endian number
//! is at most it (see [`crate::pow::target::Target::is_met_by`]).

use sha2::block_api::compress256;

use crate::block::{BlockHeader, HEADER_BYTES};
use crate::hash::Hash;

/// SHA-256's initial state (FIPS 180-4, 5.3.3).
pub(crate) const SHA256_IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// Bytes hashed once per template.
const PREFIX_BYTES: usize = 128;
/// Where the nonce starts inside the tail block.
pub(crate) const NONCE_OFFSET: usize = HEADER_BYTES - 8 - PREFIX_BYTES;

/// The padded block of the second SHA-256 (a 32-byte message), digest words still zero.
const DIGEST_BLOCK: [u8; 64] = padded_block(32, 32);

/// The SHA-256 state after a header's constant 128-byte prefix, and its padded tail block with the
/// nonce left as zero: what a miner hashes the header from, for any nonce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderMidstate {
    prefix_state: [u32; 8],
    tail_block: [u8; 64],
}

impl HeaderMidstate {
    /// The midstate of `header` (its nonce is ignored).
    pub fn new(header: &BlockHeader) -> HeaderMidstate {
        let mut bytes = [0u8; HEADER_BYTES];
        // `encode` always yields HEADER_BYTES (the header is a fixed layout, tested in `block`).
        bytes.copy_from_slice(&header.encode());
        HeaderMidstate::from_encoded(&bytes)
    }

    /// The midstate of an encoded header (its last 8 bytes, the nonce, are ignored).
    pub fn from_encoded(bytes: &[u8; HEADER_BYTES]) -> HeaderMidstate {
        let mut prefix_state = SHA256_IV;
        let mut blocks = [[0u8; 64]; 2];
        for (block, chunk) in blocks
            .iter_mut()
            .zip(bytes[..PREFIX_BYTES].chunks_exact(64))
        {
            block.copy_from_slice(chunk);
        }
        compress256(&mut prefix_state, &blocks);
        let mut tail_block = padded_block(HEADER_BYTES - PREFIX_BYTES, HEADER_BYTES);
        tail_block[..NONCE_OFFSET].copy_from_slice(&bytes[PREFIX_BYTES..HEADER_BYTES - 8]);
        HeaderMidstate {
            prefix_state,
            tail_block,
        }
    }

    /// The block id of the header with `nonce`: two compressions, no allocation. This is the
    /// portable reference that every mining kernel must agree with.
    pub fn hash(&self, nonce: u64) -> Hash {
        hash_of_words(&self.hash_words(nonce))
    }

    /// The second digest's eight state words (the block id as big-endian words).
    pub(crate) fn hash_words(&self, nonce: u64) -> [u32; 8] {
        let mut tail = self.tail_block;
        tail[NONCE_OFFSET..NONCE_OFFSET + 8].copy_from_slice(&nonce.to_le_bytes());
        let mut first = self.prefix_state;
        compress256(&mut first, &[tail]);
        let mut digest_block = DIGEST_BLOCK;
        for (chunk, word) in digest_block.chunks_exact_mut(4).zip(first) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        let mut second = SHA256_IV;
        compress256(&mut second, &[digest_block]);
        second
    }

    /// The state after the prefix, for kernels that continue from it.
    pub(crate) fn prefix_state(&self) -> [u32; 8] {
        self.prefix_state
    }

    /// The padded tail block as SHA-256 message words (nonce words zero).
    pub(crate) fn tail_words(&self) -> [u32; 16] {
        let mut words = [0u32; 16];
        for (word, chunk) in words.iter_mut().zip(self.tail_block.chunks_exact(4)) {
            *word = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        words
    }
}

/// A block id from the second digest's state words.
pub(crate) fn hash_of_words(words: &[u32; 8]) -> Hash {
    let mut out = [0u8; 32];
    for (chunk, word) in out.chunks_exact_mut(4).zip(words) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    Hash(out)
}

/// The last SHA-256 block of a `message_bytes`-long message whose final `tail_bytes` (< 56) fall
/// in it: zeros where those bytes go, then the 0x80 terminator and the message length in bits.
const fn padded_block(tail_bytes: usize, message_bytes: usize) -> [u8; 64] {
    let mut block = [0u8; 64];
    block[tail_bytes] = 0x80;
    let length = (message_bytes as u64 * 8).to_be_bytes();
    let mut i = 0;
    while i < 8 {
        block[56 + i] = length[i];
        i += 1;
    }
    block
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::sha256d;
    use proptest::prelude::*;

    #[test]
    fn layout_constants() {
        assert_eq!(NONCE_OFFSET, 32);
        assert_eq!(HEADER_BYTES - PREFIX_BYTES, 40);
        assert_eq!(DIGEST_BLOCK[32], 0x80);
        assert_eq!(DIGEST_BLOCK[62..], [0x01, 0x00]);
        let tail = padded_block(40, HEADER_BYTES);
        assert_eq!(tail[40], 0x80);
        assert_eq!(tail[62..], [0x05, 0x40]); // 168 × 8 = 1344 = 0x540
    }

    proptest! {
        #[test]
        fn midstate_hash_is_sha256d_of_the_header(
            prefix in proptest::collection::vec(any::<u8>(), HEADER_BYTES - 8),
            old_nonce in any::<u64>(),
            nonce in any::<u64>(),
        ) {
            let mut bytes = [0u8; HEADER_BYTES];
            bytes[..HEADER_BYTES - 8].copy_from_slice(&prefix);
            bytes[HEADER_BYTES - 8..].copy_from_slice(&old_nonce.to_le_bytes());
            let midstate = HeaderMidstate::from_encoded(&bytes);
            bytes[HEADER_BYTES - 8..].copy_from_slice(&nonce.to_le_bytes());
            prop_assert_eq!(midstate.hash(nonce), sha256d(&bytes));
        }
    }
}
