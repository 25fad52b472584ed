//! Chain micro-benchmarks: signatures, encoding, merkle roots and durable block commits.
//!
//! Run with `cargo bench -p synod-chain`; figures are in the README.
#![allow(missing_docs, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use synod_chain::block::{Block, Seal};
use synod_chain::fixtures::Fixture;
use synod_chain::ledger::BlockTemplate;
use synod_chain::merkle::merkle_root;
use synod_chain::verify::{verify, verify_batch};
use synod_chain::{Finality, SignedTransaction, Store, TxVerifier};

fn txs(fx: &Fixture, n: usize, nonce_base: u64) -> Vec<SignedTransaction> {
    (0..n)
        .map(|i| {
            let from = i % fx.keys.len();
            let nonce = nonce_base + (i / fx.keys.len()) as u64;
            fx.transfer(from, (from + 1) % fx.keys.len(), 1, 1, nonce)
        })
        .collect()
}

fn signatures(c: &mut Criterion) {
    let fx = Fixture::new("bench", 256, 1_000_000, 0);
    let batch = txs(&fx, 256, 0);
    let messages: Vec<Vec<u8>> = batch.iter().map(|t| t.tx().signing_bytes()).collect();
    let mut group = c.benchmark_group("signature");
    group.throughput(Throughput::Elements(1));
    group.bench_function("sign", |b| b.iter(|| fx.keys[0].sign(&messages[0])));
    group.bench_function("verify", |b| {
        b.iter(|| verify(&batch[0].tx().from, &messages[0], batch[0].signature()).unwrap())
    });
    group.throughput(Throughput::Elements(256));
    group.bench_function("verify_batch_256", |b| {
        let items: Vec<_> = batch
            .iter()
            .zip(&messages)
            .map(|(t, m)| (&t.tx().from, m.as_slice(), t.signature()))
            .collect();
        b.iter(|| verify_batch(&items).unwrap())
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("verify_cached", |b| {
        let mut verifier = TxVerifier::new(1024);
        let id = batch[0].id();
        verifier.verify(id, &batch[0]).unwrap();
        b.iter(|| verifier.verify(id, &batch[0]).unwrap())
    });
    group.finish();
}

fn block_1000(fx: &Fixture) -> Block {
    let built = fx
        .ledger
        .build_block(
            &fx.genesis.accounts,
            &fx.genesis.block.header,
            &BlockTemplate {
                proposer: fx.keys[0].public(),
                timestamp_ms: 1,
                seal: Seal::default(),
                max_txs: 1000,
            },
            txs(fx, 1000, 0),
        )
        .unwrap();
    assert_eq!(built.block.txs.len(), 1000);
    built.block
}

fn encoding(c: &mut Criterion) {
    let fx = Fixture::new("bench", 100, 1_000_000, 0);
    let block = block_1000(&fx);
    let ids = block.tx_ids();
    let mut group = c.benchmark_group("block_1000_txs");
    group.throughput(Throughput::Elements(1000));
    group.bench_function("encode_decode", |b| {
        b.iter(|| Block::decode(&block.encode()).unwrap())
    });
    group.bench_function("merkle_root", |b| b.iter(|| merkle_root(&ids)));
    group.finish();
}

/// Builds the next 1,000-transaction block and commits it, timing only the commit.
fn commit_next(fx: &Fixture, store: &Store) -> Duration {
    let tip = store.tip();
    let reader = store.reader().unwrap();
    let parent = reader.header_at(tip.height).unwrap().unwrap();
    let built = fx
        .ledger
        .build_block(
            &reader,
            &parent,
            &BlockTemplate {
                proposer: fx.keys[0].public(),
                timestamp_ms: parent.timestamp_ms + 1,
                seal: Seal::default(),
                max_txs: 1000,
            },
            txs(fx, 1000, tip.height),
        )
        .unwrap();
    drop(reader);
    let start = Instant::now();
    store
        .commit_block(&built.block, &built.changes, &[], Finality::Final, &[])
        .unwrap();
    start.elapsed()
}

fn store_commit(c: &mut Criterion) {
    let fx = Fixture::new("bench", 1000, 1_000_000_000, 0);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("bench.redb"), &fx.genesis).unwrap();
    let mut group = c.benchmark_group("store");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(1000));
    group.bench_function("commit_block_1000_txs_fsync", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                total += commit_next(&fx, &store);
                // Keep the tx index merged the way a node does, outside the timed commit.
                if store.tx_backlog() >= 32 {
                    store.index_transactions(32).unwrap();
                }
            }
            total
        })
    });
    // The deferred tx-index merge, per block, in the batches of 32 a node uses.
    group.bench_function("index_transactions_per_1000_tx_block", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                while store.tx_backlog() < 32 {
                    commit_next(&fx, &store);
                }
                let start = Instant::now();
                store.index_transactions(32).unwrap();
                total += start.elapsed() / 32;
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, signatures, encoding, store_commit);
criterion_main!(benches);
