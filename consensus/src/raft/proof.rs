//! The finality proof of a Raft block: the term of its log entry and the signature of the leader
//! that appended it (the block's proposer) over the chain, the block id and the term.
//!
//! Crash-fault finality rests on trusting a majority that stored the entry; what an outsider can
//! check is that a validator leading that term signed this very block, so a peer cannot pass a
//! block it made up to an observer. (A Byzantine leader can still sign two blocks: that is the
//! bargain the comparison with PBFT measures.)

use serde::{Deserialize, Serialize};
use synod_chain::BlockHeader;
use synod_chain::codec;
use synod_chain::hash::Hash;
use synod_chain::keys::{SecretKey, Signature};
use synod_chain::verify;

use crate::engine::NodeId;

/// Domain of the leader's block signature.
const DOMAIN: &[u8] = b"synod/raft-block/v1\0";

/// What Raft stores beside each block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftCommitProof {
    /// Term of the log entry holding the block.
    pub term: u64,
    /// The leader's signature (see [`signing_bytes`]).
    pub signature: Signature,
}

/// Why a Raft proof does not check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RaftProofError {
    /// The bytes are not a proof.
    #[error("not a raft proof: {0}")]
    Malformed(String),
    /// The block's proposer is not a validator.
    #[error("the block's proposer {0} is not a validator")]
    NotAValidator(String),
    /// The proof's term is not the block's.
    #[error("the proof is for term {proof}, the block was proposed in term {block}")]
    WrongTerm {
        /// In the proof.
        proof: u64,
        /// In the block's seal.
        block: u64,
    },
    /// The signature does not verify.
    #[error("the leader's signature does not verify: {0}")]
    BadSignature(verify::SignatureError),
}

/// The bytes a leader signs for block `hash` of term `term` on chain `chain_id`.
pub fn signing_bytes(chain_id: &str, hash: &Hash, term: u64) -> Vec<u8> {
    let mut bytes = DOMAIN.to_vec();
    bytes.extend_from_slice(&codec::encode(&(chain_id, hash, term)));
    bytes
}

/// The leader's signature over block `hash` of term `term`.
pub fn sign_block(key: &SecretKey, chain_id: &str, hash: &Hash, term: u64) -> Signature {
    key.sign(&signing_bytes(chain_id, hash, term))
}

/// Checks `proof` for `header` against the validator set: a validator proposed the block in the
/// proof's term and signed it.
pub fn verify_raft_proof(
    chain_id: &str,
    validators: &[NodeId],
    header: &BlockHeader,
    proof: &[u8],
) -> Result<RaftCommitProof, RaftProofError> {
    let decoded: RaftCommitProof =
        codec::decode(proof, 256).map_err(|e| RaftProofError::Malformed(e.to_string()))?;
    if !validators.contains(&header.proposer) {
        return Err(RaftProofError::NotAValidator(header.proposer.to_string()));
    }
    if decoded.term != header.seal.round {
        return Err(RaftProofError::WrongTerm {
            proof: decoded.term,
            block: header.seal.round,
        });
    }
    verify::verify(
        &header.proposer,
        &signing_bytes(chain_id, &header.hash(), decoded.term),
        &decoded.signature,
    )
    .map_err(RaftProofError::BadSignature)?;
    Ok(decoded)
}
