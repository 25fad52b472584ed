//! Proof-of-work engine benchmarks: how fast blocks that extend the tip are validated and
//! committed (empty, and with 100 transfers whose signatures are verified or were verified
//! when they were relayed), and what a 100-block reorganisation costs. Run with
//! `cargo bench -p synod-consensus --bench pow`.
#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use synod_chain::block::Seal;
use synod_chain::keys::Address;
use synod_chain::ledger::{Account, BlockTemplate, Ledger, LedgerRules};
use synod_chain::{Block, SignedTransaction};
use synod_consensus::engine::{Action, ChainState, Engine, Input, Restored};
use synod_consensus::pow::{PowConfig, PowEngine, PowMessage};
use synod_consensus::sim::bank;
use synod_consensus::sim::pow::solve;
use synod_genesis::{DifficultyAlgorithm, PowParams};

const EASY: u32 = 0x207f_ffff;

fn params() -> PowParams {
    PowParams {
        initial_bits: EASY,
        pow_limit_bits: EASY,
        target_block_time_ms: 1_000,
        difficulty: DifficultyAlgorithm::Bitcoin,
        retarget_window: 100_000,
        max_reorg_depth: 1_000,
        block_reward: 50,
        ..PowParams::default()
    }
}

fn ledger() -> Ledger {
    Ledger::new(LedgerRules {
        block_reward: 50,
        ..bank::fixture().ledger.rules().clone()
    })
}

fn genesis_time() -> u64 {
    bank::fixture().genesis.block.header.timestamp_ms
}

/// `count` blocks on genesis, each with the transfers `txs(height)` gives, mined by `miner`.
fn chain(count: u64, miner: usize, txs: impl Fn(u64) -> Vec<SignedTransaction>) -> Vec<Block> {
    let fx = bank::fixture();
    let ledger = ledger();
    let mut accounts: BTreeMap<Address, Account> = fx.genesis.accounts.clone();
    let mut parent = fx.genesis.block.header;
    let mut blocks = Vec::new();
    for height in 1..=count {
        let built = ledger
            .build_block(
                &accounts,
                &parent,
                &BlockTemplate {
                    proposer: bank::validator_key(miner).public(),
                    timestamp_ms: parent.timestamp_ms + 1_000,
                    seal: Seal {
                        round: 0,
                        bits: EASY,
                        nonce: 0,
                    },
                    max_txs: 1_000,
                },
                txs(height),
            )
            .unwrap();
        assert!(built.rejected.is_empty());
        for (address, change) in &built.changes.accounts {
            accounts.insert(*address, change.after);
        }
        let mut block = built.block;
        assert!(solve(&mut block.header));
        parent = block.header;
        blocks.push(block);
    }
    blocks
}

/// Transfers of `accounts` accounts, the nonce for block `height` on a chain from genesis.
fn transfers(accounts: usize, height: u64) -> Vec<SignedTransaction> {
    (0..accounts)
        .map(|a| bank::transfer(a, height as usize - 1).clone())
        .collect()
}

fn engine() -> PowEngine {
    let fx = bank::fixture();
    let restored = Restored {
        engine_state: BTreeMap::new(),
        chain: ChainState {
            tip: fx.genesis.block.header,
            accounts: fx.genesis.accounts.clone(),
        },
        recent: Vec::new(),
    };
    let mut config = PowConfig::new(
        bank::validator_key(0).public(),
        vec![bank::validator_key(1).public()],
        params(),
        genesis_time(),
        1,
    );
    config.mining = false;
    PowEngine::new(config, ledger(), restored).unwrap()
}

fn feed(engine: &mut PowEngine, blocks: &[Block]) -> Vec<Action<PowMessage>> {
    let from = bank::validator_key(1).public();
    let mut out = Vec::new();
    for chunk in blocks.chunks(16) {
        engine.handle(
            genesis_time() + 10_000_000,
            Input::Message {
                from,
                msg: PowMessage::Blocks {
                    blocks: chunk.to_vec(),
                },
            },
            &mut out,
        );
    }
    out
}

fn validation(c: &mut Criterion) {
    let mut group = c.benchmark_group("pow_validate");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(8));
    let empty = chain(100, 1, |_| Vec::new());
    let full = chain(100, 1, |h| transfers(16, h));
    group.throughput(Throughput::Elements(100));
    group.bench_function("100_empty_blocks", |b| {
        b.iter_batched(engine, |mut e| feed(&mut e, &empty), BatchSize::LargeInput)
    });
    group.bench_function("100_blocks_of_16_transfers_signatures_unseen", |b| {
        b.iter_batched(engine, |mut e| feed(&mut e, &full), BatchSize::LargeInput)
    });
    // The transfers were relayed (and verified) before the blocks came: verify once per node.
    group.bench_function("100_blocks_of_16_transfers_signatures_cached", |b| {
        b.iter_batched(
            || {
                let mut e = engine();
                let txs: Vec<SignedTransaction> = full.iter().flat_map(|b| b.txs.clone()).collect();
                let mut out = Vec::new();
                e.handle(
                    genesis_time() + 10_000_000,
                    Input::Transactions(txs),
                    &mut out,
                );
                e
            },
            |mut e| feed(&mut e, &full),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn reorg(c: &mut Criterion) {
    let mut group = c.benchmark_group("pow_reorg");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(8));
    // Branch a: 100 blocks of 16 transfers by miner 1; branch b: 101 blocks by miner 2 with the
    // same transfers, so the reorganisation rewinds 100 blocks and commits 101.
    let txs = |h: u64| transfers(16, h);
    let a = chain(100, 1, txs);
    let b = chain(101, 2, txs);
    let setup = || {
        let mut e = engine();
        feed(&mut e, &a);
        // The side branch's first 100 blocks arrive (stored, not yet heavier).
        feed(&mut e, &b[..100]);
        e
    };
    // Throughput counts the blocks the reorganisation commits; each also has one rewound.
    group.throughput(Throughput::Elements(101));
    group.bench_function("rewind_100_commit_101", |bench| {
        bench.iter_batched(
            setup,
            |mut e| {
                let out = feed(&mut e, &b[100..]);
                assert!(
                    out.iter()
                        .any(|a| matches!(a, Action::Rewind { height: 0 }))
                );
                out
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, validation, reorg);
criterion_main!(benches);
