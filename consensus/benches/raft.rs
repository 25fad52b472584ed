//! Raft benchmarks: the simulator's speed (seeds and simulated commits per second) and the
//! leader's handling of AppendEntries responses. Run with `cargo bench -p synod-consensus`.
#![allow(missing_docs, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use synod_consensus::engine::{Action, ChainState, Engine, Input, Restored, Role};
use synod_consensus::raft::{ELECTION_TIMER, RaftConfig, RaftEngine, RaftMessage};
use synod_consensus::sim::scenario::{Scenario, random_faults};
use synod_consensus::sim::{EngineFactory, bank};
use synod_genesis::RaftParams;

fn factory() -> EngineFactory<RaftEngine> {
    Box::new(|setup, restored| {
        RaftEngine::new(
            RaftConfig::new(
                setup.key.clone(),
                setup.validators.clone(),
                RaftParams::default(),
                setup.seed,
            ),
            setup.ledger.clone(),
            restored,
        )
        .map_err(|e| e.to_string())
    })
}

fn simulator(c: &mut Criterion) {
    let mut group = c.benchmark_group("sim");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(1));
    let mut seed = 0;
    group.bench_function("random_faults_seed_5_nodes_10s", |b| {
        b.iter(|| {
            seed += 1;
            random_faults::<RaftEngine>(seed, 5, 10_000)
                .run(factory())
                .unwrap()
        })
    });
    group.finish();

    // Simulated work per wall-clock second on a clean 3-node network: 4,000 transactions over
    // 4 simulated seconds (the pre-signed bank holds 4,096).
    let started = Instant::now();
    let sim = Scenario::<RaftEngine>::new("throughput", 3, 1)
        .load(1_000, 100, 4_100)
        .run(factory())
        .unwrap();
    let secs = started.elapsed().as_secs_f64();
    let height = sim.height(0);
    let txs: usize = (1..=height)
        .filter_map(|h| sim.block(0, h))
        .map(|b| b.txs.len())
        .sum();
    println!(
        "sim/clean_3_nodes_4s: {txs} txs in {height} blocks, {} node-commits, {secs:.2}s wall: {:.0} simulated tx/s, {:.0} node-commits/s, {:.0}x real time",
        sim.commit_log().len(),
        txs as f64 / secs,
        sim.commit_log().len() as f64 / secs,
        4.1 / secs
    );
}

/// A 3-node leader, elected by hand.
fn leader() -> (RaftEngine, Vec<synod_consensus::NodeId>) {
    let fx = bank::fixture();
    let ids: Vec<_> = (0..3).map(|i| bank::validator_key(i).public()).collect();
    let restored = Restored {
        engine_state: Default::default(),
        chain: ChainState {
            tip: fx.genesis.block.header,
            accounts: fx.genesis.accounts.clone(),
        },
        recent: Vec::new(),
    };
    let mut engine = RaftEngine::new(
        RaftConfig::new(
            bank::validator_key(0),
            ids.clone(),
            RaftParams::default(),
            1,
        ),
        fx.ledger.clone(),
        restored,
    )
    .unwrap();
    let mut out = Vec::new();
    engine.handle(0, Input::Start, &mut out);
    engine.handle(0, Input::Timer(ELECTION_TIMER), &mut out);
    engine.handle(
        1,
        Input::Message {
            from: ids[1],
            msg: RaftMessage::PreVoteResponse {
                term: 1,
                granted: true,
            },
        },
        &mut out,
    );
    engine.handle(
        2,
        Input::Message {
            from: ids[1],
            msg: RaftMessage::VoteResponse {
                term: 1,
                granted: true,
            },
        },
        &mut out,
    );
    assert_eq!(engine.status().role, Role::Leader);
    (engine, ids)
}

fn leader_responses(c: &mut Criterion) {
    let (mut engine, ids) = leader();
    let mut out: Vec<Action<RaftMessage>> = Vec::new();
    let last = engine.status().last_height;
    let mut group = c.benchmark_group("raft_leader");
    group.throughput(Throughput::Elements(1));
    let mut now = 10;
    group.bench_function("append_response", |b| {
        b.iter(|| {
            now += 1;
            out.clear();
            let from = ids[1 + (now as usize % 2)];
            engine.handle(
                now,
                Input::Message {
                    from,
                    msg: RaftMessage::AppendResponse {
                        term: 1,
                        success: true,
                        match_index: last,
                        conflict: None,
                    },
                },
                &mut out,
            );
        })
    });
    group.finish();
}

criterion_group!(benches, simulator, leader_responses);
criterion_main!(benches);
