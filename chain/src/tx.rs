//! Transactions: signed transfers between accounts, and every reason one can be refused.

use serde::{Deserialize, Serialize};

use crate::codec::{self, CodecError};
use crate::hash::{Hash, sha256};
use crate::keys::{Address, PublicKey, SecretKey, Signature};
use crate::limits::{MAX_CHAIN_ID_BYTES, MAX_MEMO_BYTES, MAX_TX_BYTES};
use crate::verify::{self, SignatureError};

/// The prefix of every transaction's signing bytes: a signature over a transaction can never be
/// mistaken for a signature over any other kind of synod message.
const TX_SIGNING_DOMAIN: &[u8] = b"synod/tx/v1\0";

/// Free-form bytes attached to a transaction (at most [`MAX_MEMO_BYTES`]). Hex in JSON.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Memo(pub Vec<u8>);

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match std::str::from_utf8(&self.0) {
            Ok(text) => write!(f, "{text:?}"),
            Err(_) => write!(f, "0x{}", hex::encode(&self.0)),
        }
    }
}

impl Serialize for Memo {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&hex::encode(&self.0))
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Memo {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        if d.is_human_readable() {
            let text = String::deserialize(d)?;
            hex::decode(text.trim_start_matches("0x"))
                .map(Memo)
                .map_err(D::Error::custom)
        } else {
            struct BytesVisitor;
            impl serde::de::Visitor<'_> for BytesVisitor {
                type Value = Vec<u8>;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("memo bytes")
                }
                fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Self::Value, E> {
                    if v.len() > MAX_MEMO_BYTES {
                        return Err(E::invalid_length(v.len(), &self));
                    }
                    Ok(v.to_vec())
                }
            }
            d.deserialize_bytes(BytesVisitor).map(Memo)
        }
    }
}

/// A transfer of `amount` from the account of `from` to `to`, paying `fee` to the block proposer.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Transaction {
    /// The chain this transaction is valid on; it is void on any other.
    pub chain_id: String,
    /// The sender's public key; the sender's account is its address.
    pub from: PublicKey,
    /// The recipient.
    pub to: Address,
    /// Amount moved.
    pub amount: u64,
    /// Fee paid to the block's proposer.
    pub fee: u64,
    /// Must equal the sender account's nonce; it then increments, so a transaction applies once.
    pub nonce: u64,
    /// Free-form note.
    pub memo: Memo,
}

/// A [`Transaction`] with the sender's signature over its signing bytes.
///
/// Immutable once built, so its id can be computed once and cached: every layer (mempool, block
/// builder, ledger, tx index) asks for it, and hashing dominated the simulator's profile.
#[derive(Clone, Serialize, Deserialize)]
pub struct SignedTransaction {
    tx: Transaction,
    signature: Signature,
    #[serde(skip)]
    id: std::sync::OnceLock<Hash>,
    #[serde(skip)]
    sender: std::sync::OnceLock<Address>,
}

impl PartialEq for SignedTransaction {
    fn eq(&self, other: &Self) -> bool {
        self.tx == other.tx && self.signature == other.signature
    }
}

impl Eq for SignedTransaction {}

impl std::hash::Hash for SignedTransaction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.tx.hash(state);
        self.signature.hash(state);
    }
}

impl std::fmt::Debug for SignedTransaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedTransaction")
            .field("tx", &self.tx)
            .field("signature", &self.signature)
            .finish()
    }
}

/// Why a transaction is refused. Stateless reasons come from [`SignedTransaction::check_stateless`]
/// and signature verification; stateful ones from the ledger.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// The bytes are not a transaction.
    #[error("malformed transaction: {0}")]
    Encoding(#[from] CodecError),
    /// Signed for another chain.
    #[error("transaction is for chain {got:?}, this is chain {expected:?}")]
    WrongChain {
        /// This chain's id.
        expected: String,
        /// The transaction's chain id.
        got: String,
    },
    /// Chain id longer than [`MAX_CHAIN_ID_BYTES`].
    #[error("chain id is {0} bytes, the limit is {MAX_CHAIN_ID_BYTES}")]
    ChainIdTooLong(usize),
    /// Memo longer than [`MAX_MEMO_BYTES`].
    #[error("memo is {0} bytes, the limit is {MAX_MEMO_BYTES}")]
    MemoTooLong(usize),
    /// The signature does not verify.
    #[error("bad signature: {0}")]
    BadSignature(#[from] SignatureError),
    /// The nonce is not the sender account's next nonce.
    #[error("nonce {got} does not match the account's next nonce {expected}")]
    BadNonce {
        /// The account's nonce.
        expected: u64,
        /// The transaction's nonce.
        got: u64,
    },
    /// The sender cannot pay amount plus fee.
    #[error("balance {balance} does not cover amount plus fee {needed}")]
    InsufficientBalance {
        /// The sender's balance.
        balance: u64,
        /// amount + fee.
        needed: u64,
    },
    /// amount + fee overflows a u64.
    #[error("amount plus fee overflows")]
    AmountOverflow,
    /// The recipient's (or proposer's) balance would overflow a u64.
    #[error("recipient balance would overflow")]
    BalanceOverflow,
    /// The sender's nonce is at its maximum and can never advance.
    #[error("sender nonce is exhausted")]
    NonceExhausted,
}

impl Transaction {
    /// The bytes the sender signs: a domain tag, then the canonical encoding (which includes the
    /// chain id, so a signature for one chain is void on another).
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut bytes = TX_SIGNING_DOMAIN.to_vec();
        bytes.extend_from_slice(&codec::encode(self));
        bytes
    }

    /// Signs with `key`. The caller is responsible for `from` being `key`'s public key.
    pub fn sign(self, key: &SecretKey) -> SignedTransaction {
        let signature = key.sign(&self.signing_bytes());
        SignedTransaction::from_parts(self, signature)
    }

    /// The sender's account.
    pub fn sender(&self) -> Address {
        self.from.address()
    }
}

impl SignedTransaction {
    /// A signed transaction from its parts (the signature is not checked here).
    pub fn from_parts(tx: Transaction, signature: Signature) -> Self {
        SignedTransaction {
            tx,
            signature,
            id: std::sync::OnceLock::new(),
            sender: std::sync::OnceLock::new(),
        }
    }

    /// The sender's account (a hash of its key, so computed once: pools, ledgers and mempools
    /// ask for it on every pass).
    pub fn sender(&self) -> Address {
        *self.sender.get_or_init(|| self.tx.sender())
    }

    /// The transaction.
    pub fn tx(&self) -> &Transaction {
        &self.tx
    }

    /// The sender's signature.
    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// The parts, to build a different transaction from.
    pub fn into_parts(self) -> (Transaction, Signature) {
        (self.tx, self.signature)
    }

    /// The transaction id: SHA-256 of the canonical encoding, signature included, so two
    /// different signatures can never share a cache entry. Computed once.
    pub fn id(&self) -> Hash {
        *self.id.get_or_init(|| sha256(&self.encode()))
    }

    /// Canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes and runs the size checks; does not verify the signature.
    pub fn decode(bytes: &[u8]) -> Result<Self, TxError> {
        let tx: SignedTransaction = codec::decode(bytes, MAX_TX_BYTES)?;
        tx.check_sizes()?;
        Ok(tx)
    }

    fn check_sizes(&self) -> Result<(), TxError> {
        if self.tx.chain_id.len() > MAX_CHAIN_ID_BYTES {
            return Err(TxError::ChainIdTooLong(self.tx.chain_id.len()));
        }
        if self.tx.memo.0.len() > MAX_MEMO_BYTES {
            return Err(TxError::MemoTooLong(self.tx.memo.0.len()));
        }
        Ok(())
    }

    /// Checks that need no state and no signature work: sizes and the chain id.
    pub fn check_stateless(&self, chain_id: &str) -> Result<(), TxError> {
        self.check_sizes()?;
        if self.tx.chain_id != chain_id {
            return Err(TxError::WrongChain {
                expected: chain_id.to_string(),
                got: self.tx.chain_id.clone(),
            });
        }
        Ok(())
    }

    /// Verifies the signature alone (see [`crate::verifier::TxVerifier`] for the cached path).
    pub fn verify_signature(&self) -> Result<(), TxError> {
        verify::verify(&self.tx.from, &self.tx.signing_bytes(), &self.signature)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample(key: &SecretKey, nonce: u64) -> SignedTransaction {
        Transaction {
            chain_id: "test-chain".into(),
            from: key.public(),
            to: SecretKey::from_seed([42; 32]).address(),
            amount: 10,
            fee: 1,
            nonce,
            memo: Memo(b"hi".to_vec()),
        }
        .sign(key)
    }

    #[test]
    fn round_trip_and_signature() {
        let key = SecretKey::from_seed([1; 32]);
        let tx = sample(&key, 0);
        let bytes = tx.encode();
        assert!(bytes.len() <= MAX_TX_BYTES);
        let back = SignedTransaction::decode(&bytes).unwrap();
        assert_eq!(back, tx);
        assert_eq!(back.id(), tx.id());
        back.verify_signature().unwrap();
        back.check_stateless("test-chain").unwrap();
        let json = serde_json::to_string(&tx).unwrap();
        assert_eq!(
            serde_json::from_str::<SignedTransaction>(&json).unwrap(),
            tx
        );
    }

    #[test]
    fn signature_is_void_on_another_chain() {
        let key = SecretKey::from_seed([1; 32]);
        let tx = sample(&key, 0);
        assert_eq!(
            tx.check_stateless("other-chain"),
            Err(TxError::WrongChain {
                expected: "other-chain".into(),
                got: "test-chain".into()
            })
        );
        // Re-labelling the chain id breaks the signature.
        let mut moved = tx.clone();
        moved.tx.chain_id = "other-chain".into();
        assert_eq!(
            moved.verify_signature(),
            Err(TxError::BadSignature(SignatureError::Invalid))
        );
    }

    #[test]
    fn tampering_breaks_the_signature() {
        let key = SecretKey::from_seed([1; 32]);
        let mut tx = sample(&key, 0);
        tx.tx.amount += 1;
        assert_eq!(
            tx.verify_signature(),
            Err(TxError::BadSignature(SignatureError::Invalid))
        );
        let mut forged = sample(&key, 0);
        forged.tx.from = SecretKey::from_seed([2; 32]).public();
        assert!(forged.verify_signature().is_err());
    }

    #[test]
    fn oversized_fields_are_refused() {
        let key = SecretKey::from_seed([1; 32]);
        let mut tx = sample(&key, 0);
        tx.tx.memo = Memo(vec![0; MAX_MEMO_BYTES + 1]);
        let bytes = codec::encode(&tx);
        assert!(SignedTransaction::decode(&bytes).is_err());
        assert_eq!(
            tx.check_stateless("test-chain"),
            Err(TxError::MemoTooLong(MAX_MEMO_BYTES + 1))
        );
        let mut tx = sample(&key, 0);
        tx.tx.chain_id = "x".repeat(MAX_CHAIN_ID_BYTES + 1);
        assert_eq!(
            SignedTransaction::decode(&codec::encode(&tx)),
            Err(TxError::ChainIdTooLong(MAX_CHAIN_ID_BYTES + 1))
        );
    }

    #[test]
    fn malformed_bytes_are_refused() {
        let key = SecretKey::from_seed([1; 32]);
        let bytes = sample(&key, 0).encode();
        for cut in [0, 1, 10, bytes.len() - 1] {
            assert!(matches!(
                SignedTransaction::decode(&bytes[..cut]),
                Err(TxError::Encoding(_))
            ));
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(
            SignedTransaction::decode(&long),
            Err(TxError::Encoding(CodecError::TrailingBytes(1)))
        );
        assert!(matches!(
            SignedTransaction::decode(&vec![0xff; MAX_TX_BYTES + 1]),
            Err(TxError::Encoding(CodecError::TooLong { .. }))
        ));
    }
}
