//! Certificates: a quorum's signatures over one statement, checkable by anyone who holds the
//! validator set.
//!
//! - [`CommitCertificate`]: q COMMITs for (v, n, digest) — the paper's *committed* predicate (§4.2)
//!   made portable. It is the finality proof stored beside each block; observers and
//!   `synod block verify` check it with [`verify_commit_certificate`].
//! - [`PreparedCertificate`]: the primary's PRE-PREPARE and q−1 PREPAREs from other replicas for
//!   (v, n, digest) — the *prepared* predicate (§4.2), carried in VIEW-CHANGEs (§4.4).
//! - [`CheckpointCertificate`]: q CHECKPOINTs for (n, block id) — a stable checkpoint (§4.3).
//!
//! A certificate holds one signature per replica, distinct and from the validator set, and is
//! checked in one batch.

use serde::{Deserialize, Serialize};
use synod_chain::BlockHeader;
use synod_chain::codec::{self, CodecError};
use synod_chain::hash::Hash;
use synod_chain::keys::Signature;
use synod_chain::limits::MAX_PROOF_BYTES;
use synod_chain::verify::SignatureError;

use super::messages::{Ballot, Checkpoint, Commit, MAX_REPLICAS, PrePrepare, Prepare};
use super::replicas::Replicas;
use super::signing::{Statement, Verifier};
use crate::engine::NodeId;
use synod_chain::codec::bounded_vec;

/// Why a certificate does not prove what it claims.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// The proof bytes do not decode.
    #[error("malformed certificate: {0}")]
    Encoding(#[from] CodecError),
    /// The certificate is about another block or height.
    #[error(
        "certificate is for block {got} at height {got_height}, not {expected} at {expected_height}"
    )]
    WrongBlock {
        /// The block asked about.
        expected: Hash,
        /// Its height.
        expected_height: u64,
        /// The block the certificate names.
        got: Hash,
        /// The height it names.
        got_height: u64,
    },
    /// A signer is not a validator.
    #[error("signer {0} is not a validator")]
    NotAValidator(String),
    /// A replica signed twice.
    #[error("replica {0} signed twice")]
    DuplicateSigner(String),
    /// A replica whose vote does not count here signed (the primary's PREPARE).
    #[error("replica {0} may not sign this part of the certificate")]
    IneligibleSigner(String),
    /// Fewer signers than a quorum.
    #[error("{got} signers, a quorum is {needed}")]
    TooFewSigners {
        /// Distinct valid signers.
        got: usize,
        /// Needed.
        needed: usize,
    },
    /// A signature does not verify.
    #[error("signature of {signer} does not verify: {error}")]
    BadSignature {
        /// Whose.
        signer: String,
        /// Why.
        error: SignatureError,
    },
    /// The header carried with the certificate is not the block it names.
    #[error("header does not match the certified digest")]
    HeaderMismatch,
}

/// Signatures of distinct replicas over one statement.
pub type Signatures = Vec<(NodeId, Signature)>;

/// Checks that `signatures` are at least `needed` distinct validators (none of them `excluded`)
/// who all signed `digest`.
fn check_quorum(
    replicas: &Replicas,
    digest: Hash,
    signatures: &[(NodeId, Signature)],
    needed: usize,
    excluded: Option<&NodeId>,
    verifier: &Verifier,
) -> Result<(), CertificateError> {
    let mut seen: Vec<&NodeId> = Vec::with_capacity(signatures.len());
    for (signer, _) in signatures {
        if !replicas.contains(signer) {
            return Err(CertificateError::NotAValidator(signer.short()));
        }
        if excluded == Some(signer) {
            return Err(CertificateError::IneligibleSigner(signer.short()));
        }
        if seen.contains(&signer) {
            return Err(CertificateError::DuplicateSigner(signer.short()));
        }
        seen.push(signer);
    }
    if signatures.len() < needed {
        return Err(CertificateError::TooFewSigners {
            got: signatures.len(),
            needed,
        });
    }
    let items: Vec<(NodeId, Hash, Signature)> = signatures
        .iter()
        .map(|(signer, signature)| (*signer, digest, *signature))
        .collect();
    verifier
        .check_all(&items)
        .map_err(|(i, error)| CertificateError::BadSignature {
            signer: items[i].0.short(),
            error,
        })
}

/// A quorum of COMMITs for one ballot: proof that the block is final.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitCertificate {
    /// The committed ballot.
    pub ballot: Ballot,
    /// The COMMIT signatures, one per replica.
    #[serde(deserialize_with = "bounded_vec::<_, _, MAX_REPLICAS>")]
    pub signatures: Signatures,
}

impl CommitCertificate {
    /// Checks the certificate with at least `needed` signers (the quorum, outside tests).
    pub(crate) fn check(
        &self,
        replicas: &Replicas,
        chain_id: &str,
        needed: usize,
        verifier: &Verifier,
    ) -> Result<(), CertificateError> {
        let digest = Commit(self.ballot).signing_digest(chain_id);
        check_quorum(replicas, digest, &self.signatures, needed, None, verifier)
    }

    /// The certificate as stored beside its block.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }
}

/// Checks that `proof` (a block's stored finality proof) is a commit certificate for the block
/// `block_hash` at `height` on chain `chain_id` with validators `validators` (genesis order):
/// it decodes within bounds, names this block, and carries valid COMMIT signatures of a quorum of
/// distinct validators. Needs nothing but the validator set, so observers and the CLI can call it.
pub fn verify_commit_certificate(
    validators: &[NodeId],
    chain_id: &str,
    block_hash: Hash,
    height: u64,
    proof: &[u8],
) -> Result<CommitCertificate, CertificateError> {
    let certificate: CommitCertificate = codec::decode(proof, MAX_PROOF_BYTES)?;
    if certificate.ballot.digest != block_hash || certificate.ballot.seq != height {
        return Err(CertificateError::WrongBlock {
            expected: block_hash,
            expected_height: height,
            got: certificate.ballot.digest,
            got_height: certificate.ballot.seq,
        });
    }
    let replicas = Replicas::new(validators);
    certificate.check(&replicas, chain_id, replicas.quorum(), &Verifier::new())?;
    Ok(certificate)
}

/// A prepared ballot: the primary's PRE-PREPARE and q−1 PREPAREs from the other replicas. The
/// header stands for the block (its hash is the digest); the block itself travels beside it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreparedCertificate {
    /// The prepared ballot.
    pub ballot: Ballot,
    /// The header of the block it names.
    pub header: BlockHeader,
    /// The primary of `ballot.view`'s PRE-PREPARE signature.
    pub pre_prepare: Signature,
    /// PREPARE signatures of replicas other than that primary.
    #[serde(deserialize_with = "bounded_vec::<_, _, MAX_REPLICAS>")]
    pub prepares: Signatures,
}

impl PreparedCertificate {
    /// Checks the certificate: the header is the block, the primary pre-prepared it and q−1
    /// other replicas prepared it.
    pub(crate) fn check(
        &self,
        replicas: &Replicas,
        chain_id: &str,
        verifier: &Verifier,
    ) -> Result<(), CertificateError> {
        if self.header.hash() != self.ballot.digest || self.header.height != self.ballot.seq {
            return Err(CertificateError::HeaderMismatch);
        }
        let primary = replicas.primary(self.ballot.view);
        verifier
            .check(
                &primary,
                &PrePrepare(self.ballot).signing_digest(chain_id),
                &self.pre_prepare,
            )
            .map_err(|error| CertificateError::BadSignature {
                signer: primary.short(),
                error,
            })?;
        let digest = Prepare(self.ballot).signing_digest(chain_id);
        let needed = replicas.quorum() - 1;
        check_quorum(
            replicas,
            digest,
            &self.prepares,
            needed,
            Some(&primary),
            verifier,
        )
    }
}

/// A stable checkpoint: a quorum of CHECKPOINTs for one height and block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointCertificate {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// CHECKPOINT signatures, one per replica.
    #[serde(deserialize_with = "bounded_vec::<_, _, MAX_REPLICAS>")]
    pub signatures: Signatures,
}

impl CheckpointCertificate {
    /// Checks that a quorum signed the checkpoint.
    pub(crate) fn check(
        &self,
        replicas: &Replicas,
        chain_id: &str,
        verifier: &Verifier,
    ) -> Result<(), CertificateError> {
        let digest = self.checkpoint.signing_digest(chain_id);
        check_quorum(
            replicas,
            digest,
            &self.signatures,
            replicas.quorum(),
            None,
            verifier,
        )
    }
}

/// A replica's highest executed block, proven by its commit certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedTip {
    /// The block's header.
    pub header: BlockHeader,
    /// Its commit certificate.
    pub certificate: CommitCertificate,
}

impl CommittedTip {
    /// Checks that the certificate names this header and holds `needed` valid COMMITs.
    pub(crate) fn check(
        &self,
        replicas: &Replicas,
        chain_id: &str,
        needed: usize,
        verifier: &Verifier,
    ) -> Result<(), CertificateError> {
        let ballot = self.certificate.ballot;
        if self.header.hash() != ballot.digest || self.header.height != ballot.seq {
            return Err(CertificateError::HeaderMismatch);
        }
        self.certificate.check(replicas, chain_id, needed, verifier)
    }
}
