//! The mempool: every transaction this node admitted, until it commits or is dropped with a
//! reason. Admission (`admit`) checks sizes, the chain, one signature per transaction (batched),
//! the nonce and the balance against the committed state plus what the account already has
//! pending, and per-account and global limits. The engine is fed from here (`take_for_engine`),
//! at the driver's pace: a full pool pushes back on clients instead of a queue losing
//! transactions. Commits remove what they include and drop what they made void; expiry drops
//! what waited too long; both leave a reason `get_transaction` reports.

mod admit;
mod drops;
mod give_back;
pub mod journal;
mod runs;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use synod_chain::hash::Hash;
use synod_chain::keys::Address;
use synod_chain::ledger::AccountSource;
use synod_chain::{Block, SignedTransaction, TxError};

pub use admit::{AdmitError, admit, admit_acknowledged};
pub use drops::{Outcome, RecentDrops};

/// Dropped transactions remembered for `get_transaction`.
const DROPS_REMEMBERED: usize = 100_000;

/// Mempool limits.
#[derive(Clone, Debug)]
pub struct MempoolConfig {
    /// Most pending transactions.
    pub capacity: usize,
    /// Most pending transactions per account (and how far ahead a nonce may be).
    pub per_account: usize,
    /// Most transactions per account queued behind a nonce gap.
    pub queued_per_account: usize,
    /// Most transactions queued behind nonce gaps in all: the rest of the pool stays open to
    /// transactions that can execute.
    pub queued_capacity: usize,
    /// Pending transactions older than this are dropped.
    pub ttl: Duration,
    /// The lowest fee admitted.
    pub min_fee: u64,
    /// Whether an engine takes admitted transactions from here (observers run none).
    pub feeds_engine: bool,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        MempoolConfig {
            capacity: 200_000,
            per_account: 4_096,
            queued_per_account: 2_048,
            queued_capacity: 100_000,
            ttl: Duration::from_secs(600),
            min_fee: 1,
            feeds_engine: true,
        }
    }
}

impl MempoolConfig {
    /// The default limits scaled to `capacity` (the queued part keeps to at most half of it),
    /// with a node's minimum fee, for a node that feeds an engine or not.
    pub fn with_capacity(capacity: usize, min_fee: u64, feeds_engine: bool) -> Self {
        let defaults = MempoolConfig::default();
        MempoolConfig {
            capacity,
            queued_capacity: defaults.queued_capacity.min(capacity / 2),
            per_account: defaults.per_account.min(capacity),
            queued_per_account: defaults.queued_per_account.min(capacity / 2),
            min_fee,
            feeds_engine,
            ..defaults
        }
    }
}

/// Eviction candidates looked at per admission into a full pool (the cheapest ones).
const EVICTION_SCAN: usize = 64;

/// Orders eviction candidates: the lowest fee first, and among equal fees the newest first (an
/// old transaction is not pushed out by a flood of equal ones).
type EvictionKey = (u64, std::cmp::Reverse<u64>, Hash);

struct Entry {
    tx: SignedTransaction,
    admitted: Instant,
    /// Submitted to this node's RPC (its commit latency is measured here; it is journaled).
    local: bool,
    /// When it was last handed to the engine.
    handed: Option<Instant>,
    /// Admission order.
    seq: u64,
}

/// What this node knows of a transaction that is not in its chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxStatus {
    /// Waiting to commit, admitted this long ago.
    Pending(Duration),
    /// Given up, with the reason.
    Dropped(String),
    /// Settled by an installed snapshot (committed or replaced; the block is not stored yet).
    Settled(String),
    /// Never seen (or forgotten long ago).
    Unknown,
}

/// Pending transactions.
pub struct Mempool {
    chain_id: String,
    config: MempoolConfig,
    entries: HashMap<Hash, Entry>,
    by_account: HashMap<Address, BTreeMap<u64, Hash>>,
    /// Sum of amount + fee pending per account.
    spend: HashMap<Address, u128>,
    /// Admitted, not yet handed to the engine, oldest first (ids no longer pending are skipped).
    handoff: VecDeque<Hash>,
    drops: RecentDrops,
    /// Each sender's highest-nonce pending transaction, by eviction order: only the end of a
    /// sender's queue may be evicted (evicting the middle would strand the rest behind a gap).
    evictable: std::collections::BTreeSet<EvictionKey>,
    /// Transactions that left other than by a commit, not yet told to the engine (which must not
    /// commit them after the user was told they were dropped).
    withdrawn: Vec<Hash>,
    /// Each sender's entry in `evictable`.
    tail_key: HashMap<Address, EvictionKey>,
    /// Which pending transactions can execute and which are queued behind a gap.
    runs: runs::Runs,
    next_seq: u64,
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
            handoff: VecDeque::new(),
            drops: RecentDrops::new(DROPS_REMEMBERED),
            evictable: std::collections::BTreeSet::new(),
            withdrawn: Vec::new(),
            tail_key: HashMap::new(),
            runs: runs::Runs::default(),
            next_seq: 0,
        }
    }

    /// Re-files `sender`'s eviction candidate after its pending set changed.
    fn refresh_tail(&mut self, sender: &Address) {
        if let Some(old) = self.tail_key.remove(sender) {
            self.evictable.remove(&old);
        }
        let tail = self
            .by_account
            .get(sender)
            .and_then(|p| p.values().next_back())
            .and_then(|id| self.entries.get(id).map(|e| (*id, e)));
        if let Some((id, entry)) = tail {
            let key = (entry.tx.tx().fee, std::cmp::Reverse(entry.seq), id);
            self.evictable.insert(key);
            self.tail_key.insert(*sender, key);
        }
    }

    /// What to evict for a transaction of `sender` paying `fee`: among the cheapest evictable
    /// transactions of other senders, first one that cannot execute yet (its sender's queue has a
    /// nonce gap before it: it holds a slot and pays nothing while it waits), whatever it pays;
    /// otherwise the cheapest that pays less than `fee`.
    fn eviction_candidate(&self, sender: &Address, fee: u64) -> Option<Hash> {
        let mut cheaper = None;
        for (victim_fee, id, queued) in self.tails_of_others(sender) {
            if queued {
                return Some(id);
            }
            if cheaper.is_none() && victim_fee < fee {
                cheaper = Some(id);
            }
        }
        cheaper
    }

    /// The cheapest evictable transactions (each sender's queue end) of senders other than
    /// `sender`, cheapest first, at most [`EVICTION_SCAN`]: fee, id, and whether it is queued
    /// behind a gap.
    fn tails_of_others<'a>(
        &'a self,
        sender: &'a Address,
    ) -> impl Iterator<Item = (u64, Hash, bool)> + 'a {
        self.evictable
            .iter()
            .take(EVICTION_SCAN)
            .filter_map(move |(fee, _, id)| {
                let entry = self.entries.get(id)?;
                let victim = entry.tx.sender();
                (victim != *sender)
                    .then(|| (*fee, *id, self.runs.is_queued(&victim, entry.tx.tx().nonce)))
            })
    }

    /// Most transactions pending at once (the engine's pool holds as many: it takes them from
    /// here).
    pub fn capacity(&self) -> usize {
        self.config.capacity
    }

    /// Pending transactions.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Pending transactions queued behind a nonce gap (not executable yet).
    pub fn queued(&self) -> usize {
        self.runs.queued()
    }

    /// The nonce `id` waits for, when it is pending behind a gap in its sender's nonces.
    pub fn waits_for_nonce(&self, id: &Hash) -> Option<u64> {
        let entry = self.entries.get(id)?;
        let sender = entry.tx.sender();
        let next = self.runs.next(&sender, None)?;
        (entry.tx.tx().nonce > next).then_some(next)
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

    /// The nonce that extends `sender`'s executable run, its committed nonce being `committed`.
    fn next_after(&self, sender: &Address, committed: u64) -> u64 {
        self.runs
            .next(sender, Some(committed))
            .unwrap_or_else(|| self.next_nonce(sender, committed))
    }

    /// Cheap checks under the lock: sizes, chain, duplicates. Returns the transactions that need
    /// a signature check, with their slots in the result.
    pub(crate) fn prefilter(
        &self,
        txs: Vec<SignedTransaction>,
        results: &mut [Result<Hash, AdmitError>],
        queue_caps: bool,
    ) -> Vec<(usize, SignedTransaction)> {
        let mut fresh = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, tx) in txs.into_iter().enumerate() {
            let id = tx.id();
            if let Err(e) = tx.check_stateless(&self.chain_id) {
                results[i] = Err(e.into());
            } else if self.entries.contains_key(&id) || !seen.insert(id) {
                results[i] = Err(AdmitError::Known);
            } else if let Some(refusal) = queue_caps
                .then(|| self.no_room_if_queued(&tx.sender(), tx.tx(), None))
                .flatten()
            {
                results[i] = Err(refusal);
            } else {
                fresh.push((i, tx));
            }
        }
        fresh
    }

    /// Why a transaction of `sender` with `nonce` has no room, if it would wait behind a gap
    /// (its sender's run, read with the committed nonce `committed` or, before the chain is
    /// read, the last one seen, ends before `nonce`) and the queued part of the pool, the
    /// sender's share of it or the whole pool is full. Executable transactions are never refused
    /// here: they may evict queued ones.
    fn no_room_if_queued(
        &self,
        sender: &Address,
        tx: &synod_chain::Transaction,
        committed: Option<u64>,
    ) -> Option<AdmitError> {
        let nonce = tx.nonce;
        let next = match committed {
            Some(committed) => self.next_after(sender, committed),
            None => self.runs.next(sender, None)?,
        };
        if nonce <= next {
            return None;
        }
        let sender_queued = self.runs.queued_of(sender);
        if sender_queued >= self.config.queued_per_account {
            return Some(AdmitError::Queued {
                gap: next,
                queued: sender_queued,
                limit: self.config.queued_per_account,
                whose: admit::QUEUED_ACCOUNT,
            });
        }
        if self.runs.queued() >= self.config.queued_capacity
            && self.queued_victim(sender, tx.fee).is_none()
        {
            return Some(AdmitError::Queued {
                gap: next,
                queued: self.runs.queued(),
                limit: self.config.queued_capacity,
                whose: "the node's",
            });
        }
        (self.entries.len() >= self.config.capacity).then_some(AdmitError::Full(self.entries.len()))
    }

    /// Another sender's queued transaction paying less than `fee`, at the end of its queue: what
    /// a queued transaction paying more may push out when the queued part of the pool is full.
    fn queued_victim(&self, sender: &Address, fee: u64) -> Option<Hash> {
        self.tails_of_others(sender)
            .take_while(|(victim_fee, _, _)| *victim_fee < fee)
            .find_map(|(_, id, queued)| queued.then_some(id))
    }

    /// Stateful checks and insertion, under the lock, with the queued caps applied or not
    /// (`queue_caps`): transactions admitted once before (replayed from the journal, given back
    /// by a reorganisation) must not be refused for them, or a client who was told "admitted"
    /// would lose them.
    ///
    /// A client's transaction refused for good (a fee under the minimum, more than the balance
    /// left after the sender's earlier pending nonces: reasons its own signature vouches for,
    /// which resending it as it is will not change) leaves a gap at its nonce that this pool
    /// will not see filled by it, so the sender's later nonces waiting here are dropped as
    /// stranded. Only a client's submission counts: a peer's relay or a readmission may be
    /// refused here for this node's own policy while the same nonce is pending elsewhere and
    /// will commit.
    pub(crate) fn insert_as<S: AccountSource + ?Sized>(
        &mut self,
        tx: SignedTransaction,
        accounts: &S,
        local: bool,
        queue_caps: bool,
        now: Instant,
    ) -> Result<Hash, AdmitError> {
        let (sender, nonce) = (tx.sender(), tx.tx().nonce);
        let cost = tx.tx().amount as u128 + tx.tx().fee as u128;
        let result = self.try_insert(tx, accounts, local, queue_caps, now);
        let for_good = match &result {
            Err(AdmitError::FeeTooLow { .. }) => true,
            // Not when only the later nonces' reserved spend was in the way: dropping those
            // would not make this one payable any sooner than resending it in order does.
            Err(AdmitError::Invalid(TxError::InsufficientBalance { balance, .. })) => {
                self.spend_before(&sender, nonce, accounts) + cost > *balance as u128
            }
            _ => false,
        };
        if let Err(refusal) = &result
            && for_good
            && local
            && queue_caps
            && self.leaves_gap(&sender, nonce, accounts)
        {
            self.strand_after(&sender, nonce, &format!("was refused ({refusal})"));
        }
        result
    }

    /// What `sender`'s pending transactions from its committed nonce up to `nonce` spend (one
    /// that committed a moment ago and is not pruned yet is already off the balance).
    fn spend_before<S: AccountSource + ?Sized>(
        &self,
        sender: &Address,
        nonce: u64,
        accounts: &S,
    ) -> u128 {
        let (Some(pending), Ok(account)) = (self.by_account.get(sender), accounts.account(sender))
        else {
            return 0;
        };
        pending
            .range(account.nonce.min(nonce)..nonce)
            .filter_map(|(_, id)| self.entries.get(id))
            .map(|e| e.tx.tx().amount as u128 + e.tx.tx().fee as u128)
            .sum()
    }

    /// Whether `sender`'s `nonce` is still to come: not committed, not pending here.
    fn leaves_gap<S: AccountSource + ?Sized>(
        &self,
        sender: &Address,
        nonce: u64,
        accounts: &S,
    ) -> bool {
        let taken = self
            .by_account
            .get(sender)
            .is_some_and(|pending| pending.contains_key(&nonce));
        !taken && accounts.account(sender).is_ok_and(|a| nonce >= a.nonce)
    }

    fn try_insert<S: AccountSource + ?Sized>(
        &mut self,
        tx: SignedTransaction,
        accounts: &S,
        local: bool,
        queue_caps: bool,
        now: Instant,
    ) -> Result<Hash, AdmitError> {
        let id = tx.id();
        if self.entries.contains_key(&id) {
            return Err(AdmitError::Known);
        }
        let t = tx.tx();
        if t.fee < self.config.min_fee {
            return Err(AdmitError::FeeTooLow {
                fee: t.fee,
                min: self.config.min_fee,
            });
        }
        let sender = tx.sender();
        let full = self.entries.len() >= self.config.capacity;
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
        // Read-only until every check passed: a refused sender leaves no entry behind.
        if let Some(pending) = self.by_account.get(&sender) {
            if pending.contains_key(&t.nonce) {
                return Err(AdmitError::NonceTaken(t.nonce));
            }
            if pending.len() >= self.config.per_account {
                return Err(AdmitError::AccountFull(pending.len()));
            }
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
        // A transaction behind a gap gets in only while the queued part has room (or by pushing
        // out a cheaper queued one); when the pool is full, only one that can execute next gets
        // in, by pushing out one that cannot or that pays less.
        let queued = self.next_after(&sender, account.nonce) < t.nonce;
        if queue_caps && let Some(refusal) = self.no_room_if_queued(&sender, t, Some(account.nonce))
        {
            return Err(refusal);
        }
        let evict = if queue_caps && queued && self.runs.queued() >= self.config.queued_capacity {
            self.queued_victim(&sender, t.fee).map(|victim| {
                (
                    victim,
                    "the queued part of the mempool was full and a queued transaction",
                )
            })
        } else if full {
            match (!queued)
                .then(|| self.eviction_candidate(&sender, t.fee))
                .flatten()
            {
                Some(victim) => Some((victim, "the mempool was full and a transaction")),
                None => return Err(AdmitError::Full(self.entries.len())),
            }
        } else {
            None
        };
        if let Some((victim, what)) = evict {
            self.drop_tx(&victim, format!("evicted: {what} paying {} arrived", t.fee));
        }
        let nonce = t.nonce;
        if let Some(pending) = self.by_account.get(&sender) {
            self.runs.rebase(&sender, account.nonce, pending);
        }
        let pending = self.by_account.entry(sender).or_default();
        pending.insert(nonce, id);
        self.runs.inserted(&sender, account.nonce, pending);
        self.spend.insert(sender, spend);
        self.next_seq += 1;
        self.entries.insert(
            id,
            Entry {
                tx,
                admitted: now,
                local,
                handed: None,
                seq: self.next_seq,
            },
        );
        self.refresh_tail(&sender);
        if self.config.feeds_engine {
            self.handoff.push_back(id);
        }
        self.drops.forget(&id);
        Ok(id)
    }

    /// Reads `sender`'s committed nonce into its run.
    fn rebase<S: AccountSource + ?Sized>(&mut self, sender: &Address, accounts: &S) {
        if let (Some(pending), Ok(account)) =
            (self.by_account.get(sender), accounts.account(sender))
        {
            self.runs.rebase(sender, account.nonce, pending);
        }
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
        self.runs
            .removed(&sender, t.nonce, self.by_account.get(&sender));
        if let Some(spend) = self.spend.get_mut(&sender) {
            *spend = spend.saturating_sub(t.amount as u128 + t.fee as u128);
            if *spend == 0 {
                self.spend.remove(&sender);
            }
        }
        self.refresh_tail(&sender);
        if self.handoff.len() > 2 * self.entries.len() + 64 {
            let entries = &self.entries;
            self.handoff.retain(|id| entries.contains_key(id));
        }
        Some(entry)
    }

    /// Removes a committed block's transactions, and drops pending ones its nonces made void.
    /// Returns how long each locally submitted one waited.
    pub fn on_commit<S: AccountSource + ?Sized>(
        &mut self,
        block: &Block,
        accounts: &S,
        now: Instant,
    ) -> Vec<Duration> {
        let senders: std::collections::HashSet<Address> =
            block.txs.iter().map(|tx| tx.sender()).collect();
        // The committed nonces first: what the block included then leaves from below the runs
        // instead of cutting them short.
        for sender in &senders {
            self.rebase(sender, accounts);
        }
        let mut latencies = Vec::new();
        for tx in &block.txs {
            if let Some(entry) = self.remove(&tx.id())
                && entry.local
            {
                latencies.push(now.saturating_duration_since(entry.admitted));
            }
        }
        for sender in senders {
            self.prune_stale(&sender, accounts);
        }
        latencies
    }

    /// Drops pending transactions whose nonce the account has passed: another transaction with
    /// that nonce committed.
    pub fn prune_stale<S: AccountSource + ?Sized>(&mut self, sender: &Address, accounts: &S) {
        let Ok(account) = accounts.account(sender) else {
            return;
        };
        if let Some(pending) = self.by_account.get(sender) {
            self.runs.rebase(sender, account.nonce, pending);
        }
        let stale: Vec<(u64, Hash)> = self
            .by_account
            .get(sender)
            .map(|p| p.range(..account.nonce).map(|(n, id)| (*n, *id)).collect())
            .unwrap_or_default();
        for (nonce, id) in stale {
            self.drop_tx(
                &id,
                format!("replaced: another transaction with nonce {nonce} committed"),
            );
        }
    }

    /// After a snapshot: every pending transaction whose nonce the installed state has passed is
    /// settled (committed or replaced in blocks this node skipped), not dropped.
    pub fn prune_all<S: AccountSource + ?Sized>(&mut self, accounts: &S) {
        let senders: Vec<Address> = self.by_account.keys().copied().collect();
        for sender in senders {
            let Ok(account) = accounts.account(&sender) else {
                continue;
            };
            if let Some(pending) = self.by_account.get(&sender) {
                self.runs.rebase(&sender, account.nonce, pending);
            }
            let stale: Vec<Hash> = self
                .by_account
                .get(&sender)
                .map(|p| p.range(..account.nonce).map(|(_, id)| *id).collect())
                .unwrap_or_default();
            for id in stale {
                if self.remove(&id).is_some() {
                    self.drops.record_settled(
                        id,
                        "settled by a snapshot: committed, or replaced by another transaction with its nonce; its block is known once this node has the history".into(),
                    );
                }
            }
        }
    }

    /// Transactions that left without committing since the last call, for the engine to forget.
    pub fn take_withdrawn(&mut self) -> Vec<Hash> {
        std::mem::take(&mut self.withdrawn)
    }

    /// Drops a pending transaction for good, remembering why. Returns whether it was pending.
    pub fn drop_tx(&mut self, id: &Hash, reason: String) -> bool {
        let pending = self.remove(id).is_some();
        if pending {
            self.drops.record(*id, reason);
            if self.config.feeds_engine {
                self.withdrawn.push(*id);
            }
        }
        pending
    }

    /// Remembers that a transaction which is not pending was dropped (say, one that no longer
    /// admits when the journal is replayed).
    pub fn record_drop(&mut self, id: Hash, reason: String) {
        if !self.entries.contains_key(&id) {
            self.drops.record(id, reason);
        }
    }

    /// Drops transactions pending longer than the TTL, and with each the same sender's later
    /// nonces: the gap it leaves will not fill from this pool, so they could never execute.
    /// Returns how many left.
    pub fn expire(&mut self, now: Instant) -> usize {
        let ttl = self.config.ttl;
        let mut old: Vec<(Address, u64, Hash)> = self
            .entries
            .iter()
            .filter(|(_, e)| now.saturating_duration_since(e.admitted) > ttl)
            .map(|(id, e)| (e.tx.sender(), e.tx.tx().nonce, *id))
            .collect();
        old.sort_unstable();
        let mut left = 0;
        for (sender, nonce, id) in old {
            if !self.drop_tx(
                &id,
                format!("expired: pending for more than {} s", ttl.as_secs()),
            ) {
                continue;
            }
            left += 1;
            left += self.strand_after(&sender, nonce, "expired here before it committed");
        }
        left
    }

    /// Drops `sender`'s pending transactions past `nonce`, which can never execute without it:
    /// `what` says what became of that nonce. Returns how many left.
    fn strand_after(&mut self, sender: &Address, nonce: u64, what: &str) -> usize {
        let stranded: Vec<Hash> = self
            .by_account
            .get(sender)
            .map(|p| p.range(nonce + 1..).map(|(_, id)| *id).collect())
            .unwrap_or_default();
        stranded
            .into_iter()
            .filter(|later| {
                self.drop_tx(
                    later,
                    format!(
                        "stranded: this account's nonce {nonce} {what}, and this transaction waited behind it; send nonce {nonce} again, then this one (a copy already handed on may still commit once nonce {nonce} does: ask get_transaction before reusing its nonce)"
                    ),
                )
            })
            .count()
    }

    /// What this node knows of `id` (committed transactions are the store's to report).
    pub fn status(&self, id: &Hash, now: Instant) -> TxStatus {
        if let Some(entry) = self.entries.get(id) {
            return TxStatus::Pending(now.saturating_duration_since(entry.admitted));
        }
        match self.drops.outcome(id) {
            Some(Outcome::Dropped(reason)) => TxStatus::Dropped(reason.clone()),
            Some(Outcome::Settled(reason)) => TxStatus::Settled(reason.clone()),
            None => TxStatus::Unknown,
        }
    }

    /// Whether admitted transactions wait to be handed to the engine.
    pub fn has_handoff(&self) -> bool {
        self.handoff
            .iter()
            .any(|id| self.entries.get(id).is_some_and(|e| e.handed.is_none()))
    }

    /// Up to `max` admitted transactions the engine has not been given yet, oldest first.
    pub fn take_for_engine(&mut self, max: usize, now: Instant) -> Vec<SignedTransaction> {
        let mut out = Vec::new();
        while out.len() < max {
            let Some(id) = self.handoff.pop_front() else {
                break;
            };
            if let Some(entry) = self.entries.get_mut(&id) {
                entry.handed = Some(now);
                out.push(entry.tx.clone());
            }
        }
        out
    }

    /// Queues again, for the engine, transactions still pending long after they were handed to
    /// it (at most `max`): a safety net under the engine's own re-forwarding, for a transaction
    /// its pool refused while full. Returns how many.
    pub fn requeue_stale(&mut self, now: Instant, older_than: Duration, max: usize) -> usize {
        let mut ids: Vec<(Instant, Hash)> = self
            .entries
            .iter()
            .filter_map(|(id, e)| {
                let handed = e.handed?;
                (now.saturating_duration_since(handed) >= older_than).then_some((e.admitted, *id))
            })
            .collect();
        ids.sort_unstable();
        ids.truncate(max);
        for (_, id) in &ids {
            if let Some(entry) = self.entries.get_mut(id) {
                entry.handed = None;
                self.handoff.push_back(*id);
            }
        }
        ids.len()
    }

    /// Transactions this node acknowledged to its own clients and still owes a commit (what the
    /// journal must hold).
    pub fn local_pending(&self) -> impl Iterator<Item = &SignedTransaction> {
        self.entries.values().filter(|e| e.local).map(|e| &e.tx)
    }

    /// Senders with pending transactions (a refused sender must not add one).
    pub fn tracked_senders(&self) -> usize {
        self.by_account
            .len()
            .max(self.spend.len())
            .max(self.tail_key.len())
            .max(self.runs.senders())
    }

    /// Locally submitted transactions pending for at least `age`, oldest first, at most `max`:
    /// what a node that spreads its clients' transactions by gossip sends again, in case the
    /// first gossip was lost (gossip is best effort).
    pub fn local_older_than(
        &self,
        now: Instant,
        age: Duration,
        max: usize,
    ) -> Vec<SignedTransaction> {
        let mut old: Vec<(Instant, &SignedTransaction)> = self
            .entries
            .values()
            .filter(|e| e.local && now.saturating_duration_since(e.admitted) >= age)
            .map(|e| (e.admitted, &e.tx))
            .collect();
        old.sort_by_key(|(admitted, _)| *admitted);
        old.into_iter()
            .take(max)
            .map(|(_, tx)| tx.clone())
            .collect()
    }

    /// Locally submitted transactions pending.
    pub fn local_count(&self) -> usize {
        self.entries.values().filter(|e| e.local).count()
    }
}

#[cfg(test)]
mod tests;
