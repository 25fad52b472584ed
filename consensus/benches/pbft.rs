//! PBFT benchmarks: the simulator's speed on the Byzantine seed sweeps (seeds per second, 4 and
//! 7 replicas), and a clean 4-replica run's simulated throughput. Run with
//! `cargo bench -p synod-consensus --bench pbft`.
#![allow(missing_docs, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use synod_consensus::pbft::PbftEngine;
use synod_consensus::pbft::simulation::{PbftSimOptions, pbft_factory, random_byzantine_faults};
use synod_consensus::sim::scenario::Scenario;

fn sweep_seeds(c: &mut Criterion) {
    let mut group = c.benchmark_group("pbft_sim");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(1));
    for nodes in [4, 7] {
        let mut seed = 0;
        group.bench_function(
            format!("byzantine_random_faults_seed_{nodes}_replicas_8s"),
            |b| {
                b.iter(|| {
                    seed += 1;
                    let (scenario, options) =
                        random_byzantine_faults(seed, nodes, 8_000, PbftSimOptions::default());
                    scenario.run(pbft_factory(options)).unwrap()
                })
            },
        );
    }
    group.finish();
}

/// Simulated work per wall-clock second on a clean 4-replica network: 4,000 transactions over
/// 4 simulated seconds (the pre-signed bank holds 4,096), with the default batching delay.
fn clean_throughput(_: &mut Criterion) {
    let mut options = PbftSimOptions::default();
    options.params.batch_delay_ms = 2;
    let started = Instant::now();
    let sim = Scenario::<PbftEngine>::new("throughput", 4, 1)
        .load(1_000, 100, 4_100)
        .run(pbft_factory(options))
        .unwrap();
    let secs = started.elapsed().as_secs_f64();
    let height = sim.height(0);
    let txs: usize = (1..=height)
        .filter_map(|h| sim.block(0, h))
        .map(|b| b.txs.len())
        .sum();
    println!(
        "pbft_sim/clean_4_replicas_4s: {txs} txs in {height} blocks, {} node-commits, {} steps, {secs:.2}s wall: {:.0} simulated tx/s, {:.0} node-commits/s, {:.1}x real time",
        sim.commit_log().len(),
        sim.steps(),
        txs as f64 / secs,
        sim.commit_log().len() as f64 / secs,
        4.1 / secs
    );
}

criterion_group!(benches, sweep_seeds, clean_throughput);
criterion_main!(benches);
