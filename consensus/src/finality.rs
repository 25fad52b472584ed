//! Checking a committed block's finality proof from outside the engine that made it: what an
//! observer (or `synod block verify`) does before it trusts a block a peer served. Each engine's
//! proof says something different: PBFT, that a quorum (2f+1) of the validators signed COMMIT for
//! this block at its height (the engine's own certificate check); Raft, that a validator leading
//! that term signed the block; proof of work, that the header carries the work its bits claim.

use synod_chain::BlockHeader;
use synod_chain::hash::Hash;
use synod_chain::merkle::merkle_root;
use synod_chain::target::Target;
use synod_genesis::EngineConfig;

use crate::engine::NodeId;
use crate::pbft::{CertificateError, verify_commit_certificate};
use crate::raft::proof::{RaftProofError, verify_raft_proof};

/// Why a block's finality proof does not check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FinalityError {
    /// A Raft proof that does not check.
    #[error(transparent)]
    Raft(#[from] RaftProofError),
    /// A PBFT commit certificate that does not check.
    #[error(transparent)]
    Pbft(#[from] CertificateError),
    /// A proof-of-work header whose hash does not meet its own target.
    #[error("the block's hash does not meet the target its bits {bits:08x} declare")]
    InsufficientWork {
        /// The header's bits.
        bits: u32,
    },
    /// A proof-of-work header with unusable bits.
    #[error("the block's bits are not a target: {0}")]
    BadBits(String),
    /// A body that is not the one the header commits to.
    #[error("the transactions do not match the header's tx_root")]
    BodyMismatch,
}

/// Checks a whole block as a stranger would: the body is the one the header commits to
/// (`tx_ids` hash to its `tx_root`) and the header's finality proof checks. What
/// `synod block verify` and `get_block`'s `finality` field report.
pub fn verify_block(
    engine: &EngineConfig,
    chain_id: &str,
    validators: &[NodeId],
    header: &BlockHeader,
    tx_ids: &[Hash],
    proof: &[u8],
) -> Result<(), FinalityError> {
    if merkle_root(tx_ids) != header.tx_root {
        return Err(FinalityError::BodyMismatch);
    }
    verify_finality(engine, chain_id, validators, header, proof)
}

/// Checks `proof` for `header` on a chain run by `engine` with `validators` (genesis order).
pub fn verify_finality(
    engine: &EngineConfig,
    chain_id: &str,
    validators: &[NodeId],
    header: &BlockHeader,
    proof: &[u8],
) -> Result<(), FinalityError> {
    match engine {
        EngineConfig::Raft(_) => {
            verify_raft_proof(chain_id, validators, header, proof)?;
            Ok(())
        }
        EngineConfig::Pow(_) => {
            let target = Target::from_compact(header.seal.bits)
                .map_err(|e| FinalityError::BadBits(e.to_string()))?;
            if target.is_met_by(&header.hash()) {
                Ok(())
            } else {
                Err(FinalityError::InsufficientWork {
                    bits: header.seal.bits,
                })
            }
        }
        EngineConfig::Pbft(_) => {
            verify_commit_certificate(validators, chain_id, header.hash(), header.height, proof)?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::proof::{RaftCommitProof, sign_block};
    use synod_chain::codec;
    use synod_chain::fixtures::Fixture;
    use synod_genesis::RaftParams;

    #[test]
    fn a_raft_block_checks_only_with_its_leaders_signature() {
        let fx = Fixture::new("finality", 3, 100, 0);
        let leader = &fx.keys[0];
        let validators = vec![leader.public(), fx.keys[1].public()];
        let mut header = fx.genesis.block.header;
        header.proposer = leader.public();
        header.seal.round = 7;
        let engine = EngineConfig::Raft(RaftParams::default());
        let proof = |key: &synod_chain::SecretKey, term| {
            codec::encode(&RaftCommitProof {
                term,
                signature: sign_block(key, "finality", &header.hash(), term),
            })
        };
        assert_eq!(
            verify_finality(&engine, "finality", &validators, &header, &proof(leader, 7)),
            Ok(())
        );
        // Another chain, another term, another signer, a stranger proposer, garbage.
        assert!(
            verify_finality(&engine, "other", &validators, &header, &proof(leader, 7)).is_err()
        );
        assert!(matches!(
            verify_finality(&engine, "finality", &validators, &header, &proof(leader, 6)),
            Err(FinalityError::Raft(RaftProofError::WrongTerm { .. }))
        ));
        assert!(matches!(
            verify_finality(
                &engine,
                "finality",
                &validators,
                &header,
                &proof(&fx.keys[1], 7)
            ),
            Err(FinalityError::Raft(RaftProofError::BadSignature(_)))
        ));
        assert!(matches!(
            verify_finality(
                &engine,
                "finality",
                &validators[1..],
                &header,
                &proof(leader, 7)
            ),
            Err(FinalityError::Raft(RaftProofError::NotAValidator(_)))
        ));
        assert!(matches!(
            verify_finality(&engine, "finality", &validators, &header, b"junk"),
            Err(FinalityError::Raft(RaftProofError::Malformed(_)))
        ));
        // The whole block: the genesis body is empty, so an id more is another body.
        let body = fx.genesis.block.tx_ids();
        let good = proof(leader, 7);
        assert_eq!(
            verify_block(&engine, "finality", &validators, &header, &body, &good),
            Ok(())
        );
        let other_body = [header.hash()];
        assert_eq!(
            verify_block(
                &engine,
                "finality",
                &validators,
                &header,
                &other_body,
                &good
            ),
            Err(FinalityError::BodyMismatch)
        );
    }

    #[test]
    fn a_pbft_block_checks_only_with_a_quorum_of_commits() {
        use crate::pbft::signing::Statement;
        use crate::pbft::{Ballot, Commit, CommitCertificate};
        use synod_genesis::PbftParams;

        let fx = Fixture::new("finality", 5, 100, 0);
        let validators: Vec<NodeId> = fx.keys[..4].iter().map(|k| k.public()).collect();
        let mut header = fx.genesis.block.header;
        header.height = 3;
        let engine = EngineConfig::Pbft(PbftParams::default());
        let ballot = Ballot {
            view: 2,
            seq: 3,
            digest: header.hash(),
        };
        let certificate = |signers: &[&synod_chain::SecretKey], ballot: Ballot| {
            let digest = Commit(ballot).signing_digest("finality");
            CommitCertificate {
                ballot,
                signatures: signers
                    .iter()
                    .map(|k| (k.public(), k.sign(&digest.0)))
                    .collect(),
            }
            .encode()
        };
        let quorum = [&fx.keys[0], &fx.keys[1], &fx.keys[3]];
        let check =
            |proof: &[u8]| verify_finality(&engine, "finality", &validators, &header, proof);
        assert_eq!(check(&certificate(&quorum, ballot)), Ok(()));
        // Another chain.
        assert!(
            verify_finality(
                &engine,
                "other",
                &validators,
                &header,
                &certificate(&quorum, ballot)
            )
            .is_err()
        );
        // 2f signers, a stranger among them, one signer twice, another block, garbage.
        assert!(matches!(
            check(&certificate(&quorum[..2], ballot)),
            Err(FinalityError::Pbft(CertificateError::TooFewSigners { .. }))
        ));
        assert!(matches!(
            check(&certificate(
                &[&fx.keys[0], &fx.keys[1], &fx.keys[4]],
                ballot
            )),
            Err(FinalityError::Pbft(CertificateError::NotAValidator(_)))
        ));
        assert!(matches!(
            check(&certificate(
                &[&fx.keys[0], &fx.keys[1], &fx.keys[1]],
                ballot
            )),
            Err(FinalityError::Pbft(CertificateError::DuplicateSigner(_)))
        ));
        let elsewhere = Ballot { seq: 4, ..ballot };
        assert!(matches!(
            check(&certificate(&quorum, elsewhere)),
            Err(FinalityError::Pbft(CertificateError::WrongBlock { .. }))
        ));
        assert!(matches!(
            check(b"junk"),
            Err(FinalityError::Pbft(CertificateError::Encoding(_)))
        ));
    }
}
