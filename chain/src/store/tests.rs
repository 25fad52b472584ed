use std::io::{Seek, SeekFrom, Write};

use super::*;
use crate::block::{Block, Seal};
use crate::fixtures::Fixture;
use crate::ledger::Account;
use crate::ledger::BlockTemplate;
use crate::ledger::BuiltBlock;
use crate::tx::SignedTransaction;

fn fixture() -> Fixture {
    Fixture::new("store-test", 4, 1_000_000, 50)
}

fn next_block(fx: &Fixture, store: &Store, txs: Vec<SignedTransaction>) -> BuiltBlock {
    let reader = store.reader().unwrap();
    let parent = reader.header_at(store.tip().height).unwrap().unwrap();
    fx.ledger
        .build_block(
            &reader,
            &parent,
            &BlockTemplate {
                proposer: fx.keys[3].public(),
                timestamp_ms: parent.timestamp_ms + 1000,
                seal: Seal::default(),
                max_txs: 10_000,
            },
            txs,
        )
        .unwrap()
}

/// A store that runs four blocks (one transfer each) ahead of a fresh one: the source of a
/// snapshot at height 4 and of the history below it.
fn ahead_by_four(fx: &Fixture, dir: &Path) -> Store {
    let ahead = Store::open(&dir.join("ahead"), &fx.genesis).unwrap();
    for nonce in 0..4 {
        commit(
            fx,
            &ahead,
            vec![fx.transfer(0, 1, 3, 0, nonce)],
            Finality::Final,
        );
    }
    ahead
}

/// The snapshot `ahead` offers at its height 4: the header and the accounts.
fn snapshot_at_four(
    ahead: &Store,
) -> (
    crate::block::BlockHeader,
    std::collections::BTreeMap<crate::keys::Address, Account>,
) {
    let header = ahead.header_at(4).unwrap().unwrap();
    (header, ahead.accounts().unwrap().into_iter().collect())
}

/// `ahead`'s blocks 1 to 4, each with a proof, for a backfill.
fn history_of(ahead: &Store) -> Vec<(Block, Vec<u8>)> {
    (1..=4)
        .map(|h| (ahead.block_at(h).unwrap().unwrap(), b"p".to_vec()))
        .collect()
}

fn commit(fx: &Fixture, store: &Store, txs: Vec<SignedTransaction>, finality: Finality) -> Block {
    let built = next_block(fx, store, txs);
    assert!(built.rejected.is_empty(), "{:?}", built.rejected);
    store
        .commit_block(&built.block, &built.changes, b"proof", finality, &[])
        .unwrap();
    built.block
}

#[test]
fn genesis_commit_read_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let fx = fixture();
    let block1;
    {
        let store = Store::open(&path, &fx.genesis).unwrap();
        assert_eq!(store.tip().height, 0);
        assert_eq!(store.tip().hash, fx.genesis.block.hash());
        assert_eq!(store.account(&fx.addresses[0]).unwrap().balance, 1_000_000);
        block1 = commit(
            &fx,
            &store,
            vec![fx.transfer(0, 1, 100, 2, 0), fx.transfer(1, 2, 5, 1, 0)],
            Finality::Final,
        );
        assert_eq!(store.tip().height, 1);
        assert_eq!(store.finalized_height(), 1);
    }
    let store = Store::open(&path, &fx.genesis).unwrap();
    assert_eq!(store.tip().hash, block1.hash());
    assert_eq!(store.block_at(1).unwrap().unwrap(), block1);
    assert_eq!(store.proof(&block1.hash()).unwrap(), b"proof");
    let (tx, location) = store.transaction(&block1.txs[1].id()).unwrap().unwrap();
    assert_eq!(tx, block1.txs[1]);
    assert_eq!((location.height, location.index), (1, 1));
    assert_eq!(
        store.account(&fx.addresses[0]).unwrap(),
        Account {
            balance: 1_000_000 - 102,
            nonce: 1
        }
    );
    // Proposer (account 3) got both fees and the reward.
    assert_eq!(
        store.account(&fx.addresses[3]).unwrap().balance,
        1_000_000 + 3 + 50
    );
    let report = store.verify_chain(Some((&fx.genesis, &fx.ledger))).unwrap();
    assert_eq!(report.height, 1);
    assert_eq!(report.transactions, 2);
    assert_eq!(report.total_balance, 4 * 1_000_000 + 50);
    let existing = Store::open_existing(&path);
    assert!(matches!(existing, Err(StoreError::Locked(_))));
    drop(store);
    let existing = Store::open_existing(&path).unwrap();
    assert_eq!(existing.chain_id(), "store-test");
}

#[test]
fn refuses_blocks_off_the_tip_and_mismatched_changes() {
    let dir = tempfile::tempdir().unwrap();
    let fx = fixture();
    let store = Store::open(&dir.path().join("db"), &fx.genesis).unwrap();
    let built = next_block(&fx, &store, vec![fx.transfer(0, 1, 1, 0, 0)]);
    let mut wrong_changes = built.changes.clone();
    wrong_changes.state_root = Hash([9; 32]);
    assert!(matches!(
        store.commit_block(&built.block, &wrong_changes, &[], Finality::Final, &[]),
        Err(StoreError::ChangesMismatch { .. })
    ));
    store
        .commit_block(&built.block, &built.changes, &[], Finality::Final, &[])
        .unwrap();
    // The same block again no longer extends the tip.
    assert!(matches!(
        store.commit_block(&built.block, &built.changes, &[], Finality::Final, &[]),
        Err(StoreError::NotOnTip { .. })
    ));
    assert_eq!(store.tip().height, 1);
}

#[test]
fn rewind_restores_accounts_and_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let fx = fixture();
    let store = Store::open(&dir.path().join("db"), &fx.genesis).unwrap();
    commit(
        &fx,
        &store,
        vec![fx.transfer(0, 1, 10, 1, 0)],
        Finality::Tentative,
    );
    let before: Vec<Account> = fx
        .addresses
        .iter()
        .map(|a| store.account(a).unwrap())
        .collect();
    let tip1 = store.tip();
    let b2 = commit(
        &fx,
        &store,
        vec![fx.transfer(0, 2, 20, 1, 1)],
        Finality::Tentative,
    );
    let b3 = commit(
        &fx,
        &store,
        vec![fx.transfer(2, 0, 5, 1, 0)],
        Finality::Tentative,
    );
    store.verify_chain(Some((&fx.genesis, &fx.ledger))).unwrap();
    let removed = store.rewind_to(1).unwrap();
    assert_eq!(removed, vec![b3.clone(), b2.clone()]);
    assert_eq!(store.tip(), tip1);
    let after: Vec<Account> = fx
        .addresses
        .iter()
        .map(|a| store.account(a).unwrap())
        .collect();
    assert_eq!(before, after);
    assert!(store.transaction(&b2.txs[0].id()).unwrap().is_none());
    // The rewound blocks stay retrievable by id (a side branch).
    assert_eq!(store.block(&b3.hash()).unwrap().unwrap(), b3);
    store.verify_chain(Some((&fx.genesis, &fx.ledger))).unwrap();

    store.set_finalized(1).unwrap();
    assert!(matches!(
        store.rewind_to(0),
        Err(StoreError::BelowFinalized {
            target: 0,
            finalized: 1
        })
    ));
    store.verify_chain(Some((&fx.genesis, &fx.ledger))).unwrap();
}

#[test]
fn engine_state_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let fx = fixture();
    let store = Store::open(&dir.path().join("db"), &fx.genesis).unwrap();
    let key = |i: u8| vec![b'l', i];
    store
        .write_engine(&[
            EngineWrite::Put(b"term".to_vec(), vec![7]),
            EngineWrite::Put(key(1), vec![1]),
            EngineWrite::Put(key(2), vec![2]),
            EngineWrite::Put(key(3), vec![3]),
        ])
        .unwrap();
    store
        .write_engine(&[
            EngineWrite::DeleteRange(key(2), key(9)),
            EngineWrite::Delete(b"term".to_vec()),
        ])
        .unwrap();
    assert_eq!(store.engine_get(b"term").unwrap(), None);
    assert_eq!(
        store.engine_range(&key(0), &key(255)).unwrap(),
        vec![(key(1), vec![1])]
    );
}

#[test]
fn refuses_another_chains_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    drop(Store::open(&path, &fixture().genesis).unwrap());
    let other = Fixture::new("other-chain", 4, 1_000_000, 50);
    let err = Store::open(&path, &other.genesis).unwrap_err();
    assert!(matches!(err, StoreError::WrongChain { .. }), "{err}");
    assert!(err.to_string().contains("store-test"));
}

#[test]
fn refuses_another_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    drop(Store::open(&path, &fixture().genesis).unwrap());
    {
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert(META_SCHEMA, codec::encode(&99u32).as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    assert!(matches!(
        Store::open(&path, &fixture().genesis),
        Err(StoreError::SchemaVersion {
            found: 99,
            expected: SCHEMA_VERSION
        })
    ));
}

#[test]
fn refuses_files_that_are_not_databases() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    std::fs::write(&path, b"this is a text file, not a database at all").unwrap();
    let err = Store::open(&path, &fixture().genesis).unwrap_err();
    assert!(matches!(err, StoreError::NotADatabase(_)), "{err}");
    assert!(matches!(
        Store::open_existing(&dir.path().join("absent")),
        Err(StoreError::Missing(_))
    ));
}

/// Damage at many offsets: every open either refuses with a store error or (if the damage hit
/// unused space) opens and passes the full check. Never a panic.
#[test]
fn damaged_or_truncated_files_are_refused_not_panicked_on() {
    let dir = tempfile::tempdir().unwrap();
    let pristine = dir.path().join("pristine");
    let fx = fixture();
    {
        let store = Store::open(&pristine, &fx.genesis).unwrap();
        for nonce in 0..5 {
            commit(
                &fx,
                &store,
                vec![fx.transfer(0, 1, 1, 0, nonce)],
                Finality::Final,
            );
        }
    }
    let bytes = std::fs::read(&pristine).unwrap();
    let mut refused = 0;
    let step = (bytes.len() / 64).max(1);
    for (i, offset) in (0..bytes.len()).step_by(step).enumerate() {
        let path = dir.path().join(format!("damaged{i}"));
        std::fs::write(&path, &bytes).unwrap();
        let mut file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.seek(SeekFrom::Start(offset as u64)).unwrap();
        file.write_all(&[0xa5; 16]).unwrap();
        drop(file);
        match Store::open(&path, &fx.genesis) {
            Err(
                StoreError::Damaged { .. }
                | StoreError::NotADatabase(_)
                | StoreError::CorruptRecord { .. }
                | StoreError::Db(_),
            ) => refused += 1,
            Err(other) => panic!("offset {offset}: unexpected error {other}"),
            Ok(store) => {
                store
                    .verify_chain(Some((&fx.genesis, &fx.ledger)))
                    .unwrap_or_else(|e| panic!("offset {offset}: opened but inconsistent: {e}"));
            }
        }
    }
    eprintln!("damaged copies refused: {refused}");
    assert!(refused > 0, "no damage was detected at all");

    for keep in [0usize, 100, 4096, bytes.len() / 2, bytes.len() - 1] {
        let path = dir.path().join(format!("truncated{keep}"));
        std::fs::write(&path, &bytes[..keep]).unwrap();
        match Store::open(&path, &fx.genesis) {
            // An empty file is a fresh database.
            Ok(store) if keep == 0 => assert_eq!(store.tip().height, 0),
            Ok(_) => panic!("truncated to {keep} bytes but opened"),
            Err(_) => {}
        }
    }
}

#[test]
fn final_commit_after_tentative_ones_drops_their_undo() {
    let dir = tempfile::tempdir().unwrap();
    let fx = fixture();
    let store = Store::open(&dir.path().join("db"), &fx.genesis).unwrap();
    commit(
        &fx,
        &store,
        vec![fx.transfer(0, 1, 1, 0, 0)],
        Finality::Tentative,
    );
    commit(
        &fx,
        &store,
        vec![fx.transfer(0, 1, 1, 0, 1)],
        Finality::Tentative,
    );
    commit(
        &fx,
        &store,
        vec![fx.transfer(0, 1, 1, 0, 2)],
        Finality::Final,
    );
    assert_eq!(store.finalized_height(), 3);
    assert!(matches!(
        store.rewind_to(2),
        Err(StoreError::BelowFinalized { .. })
    ));
    store.verify_chain(Some((&fx.genesis, &fx.ledger))).unwrap();
}

#[test]
fn tx_index_serves_lookups_before_and_after_merging_and_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let fx = fixture();
    let mut blocks = Vec::new();
    {
        let store = Store::open(&path, &fx.genesis).unwrap();
        for nonce in 0..6 {
            blocks.push(commit(
                &fx,
                &store,
                vec![
                    fx.transfer(0, 1, 1, 0, nonce),
                    fx.transfer(1, 2, 1, 0, nonce),
                ],
                Finality::Tentative,
            ));
        }
        assert_eq!(store.tx_backlog(), 6);
        let lookup =
            |block: &Block, i: usize| store.transaction(&block.txs[i].id()).unwrap().unwrap();
        assert_eq!(lookup(&blocks[2], 1).1.height, 3);
        assert_eq!(store.index_transactions(4).unwrap(), 4);
        assert_eq!(store.tx_indexed_height(), 4);
        assert_eq!(store.tx_backlog(), 2);
        for block in &blocks {
            for (i, tx) in block.txs.iter().enumerate() {
                let (found, location) = lookup(block, i);
                assert_eq!(&found, tx);
                assert_eq!(location.block, block.hash());
                assert!(store.is_committed(&tx.id()).unwrap());
            }
        }
        store.verify_chain(Some((&fx.genesis, &fx.ledger))).unwrap();
    }
    // Reopen: blocks 5 and 6 are indexed in memory again from their bodies.
    let store = Store::open(&path, &fx.genesis).unwrap();
    assert_eq!(store.tx_indexed_height(), 4);
    assert!(store.transaction(&blocks[5].txs[0].id()).unwrap().is_some());
    assert!(store.is_committed(&blocks[5].txs[0].id()).unwrap());
    store.verify_chain(Some((&fx.genesis, &fx.ledger))).unwrap();
    // Rewinding below the indexed height removes table entries too.
    store.rewind_to(2).unwrap();
    assert_eq!(store.tx_indexed_height(), 2);
    assert!(store.transaction(&blocks[3].txs[0].id()).unwrap().is_none());
    assert!(store.transaction(&blocks[5].txs[0].id()).unwrap().is_none());
    assert!(store.transaction(&blocks[1].txs[1].id()).unwrap().is_some());
    assert!(!store.is_committed(&blocks[3].txs[0].id()).unwrap());
    assert!(!store.is_committed(&blocks[5].txs[0].id()).unwrap());
    assert!(store.is_committed(&blocks[1].txs[1].id()).unwrap());
    store.verify_chain(Some((&fx.genesis, &fx.ledger))).unwrap();
}

#[test]
fn snapshot_install_replaces_state_and_leaves_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let fx = fixture();
    // A second store runs ahead; the first installs its state at height 4 as a snapshot.
    let ahead = ahead_by_four(&fx, dir.path());
    let store = Store::open(&path, &fx.genesis).unwrap();
    let b1 = commit(
        &fx,
        &store,
        vec![fx.transfer(0, 1, 3, 0, 0)],
        Finality::Final,
    );
    let (header, accounts) = snapshot_at_four(&ahead);
    store
        .install_snapshot(
            &header,
            &accounts,
            b"proof",
            &[EngineWrite::Put(b"k".to_vec(), b"v".to_vec())],
        )
        .unwrap();
    assert_eq!(store.tip().height, 4);
    assert_eq!(store.base_height(), 4);
    assert_eq!(store.engine_get(b"k").unwrap(), Some(b"v".to_vec()));
    assert_eq!(store.account(&fx.addresses[0]).unwrap().nonce, 4);
    assert!(
        store.block_at(3).unwrap().is_none(),
        "heights in the gap have no block"
    );
    assert_eq!(store.block_at(1).unwrap().unwrap(), b1);
    assert!(store.transaction(&b1.txs[0].id()).unwrap().is_some());
    // The chain continues on top of the snapshot, and survives a reopen.
    let b5 = {
        let reader = ahead.reader().unwrap();
        let built = fx
            .ledger
            .build_block(
                &reader,
                &header,
                &BlockTemplate {
                    proposer: fx.keys[3].public(),
                    timestamp_ms: header.timestamp_ms + 1,
                    seal: Seal::default(),
                    max_txs: 10,
                },
                vec![fx.transfer(1, 2, 1, 0, 0)],
            )
            .unwrap();
        store
            .commit_block(&built.block, &built.changes, &[], Finality::Final, &[])
            .unwrap();
        built.block
    };
    store.verify_chain(Some((&fx.genesis, &fx.ledger))).unwrap();
    drop(store);
    let store = Store::open(&path, &fx.genesis).unwrap();
    assert_eq!(store.tip().hash, b5.hash());
    let report = store.verify_chain(Some((&fx.genesis, &fx.ledger))).unwrap();
    assert!(!report.replayed);
    assert!(matches!(
        store.install_snapshot(&header, &accounts, &[], &[]),
        Err(StoreError::NotOnTip { .. })
    ));

    // History below the snapshot is filled from the top down, each block pinned by its child.
    let history = history_of(&ahead);
    let mut forged = history[3].clone();
    forged.0.header.timestamp_ms += 1;
    assert!(matches!(
        store.backfill(&[forged]),
        Err(StoreError::NotInChain { height: 4, .. })
    ));
    assert_eq!(store.backfill(&history[2..]).unwrap(), 2);
    assert_eq!(store.base_height(), 2);
    assert_eq!(
        store.backfill(&history).unwrap(),
        2,
        "block 1 was already there"
    );
    assert_eq!(store.base_height(), 0);
    for h in 1..=4 {
        assert_eq!(
            store.block_at(h).unwrap().unwrap(),
            history[h as usize - 1].0
        );
    }
    assert!(
        store
            .transaction(&history[2].0.txs[0].id())
            .unwrap()
            .is_some()
    );
    let report = store.verify_chain(Some((&fx.genesis, &fx.ledger))).unwrap();
    assert!(
        report.replayed,
        "with history back, the chain replays from genesis"
    );
}

#[test]
fn recent_blocks_end_at_the_tip_with_proofs_and_undo_above_the_finalized_height() {
    let dir = tempfile::tempdir().unwrap();
    let fx = fixture();
    let store = Store::open(&dir.path().join("db"), &fx.genesis).unwrap();
    let mut blocks = vec![fx.genesis.block.clone()];
    for nonce in 0..4 {
        blocks.push(commit(
            &fx,
            &store,
            vec![fx.transfer(0, 1, 10, 1, nonce)],
            Finality::Tentative,
        ));
    }
    store.set_finalized(2).unwrap();

    let recent = store.recent_blocks(3).unwrap();
    let heights: Vec<u64> = recent.iter().map(|r| r.block.header.height).collect();
    assert_eq!(heights, vec![2, 3, 4]);
    assert_eq!(recent[2].block, blocks[4]);
    assert!(recent.iter().all(|r| r.proof == b"proof"));
    // Block 2 is final: its undo data is gone; 3 and 4 can still be rewound.
    assert_eq!(recent[0].undo, None);
    let undo = recent[2].undo.clone().unwrap();
    let sender = undo.iter().find(|(a, _)| *a == fx.addresses[0]).unwrap().1;
    assert_eq!(sender.nonce, 3);

    // Asking for more than exists stops at genesis, whose proof is empty.
    let all = store.recent_blocks(100).unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(all[0].block, blocks[0]);
    assert!(all[0].proof.is_empty());
    assert!(store.recent_blocks(0).unwrap().is_empty());

    // After a rewind the list ends at the new tip.
    store.rewind_to(3).unwrap();
    let recent = store.recent_blocks(2).unwrap();
    assert_eq!(recent.last().unwrap().block, blocks[3]);
}

#[test]
fn the_tx_index_file_is_rebuilt_when_missing_damaged_foreign_or_ahead() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let fx = fixture();
    let mut blocks = Vec::new();
    let index_file = {
        let store = Store::open(&path, &fx.genesis).unwrap();
        for nonce in 0..4 {
            blocks.push(commit(
                &fx,
                &store,
                vec![fx.transfer(0, 1, 1, 0, nonce)],
                Finality::Tentative,
            ));
        }
        assert_eq!(store.index_transactions(4).unwrap(), 4);
        store.index_path().to_path_buf()
    };
    let all_found = |store: &Store| {
        blocks.iter().all(|b| {
            store
                .transaction(&b.txs[0].id())
                .unwrap()
                .is_some_and(|(_, at)| at.block == b.hash())
        })
    };
    // Missing: every block is indexed in memory again.
    std::fs::remove_file(&index_file).unwrap();
    {
        let store = Store::open(&path, &fx.genesis).unwrap();
        assert_eq!(store.tx_indexed_height(), 0);
        assert!(all_found(&store));
        store.verify_chain(Some((&fx.genesis, &fx.ledger))).unwrap();
        store.index_transactions(4).unwrap();
    }
    // Damaged: the same.
    std::fs::write(&index_file, b"not a database").unwrap();
    {
        let store = Store::open(&path, &fx.genesis).unwrap();
        assert_eq!(store.tx_indexed_height(), 0);
        assert!(all_found(&store));
        store.verify_chain(Some((&fx.genesis, &fx.ledger))).unwrap();
    }
    // Ahead of the chain (say the chain's file came back from an older copy): started again.
    let older = dir.path().join("older");
    {
        let store = Store::open(&older, &fx.genesis).unwrap();
        commit(
            &fx,
            &store,
            vec![fx.transfer(0, 1, 1, 0, 0)],
            Finality::Final,
        );
    }
    {
        let store = Store::open(&path, &fx.genesis).unwrap();
        store.index_transactions(4).unwrap();
    }
    std::fs::copy(&index_file, super::tx_index::index_path(&older)).unwrap();
    let store = Store::open(&older, &fx.genesis).unwrap();
    assert_eq!(store.tx_indexed_height(), 0);
    assert!(store.transaction(&blocks[3].txs[0].id()).unwrap().is_none());
    store.verify_chain(Some((&fx.genesis, &fx.ledger))).unwrap();
}

#[test]
fn block_commits_do_not_wait_for_an_index_merge() {
    let dir = tempfile::tempdir().unwrap();
    let fx = fixture();
    let store = Store::open(&dir.path().join("db"), &fx.genesis).unwrap();
    commit(
        &fx,
        &store,
        vec![fx.transfer(0, 1, 1, 0, 0)],
        Finality::Final,
    );
    // A merge in progress holds the index writer for its whole write.
    let merging = store.index_writer();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let block = commit(
                &fx,
                &store,
                vec![fx.transfer(1, 2, 1, 0, 0)],
                Finality::Final,
            );
            done.send(block.header.height).unwrap();
        });
        assert_eq!(
            finished
                .recv_timeout(std::time::Duration::from_secs(30))
                .unwrap(),
            2
        );
        drop(merging);
    });
    assert_eq!(store.index_transactions(8).unwrap(), 2);
}

#[test]
fn an_index_file_that_missed_a_snapshot_or_a_backfill_is_repaired_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let fx = fixture();
    let ahead = ahead_by_four(&fx, dir.path());
    let (header, accounts) = snapshot_at_four(&ahead);
    let history = history_of(&ahead);
    {
        let store = Store::open(&path, &fx.genesis).unwrap();
        commit(
            &fx,
            &store,
            vec![fx.transfer(0, 1, 3, 0, 0)],
            Finality::Final,
        );
        store
            .install_snapshot(&header, &accounts, &[], &[])
            .unwrap();
        // A crash between the chain's commit and the index file's: it still ends at height 1.
        store.index.add(&[], Some(0), Some(1)).unwrap();
    }
    {
        let store = Store::open(&path, &fx.genesis).unwrap();
        assert_eq!(store.tx_indexed_height(), 4);
        store.verify_chain(None).unwrap();
        // Backfill heights 4 down to 2 (1 was there), then a crash before their index entries
        // are written.
        assert_eq!(store.backfill(&history[1..]).unwrap(), 4);
        let ids: Vec<Hash> = history[1..].iter().map(|(b, _)| b.txs[0].id()).collect();
        store.index.remove(&ids, 4).unwrap();
        store.index.add(&[], Some(5), None).unwrap();
    }
    let store = Store::open(&path, &fx.genesis).unwrap();
    for (block, _) in &history {
        let (_, at) = store.transaction(&block.txs[0].id()).unwrap().unwrap();
        assert_eq!(at.block, block.hash());
    }
    store.verify_chain(Some((&fx.genesis, &fx.ledger))).unwrap();
}

#[test]
fn a_snapshot_over_deferred_commits_leaves_every_older_block_findable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let fx = fixture();
    let ahead = ahead_by_four(&fx, dir.path());
    let store = Store::open(&path, &fx.genesis).unwrap();
    // Two blocks committed without an fsync (as Raft defers them), then a snapshot.
    let mut deferred = Vec::new();
    for nonce in 0..2 {
        let built = next_block(&fx, &store, vec![fx.transfer(0, 1, 3, 0, nonce)]);
        store
            .commit_block_with(
                &built.block,
                &built.changes,
                &[],
                Finality::Final,
                &[],
                CommitDurability::Deferred,
            )
            .unwrap();
        deferred.push(built.block);
    }
    // A merge now stops short of them: they are not on disk yet.
    assert_eq!(store.index_transactions(8).unwrap(), 0);
    let (header, accounts) = snapshot_at_four(&ahead);
    store
        .install_snapshot(&header, &accounts, &[], &[])
        .unwrap();
    drop(store);
    let store = Store::open(&path, &fx.genesis).unwrap();
    for block in &deferred {
        let (_, at) = store.transaction(&block.txs[0].id()).unwrap().unwrap();
        assert_eq!(at.block, block.hash());
    }
    store.verify_chain(None).unwrap();
}
