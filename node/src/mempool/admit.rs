//! Admission: cheap checks under the lock, signatures (batched) outside it, then nonce, balance
//! and limits under the lock again. Every refusal has a reason a user can read and a short label
//! for metrics.

use std::sync::Mutex;
use std::time::Instant;

use synod_chain::hash::Hash;
use synod_chain::ledger::AccountSource;
use synod_chain::store::StoreError;
use synod_chain::{SignedTransaction, TxError, TxVerifier};

use super::Mempool;

/// [`AdmitError::Queued`]'s `whose` when the account's own share of the queue is full.
pub const QUEUED_ACCOUNT: &str = "this account's";

/// Why a transaction was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmitError {
    /// The transaction itself is invalid.
    #[error(transparent)]
    Invalid(#[from] TxError),
    /// Already pending.
    #[error("transaction is already pending")]
    Known,
    /// Another pending transaction of this account has the same nonce.
    #[error("nonce {0} is already taken by a pending transaction")]
    NonceTaken(u64),
    /// The nonce is too far ahead of the account's.
    #[error("nonce {got} is more than {limit} ahead of the account's nonce {account}")]
    NonceTooFarAhead {
        /// The transaction's nonce.
        got: u64,
        /// The account's committed nonce.
        account: u64,
        /// Allowed distance.
        limit: usize,
    },
    /// The account has too many pending transactions.
    #[error("account has {0} pending transactions, the limit")]
    AccountFull(usize),
    /// The transaction would wait behind a nonce gap, and the queued part of the pool (the
    /// account's share of it or the node's) is full: the account's missing nonce must arrive or
    /// commit first. Executable transactions are still admitted.
    #[error(
        "nonce gap: this account's next executable nonce is {gap}, and {whose} {queued} transactions queued behind gaps are the limit ({limit}); send nonce {gap} first or retry later"
    )]
    Queued {
        /// The nonce that would fill the gap.
        gap: u64,
        /// Transactions queued.
        queued: usize,
        /// The limit reached.
        limit: usize,
        /// Whose limit: the account's or the node's.
        whose: &'static str,
    },
    /// The fee is below the node's minimum.
    #[error("fee {fee} is below this node's minimum of {min}")]
    FeeTooLow {
        /// The transaction's fee.
        fee: u64,
        /// The minimum.
        min: u64,
    },
    /// The mempool is full (of transactions paying at least as much): the node is overloaded
    /// and pushes back; retry later, or pay more.
    #[error("mempool is full ({0} transactions pending); retry later")]
    Full(usize),
    /// The chain cannot take more work for now: this node's engine pool, or with Raft the
    /// leader's, is past its high-water mark. Refused before any check, so a client that is
    /// told this may send the same transaction again.
    #[error(
        "the chain is overloaded (the proposer's pending transactions are past the high-water mark); retry later"
    )]
    Overloaded,
    /// Reading the account failed.
    #[error("cannot read the account: {0}")]
    Store(String),
    /// The transaction could not be written to the journal, so it was not acknowledged; it may
    /// still commit (the engine may have it already): resend the same transaction, never a new
    /// one with another nonce.
    #[error(
        "cannot journal the transaction ({0}); its outcome is unknown: resend the same transaction"
    )]
    Journal(String),
}

impl AdmitError {
    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            AdmitError::Invalid(TxError::BadSignature(_)) => "bad_signature",
            AdmitError::Invalid(TxError::BadNonce { .. }) => "stale_nonce",
            AdmitError::Invalid(TxError::InsufficientBalance { .. }) => "insufficient_balance",
            AdmitError::Invalid(TxError::WrongChain { .. }) => "wrong_chain",
            AdmitError::Invalid(_) => "invalid",
            AdmitError::Known => "known",
            AdmitError::NonceTaken(_) => "nonce_taken",
            AdmitError::NonceTooFarAhead { .. } => "nonce_too_far",
            AdmitError::AccountFull(_) => "account_full",
            AdmitError::Queued { .. } => "queued_full",
            AdmitError::FeeTooLow { .. } => "fee_too_low",
            AdmitError::Full(_) => "full",
            AdmitError::Overloaded => "overloaded",
            AdmitError::Store(_) => "store",
            AdmitError::Journal(_) => "journal",
        }
    }

    /// Whether the refusal is about the node rather than the transaction (its load, its disk)
    /// or only about now (the account's earlier transactions have not committed yet): the client
    /// should send the same transaction again later. A nonce too far ahead or an account at its
    /// limit clears as the account's earlier transactions commit; refusing such a transaction for
    /// good would leave the client's later nonces admitted behind a gap nothing fills.
    pub fn should_retry(&self) -> bool {
        self.retry_after().is_some()
    }

    /// When a refusal that clears by itself is likely to have cleared: the client's hint for
    /// its next try. An account's earlier transactions commit within a block or two; a full
    /// pool drains as blocks commit; a disk error may take longer. `None` for refusals that a
    /// resend will not change.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        let ms = match self {
            AdmitError::NonceTooFarAhead { .. } | AdmitError::AccountFull(_) => 100,
            // An account's own queue clears as its gap fills; the node's as gaps fill anywhere.
            AdmitError::Queued { whose, .. } if *whose == QUEUED_ACCOUNT => 100,
            AdmitError::Queued { .. } | AdmitError::Full(_) | AdmitError::Overloaded => 500,
            AdmitError::Journal(_) => 1_000,
            _ => return None,
        };
        Some(std::time::Duration::from_millis(ms))
    }
}

/// Admits a batch: cheap checks under the lock, signatures (batched) outside it, then nonce and
/// balance under the lock again, against account state read by `accounts` *after* the lock is
/// taken. (A snapshot taken earlier could predate a block whose commit already pruned the pool,
/// and admit a transaction that block made stale; read under the lock, either the state already
/// has the block or the pruning that follows the commit sees the new entry.) One result per
/// transaction, in order.
pub fn admit<S: AccountSource>(
    mempool: &Mutex<Mempool>,
    txs: Vec<SignedTransaction>,
    accounts: impl FnOnce() -> Result<S, StoreError>,
    local: bool,
) -> Vec<Result<Hash, AdmitError>> {
    admit_as(mempool, txs, accounts, local, true)
}

/// Admits again, as this node's clients' own, transactions it acknowledged before (the journal
/// at a restart): in nonce order per sender, and without the queued caps, which would otherwise
/// turn away what a client was told was admitted. One result per transaction, in the order given.
pub fn admit_acknowledged<S: AccountSource>(
    mempool: &Mutex<Mempool>,
    txs: Vec<SignedTransaction>,
    accounts: impl FnOnce() -> Result<S, StoreError>,
) -> Vec<Result<Hash, AdmitError>> {
    let mut order: Vec<usize> = (0..txs.len()).collect();
    order.sort_by_key(|&i| (txs[i].sender(), txs[i].tx().nonce));
    let sorted: Vec<SignedTransaction> = order.iter().map(|&i| txs[i].clone()).collect();
    let mut results = vec![Err(AdmitError::Known); txs.len()];
    for (i, result) in order
        .into_iter()
        .zip(admit_as(mempool, sorted, accounts, true, false))
    {
        results[i] = result;
    }
    results
}

fn admit_as<S: AccountSource>(
    mempool: &Mutex<Mempool>,
    txs: Vec<SignedTransaction>,
    accounts: impl FnOnce() -> Result<S, StoreError>,
    local: bool,
    queue_caps: bool,
) -> Vec<Result<Hash, AdmitError>> {
    let mut results: Vec<Result<Hash, AdmitError>> = vec![Err(AdmitError::Known); txs.len()];
    let fresh = {
        let pool = mempool
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        pool.prefilter(txs, &mut results, queue_caps)
    };
    if fresh.is_empty() {
        return results;
    }
    let (slots, fresh): (Vec<usize>, Vec<SignedTransaction>) = fresh.into_iter().unzip();
    let ids: Vec<Hash> = fresh.iter().map(SignedTransaction::id).collect();
    let verified = TxVerifier::new(fresh.len().max(1)).verify_many(&fresh, &ids);
    let now = Instant::now();
    let mut pool = mempool
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let accounts = match accounts() {
        Ok(accounts) => accounts,
        Err(e) => {
            for slot in slots {
                results[slot] = Err(AdmitError::Store(e.to_string()));
            }
            return results;
        }
    };
    for ((slot, tx), check) in slots.into_iter().zip(fresh).zip(verified) {
        results[slot] = match check {
            Ok(()) => pool.insert_as(tx, &accounts, local, queue_caps, now),
            Err(e) => Err(e.into()),
        };
    }
    results
}
