//! The miner's threads against real templates: solutions meet their targets, the timestamp rolls
//! when the nonce window runs out, a new template replaces the old at once, and stopping stops.

#![allow(clippy::unwrap_used)]

use std::sync::mpsc;
use std::time::Duration;

use synod_chain::fixtures::Fixture;
use synod_chain::target::Target;

use super::*;

fn template(bits: u32, timestamp_ms: u64) -> Block {
    let mut block = Fixture::new("miner", 1, 10, 50).genesis.block;
    block.header.height = 1;
    block.header.timestamp_ms = timestamp_ms;
    block.header.seal.bits = bits;
    block
}

fn miner(threads: usize) -> (Miner, Arc<MiningStats>, mpsc::Receiver<Block>) {
    let (tx, rx) = mpsc::channel();
    let stats = Arc::new(MiningStats::default());
    let tx = std::sync::Mutex::new(tx);
    let sink: Sink = Box::new(move |block| {
        let _ = tx.lock().unwrap().send(block);
    });
    (
        Miner::new(Kernel::fastest(), threads, stats.clone(), sink),
        stats,
        rx,
    )
}

const EASY: u32 = 0x207f_ffff;
/// About 65,000 hashes a block.
const MODERATE: u32 = 0x1f00_ffff;
const UNSOLVABLE: u32 = 0x0300_0001;

#[test]
fn solutions_meet_their_target_and_count() {
    let (mut miner, stats, found) = miner(2);
    miner.mine(template(MODERATE, 1_000));
    let block = found.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(
        Target::from_compact(MODERATE)
            .unwrap()
            .is_met_by(&block.hash())
    );
    assert!(block.header.timestamp_ms >= 1_000);
    assert!(stats.hashes.get() >= 1);
    assert_eq!(stats.blocks_found.get(), 1);
    // After a solution the miner waits for the next template.
    assert!(!miner.is_mining());
    assert!(!stats.is_active());
    assert_eq!(stats.threads(), 2);
}

#[test]
fn an_exhausted_window_rolls_the_timestamp() {
    let (miner, _, found) = miner(2);
    let mut miner = miner.with_window(64);
    miner.mine(template(MODERATE, 1_000));
    let block = found.recv_timeout(Duration::from_secs(30)).unwrap();
    // 64 nonces per timestamp against ~65,000 hashes a block: solved many rolls later.
    assert!(block.header.timestamp_ms > 1_000);
    assert!(
        Target::from_compact(MODERATE)
            .unwrap()
            .is_met_by(&block.hash())
    );
    assert!(block.header.seal.nonce < 64);
}

#[test]
fn a_new_template_replaces_the_old_and_stop_stops() {
    let (mut miner, stats, found) = miner(2);
    miner.mine(template(UNSOLVABLE, 1_000));
    std::thread::sleep(Duration::from_millis(50));
    miner.mine(template(EASY, 2_000));
    let block = found.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(block.header.seal.bits, EASY);
    assert!(found.recv_timeout(Duration::from_millis(100)).is_err());

    miner.mine(template(UNSOLVABLE, 3_000));
    std::thread::sleep(Duration::from_millis(50));
    miner.stop();
    std::thread::sleep(Duration::from_millis(100));
    let after_stop = stats.hashes.get();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(stats.hashes.get(), after_stop, "no hashing after stop");
    assert!(!stats.is_active());
}

#[test]
fn the_thread_count_changes_under_a_running_template() {
    let (mut miner, stats, found) = miner(1);
    miner.mine(template(UNSOLVABLE, 1_000));
    miner.set_threads(3);
    assert_eq!(stats.threads(), 3);
    miner.set_threads(1);
    assert_eq!(stats.threads(), 1);
    assert!(stats.is_active());
    miner.mine(template(EASY, 2_000));
    assert!(found.recv_timeout(Duration::from_secs(10)).is_ok());
    drop(miner);
    assert_eq!(stats.threads(), 0);
}

#[test]
fn the_benchmark_measures_hashes() {
    let rate = bench::hash_rate(Kernel::portable(), 1, Duration::from_millis(200));
    assert!(rate > 1_000.0, "{rate}");
}
