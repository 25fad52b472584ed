//! Proof-of-work benchmarks: mining kernel hash rates, block work and chainwork, one Bitcoin
//! retarget and one ASERT step.
//!
//! Run with `cargo bench -p synod-chain --bench pow`; kernel throughput is in elements (hashes)
//! per second, so "Melem/s" reads as MH/s.
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use synod_chain::block::HEADER_BYTES;
use synod_chain::pow::asert::{AsertAnchor, AsertParams, next_bits_asert};
use synod_chain::pow::kernel::Kernel;
use synod_chain::pow::midstate::HeaderMidstate;
use synod_chain::pow::retarget::{BitcoinRetarget, next_bits_bitcoin};
use synod_chain::pow::uint256::U256;
use synod_chain::pow::work::{Chainwork, work};
use synod_chain::target::Target;

/// Nonces per measured iteration: long enough that starting threads is noise.
const NONCES: u64 = 1 << 20;

fn kernels(c: &mut Criterion) {
    let midstate = HeaderMidstate::from_encoded(&[0x5a; HEADER_BYTES]);
    // No hash meets target 1, so every scan covers its whole range.
    let impossible = Target::from_u256(U256::ONE).unwrap();
    let mut group = c.benchmark_group("kernel");
    group.throughput(Throughput::Elements(NONCES));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    let mut available = vec![("portable", Kernel::portable())];
    match Kernel::sha_ni() {
        Some(kernel) => available.push(("sha_ni", kernel)),
        None => eprintln!("no SHA-NI on this CPU: only the portable kernel is measured"),
    }
    for (name, kernel) in available {
        group.bench_function(format!("{name}/1_thread"), |b| {
            b.iter(|| kernel.scan(&midstate, &impossible, 0..NONCES))
        });
        group.bench_function(format!("{name}/2_threads"), |b| {
            let (midstate, impossible, half) = (&midstate, &impossible, NONCES / 2);
            b.iter(|| {
                std::thread::scope(|s| {
                    let low = s.spawn(move || kernel.scan(midstate, impossible, 0..half));
                    let high = kernel.scan(midstate, impossible, half..NONCES);
                    (low.join().unwrap(), high)
                })
            })
        });
    }
    group.finish();
}

fn arithmetic(c: &mut Criterion) {
    let mut group = c.benchmark_group("arithmetic");
    group.bench_function("work/difficulty_1", |b| {
        b.iter(|| work(black_box(0x1d00ffff)))
    });
    // A hard target (Bitcoin, 2024) and the easiest regtest one: the quotient's width varies.
    group.bench_function("work/hard_target", |b| {
        b.iter(|| work(black_box(0x17035a7c)))
    });
    group.bench_function("work/regtest_limit", |b| {
        b.iter(|| work(black_box(0x207fffff)))
    });
    let block = work(0x1d00d86a).unwrap();
    group.bench_function("chainwork/add", |b| {
        let mut total = Chainwork::ZERO;
        b.iter(|| {
            total += black_box(block);
            total
        })
    });
    let bitcoin = BitcoinRetarget::new(600, 2016, 4, 0x1d00ffff).unwrap();
    group.bench_function("retarget/bitcoin", |b| {
        b.iter(|| {
            next_bits_bitcoin(
                &bitcoin,
                black_box(32_256),
                black_box(1_261_130_161),
                black_box(1_262_152_739),
                black_box(0x1d00ffff),
            )
        })
    });
    let asert = AsertParams::new(600, 172_800, 0x1d00ffff).unwrap();
    let anchor = AsertAnchor {
        height: 1,
        parent_timestamp: 0,
        bits: 0x1802aee8,
    };
    group.bench_function("retarget/asert", |b| {
        b.iter(|| next_bits_asert(&asert, &anchor, black_box(1_000), black_box(589_738)))
    });
    group.finish();
}

criterion_group!(benches, kernels, arithmetic);
criterion_main!(benches);
