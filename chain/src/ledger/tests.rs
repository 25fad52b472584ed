use std::collections::{BTreeMap, HashSet};

use proptest::prelude::*;

use super::*;
use crate::block::{Block, BlockError, BlockHeader, Seal};
use crate::fixtures::Fixture;
use crate::keys::SecretKey;
use crate::ledger::BlockTemplate;
use crate::tx::{SignedTransaction, TxError};
use crate::verifier::TxVerifier;

const BALANCE: u64 = 1_000;

fn fixture(reward: u64) -> Fixture {
    Fixture::new("ledger-test", 4, BALANCE, reward)
}

fn build(
    fx: &Fixture,
    state: &BTreeMap<Address, Account>,
    parent: &BlockHeader,
    txs: Vec<SignedTransaction>,
) -> BuiltBlock {
    fx.ledger
        .build_block(
            state,
            parent,
            &BlockTemplate {
                proposer: fx.keys[3].public(),
                timestamp_ms: parent.timestamp_ms + 1,
                seal: Seal::default(),
                max_txs: 1000,
            },
            txs,
        )
        .unwrap()
}

fn apply(
    fx: &Fixture,
    state: &BTreeMap<Address, Account>,
    parent: &BlockHeader,
    block: &Block,
) -> Result<StateChanges, LedgerError> {
    fx.ledger
        .apply_block(&mut TxVerifier::new(100), state, parent, block)
}

fn rejection(fx: &Fixture, tx: SignedTransaction) -> TxError {
    let built = build(fx, &fx.genesis.accounts, &fx.genesis.block.header, vec![tx]);
    assert!(built.block.txs.is_empty());
    built.rejected.into_iter().next().unwrap().1
}

#[test]
fn each_stateful_rejection_has_its_reason() {
    let fx = fixture(0);
    assert_eq!(
        rejection(&fx, fx.transfer(0, 1, 1, 0, 5)),
        TxError::BadNonce {
            expected: 0,
            got: 5
        }
    );
    assert_eq!(
        rejection(&fx, fx.transfer(0, 1, BALANCE, 1, 0)),
        TxError::InsufficientBalance {
            balance: BALANCE,
            needed: BALANCE + 1
        }
    );
    assert_eq!(
        rejection(&fx, fx.transfer(0, 1, u64::MAX, 1, 0)),
        TxError::AmountOverflow
    );
    let mut other_chain = fx.transfer(0, 1, 1, 0, 0).into_parts().0;
    other_chain.chain_id = "elsewhere".into();
    assert!(matches!(
        rejection(&fx, other_chain.sign(&fx.keys[0])),
        TxError::WrongChain { .. }
    ));
}

#[test]
fn recipient_overflow_is_refused_and_changes_nothing() {
    let mut fx = fixture(0);
    let rich = fx.addresses[1];
    fx.genesis.accounts.insert(
        rich,
        Account {
            balance: u64::MAX - 10,
            nonce: 0,
        },
    );
    let mut state = StateOverlay::new(&fx.genesis.accounts);
    let proposer = fx.addresses[3];
    let err = fx
        .ledger
        .apply_tx(&mut state, &fx.transfer(0, 1, 11, 0, 0), &proposer)
        .unwrap_err();
    assert!(matches!(err, ApplyTxError::Tx(TxError::BalanceOverflow)));
    assert!(state.into_changes().is_empty());
}

#[test]
fn replay_of_a_committed_transaction_is_refused() {
    let fx = fixture(0);
    let tx = fx.transfer(0, 1, 10, 1, 0);
    let genesis = &fx.genesis.block.header;
    let first = build(&fx, &fx.genesis.accounts, genesis, vec![tx.clone()]);
    let mut state = fx.genesis.accounts.clone();
    for (a, c) in &first.changes.accounts {
        state.insert(*a, c.after);
    }
    let again = build(&fx, &state, &first.block.header, vec![tx]);
    assert_eq!(
        again.rejected[0].1,
        TxError::BadNonce {
            expected: 1,
            got: 0
        }
    );
}

#[test]
fn self_transfer_costs_only_the_fee() {
    let fx = fixture(0);
    let built = build(
        &fx,
        &fx.genesis.accounts,
        &fx.genesis.block.header,
        vec![fx.transfer(0, 0, 500, 3, 0)],
    );
    let change = built.changes.accounts[&fx.addresses[0]];
    assert_eq!(
        change.after,
        Account {
            balance: BALANCE - 3,
            nonce: 1
        }
    );
    assert_eq!(
        built.changes.accounts[&fx.addresses[3]].after.balance,
        BALANCE + 3
    );
}

#[test]
fn apply_block_checks_linkage_duplicates_signatures_and_roots() {
    let fx = fixture(7);
    let genesis = &fx.genesis.block.header;
    let state = &fx.genesis.accounts;
    let good = build(&fx, state, genesis, vec![fx.transfer(0, 1, 10, 1, 0)]);
    assert_eq!(
        apply(&fx, state, genesis, &good.block).unwrap(),
        good.changes
    );

    let mut wrong_root = good.block.clone();
    wrong_root.header.state_root = crate::hash::Hash([1; 32]);
    assert!(matches!(
        apply(&fx, state, genesis, &wrong_root),
        Err(LedgerError::Invalid(BlockError::StateRootMismatch { .. }))
    ));

    let mut wrong_parent = good.block.clone();
    wrong_parent.header.parent = crate::hash::Hash([2; 32]);
    assert!(matches!(
        apply(&fx, state, genesis, &wrong_parent),
        Err(LedgerError::Invalid(BlockError::WrongParent { .. }))
    ));

    let mut wrong_height = good.block.clone();
    wrong_height.header.height = 5;
    assert!(matches!(
        apply(&fx, state, genesis, &wrong_height),
        Err(LedgerError::Invalid(BlockError::WrongHeight {
            expected: 1,
            got: 5
        }))
    ));

    let tx = fx.transfer(0, 1, 10, 1, 0);
    let mut duplicate = good.block.clone();
    duplicate.txs = vec![tx.clone(), tx];
    duplicate.header.tx_root = crate::merkle::merkle_root(&duplicate.tx_ids());
    assert!(matches!(
        apply(&fx, state, genesis, &duplicate),
        Err(LedgerError::Invalid(BlockError::DuplicateTx(_)))
    ));

    let mut forged = good.block.clone();
    let (mut tampered, signature) = forged.txs[0].clone().into_parts();
    tampered.amount = 999;
    forged.txs[0] = SignedTransaction::from_parts(tampered, signature);
    forged.header.tx_root = crate::merkle::merkle_root(&forged.tx_ids());
    assert!(matches!(
        apply(&fx, state, genesis, &forged),
        Err(LedgerError::Invalid(BlockError::Tx {
            index: 0,
            error: TxError::BadSignature(_)
        }))
    ));

    let mut overspend = good.block.clone();
    overspend.txs = vec![fx.transfer(2, 1, BALANCE, 0, 0), fx.transfer(2, 1, 1, 0, 1)];
    overspend.header.tx_root = crate::merkle::merkle_root(&overspend.tx_ids());
    assert!(matches!(
        apply(&fx, state, genesis, &overspend),
        Err(LedgerError::Invalid(BlockError::Tx {
            index: 1,
            error: TxError::InsufficientBalance { .. }
        }))
    ));
}

#[test]
fn reward_overflow_refuses_the_block() {
    let mut fx = fixture(100);
    fx.genesis.accounts.insert(
        fx.addresses[3],
        Account {
            balance: u64::MAX - 1,
            nonce: 0,
        },
    );
    let err = fx
        .ledger
        .build_block(
            &fx.genesis.accounts,
            &fx.genesis.block.header,
            &BlockTemplate {
                proposer: fx.keys[3].public(),
                timestamp_ms: 1,
                seal: Seal::default(),
                max_txs: 10,
            },
            Vec::new(),
        )
        .unwrap_err();
    assert!(matches!(
        err,
        LedgerError::Invalid(BlockError::RewardOverflow)
    ));
}

/// One attempted transfer in a random workload.
#[derive(Debug, Clone)]
struct Op {
    from: usize,
    to: usize,
    amount: u64,
    fee: u64,
    /// 0 = the right nonce; otherwise a stale or future nonce.
    nonce_skew: i8,
    /// Sign with the wrong key.
    forge: bool,
}

fn op() -> impl Strategy<Value = Op> {
    (
        0..5usize,
        0..5usize,
        prop_oneof![0..50u64, 0..2_000u64, Just(u64::MAX)],
        0..5u64,
        prop_oneof![8 => Just(0i8), 1 => -2..0i8, 1 => 1..3i8],
        prop::bool::weighted(0.05),
    )
        .prop_map(|(from, to, amount, fee, nonce_skew, forge)| Op {
            from,
            to,
            amount,
            fee,
            nonce_skew,
            forge,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random valid and invalid transfers over several blocks: money is neither created nor
    /// destroyed (beyond the block reward), every nonce is used exactly once, and the validator's
    /// `apply_block` agrees with the builder on every block.
    #[test]
    fn conserves_money_and_never_repeats_nonces(
        blocks in prop::collection::vec(prop::collection::vec(op(), 0..12), 1..6),
        reward in 0..20u64,
    ) {
        // Account 4 is an outsider with no funds; account 3 proposes.
        let fx = Fixture::new("ledger-prop", 5, BALANCE, reward);
        let mut state: BTreeMap<Address, Account> = fx.genesis.accounts.clone();
        state.remove(&fx.addresses[4]);
        let initial: u128 = state.values().map(|a| a.balance as u128).sum();
        let mut parent = fx.genesis.block.header;
        let mut used: HashSet<(Address, u64)> = HashSet::new();
        let mut included = 0usize;
        for ops in &blocks {
            let txs: Vec<SignedTransaction> = ops.iter().map(|op| {
                let sender = fx.addresses[op.from];
                let nonce = (state.get(&sender).map_or(0, |a| a.nonce) as i64 + op.nonce_skew as i64).max(0) as u64;
                let tx = fx.transfer(op.from, op.to, op.amount, op.fee, nonce);
                if op.forge {
                    tx.tx().clone().sign(&SecretKey::from_seed([99; 32]))
                } else {
                    tx
                }
            }).collect();
            // Forged signatures are the mempool's to catch; the builder trusts its candidates, so
            // filter them the way a node would before building.
            let mut verifier = TxVerifier::new(1000);
            let verified: Vec<SignedTransaction> = txs
                .into_iter()
                .filter(|tx| verifier.verify(tx.id(), tx).is_ok())
                .collect();
            let built = build(&fx, &state, &parent, verified);
            let checked = apply(&fx, &state, &parent, &built.block).expect("validator accepts what the builder built");
            prop_assert_eq!(&checked, &built.changes);
            for tx in &built.block.txs {
                prop_assert!(used.insert((tx.sender(), tx.tx().nonce)), "nonce reused");
            }
            included += built.block.txs.len();
            for (address, change) in checked.accounts {
                prop_assert_eq!(state.get(&address).copied().unwrap_or_default(), change.before);
                state.insert(address, change.after);
            }
            parent = built.block.header;
        }
        let total: u128 = state.values().map(|a| a.balance as u128).sum();
        prop_assert_eq!(total, initial + reward as u128 * blocks.len() as u128);
        let nonces: u64 = state.values().map(|a| a.nonce).sum();
        prop_assert_eq!(nonces as usize, included);
    }

    /// Canonical encoding round-trips arbitrary transactions and blocks, and any strict prefix or
    /// extension of the bytes is refused.
    #[test]
    fn encoding_round_trips_and_rejects_truncation(
        amounts in prop::collection::vec((0..u64::MAX, 0..1000u64, prop::collection::vec(any::<u8>(), 0..300)), 0..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let fx = fixture(0);
        let txs: Vec<SignedTransaction> = amounts.iter().enumerate().map(|(i, (amount, fee, memo))| {
            let mut tx = fx.transfer(i % 4, (i + 1) % 4, *amount, *fee, i as u64).into_parts().0;
            tx.memo = crate::tx::Memo(memo.clone());
            tx.sign(&fx.keys[i % 4])
        }).collect();
        for tx in &txs {
            let bytes = tx.encode();
            match SignedTransaction::decode(&bytes) {
                Ok(back) => {
                    prop_assert!(tx.tx().memo.0.len() <= crate::limits::MAX_MEMO_BYTES);
                    prop_assert_eq!(&back, tx);
                }
                Err(_) => prop_assert!(tx.tx().memo.0.len() > crate::limits::MAX_MEMO_BYTES),
            }
            let n = cut.index(bytes.len());
            prop_assert!(SignedTransaction::decode(&bytes[..n]).is_err());
        }
        let valid: Vec<SignedTransaction> = txs.into_iter().filter(|t| t.tx().memo.0.len() <= crate::limits::MAX_MEMO_BYTES).collect();
        let block = Block {
            header: BlockHeader {
                tx_root: crate::merkle::merkle_root(&valid.iter().map(SignedTransaction::id).collect::<Vec<_>>()),
                ..fx.genesis.block.header
            },
            txs: valid,
        };
        let bytes = block.encode();
        prop_assert_eq!(&Block::decode(&bytes).unwrap(), &block);
        let n = cut.index(bytes.len());
        prop_assert!(Block::decode(&bytes[..n]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        prop_assert!(Block::decode(&longer).is_err());
    }
}
