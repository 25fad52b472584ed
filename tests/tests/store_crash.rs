//! Kill -9 a process that is committing blocks, at random moments, many times: every block whose
//! commit returned must survive, with no partial block, and the indexes and the replayed state
//! must agree with the blocks.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rand::{RngExt, SeedableRng};
use synod_chain::fixtures::Fixture;
use synod_chain::{Hash, Store};
use synod_tests::{ChildGuard, test_seed};

const KILLS: usize = 24;

#[test]
fn acknowledged_blocks_survive_sigkill() {
    let seed = test_seed();
    println!("seed {seed} (replay with SYNOD_SEED={seed})");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chain.redb");
    let fx = Fixture::new("crash-test", 16, 1_000_000_000, 1);
    let mut acknowledged: Vec<(u64, Hash)> = Vec::new();

    for round in 0..KILLS {
        let child = Command::new(env!("CARGO_BIN_EXE_crash-writer"))
            .arg(&db)
            .arg(rng.random_range(1..40u32).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut child = ChildGuard(child);
        let stdout = child.0.stdout.take().unwrap();
        let (lines_tx, lines_rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Let it commit a random number of blocks (at least one, so every round makes progress),
        // then kill it after a random extra delay that lands anywhere inside a commit.
        let wanted = rng.random_range(1..12usize);
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = 0;
        while seen < wanted {
            let line = lines_rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("seed {seed}: round {round}: writer stalled"));
            acknowledged.push(parse(&line));
            seen += 1;
        }
        std::thread::sleep(Duration::from_micros(rng.random_range(0..3_000)));
        child.0.kill().unwrap();
        child.0.wait().unwrap();
        reader.join().unwrap();
        // Lines printed before the kill are acknowledgements too.
        acknowledged.extend(lines_rx.try_iter().map(|line| parse(&line)));

        let store = Store::open(&db, &fx.genesis)
            .unwrap_or_else(|e| panic!("seed {seed}: round {round}: reopen failed: {e}"));
        let (last_height, _) = *acknowledged.last().unwrap();
        assert!(
            store.tip().height >= last_height,
            "seed {seed}: round {round}: tip {} below acknowledged {last_height}",
            store.tip().height
        );
        for (height, hash) in &acknowledged {
            assert_eq!(
                store.hash_at(*height).unwrap(),
                Some(*hash),
                "seed {seed}: round {round}: acknowledged block {height} lost"
            );
        }
        let report = store
            .verify_chain(Some((&fx.genesis, &fx.ledger)))
            .unwrap_or_else(|e| panic!("seed {seed}: round {round}: inconsistent after kill: {e}"));
        assert_eq!(report.height, store.tip().height);
    }
    println!(
        "{KILLS} kills, {} acknowledged blocks, all intact",
        acknowledged.len()
    );
}

fn parse(line: &str) -> (u64, Hash) {
    let mut parts = line.split_whitespace();
    assert_eq!(parts.next(), Some("committed"), "unexpected line {line:?}");
    let height = parts.next().unwrap().parse().unwrap();
    let hash = parts.next().unwrap().parse().unwrap();
    (height, hash)
}
