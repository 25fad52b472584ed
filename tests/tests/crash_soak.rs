//! Crash soak with a ledger audit: a 3-node Raft testnet of real processes under steady load from
//! retrying clients, with a random node SIGKILLed at random moments and restarted each time
//! (sometimes again right after its restart, while it is catching up by snapshot). At the end
//! every transaction a client saw committed is in every node's chain exactly once, every admitted
//! one committed or was reported dropped, nonces have no gaps, balances sum to the genesis total,
//! and every node's database replays and holds the same blocks.
//!
//! `SYNOD_SOAK_KILLS=<n>` sets the number of kills (20 by default, 100 for a long soak);
//! `SYNOD_SEED=<s>` replays the schedule's random choices.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use synod_chain::SignedTransaction;
use synod_chain::hash::Hash;
use synod_chain::keys::{Address, SecretKey};
use synod_consensus::rng::DetRng;
use synod_node::rpc::client::{ClientError, RpcClient};
use synod_tests::chain_audit::{
    account_keys, assert_databases_identical, chain_id, transfers, tx_status, wait_converged,
};
use synod_tests::test_seed;
use synod_tests::testnet::{Testnet, wait_for};

const NODES: usize = 3;
const ACCOUNTS: usize = 6;
/// Transactions per account a client keeps in flight.
const IN_FLIGHT: usize = 4;
/// A transaction not committed this long after it was sent is sent again, to another node.
const RESEND_AFTER: Duration = Duration::from_secs(4);
/// Blocks between snapshots: small, so a node that was down a moment catches up by snapshot.
const SNAPSHOT_INTERVAL: u64 = 40;

/// What the clients learned, shared with the test.
#[derive(Default)]
struct Ledger {
    /// Every id a node acknowledged with `{"id": ...}`.
    admitted: HashSet<Hash>,
    /// Ids a client saw committed.
    committed: HashSet<Hash>,
    /// Sends that reached no node (it was down) and were retried.
    unreachable: usize,
    /// Resends of transactions that took too long.
    resent: usize,
}

struct Flight {
    tx: SignedTransaction,
    sent: Instant,
    acknowledged: bool,
}

fn send(client: &mut RpcClient, tx: &SignedTransaction) -> Result<bool, ClientError> {
    match client.call(
        "send_transaction",
        json!({ "raw": hex::encode(tx.encode()) }),
    ) {
        Ok(_) => Ok(true),
        // Already pending there (an earlier attempt got through), or already committed: the
        // node has it either way.
        Err(ClientError::Rpc { code: -32010, .. }) => Ok(true),
        Err(ClientError::Rpc { code: -32012, .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The client threads, told to give up at once (and joined) if the test fails midway, so they
/// release the testnet and its drop stops every node.
struct Clients {
    abort: Arc<AtomicBool>,
    handles: Vec<std::thread::JoinHandle<()>>,
}

impl Clients {
    fn join(mut self) {
        for handle in std::mem::take(&mut self.handles) {
            handle.join().unwrap();
        }
    }
}

impl Drop for Clients {
    fn drop(&mut self) {
        self.abort.store(true, Ordering::Relaxed);
        for handle in std::mem::take(&mut self.handles) {
            let _ = handle.join();
        }
    }
}

/// One client: owns `accounts`, keeps a few transactions of each in flight, sends each to a
/// random node until one acknowledges it, and waits for the commit, resending to another node if
/// it takes too long. Stops issuing new transactions at `stop`, finishes those in flight; returns
/// at once at `abort`.
fn client(
    net: Arc<Testnet>,
    keys: Vec<(SecretKey, SecretKey)>,
    ledger: Arc<Mutex<Ledger>>,
    (stop, abort): (Arc<AtomicBool>, Arc<AtomicBool>),
    seed: u64,
) {
    let chain = chain_id(&net);
    let mut rng = DetRng::new(seed);
    let mut nonces = vec![0u64; keys.len()];
    let mut flights: Vec<VecDeque<Flight>> = (0..keys.len()).map(|_| VecDeque::new()).collect();
    let deadline_after_stop = Duration::from_secs(120);
    let mut stopped_at: Option<Instant> = None;
    loop {
        if abort.load(Ordering::Relaxed) {
            return;
        }
        if stop.load(Ordering::Relaxed) && stopped_at.is_none() {
            stopped_at = Some(Instant::now());
        }
        if let Some(at) = stopped_at {
            if flights.iter().all(VecDeque::is_empty) {
                return;
            }
            assert!(
                at.elapsed() < deadline_after_stop,
                "transactions still not committed {} s after the load stopped",
                deadline_after_stop.as_secs()
            );
        }
        for (a, (key, to)) in keys.iter().enumerate() {
            while stopped_at.is_none() && flights[a].len() < IN_FLIGHT {
                let tx = transfers(&chain, key, to, nonces[a], 1).remove(0);
                nonces[a] += 1;
                flights[a].push_back(Flight {
                    tx,
                    sent: Instant::now() - RESEND_AFTER,
                    acknowledged: false,
                });
            }
            // Send what no node has acknowledged, and resend what waited too long.
            for flight in flights[a].iter_mut() {
                if flight.acknowledged && flight.sent.elapsed() < RESEND_AFTER {
                    continue;
                }
                let node = rng.index(NODES);
                let mut c = net.client(node).with_timeout(Duration::from_secs(2));
                match send(&mut c, &flight.tx) {
                    Ok(true) => {
                        let mut l = ledger.lock().unwrap();
                        if flight.acknowledged {
                            l.resent += 1;
                        }
                        l.admitted.insert(flight.tx.id());
                        flight.acknowledged = true;
                        flight.sent = Instant::now();
                    }
                    Ok(false) => {}
                    Err(_) => ledger.lock().unwrap().unreachable += 1,
                }
            }
            // Retire what committed, oldest first.
            while let Some(front) = flights[a].front() {
                if !front.acknowledged {
                    break;
                }
                let node = rng.index(NODES);
                let mut c = net.client(node).with_timeout(Duration::from_secs(2));
                match tx_status(&mut c, &front.tx.id()).as_deref() {
                    Some("committed") => {
                        ledger.lock().unwrap().committed.insert(front.tx.id());
                        flights[a].pop_front();
                    }
                    Some("dropped") => panic!(
                        "node {node} dropped transaction {} of a funded account",
                        front.tx.id()
                    ),
                    _ => break,
                }
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn random_sigkills_under_load_lose_nothing_and_every_database_replays() {
    let kills: usize = std::env::var("SYNOD_SOAK_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let seed = test_seed();
    println!("crash soak: {kills} kills, seed {seed} (replay the schedule with SYNOD_SEED={seed})");
    let mut rng = DetRng::new(seed);
    let interval = format!("snapshot_interval={SNAPSHOT_INTERVAL}");
    let net = Arc::new(Testnet::init(
        "raft",
        NODES,
        ACCOUNTS,
        &["--param", &interval],
    ));
    net.up();
    let keys = account_keys(&net);
    let ledger: Arc<Mutex<Ledger>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let abort = Arc::new(AtomicBool::new(false));
    let clients = Clients {
        abort: abort.clone(),
        handles: (0..ACCOUNTS / 2)
            .map(|c| {
                let owned = vec![
                    (keys[2 * c].clone(), keys[(2 * c + 1) % ACCOUNTS].clone()),
                    (
                        keys[2 * c + 1].clone(),
                        keys[(2 * c + 2) % ACCOUNTS].clone(),
                    ),
                ];
                let (net, ledger) = (net.clone(), ledger.clone());
                let flags = (stop.clone(), abort.clone());
                let client_seed = seed ^ (c as u64 + 1);
                std::thread::spawn(move || client(net, owned, ledger, flags, client_seed))
            })
            .collect(),
    };

    let started = Instant::now();
    let mut caught_up_by_snapshot = 0;
    for k in 0..kills {
        std::thread::sleep(Duration::from_millis(rng.range(200, 1_200)));
        let node = rng.index(NODES);
        let height_at_kill = net.height(node);
        net.kill(node);
        if k % 5 == 4 {
            // Let the others move past a snapshot, restart, and kill it again while it catches up.
            let others: Vec<usize> = (0..NODES).filter(|i| *i != node).collect();
            let target = height_at_kill + 2 * SNAPSHOT_INTERVAL;
            let moved = (0..200).any(|_| {
                std::thread::sleep(Duration::from_millis(50));
                others.iter().any(|i| net.height(*i) >= target)
            });
            net.start(node);
            if moved {
                caught_up_by_snapshot += 1;
            }
            std::thread::sleep(Duration::from_millis(rng.range(50, 400)));
            net.kill(node);
        } else {
            std::thread::sleep(Duration::from_millis(rng.range(100, 700)));
        }
        net.start(node);
    }
    println!(
        "{kills} kills in {:.1} s ({caught_up_by_snapshot} while catching up past a snapshot)",
        started.elapsed().as_secs_f64()
    );
    stop.store(true, Ordering::Relaxed);
    clients.join();
    let ledger = Arc::try_unwrap(ledger).ok().unwrap().into_inner().unwrap();
    println!(
        "{} admitted, {} committed, {} sends to a down node retried, {} slow ones resent",
        ledger.admitted.len(),
        ledger.committed.len(),
        ledger.unreachable,
        ledger.resent
    );
    assert!(
        ledger.committed.len() >= 100,
        "too little load to mean anything"
    );
    // Every admitted transaction committed, as every node reports. The last node killed may
    // still be installing a snapshot and replaying past it (debug build, shared cores).
    wait_converged(&net, 1, Duration::from_secs(120));
    // A node that caught up by snapshot finds older transactions once it has backfilled the
    // blocks below the snapshot.
    wait_for(Duration::from_secs(120), "every node backfilled", || {
        (0..NODES).all(|i| net.status(i).is_some_and(|s| s["history_from"] == 0))
    });
    for i in 0..NODES {
        let mut c = net.client(i);
        let missing: Vec<&Hash> = ledger
            .admitted
            .iter()
            .filter(|id| tx_status(&mut c, id).as_deref() != Some("committed"))
            .collect();
        assert!(
            missing.is_empty(),
            "node {i} lacks {} admitted transactions, e.g. {} ({:?}); its status: {:?}",
            missing.len(),
            missing[0],
            c.call("get_transaction", serde_json::json!({ "id": missing[0] })),
            net.status(i)
        );
    }
    assert!(
        (0..NODES).any(|i| net.log(i).contains("installed a snapshot")),
        "no node caught up by snapshot: the soak did not exercise snapshot installs"
    );
    assert_databases_identical(&net);
    audit_chain(&net, &ledger);
}

/// Walks one node's chain: each transaction once, each account's nonces without gaps, balances
/// summing to the genesis total, and everything clients saw committed present.
fn audit_chain(net: &Testnet, ledger: &Ledger) {
    let store = net.store(0);
    let reader = store.reader().unwrap();
    let mut seen: HashMap<Hash, u64> = HashMap::new();
    let mut next_nonce: BTreeMap<Address, u64> = BTreeMap::new();
    for height in 1..=store.tip().height {
        let block = reader
            .block_at(height)
            .unwrap()
            .unwrap_or_else(|| panic!("node 0 has no block at height {height}"));
        for tx in &block.txs {
            if let Some(first) = seen.insert(tx.id(), height) {
                panic!("transaction {} is in blocks {first} and {height}", tx.id());
            }
            let expected = next_nonce.entry(tx.sender()).or_insert(0);
            assert_eq!(tx.tx().nonce, *expected, "nonce gap for {}", tx.sender());
            *expected += 1;
        }
    }
    for id in &ledger.committed {
        assert!(
            seen.contains_key(id),
            "committed transaction {id} is not in the chain"
        );
    }
    let genesis_total: u128 = net.manifest.accounts.len() as u128 * 1_000_000_000;
    let total: u128 = store
        .accounts()
        .unwrap()
        .iter()
        .map(|(_, a)| a.balance as u128)
        .sum();
    assert_eq!(
        total, genesis_total,
        "balances do not sum to the genesis total"
    );
    println!(
        "audit: {} blocks, {} transactions, each once, no nonce gaps, supply intact",
        store.tip().height,
        seen.len()
    );
}
