//! Consensus messages on the wire: a signed envelope naming the chain, the sender and the
//! recipient. The node checks it at the edge (chain, recipient, signature, sender's identity and
//! membership) before the engine sees the payload.
//!
//! Layout: `chain (32) | from (32) | to (32) | payload length (u64 LE) | payload | signature (64)`.
//! The signature covers a domain-tagged SHA-256 of the header and of the payload's SHA-256, not
//! the payload itself: ed25519 hashes what it signs twice with SHA-512, which for a block-sized
//! payload costs several times one SHA-256 pass, and a payload broadcast to every peer is hashed
//! once for all of their envelopes ([`PayloadDigest`]).

use synod_chain::hash::{Hash, TaggedHasher, sha256};
use synod_chain::keys::{PublicKey, SecretKey, Signature};
use synod_chain::verify;

const DOMAIN: &[u8] = b"synod/envelope/v2";
const HEADER: usize = 32 * 3 + 8;
const SIGNATURE: usize = 64;

/// Why an envelope was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// Too short, or the length field disagrees with the size.
    #[error("malformed envelope")]
    Malformed,
    /// For another chain.
    #[error("envelope for another chain")]
    WrongChain,
    /// For another node.
    #[error("envelope addressed to another node")]
    WrongRecipient,
    /// The signature does not verify.
    #[error("forged envelope: {0}")]
    BadSignature(verify::SignatureError),
}

/// The SHA-256 of a payload, computed once when the same payload goes to several peers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PayloadDigest(Hash);

impl PayloadDigest {
    /// Hashes `payload`.
    pub fn of(payload: &[u8]) -> Self {
        PayloadDigest(sha256(payload))
    }
}

/// What the signature covers: the header fields and the payload's digest, domain-tagged.
fn signing_digest(header: &[u8], payload: PayloadDigest) -> Hash {
    TaggedHasher::new(DOMAIN)
        .update(header)
        .update(&payload.0.0)
        .finish()
}

/// Wraps and signs `payload` from `key` to `to` on chain `chain`.
pub fn seal(key: &SecretKey, chain: &Hash, to: &PublicKey, payload: &[u8]) -> Vec<u8> {
    seal_digested(key, chain, to, payload, PayloadDigest::of(payload))
}

/// [`seal`] with the payload's digest already computed (`digest` must be [`PayloadDigest::of`]
/// `payload`, or the receiver refuses the envelope as forged).
pub fn seal_digested(
    key: &SecretKey,
    chain: &Hash,
    to: &PublicKey,
    payload: &[u8],
    digest: PayloadDigest,
) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(HEADER + payload.len() + SIGNATURE);
    bytes.extend_from_slice(&chain.0);
    bytes.extend_from_slice(&key.public().0);
    bytes.extend_from_slice(&to.0);
    bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    let signature = key.sign(&signing_digest(&bytes, digest).0);
    bytes.extend_from_slice(payload);
    bytes.extend_from_slice(&signature.0);
    bytes
}

/// An envelope whose fields were read but whose signature is not checked yet: the edge runs its
/// cheap checks (chain, recipient, sender identity and membership) on it first, and only then pays
/// for the signature.
#[derive(Debug)]
pub struct Unverified<'a> {
    bytes: &'a [u8],
    /// Who claims to have signed it.
    pub from: PublicKey,
}

/// An opened envelope.
#[derive(Debug)]
pub struct Opened {
    /// Who signed it.
    pub from: PublicKey,
    /// The consensus message bytes.
    pub payload: Vec<u8>,
}

/// Reads an envelope for chain `chain` addressed to `me` without checking its signature.
pub fn parse<'a>(
    bytes: &'a [u8],
    chain: &Hash,
    me: &PublicKey,
) -> Result<Unverified<'a>, EnvelopeError> {
    if bytes.len() < HEADER + SIGNATURE {
        return Err(EnvelopeError::Malformed);
    }
    let field = |range: std::ops::Range<usize>| -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(&bytes[range]);
        out
    };
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[96..104]);
    let len = u64::from_le_bytes(len);
    if len != (bytes.len() - HEADER - SIGNATURE) as u64 {
        return Err(EnvelopeError::Malformed);
    }
    if field(0..32) != chain.0 {
        return Err(EnvelopeError::WrongChain);
    }
    if field(64..96) != me.0 {
        return Err(EnvelopeError::WrongRecipient);
    }
    Ok(Unverified {
        bytes,
        from: PublicKey(field(32..64)),
    })
}

impl Unverified<'_> {
    /// Checks the signature and returns the sender and payload.
    pub fn verify(self) -> Result<Opened, EnvelopeError> {
        let body_end = self.bytes.len() - SIGNATURE;
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&self.bytes[body_end..]);
        let payload = &self.bytes[HEADER..body_end];
        let digest = signing_digest(&self.bytes[..HEADER], PayloadDigest::of(payload));
        verify::verify(&self.from, &digest.0, &Signature(signature))
            .map_err(EnvelopeError::BadSignature)?;
        Ok(Opened {
            from: self.from,
            payload: payload.to_vec(),
        })
    }
}

/// Checks an envelope for chain `chain` addressed to `me`, and returns its sender and payload.
pub fn open(bytes: &[u8], chain: &Hash, me: &PublicKey) -> Result<Opened, EnvelopeError> {
    parse(bytes, chain, me)?.verify()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_rejection() {
        let alice = SecretKey::from_seed([1; 32]);
        let bob = SecretKey::from_seed([2; 32]);
        let chain = Hash([7; 32]);
        let bytes = seal(&alice, &chain, &bob.public(), b"hello");
        let opened = open(&bytes, &chain, &bob.public()).unwrap();
        assert_eq!(opened.from, alice.public());
        assert_eq!(opened.payload, b"hello");

        assert_eq!(
            open(&bytes, &Hash([8; 32]), &bob.public()).unwrap_err(),
            EnvelopeError::WrongChain
        );
        assert_eq!(
            open(&bytes, &chain, &alice.public()).unwrap_err(),
            EnvelopeError::WrongRecipient
        );
        let mut tampered = bytes.clone();
        tampered[HEADER] ^= 1;
        assert!(matches!(
            open(&tampered, &chain, &bob.public()),
            Err(EnvelopeError::BadSignature(_))
        ));
        // Claiming another sender breaks the signature too.
        let mut impostor = bytes.clone();
        impostor[32..64].copy_from_slice(&bob.public().0);
        assert!(matches!(
            open(&impostor, &chain, &bob.public()),
            Err(EnvelopeError::BadSignature(_))
        ));
        for cut in [0, 10, HEADER + SIGNATURE - 1, bytes.len() - 1] {
            assert_eq!(
                open(&bytes[..cut], &chain, &bob.public()).unwrap_err(),
                EnvelopeError::Malformed
            );
        }
    }
}
