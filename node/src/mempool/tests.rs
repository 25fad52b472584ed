//! Admission rules, commit pruning, expiry, the engine handoff and drop reasons.

use super::*;
use std::sync::Mutex;
use synod_chain::SecretKey;
use synod_chain::fixtures::Fixture;
use synod_chain::ledger::Account;
use synod_chain::store::StoreError;

fn genesis_accounts(
    fx: &Fixture,
) -> impl FnOnce() -> Result<BTreeMap<Address, Account>, StoreError> + '_ {
    || Ok(fx.genesis.accounts.clone())
}

/// A pool with limits `[capacity, per_account, queued_per_account, queued_capacity]`, a 60 s
/// lifetime and `min_fee`.
fn limited(fx: &Fixture, limits: [usize; 4], min_fee: u64) -> Mutex<Mempool> {
    let [capacity, per_account, queued_per_account, queued_capacity] = limits;
    Mutex::new(Mempool::new(
        fx.genesis.chain_id.clone(),
        MempoolConfig {
            capacity,
            per_account,
            queued_per_account,
            queued_capacity,
            ttl: Duration::from_secs(60),
            min_fee,
            feeds_engine: true,
        },
    ))
}

fn pool(fx: &Fixture) -> Mutex<Mempool> {
    limited(fx, [10, 4, 4, 10], 0)
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
        || Ok::<_, StoreError>(accounts.clone()),
        true,
    );
    assert!(results[0].is_ok());
    assert_eq!(results[1], Err(AdmitError::Known));
    assert!(results[2].is_ok());
    assert!(matches!(
        results[3],
        Err(AdmitError::NonceTooFarAhead { .. })
    ));
    // Too far ahead only for now: the client is told to send it again soon (a block or two).
    assert_eq!(
        results[3].as_ref().unwrap_err().retry_after(),
        Some(std::time::Duration::from_millis(100))
    );
    assert_eq!(results[1].as_ref().unwrap_err().retry_after(), None);
    assert_eq!(pool.lock().unwrap().next_nonce(&fx.addresses[0], 0), 2);

    // Pending spend counts against the balance: 2 x 11 pending, 80 more does not fit.
    let over = admit(
        &pool,
        vec![fx.transfer(0, 1, 80, 0, 2)],
        || Ok::<_, StoreError>(accounts.clone()),
        true,
    );
    assert!(matches!(
        over[0],
        Err(AdmitError::Invalid(TxError::InsufficientBalance { .. }))
    ));
    let (tx, mut signature) = fx.transfer(1, 2, 1, 0, 0).into_parts();
    signature.0[0] ^= 1;
    let forged = SignedTransaction::from_parts(tx, signature);
    assert!(matches!(
        admit(
            &pool,
            vec![forged],
            || Ok::<_, StoreError>(accounts.clone()),
            false
        )[0],
        Err(AdmitError::Invalid(TxError::BadSignature(_)))
    ));
    let (mut tx, _) = fx.transfer(1, 2, 1, 0, 0).into_parts();
    tx.chain_id = "elsewhere".into();
    let foreign = tx.sign(&fx.keys[1]);
    assert!(matches!(
        admit(
            &pool,
            vec![foreign],
            || Ok::<_, StoreError>(accounts.clone()),
            false
        )[0],
        Err(AdmitError::Invalid(TxError::WrongChain { .. }))
    ));
}

#[test]
fn commit_removes_and_measures_local_latency() {
    let fx = Fixture::new("mempool", 3, 100, 0);
    let pool = pool(&fx);
    let txs = vec![fx.transfer(0, 1, 1, 0, 0), fx.transfer(1, 2, 1, 0, 0)];
    admit(&pool, txs[..1].to_vec(), genesis_accounts(&fx), true);
    admit(&pool, txs[1..].to_vec(), genesis_accounts(&fx), false);
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
    let results = admit(&pool, txs, genesis_accounts(&fx), false);
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 10);
    assert!(matches!(results[11], Err(AdmitError::Full(10))));
    let later = Instant::now() + Duration::from_secs(120);
    assert_eq!(pool.lock().unwrap().expire(later), 10);
}

#[test]
fn the_engine_gets_each_transaction_once_and_again_only_when_long_pending() {
    let fx = Fixture::new("mempool", 3, 100, 0);
    let pool = pool(&fx);
    let txs: Vec<_> = (0..3).map(|n| fx.transfer(0, 1, 1, 0, n)).collect();
    admit(&pool, txs.clone(), genesis_accounts(&fx), true);
    let mut mempool = pool.lock().unwrap();
    let now = Instant::now();
    assert!(mempool.has_handoff());
    assert_eq!(mempool.take_for_engine(2, now), txs[..2].to_vec());
    assert_eq!(mempool.take_for_engine(10, now), txs[2..].to_vec());
    assert!(!mempool.has_handoff());
    assert_eq!(mempool.requeue_stale(now, Duration::from_secs(20), 10), 0);
    let later = now + Duration::from_secs(30);
    assert_eq!(mempool.requeue_stale(later, Duration::from_secs(20), 2), 2);
    assert_eq!(mempool.take_for_engine(10, later), txs[..2].to_vec());
    assert_eq!(mempool.local_count(), 3);
}

#[test]
fn every_way_out_but_a_commit_leaves_a_reason() {
    let fx = Fixture::new("mempool", 3, 100, 0);
    let pool = pool(&fx);
    let mine = fx.transfer(0, 1, 5, 0, 0);
    let old = fx.transfer(1, 2, 1, 0, 0);
    let rival = fx.transfer(0, 2, 7, 0, 0);
    admit(&pool, vec![mine.clone()], genesis_accounts(&fx), true);
    admit(&pool, vec![old.clone()], genesis_accounts(&fx), true);
    let now = Instant::now();
    let mut mempool = pool.lock().unwrap();
    assert!(matches!(
        mempool.status(&mine.id(), now),
        TxStatus::Pending(_)
    ));
    assert_eq!(mempool.status(&rival.id(), now), TxStatus::Unknown);

    // Another transaction with the same nonce commits: ours is void, and says why.
    let mut after = fx.genesis.accounts.clone();
    after.insert(
        fx.addresses[0],
        Account {
            balance: 93,
            nonce: 1,
        },
    );
    let block = synod_chain::Block {
        header: fx.genesis.block.header,
        txs: vec![rival],
    };
    mempool.on_commit(&block, &after, now);
    match mempool.status(&mine.id(), now) {
        TxStatus::Dropped(reason) => assert!(reason.contains("nonce 0"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // Expiry.
    mempool.expire(now + Duration::from_secs(120));
    match mempool.status(&old.id(), now) {
        TxStatus::Dropped(reason) => assert!(reason.starts_with("expired"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(mempool.is_empty());
}

#[test]
fn a_refused_sender_leaves_no_trace() {
    let fx = Fixture::new("mempool", 3, 100, 0);
    let pool = pool(&fx);
    let stranger = SecretKey::from_seed([9; 32]);
    let unfunded = synod_chain::Transaction {
        chain_id: fx.genesis.chain_id.clone(),
        from: stranger.public(),
        to: fx.addresses[0],
        amount: 1,
        fee: 1,
        nonce: 0,
        memo: Default::default(),
    }
    .sign(&stranger);
    let results = admit(&pool, vec![unfunded], genesis_accounts(&fx), true);
    assert!(matches!(
        results[0],
        Err(AdmitError::Invalid(TxError::InsufficientBalance { .. }))
    ));
    let mempool = pool.lock().unwrap();
    assert_eq!(mempool.next_nonce(&stranger.address(), 0), 0);
    assert!(mempool.is_empty());
    assert_eq!(mempool.tracked_senders(), 0);
}

#[test]
fn zero_fee_spam_is_refused_and_a_full_pool_keeps_the_best_payers() {
    let fx = Fixture::new("mempool", 6, 1_000, 0);
    let pool = limited(&fx, [4, 4, 4, 4], 1);
    let free = admit(
        &pool,
        vec![fx.transfer(0, 1, 1, 0, 0)],
        genesis_accounts(&fx),
        false,
    );
    assert!(matches!(
        free[0],
        Err(AdmitError::FeeTooLow { fee: 0, min: 1 })
    ));
    // Account 0 fills two slots (fees 1 then 5), accounts 1 and 2 one each (fees 2, 3).
    let first = vec![
        fx.transfer(0, 5, 1, 1, 0),
        fx.transfer(0, 5, 1, 5, 1),
        fx.transfer(1, 5, 1, 2, 0),
        fx.transfer(2, 5, 1, 3, 0),
    ];
    assert!(
        admit(&pool, first.clone(), genesis_accounts(&fx), false)
            .iter()
            .all(Result::is_ok)
    );
    // Full: a fee of 2 does not beat the cheapest evictable one (account 1's 2; account 0's
    // fee-1 transaction is not at the end of its queue, so it cannot go).
    let cheap = admit(
        &pool,
        vec![fx.transfer(3, 5, 1, 2, 0)],
        genesis_accounts(&fx),
        false,
    );
    assert!(matches!(cheap[0], Err(AdmitError::Full(4))));
    assert_eq!(
        cheap[0].as_ref().unwrap_err().retry_after(),
        Some(std::time::Duration::from_millis(500))
    );
    // A fee of 4 pushes out account 1's transaction, with a reason.
    let rich = admit(
        &pool,
        vec![fx.transfer(3, 5, 1, 4, 0)],
        genesis_accounts(&fx),
        false,
    );
    assert!(rich[0].is_ok());
    let mempool = pool.lock().unwrap();
    assert_eq!(mempool.len(), 4);
    match mempool.status(&first[2].id(), Instant::now()) {
        TxStatus::Dropped(reason) => assert!(reason.starts_with("evicted"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        mempool.status(&first[0].id(), Instant::now()),
        TxStatus::Pending(_)
    ));
    assert_eq!(mempool.tracked_senders(), 3);
}

#[test]
fn a_full_pool_evicts_what_cannot_execute_before_what_can() {
    let fx = Fixture::new("mempool", 6, 1_000, 0);
    let pool = limited(&fx, [3, 8, 8, 3], 1);
    // Account 0 queues nonces 1 and 2 behind a gap (nonce 0 never sent), paying well.
    let gapped = vec![fx.transfer(0, 5, 1, 9, 1), fx.transfer(0, 5, 1, 9, 2)];
    let payable = fx.transfer(1, 5, 1, 1, 0);
    admit(&pool, gapped.clone(), genesis_accounts(&fx), false);
    admit(&pool, vec![payable.clone()], genesis_accounts(&fx), false);
    // Full. A transaction that cannot execute yet evicts nothing.
    let behind_gap = admit(
        &pool,
        vec![fx.transfer(2, 5, 1, 50, 3)],
        genesis_accounts(&fx),
        false,
    );
    assert!(matches!(behind_gap[0], Err(AdmitError::Full(3))));
    // One that can execute pushes out the gapped queue's end, though it pays more.
    let next = admit(
        &pool,
        vec![fx.transfer(2, 5, 1, 1, 0)],
        genesis_accounts(&fx),
        false,
    );
    assert!(next[0].is_ok());
    let mempool = pool.lock().unwrap();
    assert!(matches!(
        mempool.status(&gapped[1].id(), Instant::now()),
        TxStatus::Dropped(_)
    ));
    assert!(matches!(
        mempool.status(&payable.id(), Instant::now()),
        TxStatus::Pending(_)
    ));
}

/// Admits one transaction from a peer, against the genesis accounts.
fn admit_one(
    pool: &Mutex<Mempool>,
    fx: &Fixture,
    tx: SignedTransaction,
) -> Result<Hash, AdmitError> {
    admit(pool, vec![tx], genesis_accounts(fx), false)
        .pop()
        .expect("one result per transaction")
}

fn queue_pool(fx: &Fixture) -> Mutex<Mempool> {
    limited(fx, [10, 8, 2, 3], 0)
}

#[test]
fn queued_transactions_are_capped_apart_and_refused_before_their_signature_is_checked() {
    let fx = Fixture::new("mempool", 4, 1_000, 0);
    let pool = queue_pool(&fx);
    let admit_one = |tx| admit_one(&pool, &fx, tx);
    // Account 0 sends nonces 2 and 3 before 0 and 1: both wait behind the gap at 0.
    let early = [fx.transfer(0, 1, 1, 0, 2), fx.transfer(0, 1, 1, 0, 3)];
    for tx in &early {
        admit_one(tx.clone()).unwrap();
    }
    assert_eq!(pool.lock().unwrap().queued(), 2);
    assert_eq!(
        pool.lock().unwrap().waits_for_nonce(&early[0].id()),
        Some(0)
    );
    // The account's share of the queue is full.
    assert!(matches!(
        admit_one(fx.transfer(0, 1, 1, 0, 4)),
        Err(AdmitError::Queued {
            gap: 0,
            limit: 2,
            ..
        })
    ));
    // Another account's gapped transaction fills the node's queue; the next is refused, with
    // a hint to retry, and a forged one is refused the same way, before its signature is
    // checked (a flood of queued junk costs no signature checks).
    admit_one(fx.transfer(1, 2, 1, 0, 5)).unwrap();
    let refused = admit_one(fx.transfer(2, 3, 1, 0, 1));
    assert!(matches!(refused, Err(AdmitError::Queued { limit: 3, .. })));
    assert_eq!(
        refused.unwrap_err().retry_after(),
        Some(Duration::from_millis(500))
    );
    let (tx, mut signature) = fx.transfer(0, 1, 1, 0, 6).into_parts();
    signature.0[0] ^= 1;
    assert!(matches!(
        admit_one(SignedTransaction::from_parts(tx, signature)),
        Err(AdmitError::Queued { .. })
    ));
    // Executable transactions still get in.
    admit_one(fx.transfer(2, 3, 1, 0, 0)).unwrap();
    // Account 0's gap fills: its queue becomes executable and makes room.
    admit_one(fx.transfer(0, 1, 1, 0, 0)).unwrap();
    assert_eq!(pool.lock().unwrap().queued(), 3);
    admit_one(fx.transfer(0, 1, 1, 0, 1)).unwrap();
    assert_eq!(pool.lock().unwrap().queued(), 1);
    assert_eq!(pool.lock().unwrap().waits_for_nonce(&early[0].id()), None);
    // A commit of nonces 0 and 1 moves the account on; 2 and 3 stay executable.
    let mut after = fx.genesis.accounts.clone();
    after.get_mut(&fx.addresses[0]).unwrap().nonce = 2;
    let block = Block {
        header: fx.genesis.block.header,
        txs: vec![fx.transfer(0, 1, 1, 0, 0), fx.transfer(0, 1, 1, 0, 1)],
    };
    let mut mempool = pool.lock().unwrap();
    mempool.on_commit(&block, &after, Instant::now());
    assert_eq!(mempool.queued(), 1);
    assert_eq!(mempool.len(), 4);
    // A middle one leaving without a commit opens a gap: what follows it is queued again.
    mempool.drop_tx(&early[0].id(), "test".into());
    assert_eq!(mempool.queued(), 2);
}

#[test]
fn an_expired_nonce_strands_the_senders_later_ones_with_a_reason() {
    let fx = Fixture::new("mempool", 3, 1_000, 0);
    let pool = queue_pool(&fx);
    let txs: Vec<_> = (0..3).map(|n| fx.transfer(0, 1, 1, 0, n)).collect();
    let other = fx.transfer(1, 2, 1, 0, 0);
    let start = Instant::now();
    let mut mempool = pool.lock().unwrap();
    let accounts = &fx.genesis.accounts;
    mempool
        .insert_as(txs[0].clone(), accounts, true, true, start)
        .unwrap();
    let later = start + Duration::from_secs(30);
    for tx in txs[1..].iter().chain([&other]) {
        mempool
            .insert_as(tx.clone(), accounts, true, true, later)
            .unwrap();
    }
    assert_eq!(mempool.expire(start + Duration::from_secs(61)), 3);
    match mempool.status(&txs[0].id(), later) {
        TxStatus::Dropped(reason) => assert!(reason.starts_with("expired"), "{reason}"),
        other => panic!("{other:?}"),
    }
    for tx in &txs[1..] {
        match mempool.status(&tx.id(), later) {
            TxStatus::Dropped(reason) => assert!(reason.starts_with("stranded"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }
    assert!(matches!(
        mempool.status(&other.id(), later),
        TxStatus::Pending(_)
    ));
    assert_eq!(mempool.queued(), 0);
    assert_eq!(mempool.take_withdrawn().len(), 3);
}

/// A client's missing nonce refused for good (a fee under the minimum, more than the balance)
/// strands the later nonces waiting behind it, with the reason. A refusal of a nonce already
/// pending or committed, one relayed by a peer, or one refused only for what the later nonces
/// reserve, leaves them alone.
#[test]
fn a_gap_nonce_refused_for_good_strands_the_later_ones() {
    let fx = Fixture::new("mempool", 4, 100, 0);
    let pool = limited(&fx, [100, 16, 16, 100], 1);
    let mut mempool = pool.lock().unwrap();
    let now = Instant::now();
    let accounts = fx.genesis.accounts.clone();
    let client = |mempool: &mut Mempool, tx: SignedTransaction, accounts| {
        mempool.insert_as(tx, accounts, true, true, now)
    };
    let pending = |mempool: &Mempool, tx: &SignedTransaction| {
        matches!(mempool.status(&tx.id(), now), TxStatus::Pending(_))
    };
    let stranded_by = |mempool: &Mempool, tx: &SignedTransaction, prefix: &str| match mempool
        .status(&tx.id(), now)
    {
        TxStatus::Dropped(reason) => assert!(reason.starts_with(prefix), "{reason}"),
        other => panic!("{other:?}"),
    };

    // Account 0: nonce 0 pending, 2 and 3 queued behind the missing 1.
    let zero = fx.transfer(0, 1, 1, 1, 0);
    let waiting: Vec<_> = (2..4).map(|n| fx.transfer(0, 1, 1, 1, n)).collect();
    for tx in std::iter::once(&zero).chain(&waiting) {
        client(&mut mempool, tx.clone(), &accounts).unwrap();
    }
    // A second nonce 0 with too low a fee: nonce 0 is pending, nothing is stranded.
    let refused = client(&mut mempool, fx.transfer(0, 2, 1, 0, 0), &accounts);
    assert!(matches!(refused, Err(AdmitError::FeeTooLow { .. })));
    // The missing nonce 1 from a peer, with too low a fee for this node: it may be pending
    // elsewhere, nothing is stranded.
    let relayed = mempool.insert_as(fx.transfer(0, 1, 1, 0, 1), &accounts, false, true, now);
    assert!(matches!(relayed, Err(AdmitError::FeeTooLow { .. })));
    assert!(waiting.iter().all(|tx| pending(&mempool, tx)));
    // The missing nonce 1 from a client, for more than the balance: 2 and 3 can never run
    // without it.
    let refused = client(&mut mempool, fx.transfer(0, 1, 1_000, 1, 1), &accounts);
    assert!(matches!(
        refused,
        Err(AdmitError::Invalid(TxError::InsufficientBalance { .. }))
    ));
    for tx in &waiting {
        stranded_by(
            &mempool,
            tx,
            "stranded: this account's nonce 1 was refused (balance 100",
        );
    }
    assert!(pending(&mempool, &zero));

    // Account 1, its nonce 0 committed: nonce 2 queued behind the missing 1 stays when a
    // client sends nonce 0 again with too low a fee, and goes when nonce 1 comes so.
    let mut moved_on = accounts.clone();
    moved_on.get_mut(&fx.addresses[1]).unwrap().nonce = 1;
    let behind = fx.transfer(1, 2, 1, 1, 2);
    client(&mut mempool, behind.clone(), &moved_on).unwrap();
    let stale = client(&mut mempool, fx.transfer(1, 2, 1, 0, 0), &moved_on);
    assert!(matches!(stale, Err(AdmitError::FeeTooLow { .. })));
    assert!(pending(&mempool, &behind));
    let refused = client(&mut mempool, fx.transfer(1, 2, 1, 0, 1), &moved_on);
    assert!(matches!(refused, Err(AdmitError::FeeTooLow { .. })));
    stranded_by(
        &mempool,
        &behind,
        "stranded: this account's nonce 1 was refused (fee 0",
    );

    // Account 2: nonces 1 and 2 (40 each) reserve 82 of 100; nonce 0 for 50 fits the balance
    // by itself, so it is refused for their reservation, not for good, and they stay.
    let reserved: Vec<_> = (1..3).map(|n| fx.transfer(2, 3, 40, 1, n)).collect();
    for tx in &reserved {
        client(&mut mempool, tx.clone(), &accounts).unwrap();
    }
    let refused = client(&mut mempool, fx.transfer(2, 3, 50, 1, 0), &accounts);
    assert!(matches!(
        refused,
        Err(AdmitError::Invalid(TxError::InsufficientBalance { .. }))
    ));
    assert!(reserved.iter().all(|tx| pending(&mempool, tx)));
    assert_eq!(mempool.queued(), 2);

    // Account 3: nonce 0 (61) pending, nonce 2 queued; nonce 0 commits (39 left) and, before
    // the pool is pruned, a client sends nonce 1 for 31. The pending spend still counts nonce
    // 0, so it is refused, but nonce 1 is payable: nonce 2 stays.
    let first = fx.transfer(3, 0, 60, 1, 0);
    let third = fx.transfer(3, 0, 10, 1, 2);
    for tx in [&first, &third] {
        client(&mut mempool, tx.clone(), &accounts).unwrap();
    }
    let mut committed = accounts.clone();
    let account = committed.get_mut(&fx.addresses[3]).unwrap();
    account.nonce = 1;
    account.balance = 39;
    let refused = client(&mut mempool, fx.transfer(3, 0, 30, 1, 1), &committed);
    assert!(matches!(
        refused,
        Err(AdmitError::Invalid(TxError::InsufficientBalance { .. }))
    ));
    assert!(pending(&mempool, &third));
}

/// The queued count kept step by step matches one counted from scratch, over a long random mix
/// of arrivals in any nonce order, drops from anywhere and commits.
#[test]
fn the_queued_count_matches_a_recount_after_every_change() {
    let fx = Fixture::new("mempool", 4, 1_000_000, 0);
    let pool = limited(&fx, [1_000, 64, 64, 1_000], 0);
    let mut accounts = fx.genesis.accounts.clone();
    let mut mempool = pool.lock().unwrap();
    let mut rng = synod_consensus::rng::DetRng::new(7);
    for step in 0..5_000 {
        let who = rng.range(0, 3) as usize;
        let address = fx.addresses[who];
        let committed = accounts[&address].nonce;
        match rng.range(0, 9) {
            0..=5 => {
                let nonce = committed + rng.range(0, 11);
                let _ = mempool.insert_as(
                    fx.transfer(who, (who + 1) % 4, 1, 0, nonce),
                    &accounts,
                    false,
                    true,
                    Instant::now(),
                );
            }
            6 | 7 => {
                let ids: Vec<Hash> = mempool
                    .by_account
                    .get(&address)
                    .map(|p| p.values().copied().collect())
                    .unwrap_or_default();
                if !ids.is_empty() {
                    let id = ids[rng.range(0, ids.len() as u64 - 1) as usize];
                    mempool.drop_tx(&id, "test".into());
                }
            }
            _ => {
                // Commit the front of the account's executable run.
                let next = mempool.next_nonce(&address, committed);
                let take = rng.range(0, next - committed);
                let txs: Vec<_> = (committed..committed + take)
                    .map(|n| fx.transfer(who, (who + 1) % 4, 1, 0, n))
                    .collect();
                accounts.get_mut(&address).unwrap().nonce = committed + take;
                let block = Block {
                    header: fx.genesis.block.header,
                    txs,
                };
                mempool.on_commit(&block, &accounts, Instant::now());
            }
        }
        let recount: usize = fx
            .addresses
            .iter()
            .map(|a| {
                let next = mempool.next_nonce(a, accounts[a].nonce);
                mempool
                    .by_account
                    .get(a)
                    .map_or(0, |p| p.range(next..).count())
            })
            .sum();
        assert_eq!(mempool.queued(), recount, "step {step}");
    }
}

#[test]
fn a_full_queue_takes_a_better_paying_queued_transaction_and_readmissions_skip_the_caps() {
    let fx = Fixture::new("mempool", 4, 1_000, 0);
    let pool = queue_pool(&fx);
    let admit_one = |tx| admit_one(&pool, &fx, tx);
    // Three queued, fees 1, 2, 3: the node's queue is full.
    let queued = [
        fx.transfer(0, 1, 1, 1, 1),
        fx.transfer(1, 2, 1, 2, 1),
        fx.transfer(2, 3, 1, 3, 1),
    ];
    for tx in &queued {
        admit_one(tx.clone()).unwrap();
    }
    // Paying no more than the cheapest gets nothing; paying more pushes the cheapest out.
    assert!(matches!(
        admit_one(fx.transfer(3, 0, 1, 1, 1)),
        Err(AdmitError::Queued { .. })
    ));
    admit_one(fx.transfer(3, 0, 1, 5, 1)).unwrap();
    {
        let mempool = pool.lock().unwrap();
        assert_eq!(mempool.queued(), 3);
        match mempool.status(&queued[0].id(), Instant::now()) {
            TxStatus::Dropped(reason) => assert!(reason.contains("queued part"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    // Acknowledged transactions come back in any order and past the caps.
    let fresh = queue_pool(&fx);
    let journaled: Vec<_> = [3, 1, 4, 0, 2]
        .into_iter()
        .map(|n| fx.transfer(0, 1, 1, 0, n))
        .collect();
    let results = admit_acknowledged(&fresh, journaled.clone(), genesis_accounts(&fx));
    for (tx, result) in journaled.iter().zip(&results) {
        assert_eq!(result.as_ref().ok(), Some(&tx.id()));
    }
    // So do the transactions of rewound blocks, handed back newest first.
    let rewound = queue_pool(&fx);
    let blocks: Vec<_> = (0..5).rev().map(|n| fx.transfer(1, 2, 1, 0, n)).collect();
    let mut mempool = rewound.lock().unwrap();
    assert_eq!(
        mempool.give_back(blocks, &fx.genesis.accounts, Instant::now()),
        5
    );
    assert_eq!(mempool.queued(), 0);
}
