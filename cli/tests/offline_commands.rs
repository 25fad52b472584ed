//! The offline commands through the real `synod` binary: exit codes, one-line errors, and the
//! files they write.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Output;

use synod_chain::block::Seal;
use synod_chain::keyfile::read_key_file;
use synod_chain::ledger::BlockTemplate;
use synod_chain::{Finality, Memo, Store, Transaction};
use synod_genesis::{Genesis, Home, TestnetManifest};

mod support;

use support::{stderr, stdout, synod};

fn init(dir: &Path, extra: &[&str]) -> Output {
    let dir = dir.to_str().unwrap();
    let mut args = vec![
        "testnet",
        "init",
        "--dir",
        dir,
        "--validators",
        "3",
        "--accounts",
        "2",
    ];
    args.extend_from_slice(extra);
    synod(&args)
}

#[test]
fn testnet_init_then_refuse_then_force() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("net");
    let out = init(&dir, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("node2"));
    let manifest = TestnetManifest::load(&dir).unwrap();
    assert_eq!(manifest.nodes.len(), 3);

    let again = init(&dir, &[]);
    assert_eq!(again.status.code(), Some(1));
    let err = stderr(&again);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.starts_with("error: ") && err.contains("--force"),
        "{err}"
    );

    let forced = synod(&[
        "testnet",
        "init",
        "--dir",
        dir.to_str().unwrap(),
        "--force",
        "--engine",
        "pbft",
        "--validators",
        "4",
    ]);
    assert!(forced.status.success(), "{}", stderr(&forced));
    assert_eq!(TestnetManifest::load(&dir).unwrap().nodes.len(), 4);
}

#[test]
fn genesis_validate_lists_every_problem_and_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("net");
    assert!(init(&dir, &[]).status.success());
    let file = dir.join("genesis.json");
    let ok = synod(&["genesis", "validate", file.to_str().unwrap()]);
    assert!(ok.status.success());
    let hash = synod(&["genesis", "hash", file.to_str().unwrap()]);
    assert_eq!(
        stdout(&hash).trim(),
        Genesis::load(&file).unwrap().hash().to_string()
    );

    let text = std::fs::read_to_string(&file).unwrap();
    let broken = text
        .replace(
            "\"heartbeat_interval_ms\": 50",
            "\"heartbeat_interval_ms\": 900",
        )
        .replace("\"name\": \"node1\"", "\"name\": \"node0\"");
    std::fs::write(&file, broken).unwrap();
    let bad = synod(&["genesis", "validate", file.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(1));
    let err = stderr(&bad);
    assert!(err.contains("2 problem(s)"), "{err}");
    assert!(err.contains("engine.heartbeat_interval_ms"), "{err}");
    assert!(err.contains("validators[1].name: duplicate"), "{err}");

    std::fs::write(&file, "{ not json").unwrap();
    let bad = synod(&["genesis", "validate", file.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).starts_with("error: "));
}

#[test]
fn keygen_writes_private_keys_and_refuses_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("key");
    let out = synod(&["keygen", "--out", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let key = read_key_file(&path).unwrap();
    assert!(stdout(&out).contains(&key.address().to_string()));
    let again = synod(&["keygen", "--out", path.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("refusing to overwrite"));
    let show = synod(&["keygen", "--show", path.to_str().unwrap()]);
    assert!(stdout(&show).contains(&key.public().to_string()));
}

#[test]
fn inspect_reads_a_nodes_database() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("net");
    assert!(init(&dir, &[]).status.success());
    let home = dir.join("node0");
    let home_arg = home.to_str().unwrap();
    let none = synod(&["inspect", "--home", home_arg, "status"]);
    assert_eq!(none.status.code(), Some(1));
    assert!(stderr(&none).contains("has this node run yet"));

    // Commit one block with a transfer between the testnet's funded accounts.
    let loaded = Home::new(&home).load().unwrap();
    let manifest = TestnetManifest::load(&dir).unwrap();
    let sender = read_key_file(&dir.join(&manifest.accounts[0].key)).unwrap();
    let state = loaded.genesis.state();
    let ledger = synod_chain::Ledger::new(loaded.genesis.ledger_rules());
    let tx = Transaction {
        chain_id: loaded.genesis.chain_id.clone(),
        from: sender.public(),
        to: manifest.accounts[1].address,
        amount: 250,
        fee: 1,
        nonce: 0,
        memo: Memo::default(),
    }
    .sign(&sender);
    {
        let store = Store::open(&Home::new(&home).db_path(&loaded.config), &state).unwrap();
        let built = ledger
            .build_block(
                &store.reader().unwrap(),
                &state.block.header,
                &BlockTemplate {
                    proposer: loaded.key.public(),
                    timestamp_ms: state.block.header.timestamp_ms + 1,
                    seal: Seal::default(),
                    max_txs: 10,
                },
                vec![tx.clone()],
            )
            .unwrap();
        store
            .commit_block(&built.block, &built.changes, &[], Finality::Final, &[])
            .unwrap();
    }

    let status = synod(&["inspect", "--home", home_arg, "status"]);
    assert!(status.status.success(), "{}", stderr(&status));
    assert!(
        stdout(&status).contains("height            1"),
        "{}",
        stdout(&status)
    );
    let block = synod(&["inspect", "--home", home_arg, "block", "1"]);
    assert!(stdout(&block).contains(&tx.id().short()));
    let account = synod(&[
        "inspect",
        "--home",
        home_arg,
        "--json",
        "account",
        &manifest.accounts[1].address.to_string(),
    ]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&account)).unwrap();
    assert_eq!(json["balance"], 1_000_000_000u64 + 250);
    let check = synod(&["inspect", "--home", home_arg, "check"]);
    assert!(check.status.success(), "{}", stderr(&check));
    assert!(stdout(&check).contains("consistent"));
    let missing = synod(&["inspect", "--home", home_arg, "block", "7"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("no block 7"));
}
