//! Signed statements (the paper's signed-message variant, §4): every protocol message names its
//! signer and carries an ed25519 signature over a digest of its canonical bytes, separated by
//! domain (`synod/pbft/v1`), by the chain id (so a statement from one chain is void on another)
//! and by the kind of statement (so a PREPARE can never pass as a COMMIT).
//!
//! Checking signatures dominates the engine's cost (O(n²) messages per block, each checked by
//! every receiver), so [`Verifier`] memoizes the pure function "is this signature valid" in a
//! bounded cache, checks certificates in batches, and also owns the transaction verifier (each
//! transaction's signature is checked once). Cloning a `Verifier` shares its caches: the simulator
//! gives every replica of a run the same one, which changes no outcome, only the time.

use std::collections::{HashSet, VecDeque};
use std::hash::Hash as StdHash;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use synod_chain::TxVerifier;
use synod_chain::codec;
use synod_chain::hash::{Hash, TaggedHasher};
use synod_chain::keys::{SecretKey, Signature};
use synod_chain::verify::{self, SignatureError};

use crate::engine::NodeId;

/// Signatures remembered as valid.
const SIGNATURE_CACHE: usize = 1 << 17;
/// Transaction ids remembered as verified.
const TX_CACHE: usize = 1 << 18;

/// A statement a replica signs: its canonical encoding, tagged with its kind.
pub trait Statement: Serialize {
    /// Domain tag of this kind of statement.
    const KIND: &'static [u8];

    /// The 32 bytes a replica signs for this statement on chain `chain_id`.
    fn signing_digest(&self, chain_id: &str) -> Hash {
        TaggedHasher::new(b"synod/pbft/v1")
            .update_u64(chain_id.len() as u64)
            .update(chain_id.as_bytes())
            .update_u64(Self::KIND.len() as u64)
            .update(Self::KIND)
            .update(&codec::encode(self))
            .finish()
    }
}

/// A statement with its signer and signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed<S> {
    /// What is claimed.
    pub body: S,
    /// Who claims it.
    pub signer: NodeId,
    /// ed25519 over [`Statement::signing_digest`].
    pub signature: Signature,
}

impl<S: Statement> Signed<S> {
    /// Signs `body` with `key`.
    pub fn sign(key: &SecretKey, chain_id: &str, body: S) -> Self {
        let signature = key.sign(&body.signing_digest(chain_id).0);
        Signed {
            body,
            signer: key.public(),
            signature,
        }
    }

    /// Checks the signature (through `verifier`'s cache).
    pub fn verify(&self, chain_id: &str, verifier: &Verifier) -> Result<(), SignatureError> {
        verifier.check(
            &self.signer,
            &self.body.signing_digest(chain_id),
            &self.signature,
        )
    }
}

/// A set that forgets its oldest members beyond a capacity.
#[derive(Debug)]
struct BoundedSet<K> {
    members: HashSet<K>,
    order: VecDeque<K>,
    capacity: usize,
}

impl<K: StdHash + Eq + Clone> BoundedSet<K> {
    fn new(capacity: usize) -> Self {
        BoundedSet {
            members: HashSet::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    fn contains(&self, key: &K) -> bool {
        self.members.contains(key)
    }

    fn insert(&mut self, key: K) {
        if self.members.insert(key.clone()) {
            self.order.push_back(key);
            while self.order.len() > self.capacity {
                if let Some(old) = self.order.pop_front() {
                    self.members.remove(&old);
                }
            }
        }
    }
}

type SignatureKey = (NodeId, Hash, Signature);

/// A cache entry: hashed by a prefix of the signature (random enough to spread entries; equality
/// still compares everything), which keeps a lookup cheap next to the check it saves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct CachedSignature(SignatureKey);

impl StdHash for CachedSignature {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let signature = &self.0.2.0;
        let mut prefix = [0u8; 16];
        prefix.copy_from_slice(&signature[..16]);
        state.write_u128(u128::from_le_bytes(prefix));
    }
}

#[derive(Debug)]
struct Caches {
    signatures: BoundedSet<CachedSignature>,
    txs: TxVerifier,
}

/// Signature checks of protocol messages and transactions, memoized. Cloning shares the caches.
#[derive(Clone, Debug)]
pub struct Verifier {
    caches: Arc<Mutex<Caches>>,
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier::new()
    }
}

impl Verifier {
    /// A verifier with empty caches.
    pub fn new() -> Self {
        Verifier {
            caches: Arc::new(Mutex::new(Caches {
                signatures: BoundedSet::new(SIGNATURE_CACHE),
                txs: TxVerifier::new(TX_CACHE),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Caches> {
        // A panic elsewhere while holding the lock leaves the caches consistent (every insert is
        // one call), so a poisoned lock is still usable.
        self.caches.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks one signature over a statement digest.
    pub fn check(
        &self,
        signer: &NodeId,
        digest: &Hash,
        signature: &Signature,
    ) -> Result<(), SignatureError> {
        let key = CachedSignature((*signer, *digest, *signature));
        if self.lock().signatures.contains(&key) {
            return Ok(());
        }
        verify::verify(signer, &digest.0, signature)?;
        self.lock().signatures.insert(key);
        Ok(())
    }

    /// Checks many signatures at once (those not cached, in one batch). On failure, the index of
    /// the first invalid item.
    pub fn check_all(&self, items: &[SignatureKey]) -> Result<(), (usize, SignatureError)> {
        let missing: Vec<usize> = {
            let caches = self.lock();
            (0..items.len())
                .filter(|&i| !caches.signatures.contains(&CachedSignature(items[i])))
                .collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let batch: Vec<(&NodeId, &[u8], &Signature)> = missing
            .iter()
            .map(|&i| (&items[i].0, items[i].1.0.as_slice(), &items[i].2))
            .collect();
        if verify::verify_batch(&batch).is_err() {
            for &i in &missing {
                let (signer, digest, signature) = &items[i];
                verify::verify(signer, &digest.0, signature).map_err(|e| (i, e))?;
            }
        }
        let mut caches = self.lock();
        for i in missing {
            caches.signatures.insert(CachedSignature(items[i]));
        }
        Ok(())
    }

    /// Runs `f` with the transaction verifier (verify-once cache and batch checks).
    pub fn with_txs<R>(&self, f: impl FnOnce(&mut TxVerifier) -> R) -> R {
        f(&mut self.lock().txs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Serialize)]
    struct Hello(u64);
    impl Statement for Hello {
        const KIND: &'static [u8] = b"hello";
    }

    #[derive(Serialize)]
    struct Other(u64);
    impl Statement for Other {
        const KIND: &'static [u8] = b"other";
    }

    #[test]
    fn signatures_bind_kind_chain_and_signer() {
        let key = SecretKey::from_seed([1; 32]);
        let verifier = Verifier::new();
        let signed = Signed::sign(&key, "a", Hello(7));
        signed.verify("a", &verifier).unwrap();
        assert!(signed.verify("b", &verifier).is_err(), "another chain");
        assert_ne!(Hello(7).signing_digest("a"), Other(7).signing_digest("a"));
        let mut forged = signed.clone();
        forged.signer = SecretKey::from_seed([2; 32]).public();
        assert!(forged.verify("a", &verifier).is_err(), "another signer");
        let mut flipped = signed;
        flipped.signature.0[3] ^= 1;
        assert!(flipped.verify("a", &verifier).is_err(), "a flipped byte");
    }

    #[test]
    fn batches_find_the_bad_signature() {
        let keys: Vec<SecretKey> = (0..6).map(|i| SecretKey::from_seed([i + 1; 32])).collect();
        let mut items: Vec<SignatureKey> = keys
            .iter()
            .map(|k| {
                let digest = Hello(9).signing_digest("c");
                (k.public(), digest, k.sign(&digest.0))
            })
            .collect();
        let verifier = Verifier::new();
        verifier.check_all(&items).unwrap();
        // Cached now: a second check costs nothing and still passes.
        verifier.check_all(&items).unwrap();
        items[4].2.0[0] ^= 1;
        assert_eq!(verifier.check_all(&items).map_err(|(i, _)| i), Err(4));
    }
}
