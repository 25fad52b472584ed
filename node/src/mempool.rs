//! The mempool: admission (size and chain checks, one signature check per transaction, batched;
//! nonce and balance against the committed state plus what the account already has pending;
//! per-account and global limits), removal on commit, and expiry.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use synod_chain::hash::Hash;
use synod_chain::keys::Address;
use synod_chain::ledger::AccountSource;
use synod_chain::{Block, SignedTransaction, TxError, TxVerifier};

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
    /// The mempool is full.
    #[error("mempool is full ({0} transactions)")]
    Full(usize),
    /// Reading the account failed.
    #[error("cannot read the account: {0}")]
    Store(String),
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
            AdmitError::Full(_) => "full",
            AdmitError::Store(_) => "store",
        }
    }
}

/// Mempool limits.
#[derive(Clone, Debug)]
pub struct MempoolConfig {
    /// Most pending transactions.
    pub capacity: usize,
    /// Most pending transactions per account (and how far ahead a nonce may be).
    pub per_account: usize,
    /// Pending transactions older than this are dropped.
    pub ttl: Duration,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        MempoolConfig {
            capacity: 200_000,
            per_account: 4_096,
            ttl: Duration::from_secs(600),
        }
    }
}

struct Entry {
    tx: SignedTransaction,
    admitted: Instant,
    /// Submitted to this node's RPC (its commit latency is measured here).
    local: bool,
}

/// Pending transactions.
pub struct Mempool {
    chain_id: String,
    config: MempoolConfig,
    entries: HashMap<Hash, Entry>,
    by_account: HashMap<Address, BTreeMap<u64, Hash>>,
    /// Sum of amount + fee pending per account.
    spend: HashMap<Address, u128>,
}

impl Mempool {
    /// An empty mempool for chain `chain_id`.
    pub fn new(chain_id: String, config: MempoolConfig) -> Self {
        Mempool {
            chain_id,
            config,
            entries: HashMap::new(),
            by_account: HashMap::new(),
            spend: HashMap::new(),
        }
    }

    /// Pending transactions.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The nonce the account's next transaction should carry, counting pending ones.
    pub fn next_nonce(&self, address: &Address, committed: u64) -> u64 {
        let mut next = committed;
        if let Some(pending) = self.by_account.get(address) {
            for nonce in pending.range(committed..).map(|(n, _)| *n) {
                if nonce != next {
                    break;
                }
                next += 1;
            }
        }
        next
    }

    /// Cheap checks under the lock: sizes, chain, duplicates. Returns the transactions that need
    /// a signature check, with their slots in the result.
    fn prefilter(
        &self,
        txs: Vec<SignedTransaction>,
        results: &mut [Result<Hash, AdmitError>],
    ) -> Vec<(usize, SignedTransaction)> {
        let mut fresh = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, tx) in txs.into_iter().enumerate() {
            let id = tx.id();
            if let Err(e) = tx.check_stateless(&self.chain_id) {
                results[i] = Err(e.into());
            } else if self.entries.contains_key(&id) || !seen.insert(id) {
                results[i] = Err(AdmitError::Known);
            } else {
                fresh.push((i, tx));
            }
        }
        fresh
    }

    /// Stateful checks and insertion, under the lock.
    fn insert<S: AccountSource + ?Sized>(
        &mut self,
        tx: SignedTransaction,
        accounts: &S,
        local: bool,
        now: Instant,
    ) -> Result<Hash, AdmitError> {
        let id = tx.id();
        if self.entries.contains_key(&id) {
            return Err(AdmitError::Known);
        }
        if self.entries.len() >= self.config.capacity {
            return Err(AdmitError::Full(self.entries.len()));
        }
        let t = tx.tx();
        let sender = tx.sender();
        let account = accounts
            .account(&sender)
            .map_err(|e| AdmitError::Store(e.to_string()))?;
        if t.nonce < account.nonce {
            return Err(TxError::BadNonce {
                expected: account.nonce,
                got: t.nonce,
            }
            .into());
        }
        if t.nonce - account.nonce >= self.config.per_account as u64 {
            return Err(AdmitError::NonceTooFarAhead {
                got: t.nonce,
                account: account.nonce,
                limit: self.config.per_account,
            });
        }
        let pending = self.by_account.entry(sender).or_default();
        if pending.contains_key(&t.nonce) {
            return Err(AdmitError::NonceTaken(t.nonce));
        }
        if pending.len() >= self.config.per_account {
            return Err(AdmitError::AccountFull(pending.len()));
        }
        let cost = t.amount as u128 + t.fee as u128;
        let spend = self.spend.get(&sender).copied().unwrap_or(0) + cost;
        if spend > account.balance as u128 {
            return Err(TxError::InsufficientBalance {
                balance: account.balance,
                needed: spend.min(u64::MAX as u128) as u64,
            }
            .into());
        }
        pending.insert(t.nonce, id);
        self.spend.insert(sender, spend);
        self.entries.insert(
            id,
            Entry {
                tx,
                admitted: now,
                local,
            },
        );
        Ok(id)
    }

    fn remove(&mut self, id: &Hash) -> Option<Entry> {
        let entry = self.entries.remove(id)?;
        let t = entry.tx.tx();
        let sender = entry.tx.sender();
        if let Some(pending) = self.by_account.get_mut(&sender) {
            pending.remove(&t.nonce);
            if pending.is_empty() {
                self.by_account.remove(&sender);
            }
        }
        if let Some(spend) = self.spend.get_mut(&sender) {
            *spend = spend.saturating_sub(t.amount as u128 + t.fee as u128);
            if *spend == 0 {
                self.spend.remove(&sender);
            }
        }
        Some(entry)
    }

    /// Removes a committed block's transactions, and pending ones its nonces made stale.
    /// Returns how long each locally submitted one waited.
    pub fn on_commit<S: AccountSource + ?Sized>(
        &mut self,
        block: &Block,
        accounts: &S,
        now: Instant,
    ) -> Vec<Duration> {
        let mut latencies = Vec::new();
        for tx in &block.txs {
            if let Some(entry) = self.remove(&tx.id())
                && entry.local
            {
                latencies.push(now.saturating_duration_since(entry.admitted));
            }
        }
        let senders: std::collections::HashSet<Address> =
            block.txs.iter().map(|tx| tx.sender()).collect();
        for sender in senders {
            self.prune_stale(&sender, accounts);
        }
        latencies
    }

    /// Drops pending transactions whose nonce the account has passed.
    pub fn prune_stale<S: AccountSource + ?Sized>(&mut self, sender: &Address, accounts: &S) {
        let Ok(account) = accounts.account(sender) else {
            return;
        };
        let stale: Vec<Hash> = self
            .by_account
            .get(sender)
            .map(|p| p.range(..account.nonce).map(|(_, id)| *id).collect())
            .unwrap_or_default();
        for id in stale {
            self.remove(&id);
        }
    }

    /// Drops every pending transaction that the accounts have made stale (after a snapshot).
    pub fn prune_all<S: AccountSource + ?Sized>(&mut self, accounts: &S) {
        let senders: Vec<Address> = self.by_account.keys().copied().collect();
        for sender in senders {
            self.prune_stale(&sender, accounts);
        }
    }

    /// Drops transactions pending longer than the TTL. Returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let ttl = self.config.ttl;
        let old: Vec<Hash> = self
            .entries
            .iter()
            .filter(|(_, e)| now.saturating_duration_since(e.admitted) > ttl)
            .map(|(id, _)| *id)
            .collect();
        for id in &old {
            self.remove(id);
        }
        old.len()
    }
}

/// Admits a batch: cheap checks under the lock, signatures (batched) outside it, then nonce and
/// balance under the lock again. One result per transaction, in order.
pub fn admit<S: AccountSource + ?Sized>(
    mempool: &std::sync::Mutex<Mempool>,
    txs: Vec<SignedTransaction>,
    accounts: &S,
    local: bool,
) -> Vec<Result<Hash, AdmitError>> {
    let mut results: Vec<Result<Hash, AdmitError>> = vec![Err(AdmitError::Known); txs.len()];
    let fresh = {
        let pool = mempool
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        pool.prefilter(txs, &mut results)
    };
    let (slots, fresh): (Vec<usize>, Vec<SignedTransaction>) = fresh.into_iter().unzip();
    let ids: Vec<Hash> = fresh.iter().map(SignedTransaction::id).collect();
    let verified = TxVerifier::new(fresh.len().max(1)).verify_many(&fresh, &ids);
    let now = Instant::now();
    let mut pool = mempool
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for ((slot, tx), check) in slots.into_iter().zip(fresh).zip(verified) {
        results[slot] = match check {
            Ok(()) => pool.insert(tx, accounts, local, now),
            Err(e) => Err(e.into()),
        };
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use synod_chain::fixtures::Fixture;

    fn pool(fx: &Fixture) -> Mutex<Mempool> {
        Mutex::new(Mempool::new(
            fx.genesis.chain_id.clone(),
            MempoolConfig {
                capacity: 10,
                per_account: 4,
                ttl: Duration::from_secs(60),
            },
        ))
    }

    #[test]
    fn admission_checks_each_rule() {
        let fx = Fixture::new("mempool", 3, 100, 0);
        let accounts = &fx.genesis.accounts;
        let pool = pool(&fx);
        let results = admit(
            &pool,
            vec![
                fx.transfer(0, 1, 10, 1, 0),
                fx.transfer(0, 1, 10, 1, 0),
                fx.transfer(0, 1, 10, 1, 1),
                fx.transfer(0, 1, 10, 1, 9),
            ],
            accounts,
            true,
        );
        assert!(results[0].is_ok());
        assert_eq!(results[1], Err(AdmitError::Known));
        assert!(results[2].is_ok());
        assert!(matches!(
            results[3],
            Err(AdmitError::NonceTooFarAhead { .. })
        ));
        assert_eq!(pool.lock().unwrap().next_nonce(&fx.addresses[0], 0), 2);

        // Pending spend counts against the balance: 2 x 11 pending, 80 more does not fit.
        let over = admit(&pool, vec![fx.transfer(0, 1, 80, 0, 2)], accounts, true);
        assert!(matches!(
            over[0],
            Err(AdmitError::Invalid(TxError::InsufficientBalance { .. }))
        ));
        let (tx, mut signature) = fx.transfer(1, 2, 1, 0, 0).into_parts();
        signature.0[0] ^= 1;
        let forged = SignedTransaction::from_parts(tx, signature);
        assert!(matches!(
            admit(&pool, vec![forged], accounts, false)[0],
            Err(AdmitError::Invalid(TxError::BadSignature(_)))
        ));
        let (mut tx, _) = fx.transfer(1, 2, 1, 0, 0).into_parts();
        tx.chain_id = "elsewhere".into();
        let foreign = tx.sign(&fx.keys[1]);
        assert!(matches!(
            admit(&pool, vec![foreign], accounts, false)[0],
            Err(AdmitError::Invalid(TxError::WrongChain { .. }))
        ));
    }

    #[test]
    fn commit_removes_and_measures_local_latency() {
        let fx = Fixture::new("mempool", 3, 100, 0);
        let pool = pool(&fx);
        let txs = vec![fx.transfer(0, 1, 1, 0, 0), fx.transfer(1, 2, 1, 0, 0)];
        admit(&pool, txs[..1].to_vec(), &fx.genesis.accounts, true);
        admit(&pool, txs[1..].to_vec(), &fx.genesis.accounts, false);
        let built = fx
            .ledger
            .build_block(
                &fx.genesis.accounts,
                &fx.genesis.block.header,
                &synod_chain::ledger::BlockTemplate {
                    proposer: fx.keys[2].public(),
                    timestamp_ms: 1,
                    seal: Default::default(),
                    max_txs: 10,
                },
                txs,
            )
            .unwrap();
        let mut after = fx.genesis.accounts.clone();
        for (a, c) in &built.changes.accounts {
            after.insert(*a, c.after);
        }
        let latencies = pool
            .lock()
            .unwrap()
            .on_commit(&built.block, &after, Instant::now());
        assert_eq!(latencies.len(), 1);
        assert!(pool.lock().unwrap().is_empty());
    }

    #[test]
    fn capacity_and_expiry() {
        let fx = Fixture::new("mempool", 4, 100, 0);
        let pool = pool(&fx);
        let txs: Vec<_> = (0..4)
            .flat_map(|a| (0..3).map(move |n| (a, n)))
            .map(|(a, n)| fx.transfer(a, (a + 1) % 4, 1, 0, n))
            .collect();
        let results = admit(&pool, txs, &fx.genesis.accounts, false);
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 10);
        assert!(matches!(results[11], Err(AdmitError::Full(10))));
        let later = Instant::now() + Duration::from_secs(120);
        assert_eq!(pool.lock().unwrap().expire(later), 10);
    }
}
