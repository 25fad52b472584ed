//! Replays every input the fuzzers kept (their corpora under fuzz/corpus/<target>/ and any crash
//! reproducer under fuzz/regressions/<target>/) through the same decoders, on the stable
//! toolchain: what once crashed or covered a path keeps being tried on every test run.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use synod_tests::decoders::{TARGETS, exercise};

#[test]
fn every_kept_fuzz_input_decodes_without_a_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut replayed = 0;
    for target in TARGETS {
        for kind in ["corpus", "regressions"] {
            let dir = root.join(kind).join(target);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                let outcome = std::panic::catch_unwind(|| exercise(target, &data));
                assert!(
                    outcome.is_ok(),
                    "{} panics the {target} decoder",
                    path.display()
                );
                replayed += 1;
            }
        }
    }
    println!("replayed {replayed} kept fuzz inputs");
    assert!(
        replayed >= TARGETS.len(),
        "the kept corpora are missing from {}",
        root.display()
    );
}

/// Writes the seed inputs the corpora grew from: one valid encoding of each kind of data, made by
/// the code itself. `cargo test -p synod-tests --test fuzz_corpus -- --ignored` (re)writes them.
#[test]
#[ignore = "writes fuzz/corpus seeds; run by hand"]
fn write_seed_inputs() {
    use serde_json::json;
    use synod_chain::codec;
    use synod_chain::fixtures::Fixture;
    use synod_chain::hash::Hash;
    use synod_chain::keys::SecretKey;
    use synod_consensus::raft::RaftMessage;
    use synod_consensus::raft::messages::LogEntry;
    use synod_consensus::raft::proof::{RaftCommitProof, sign_block};

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
    };
    let fx = Fixture::new("synod-fuzz", 3, 1_000, 0);
    let me = SecretKey::from_seed([1; 32]);
    let validator = SecretKey::from_seed([2; 32]);
    let tx = fx.transfer(0, 1, 5, 1, 0);
    write("transaction", "transfer", &tx.encode());
    let built = fx
        .ledger
        .build_block(
            &fx.genesis.accounts,
            &fx.genesis.block.header,
            &synod_chain::ledger::BlockTemplate {
                proposer: validator.public(),
                timestamp_ms: 1,
                seal: Default::default(),
                max_txs: 10,
            },
            vec![tx.clone(), fx.transfer(1, 2, 3, 1, 0)],
        )
        .unwrap();
    write("block", "two_txs", &built.block.encode());
    let append = RaftMessage::Append {
        term: 3,
        prev_index: 0,
        prev_term: 0,
        entries: vec![LogEntry {
            term: 3,
            block: built.block.clone(),
            change: None,
            signature: sign_block(&validator, "synod-fuzz", &built.block.hash(), 3),
        }],
        commit: 0,
        overloaded: false,
    };
    write("raft_message", "append", &codec::encode(&append));
    write(
        "raft_message",
        "vote",
        &codec::encode(&RaftMessage::Vote {
            term: 4,
            last_index: 9,
            last_term: 3,
            transfer: false,
        }),
    );
    let envelope = synod_node::envelope::seal(
        &validator,
        &Hash([7; 32]),
        &me.public(),
        &codec::encode(&append),
    );
    write("envelope", "append", &envelope);
    write(
        "sync",
        "request",
        &codec::encode(&synod_node::sync::SyncRequest {
            from_height: 1,
            max_blocks: 64,
        }),
    );
    write(
        "sync",
        "response",
        &codec::encode(&synod_node::sync::SyncResponse {
            tip: 1,
            blocks: vec![synod_node::sync::SyncedBlock {
                block: built.block.clone(),
                proof: vec![1, 2, 3],
            }],
        }),
    );
    write(
        "rpc_body",
        "batch",
        json!([
            {"jsonrpc": "2.0", "id": 1, "method": "status"},
            {"jsonrpc": "2.0", "id": "a", "method": "get_block", "params": {"height": 1, "txs": "ids"}},
            {"jsonrpc": "2.0", "method": "send_transaction", "params": {"raw": hex::encode(tx.encode())}}
        ])
        .to_string()
        .as_bytes(),
    );
    write(
        "genesis",
        "raft",
        include_str!("../../testdata/genesis/raft.json").as_bytes(),
    );
    write(
        "node_config",
        "validator",
        b"moniker = \"node0\"\nlisten = \"127.0.0.1:26656\"\nrpc = \"127.0.0.1:26657\"\npeers = [\"127.0.0.1:26658\"]\ndata_dir = \"data\"\nlog_level = \"info\"\nrole = \"validator\"\nmin_fee = 1\n",
    );
    let journal_dir = tempfile::tempdir().unwrap();
    let path = journal_dir.path().join("mempool.journal");
    let (mut journal, _) = synod_node::mempool::journal::Journal::open(&path).unwrap();
    journal
        .append(&[tx.clone(), fx.transfer(0, 1, 5, 1, 1)])
        .unwrap();
    write("journal", "two", &std::fs::read(&path).unwrap());
    let proof = RaftCommitProof {
        term: 0,
        signature: sign_block(&validator, "synod-fuzz", &Hash([0; 32]), 0),
    };
    write("finality_proof", "raft", &codec::encode(&proof));

    use synod_consensus::pbft::{
        Ballot, Commit, CommitCertificate, PbftMessage, PrePrepare, Prepare, Signed,
    };
    use synod_consensus::pow::PowMessage;
    let ballot = Ballot {
        view: 0,
        seq: built.block.header.height,
        digest: built.block.hash(),
    };
    let pre_prepare = PbftMessage::PrePrepare {
        pre_prepare: Signed::sign(&validator, "synod-fuzz", PrePrepare(ballot)),
        block: Box::new(built.block.clone()),
    };
    write("pbft_message", "pre_prepare", &pre_prepare.encode());
    let prepare = PbftMessage::Prepare(Signed::sign(&validator, "synod-fuzz", Prepare(ballot)));
    write("pbft_message", "prepare", &prepare.encode());
    let announce = PowMessage::Announce {
        headers: vec![built.block.header],
    };
    write("pow_message", "announce", &codec::encode(&announce));
    let get_headers = PowMessage::GetHeaders {
        locator: vec![built.block.hash(), fx.genesis.block.hash()],
    };
    write("pow_message", "get_headers", &codec::encode(&get_headers));
    let mut header = Fixture::new("synod-fuzz", 1, 1, 0).genesis.block.header;
    header.proposer = validator.public();
    let certified = Ballot {
        view: 0,
        seq: header.height,
        digest: header.hash(),
    };
    let certificate = CommitCertificate {
        ballot: certified,
        signatures: vec![(
            validator.public(),
            Signed::sign(&validator, "synod-fuzz", Commit(certified)).signature,
        )],
    };
    write("pbft_certificate", "one_signer", &certificate.encode());
}
