//! SHA-256 hashing: the 32-byte [`Hash`] type and the domain-separated helpers built on it.

use sha2::{Digest, Sha256};

use crate::fixed_bytes::fixed_bytes;

fixed_bytes!(
    /// A SHA-256 (or SHA-256d) digest: block ids, transaction ids, merkle and state roots.
    Hash,
    32
);

impl Hash {
    /// The all-zero hash: the parent of nothing.
    pub const ZERO: Hash = Hash([0; 32]);
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> Hash {
    Hash(Sha256::digest(data).into())
}

/// SHA-256 applied twice, as Bitcoin does for block ids (resists length extension).
pub fn sha256d(data: &[u8]) -> Hash {
    Hash(Sha256::digest(Sha256::digest(data)).into())
}

/// An incremental SHA-256 that starts with a domain tag, so that hashes of different kinds of
/// object can never collide with one another.
pub struct TaggedHasher(Sha256);

impl TaggedHasher {
    /// Starts a hash in the domain `tag` (e.g. `b"synod/merkle/leaf"`).
    pub fn new(tag: &[u8]) -> Self {
        let mut h = Sha256::new();
        h.update((tag.len() as u64).to_le_bytes());
        h.update(tag);
        TaggedHasher(h)
    }

    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) -> &mut Self {
        self.0.update(data);
        self
    }

    /// Feeds a little-endian u64.
    pub fn update_u64(&mut self, v: u64) -> &mut Self {
        self.0.update(v.to_le_bytes());
        self
    }

    /// The digest (the hasher is reset, so a builder chain can end with it).
    pub fn finish(&mut self) -> Hash {
        Hash(self.0.finalize_reset().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        assert_eq!(
            sha256(b"abc").to_string(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // Bitcoin's genesis header hashes (byte-reversed for display) to the famous id.
        let header = hex::decode(
            "0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c",
        )
        .unwrap();
        let mut id = sha256d(&header).0;
        id.reverse();
        assert_eq!(
            hex::encode(id),
            "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
        );
    }

    #[test]
    fn tags_separate_domains() {
        let mut a = TaggedHasher::new(b"a");
        a.update(b"bc");
        let mut b = TaggedHasher::new(b"ab");
        b.update(b"c");
        assert_ne!(a.finish(), b.finish());
    }
}
