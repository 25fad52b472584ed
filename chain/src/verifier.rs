//! Signature verification that pays for itself: each transaction is verified once per node (a
//! bounded cache of verified ids) and a block's unverified transactions are checked in batches.

use std::collections::{HashSet, VecDeque};

use crate::hash::Hash;
use crate::tx::{SignedTransaction, TxError};
use crate::verify;

/// Batches larger than this gain little and cost more to bisect when one signature is bad.
const BATCH: usize = 256;

/// Verifies transaction signatures, remembering the ids that passed.
#[derive(Debug)]
pub struct TxVerifier {
    verified: HashSet<Hash>,
    order: VecDeque<Hash>,
    capacity: usize,
}

impl Default for TxVerifier {
    fn default() -> Self {
        TxVerifier::new(200_000)
    }
}

impl TxVerifier {
    /// A verifier remembering up to `capacity` verified ids (oldest forgotten first).
    pub fn new(capacity: usize) -> Self {
        TxVerifier {
            verified: HashSet::with_capacity(capacity.min(1 << 16)),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Whether `id` has passed verification here and is still remembered.
    pub fn is_verified(&self, id: &Hash) -> bool {
        self.verified.contains(id)
    }

    /// Ids currently remembered.
    pub fn cached(&self) -> usize {
        self.verified.len()
    }

    fn remember(&mut self, id: Hash) {
        if self.verified.insert(id) {
            self.order.push_back(id);
            while self.order.len() > self.capacity {
                if let Some(old) = self.order.pop_front() {
                    self.verified.remove(&old);
                }
            }
        }
    }

    /// Records `id` as verified without checking it: for a transaction whose signature this node
    /// already checked elsewhere (its mempool admits nothing unverified), so that the block that
    /// later carries it costs no second verification.
    pub fn mark_verified(&mut self, id: Hash) {
        self.remember(id);
    }

    /// Verifies one transaction whose id is `id`, using the cache.
    pub fn verify(&mut self, id: Hash, tx: &SignedTransaction) -> Result<(), TxError> {
        if self.is_verified(&id) {
            return Ok(());
        }
        tx.verify_signature()?;
        self.remember(id);
        Ok(())
    }

    /// Verifies many transactions (ids given in the same order), batching those not cached.
    /// Returns one result per transaction.
    pub fn verify_many(
        &mut self,
        txs: &[SignedTransaction],
        ids: &[Hash],
    ) -> Vec<Result<(), TxError>> {
        let mut results: Vec<Result<(), TxError>> = vec![Ok(()); txs.len()];
        let pending: Vec<usize> = (0..txs.len())
            .filter(|&i| !self.is_verified(&ids[i]))
            .collect();
        for chunk in pending.chunks(BATCH) {
            let messages: Vec<Vec<u8>> =
                chunk.iter().map(|&i| txs[i].tx().signing_bytes()).collect();
            let items: Vec<_> = chunk
                .iter()
                .zip(&messages)
                .map(|(&i, msg)| (&txs[i].tx().from, msg.as_slice(), txs[i].signature()))
                .collect();
            if verify::verify_batch(&items).is_ok() {
                for &i in chunk {
                    self.remember(ids[i]);
                }
                continue;
            }
            for (&i, (key, msg, sig)) in chunk.iter().zip(&items) {
                match verify::verify(key, msg, sig) {
                    Ok(()) => self.remember(ids[i]),
                    Err(e) => results[i] = Err(e.into()),
                }
            }
        }
        results
    }

    /// Verifies a block's transactions; the first failure is returned with its index.
    pub fn verify_block(
        &mut self,
        txs: &[SignedTransaction],
        ids: &[Hash],
    ) -> Result<(), (usize, TxError)> {
        match self
            .verify_many(txs, ids)
            .into_iter()
            .enumerate()
            .find_map(|(i, r)| r.err().map(|e| (i, e)))
        {
            Some(failure) => Err(failure),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::SignatureError;

    fn txs(n: u64) -> Vec<SignedTransaction> {
        let fx = crate::fixtures::Fixture::new("c", 1, 1_000, 0);
        (0..n).map(|nonce| fx.transfer(0, 0, 1, 0, nonce)).collect()
    }

    #[test]
    fn verifies_once_and_remembers() {
        let txs = txs(300);
        let ids: Vec<Hash> = txs.iter().map(SignedTransaction::id).collect();
        let mut verifier = TxVerifier::new(1000);
        assert!(verifier.verify_block(&txs, &ids).is_ok());
        assert_eq!(verifier.cached(), 300);
        assert!(ids.iter().all(|id| verifier.is_verified(id)));
        // A cache hit does not look at the signature again.
        assert!(verifier.verify(ids[0], &txs[0]).is_ok());
    }

    #[test]
    fn finds_the_bad_signature_in_a_failed_batch() {
        let mut txs = txs(40);
        let (tx, mut signature) = txs[17].clone().into_parts();
        signature.0[5] ^= 1;
        txs[17] = SignedTransaction::from_parts(tx, signature);
        let ids: Vec<Hash> = txs.iter().map(SignedTransaction::id).collect();
        let mut verifier = TxVerifier::new(1000);
        let err = verifier.verify_block(&txs, &ids).unwrap_err();
        assert_eq!(err.0, 17);
        assert!(matches!(err.1, TxError::BadSignature(_)));
        assert_eq!(verifier.cached(), 39);
        assert!(!verifier.is_verified(&ids[17]));
        assert!(matches!(
            verifier.verify(ids[17], &txs[17]),
            Err(TxError::BadSignature(
                SignatureError::Invalid | SignatureError::Malformed
            ))
        ));
    }

    #[test]
    fn cache_is_bounded() {
        let txs = txs(50);
        let ids: Vec<Hash> = txs.iter().map(SignedTransaction::id).collect();
        let mut verifier = TxVerifier::new(10);
        for (id, tx) in ids.iter().zip(&txs) {
            verifier.verify(*id, tx).unwrap();
        }
        assert_eq!(verifier.cached(), 10);
        assert!(verifier.is_verified(&ids[49]));
        assert!(!verifier.is_verified(&ids[0]));
    }
}
