//! The rules a block must pass, each failure with a reason a node can log and score its sender
//! by. Header rules are checked when a header arrives (announcement or sync): its height follows
//! its parent, its bits are the ones the difficulty schedule requires, its id meets the target
//! they encode, and its timestamp is after the median of the last 11 and not too far ahead of the
//! local clock. Body rules are checked when the body arrives: shape and transaction root, no
//! duplicate, every transaction for this chain and correctly signed (verified once per node, in
//! batches). State rules (nonces, balances, the reward and fees to the miner, the state root)
//! are checked by the ledger when the block's branch is connected.

use std::collections::HashSet;

use synod_chain::block::{BlockError, HEADER_VERSION};
use synod_chain::hash::Hash;
use synod_chain::pow::timestamp::{
    TimestampError, check_after_median_time_past, check_not_too_far_in_future,
};
use synod_chain::target::{Target, TargetError};
use synod_chain::{Block, BlockHeader, TxVerifier};

/// Why a block (or header) is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Unknown header version.
    #[error("header version {0} is not supported")]
    Version(u32),
    /// The height does not follow the parent's.
    #[error("height {got} does not follow its parent's {parent}")]
    Height {
        /// The parent's height.
        parent: u64,
        /// The header's.
        got: u64,
    },
    /// The bits are not the schedule's.
    #[error("bits {got:08x} at height {height}, the difficulty schedule requires {expected:08x}")]
    Bits {
        /// The block's height.
        height: u64,
        /// What the schedule requires.
        expected: u32,
        /// What the header declares.
        got: u32,
    },
    /// The bits do not encode a usable target.
    #[error("bits: {0}")]
    Target(#[from] TargetError),
    /// The id does not meet the target.
    #[error("block id {hash} does not meet its target {bits:08x}")]
    Work {
        /// The id.
        hash: Hash,
        /// The declared bits.
        bits: u32,
    },
    /// The timestamp is not after the median time past.
    #[error("{0}")]
    Timestamp(TimestampError),
    /// The timestamp is too far ahead of the local clock: not invalid, only not yet acceptable.
    #[error("{0}")]
    FromTheFuture(TimestampError),
    /// The expected bits could not be computed.
    #[error("difficulty: {0}")]
    Difficulty(String),
    /// Following the block would undo finalized blocks.
    #[error("forks at height {fork} below the finalized height {finalized}")]
    BelowFinalized {
        /// The height of its parent.
        fork: u64,
        /// This node's finalized height.
        finalized: u64,
    },
    /// An ancestor was found invalid.
    #[error("descends from invalid block {0}")]
    InvalidAncestor(Hash),
    /// The body breaks a rule (shape, duplicate, transaction).
    #[error("{0}")]
    Body(BlockError),
    /// Applying the block to its parent's state failed (nonce, balance, reward, state root).
    #[error("{0}")]
    State(String),
    /// The block's branch cannot be applied yet: a body or undo data it needs is not here.
    #[error("its branch cannot be applied: {0}")]
    Unavailable(String),
}

impl Rejection {
    /// Whether the block is refused only for now (a timestamp ahead of the clock), to be tried
    /// again later, rather than invalid.
    pub fn is_deferred(&self) -> bool {
        matches!(self, Rejection::FromTheFuture(_))
    }

    /// Whether the rejection condemns the block for good. A body that does not match its header
    /// says nothing about the header (another body may), and a branch below the finalized height
    /// is not followed but may be perfectly valid.
    pub fn condemns_block(&self) -> bool {
        !matches!(
            self,
            Rejection::FromTheFuture(_)
                | Rejection::BelowFinalized { .. }
                | Rejection::Unavailable(_)
                | Rejection::Body(BlockError::TxRootMismatch { .. })
                | Rejection::Body(BlockError::Encoding(_))
        )
    }

    /// Whether the peer that sent the block is at fault. A block refused because this node
    /// lacks what its branch needs (undo data or a body beyond what it keeps), or because its
    /// clock is behind, or because the branch forks below this node's finality, may come from
    /// an honest peer, and reporting it against that peer would get the peer banned.
    pub fn blames_sender(&self) -> bool {
        !matches!(
            self,
            Rejection::FromTheFuture(_)
                | Rejection::BelowFinalized { .. }
                | Rejection::Unavailable(_)
        )
    }
}

/// What a header is checked against: what its parent's chain requires.
#[derive(Clone, Debug)]
pub struct HeaderContext<'a> {
    /// The parent's header.
    pub parent: &'a BlockHeader,
    /// The bits the difficulty schedule requires.
    pub expected_bits: u32,
    /// Timestamps of the parent and up to ten ancestors, oldest first.
    pub recent_timestamps: &'a [u64],
    /// The easiest target allowed.
    pub pow_limit: Target,
    /// The local clock.
    pub now: u64,
    /// How far ahead of it a timestamp may be.
    pub max_future_ms: u64,
}

/// Checks `header` (whose id is `hash`) against its parent's chain. The clock is checked last,
/// so a block that is only early has passed every other rule.
pub fn check_header(
    header: &BlockHeader,
    hash: &Hash,
    context: &HeaderContext<'_>,
) -> Result<(), Rejection> {
    if header.version != HEADER_VERSION {
        return Err(Rejection::Version(header.version));
    }
    if header.height != context.parent.height + 1 {
        return Err(Rejection::Height {
            parent: context.parent.height,
            got: header.height,
        });
    }
    if header.seal.bits != context.expected_bits {
        return Err(Rejection::Bits {
            height: header.height,
            expected: context.expected_bits,
            got: header.seal.bits,
        });
    }
    let target = Target::from_compact_at_most(header.seal.bits, context.pow_limit)?;
    if !target.is_met_by(hash) {
        return Err(Rejection::Work {
            hash: *hash,
            bits: header.seal.bits,
        });
    }
    check_after_median_time_past(header.timestamp_ms, context.recent_timestamps)
        .map_err(Rejection::Timestamp)?;
    check_not_too_far_in_future(header.timestamp_ms, context.now, context.max_future_ms)
        .map_err(Rejection::FromTheFuture)
}

/// Checks a body against its header and the chain id, verifying signatures through `verifier`
/// (each transaction once per node, in batches).
pub fn check_body(
    block: &Block,
    chain_id: &str,
    verifier: &mut TxVerifier,
) -> Result<(), Rejection> {
    block.check_shape().map_err(Rejection::Body)?;
    let ids = block.tx_ids();
    let mut seen = HashSet::with_capacity(ids.len());
    for (index, (tx, id)) in block.txs.iter().zip(&ids).enumerate() {
        if !seen.insert(*id) {
            return Err(Rejection::Body(BlockError::DuplicateTx(*id)));
        }
        tx.check_stateless(chain_id)
            .map_err(|error| Rejection::Body(BlockError::Tx { index, error }))?;
    }
    verifier
        .verify_block(&block.txs, &ids)
        .map_err(|(index, error)| Rejection::Body(BlockError::Tx { index, error }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use synod_chain::block::Seal;
    use synod_chain::fixtures::Fixture;
    use synod_chain::keys::PublicKey;
    use synod_chain::merkle::merkle_root;
    use synod_chain::pow::midstate::HeaderMidstate;
    use synod_chain::pow::timestamp::MEDIAN_TIME_SPAN;

    const EASY: u32 = 0x207f_ffff;

    fn parent() -> BlockHeader {
        BlockHeader {
            version: HEADER_VERSION,
            parent: Hash::ZERO,
            height: 10,
            timestamp_ms: 10_000,
            tx_root: merkle_root(&[]),
            state_root: Hash::ZERO,
            proposer: PublicKey::default(),
            seal: Seal {
                round: 0,
                bits: EASY,
                nonce: 0,
            },
        }
    }

    /// A child of `parent()` at `timestamp` whose id meets (or, with `meet` false, misses) its
    /// target.
    fn child(timestamp: u64, bits: u32, meet: bool) -> (BlockHeader, Hash) {
        let mut header = parent();
        header.parent = parent().hash();
        header.height = 11;
        header.timestamp_ms = timestamp;
        header.seal.bits = bits;
        let target = Target::from_compact(bits).unwrap();
        let midstate = HeaderMidstate::new(&header);
        let nonce = (0..)
            .find(|n| target.is_met_by(&midstate.hash(*n)) == meet)
            .unwrap();
        header.seal.nonce = nonce;
        (header, header.hash())
    }

    fn check(
        header: &BlockHeader,
        hash: &Hash,
        timestamps: &[u64],
        now: u64,
    ) -> Result<(), Rejection> {
        check_header(
            header,
            hash,
            &HeaderContext {
                parent: &parent(),
                expected_bits: EASY,
                recent_timestamps: timestamps,
                pow_limit: Target::from_compact(EASY).unwrap(),
                now,
                max_future_ms: 1_000,
            },
        )
    }

    #[test]
    fn only_the_senders_faults_are_held_against_it() {
        let (header, hash) = child(10_500, EASY, false);
        let bad_work = check(&header, &hash, &[], 10_500).unwrap_err();
        assert!(bad_work.blames_sender());
        assert!(!Rejection::Unavailable("undo data of block 3".into()).blames_sender());
        let below = Rejection::BelowFinalized {
            fork: 1,
            finalized: 5,
        };
        assert!(!below.blames_sender());
        let (header, hash) = child(60_000, EASY, true);
        let early = check(&header, &hash, &[9_000, 10_000], 10_500).unwrap_err();
        assert!(early.is_deferred() && !early.blames_sender());
    }

    #[test]
    fn a_good_header_passes() {
        let (header, hash) = child(10_500, EASY, true);
        assert_eq!(check(&header, &hash, &[9_000, 10_000], 10_500), Ok(()));
    }

    #[test]
    fn work_bits_and_height_are_enforced() {
        let (header, hash) = child(10_500, EASY, false);
        assert!(matches!(
            check(&header, &hash, &[], 10_500),
            Err(Rejection::Work { .. })
        ));
        let (header, hash) = child(10_500, 0x2000_ffff, true);
        assert_eq!(
            check(&header, &hash, &[], 10_500),
            Err(Rejection::Bits {
                height: 11,
                expected: EASY,
                got: 0x2000_ffff
            })
        );
        let (mut header, _) = child(10_500, EASY, true);
        header.height = 12;
        assert!(matches!(
            check(&header, &header.hash(), &[], 10_500),
            Err(Rejection::Height {
                parent: 10,
                got: 12
            })
        ));
    }

    #[test]
    fn timestamps_must_pass_the_median_and_may_be_early_only_for_now() {
        let recent: Vec<u64> = (0..MEDIAN_TIME_SPAN as u64).map(|i| 1_000 * i).collect();
        let median = 5_000;
        let (header, hash) = child(median, EASY, true);
        let refused = check(&header, &hash, &recent, 20_000).unwrap_err();
        assert!(matches!(refused, Rejection::Timestamp(_)));
        assert!(refused.condemns_block());
        let (header, hash) = child(median + 1, EASY, true);
        assert_eq!(check(&header, &hash, &recent, 20_000), Ok(()));

        // More than the allowed drift ahead of the clock: deferred, not condemned.
        let (header, hash) = child(12_001, EASY, true);
        let early = check(&header, &hash, &recent, 11_000).unwrap_err();
        assert!(early.is_deferred() && !early.condemns_block());
        assert_eq!(check(&header, &hash, &recent, 11_001), Ok(()));
    }

    #[test]
    fn bodies_are_checked_against_the_header_and_their_signatures() {
        let fx = Fixture::new("pow-validation", 2, 1_000, 50);
        let txs = vec![fx.transfer(0, 1, 5, 1, 0)];
        let mut header = parent();
        header.tx_root = merkle_root(&txs.iter().map(|t| t.id()).collect::<Vec<_>>());
        let block = Block {
            header,
            txs: txs.clone(),
        };
        let mut verifier = TxVerifier::new(100);
        assert_eq!(check_body(&block, "pow-validation", &mut verifier), Ok(()));
        assert!(verifier.is_verified(&txs[0].id()));
        let wrong_chain = check_body(&block, "another-chain", &mut verifier).unwrap_err();
        assert!(wrong_chain.condemns_block());

        // A body that is not the header's says nothing against the header.
        let swapped = Block {
            header,
            txs: vec![fx.transfer(0, 1, 6, 1, 0)],
        };
        let mismatch = check_body(&swapped, "pow-validation", &mut verifier).unwrap_err();
        assert!(!mismatch.condemns_block());

        // A forged signature under a matching root condemns the block.
        let (tx, mut signature) = fx.transfer(0, 1, 7, 1, 0).into_parts();
        let mut bytes = signature.0;
        bytes[0] ^= 1;
        signature.0 = bytes;
        let forged = synod_chain::SignedTransaction::from_parts(tx, signature);
        let mut header = parent();
        header.tx_root = merkle_root(&[forged.id()]);
        let bad = Block {
            header,
            txs: vec![forged],
        };
        let error = check_body(&bad, "pow-validation", &mut verifier).unwrap_err();
        assert!(matches!(
            error,
            Rejection::Body(BlockError::Tx { index: 0, .. })
        ));
        assert!(error.condemns_block());
    }
}
