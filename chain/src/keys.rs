//! ed25519 identities: secret keys, public keys, signatures and the account [`Address`] derived
//! from a public key.

use ed25519_dalek::Signer;

use crate::fixed_bytes::fixed_bytes;
use crate::hash::TaggedHasher;

fixed_bytes!(
    /// An ed25519 public key (compressed Edwards point). Validators and transaction senders are
    /// named by it; whether the bytes are a usable point is checked when a signature is verified.
    PublicKey,
    32
);

fixed_bytes!(
    /// An account address: the first 20 bytes of a domain-tagged SHA-256 of the public key.
    Address,
    20
);

fixed_bytes!(
    /// An ed25519 signature: `R` (32 bytes) then `s` (32 bytes).
    Signature,
    64
);

impl PublicKey {
    /// The account address that this key controls.
    pub fn address(&self) -> Address {
        let digest = TaggedHasher::new(b"synod/address").update(&self.0).finish();
        let mut out = [0u8; 20];
        out.copy_from_slice(&digest.0[..20]);
        Address(out)
    }
}

/// An ed25519 signing key. Its `Debug` never prints the secret.
#[derive(Clone)]
pub struct SecretKey(ed25519_dalek::SigningKey);

impl SecretKey {
    /// A fresh key from the operating system's randomness.
    pub fn generate() -> Self {
        SecretKey(ed25519_dalek::SigningKey::generate(&mut rand::rng()))
    }

    /// The key whose 32-byte seed is `seed`.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        SecretKey(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// The 32-byte seed (what a key file stores).
    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// The address this key controls.
    pub fn address(&self) -> Address {
        self.public().address()
    }

    /// Signs `message` (deterministic, RFC 8032).
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.0.sign(message).to_bytes())
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey(public {})", self.public().short())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8032_test_vector_1() {
        let seed = crate::fixed_bytes::parse_hex::<32>(
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        )
        .unwrap();
        let key = SecretKey::from_seed(seed);
        assert_eq!(
            key.public().to_string(),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        assert_eq!(
            key.sign(b"").to_string(),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        let key = SecretKey::from_seed([7; 32]);
        let shown = format!("{key:?}");
        assert!(!shown.contains(&hex::encode([7u8; 32])));
        assert_eq!(key.address(), key.public().address());
    }
}
