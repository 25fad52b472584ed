//! `synod bench`: drives signed transactions into a live testnet and reports committed tx/s and
//! commit latency percentiles; with `--failover`, kills the leader repeatedly and times how long
//! the chain stands still.
//!
//! Latency is measured by the client: from the moment a transaction's batch was sent to the
//! moment the client saw it in a committed block. It watches the leader, where a commit is
//! decided (followers learn of it with the next append), polling its height every millisecond
//! and reading each new block's transaction ids.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use nix::sys::signal::Signal;
use serde_json::{Value, json};
use synod_chain::hash::Hash;
use synod_chain::keyfile::read_key_file;
use synod_chain::keys::SecretKey;
use synod_chain::{Memo, SignedTransaction, Transaction};
use synod_genesis::TestnetManifest;
use synod_node::rpc::client::RpcClient;

use super::testnet::{InitArgs, up};
use crate::procs;
use crate::table::{Table, key_values};

/// Arguments of `synod bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Engine of the testnet the benchmark creates.
    #[arg(long, default_value = "raft", value_parser = ["raft", "pbft", "pow"])]
    engine: String,
    /// Validators of the testnet the benchmark creates.
    #[arg(long, default_value_t = 3)]
    validators: usize,
    /// Funded accounts to send from.
    #[arg(long, default_value_t = 64)]
    accounts: usize,
    /// Transactions to send.
    #[arg(long, default_value_t = 20_000)]
    txs: usize,
    /// Offered load in tx/s (0: as fast as the nodes accept).
    #[arg(long, default_value_t = 5_000)]
    rate: usize,
    /// Transactions per RPC call.
    #[arg(long, default_value_t = 250)]
    batch: usize,
    /// Send everything to the leader instead of spreading over all nodes.
    #[arg(long)]
    to_leader: bool,
    /// Use this running testnet instead of creating one.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the testnet the benchmark created (it is removed otherwise).
    #[arg(long)]
    keep: bool,
    /// Measure leader failover instead: SIGKILL the leader, time until the next commit.
    #[arg(long)]
    failover: bool,
    /// Failover trials.
    #[arg(long, default_value_t = 20)]
    trials: usize,
    /// Throughput runs, one after another on the same testnet (a row each, then a summary).
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// An engine parameter for the testnet the benchmark creates (`--param name=value`, as for
    /// `testnet init`).
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = synod_genesis::overrides::parse_param)]
    params: Vec<(String, String)>,
}

/// What one throughput run measured.
struct RunResult {
    /// Transactions the nodes acknowledged with an id.
    admitted: usize,
    /// Refused for good (not counting "busy, retry" answers, which were retried).
    rejected: Vec<String>,
    /// "Busy, retry later" answers received (each retried).
    busy: usize,
    /// Acknowledged transactions seen in a committed block.
    committed: usize,
    /// First send to last commit.
    elapsed: Duration,
    /// Send -> committed, sorted.
    latencies: Vec<Duration>,
    /// Leader changes during the run (the leader's round went up by this much).
    leader_changes: u64,
    /// The leader's own admitted -> committed latency percentiles (p50, p90, p99), when measured.
    leader_latency: Option<[Duration; 3]>,
}

/// A testnet the benchmark uses, torn down on drop if it created it.
struct Bench {
    dir: PathBuf,
    manifest: TestnetManifest,
    owned: bool,
    keep: bool,
}

impl Drop for Bench {
    fn drop(&mut self) {
        if self.owned {
            for node in &self.manifest.nodes {
                let _ = procs::stop(&self.dir.join(&node.home), Duration::from_secs(10));
            }
            if !self.keep {
                let _ = std::fs::remove_dir_all(&self.dir);
            }
        }
    }
}

fn setup(args: &BenchArgs) -> anyhow::Result<Bench> {
    let (dir, owned) = match &args.dir {
        Some(dir) => (dir.clone(), false),
        None => {
            let dir = std::env::temp_dir().join(format!("synod-bench-{}", std::process::id()));
            let init = InitArgs {
                engine: args.engine.clone(),
                validators: args.validators,
                accounts: args.accounts,
                balance: 1_000_000_000_000,
                dir: dir.clone(),
                chain_id: Some(format!("synod-bench-{}", args.engine)),
                base_port: 0,
                random_keys: false,
                force: true,
                params: args.params.clone(),
                pow: Default::default(),
            };
            synod_genesis::testnet::init(&init.options()?)
                .with_context(|| format!("creating a testnet in {}", dir.display()))?;
            (dir, true)
        }
    };
    let manifest = TestnetManifest::load(&dir)?;
    let bench = Bench {
        dir: dir.clone(),
        manifest,
        owned,
        keep: args.keep,
    };
    up(&dir, Duration::from_secs(60), false)?;
    Ok(bench)
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let bench = setup(&args)?;
    if args.failover {
        failover(&bench, args.trials)
    } else {
        throughput(&bench, &args)
    }
}

fn leader_index(manifest: &TestnetManifest, skip: Option<usize>) -> Option<usize> {
    manifest.nodes.iter().enumerate().find_map(|(i, n)| {
        if Some(i) == skip {
            return None;
        }
        let s = RpcClient::new(&n.rpc)
            .with_timeout(Duration::from_millis(500))
            .call("status", json!({}))
            .ok()?;
        (s["role"] == "leader").then_some(i)
    })
}

/// Signs `count` transfers round-robin over the accounts, continuing each account's nonces.
fn sign_all(
    keys: &[SecretKey],
    nonces: &[u64],
    chain_id: &str,
    count: usize,
) -> Vec<SignedTransaction> {
    let progress = indicatif::ProgressBar::new(count as u64).with_message("signing");
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunks: Vec<Vec<SignedTransaction>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let progress = progress.clone();
                scope.spawn(move || {
                    (t..count)
                        .step_by(threads)
                        .map(|i| {
                            let a = i % keys.len();
                            let tx = Transaction {
                                chain_id: chain_id.to_string(),
                                from: keys[a].public(),
                                to: keys[(a + 1) % keys.len()].address(),
                                amount: 1,
                                fee: 1,
                                nonce: nonces[a] + (i / keys.len()) as u64,
                                memo: Memo::default(),
                            }
                            .sign(&keys[a]);
                            progress.inc(1);
                            tx
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    progress.finish_and_clear();
    // Restore the global order i = 0..count (thread t holds i = t, t + threads, ...).
    let mut out = Vec::with_capacity(count);
    let mut iters: Vec<_> = chunks.into_iter().map(Vec::into_iter).collect();
    for i in 0..count {
        if let Some(tx) = iters[i % threads].next() {
            out.push(tx);
        }
    }
    out
}

/// Cumulative counts of the node's commit-latency histogram, by upper bound in seconds.
fn latency_histogram(rpc: &str) -> Vec<(f64, f64)> {
    let Ok(text) = RpcClient::new(rpc).metrics() else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("synod_commit_latency_seconds_bucket{le=\"")?;
            let (le, count) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, count.trim().parse().ok()?))
        })
        .collect()
}

/// A percentile of the histogram difference `after - before`, interpolated within its bucket.
fn histogram_percentile(before: &[(f64, f64)], after: &[(f64, f64)], p: f64) -> Option<Duration> {
    let delta: Vec<(f64, f64)> = after
        .iter()
        .map(|(le, n)| {
            (
                *le,
                n - before
                    .iter()
                    .find(|(l, _)| l == le)
                    .map_or(0.0, |(_, m)| *m),
            )
        })
        .collect();
    let total = delta.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let target = total * p / 100.0;
    let mut previous = (0.0, 0.0);
    for (le, count) in delta {
        if count >= target {
            if !le.is_finite() {
                return Some(Duration::from_secs_f64(previous.0));
            }
            let share = (target - previous.1) / (count - previous.1).max(1e-9);
            return Some(Duration::from_secs_f64(
                previous.0 + share * (le - previous.0),
            ));
        }
        previous = (le, count);
    }
    None
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn leader_round(manifest: &TestnetManifest) -> u64 {
    manifest
        .nodes
        .iter()
        .filter_map(|n| {
            RpcClient::new(&n.rpc)
                .with_timeout(Duration::from_millis(500))
                .call("status", json!({}))
                .ok()?["round"]
                .as_u64()
        })
        .max()
        .unwrap_or(0)
}

fn throughput(bench: &Bench, args: &BenchArgs) -> anyhow::Result<()> {
    let runs = args.runs.max(1);
    let mut results = Vec::with_capacity(runs);
    let mut table = Table::new([
        "run",
        "admitted",
        "committed",
        "busy (retried)",
        "tx/s",
        "p50",
        "p90",
        "p99",
        "leader changes",
    ]);
    for run in 1..=runs {
        let result = throughput_run(bench, args)?;
        let tps = result.committed as f64 / result.elapsed.as_secs_f64().max(1e-9);
        table.row([
            run.to_string(),
            result.admitted.to_string(),
            format!(
                "{} ({:.1}%)",
                result.committed,
                100.0 * result.committed as f64 / result.admitted.max(1) as f64
            ),
            result.busy.to_string(),
            format!("{tps:.0}"),
            ms(percentile(&result.latencies, 50.0)),
            ms(percentile(&result.latencies, 90.0)),
            ms(percentile(&result.latencies, 99.0)),
            result.leader_changes.to_string(),
        ]);
        results.push(result);
    }
    let manifest = &bench.manifest;
    println!(
        "{}",
        key_values([
            (
                "testnet",
                format!(
                    "{} ({} validators, {})",
                    bench.dir.display(),
                    manifest.nodes.len(),
                    args.engine
                )
            ),
            (
                "offered",
                if args.rate == 0 {
                    format!(
                        "{} txs as fast as accepted, batches of {}",
                        args.txs, args.batch
                    )
                } else {
                    format!(
                        "{} txs at {} tx/s in batches of {}",
                        args.txs, args.rate, args.batch
                    )
                }
            ),
        ])
    );
    println!("\n{}", table.render());
    if let Some(leader) = results.iter().find_map(|r| r.leader_latency) {
        println!(
            "\nat the leader, admitted -> committed: p50 {}, p90 {}, p99 {}",
            ms(leader[0]),
            ms(leader[1]),
            ms(leader[2])
        );
    }
    if let Some(first) = results.iter().find_map(|r| r.rejected.first()) {
        println!("\nfirst rejection: {first}");
    }
    let lost: usize = results.iter().map(|r| r.admitted - r.committed).sum();
    if lost > 0 {
        bail!("{lost} acknowledged transactions did not commit");
    }
    Ok(())
}

/// Sends `chunk` (hex transactions) until every one is admitted or refused for good, retrying
/// what the node answered "busy" for after a short pause. Returns how many "busy" answers came.
fn send_until_settled(
    client: &mut RpcClient,
    mut chunk: Vec<(usize, String)>,
    on_admitted: &mut dyn FnMut(usize, Instant),
    on_rejected: &mut dyn FnMut(String),
    deadline: Instant,
) -> usize {
    let mut busy = 0;
    let mut pause = Duration::from_millis(5);
    while !chunk.is_empty() && Instant::now() < deadline {
        let raw: Vec<&String> = chunk.iter().map(|(_, r)| r).collect();
        let now = Instant::now();
        let mut retry = Vec::new();
        match client.call("send_transactions", json!({ "raw": raw })) {
            Ok(Value::Array(results)) => {
                for ((i, raw), r) in chunk.into_iter().zip(results.iter()) {
                    match r.get("error") {
                        None => on_admitted(i, now),
                        Some(_) if r["retry"].as_bool() == Some(true) => {
                            busy += 1;
                            retry.push((i, raw));
                        }
                        Some(e) => on_rejected(e.to_string()),
                    }
                }
            }
            Ok(other) => {
                on_rejected(format!("unexpected answer: {other}"));
                return busy;
            }
            Err(e) if e.to_string().contains("-32012") => {
                busy += chunk.len();
                retry = chunk;
            }
            Err(e) => {
                for _ in &chunk {
                    on_rejected(e.to_string());
                }
                return busy;
            }
        }
        chunk = retry;
        if !chunk.is_empty() {
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }
    busy
}

fn throughput_run(bench: &Bench, args: &BenchArgs) -> anyhow::Result<RunResult> {
    let manifest = &bench.manifest;
    let dir = &bench.dir;
    let keys: Vec<SecretKey> = manifest
        .accounts
        .iter()
        .map(|a| read_key_file(&dir.join(&a.key)))
        .collect::<Result<_, _>>()?;
    if keys.is_empty() {
        bail!("the testnet has no funded accounts");
    }
    let leader = leader_index(manifest, None).unwrap_or(0);
    let mut client = RpcClient::new(&manifest.nodes[leader].rpc);
    let chain_id = client.call("status", json!({}))?["chain_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let nonces: Vec<u64> = keys
        .iter()
        .map(|k| {
            client
                .call("get_account", json!({ "address": k.address() }))
                .map(|a| a["next_nonce"].as_u64().unwrap_or(0))
        })
        .collect::<Result<_, _>>()?;
    let txs = sign_all(&keys, &nonces, &chain_id, args.txs);
    let index: HashMap<Hash, usize> = txs.iter().enumerate().map(|(i, t)| (t.id(), i)).collect();
    let raw: Vec<String> = txs.iter().map(|t| hex::encode(t.encode())).collect();

    let targets: Vec<String> = if args.to_leader {
        vec![manifest.nodes[leader].rpc.clone()]
    } else {
        manifest.nodes.iter().map(|n| n.rpc.clone()).collect()
    };
    let watch_rpc = manifest.nodes[leader].rpc.clone();
    let start_height = RpcClient::new(&watch_rpc).call("status", json!({}))?["height"]
        .as_u64()
        .unwrap_or(0);
    let round_before = leader_round(manifest);

    let histogram_before = latency_histogram(&watch_rpc);
    let sent_at: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; txs.len()]));
    let rejected = Arc::new(Mutex::new(Vec::<String>::new()));
    let busy = Arc::new(Mutex::new(0usize));
    let senders_done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let progress = indicatif::ProgressBar::new(txs.len() as u64);
    progress.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} committed  {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let batch = args.batch.max(1);
    let rate = args.rate;
    let deadline = started
        + Duration::from_secs_f64(if rate == 0 {
            0.0
        } else {
            txs.len() as f64 / rate as f64
        })
        + Duration::from_secs(90);

    let committed: Vec<Option<Instant>> = std::thread::scope(|scope| -> anyhow::Result<_> {
        // Senders: one per target node, each taking every k-th batch, paced to the offered rate.
        for (t, target) in targets.iter().enumerate() {
            let raw = &raw;
            let sent_at = sent_at.clone();
            let rejected = rejected.clone();
            let busy = busy.clone();
            let senders_done = senders_done.clone();
            let k = targets.len();
            scope.spawn(move || {
                let mut client = RpcClient::new(target);
                for (b, chunk) in raw.chunks(batch).enumerate().skip(t).step_by(k) {
                    if rate > 0 {
                        let due =
                            started + Duration::from_secs_f64((b * batch) as f64 / rate as f64);
                        if let Some(wait) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                    }
                    let chunk: Vec<(usize, String)> = chunk
                        .iter()
                        .enumerate()
                        .map(|(j, r)| (b * batch + j, r.clone()))
                        .collect();
                    let retried = send_until_settled(
                        &mut client,
                        chunk,
                        &mut |i, at| {
                            sent_at.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(at);
                        },
                        &mut |e| rejected.lock().unwrap_or_else(|e| e.into_inner()).push(e),
                        deadline,
                    );
                    *busy.lock().unwrap_or_else(|e| e.into_inner()) += retried;
                }
                senders_done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            });
        }
        // The watcher: sees each committed block once and stamps its transactions.
        let mut committed = vec![None; txs.len()];
        let mut seen = 0usize;
        let mut height = start_height;
        let mut watch = RpcClient::new(&watch_rpc);
        let mut last_report = Instant::now();
        let mut last_seen = 0usize;
        while Instant::now() < deadline {
            // Ask for the next block directly: one round trip per poll.
            while let Ok(block) =
                watch.call("get_block", json!({ "height": height + 1, "txs": "ids" }))
            {
                height += 1;
                let now = Instant::now();
                for id in block["tx_ids"].as_array().into_iter().flatten() {
                    if let Some(i) = id
                        .as_str()
                        .and_then(|s| s.parse::<Hash>().ok())
                        .and_then(|h| index.get(&h))
                        && committed[*i].is_none()
                    {
                        committed[*i] = Some(now);
                        seen += 1;
                    }
                }
            }
            progress.set_position(seen as u64);
            if last_report.elapsed() >= Duration::from_millis(500) {
                let rate = (seen - last_seen) as f64 / last_report.elapsed().as_secs_f64();
                progress.set_message(format!("{rate:.0} tx/s, height {height}"));
                last_report = Instant::now();
                last_seen = seen;
            }
            let senders_finished =
                senders_done.load(std::sync::atomic::Ordering::SeqCst) == targets.len();
            let admitted = sent_at
                .lock()
                .map_or(0, |s| s.iter().filter(|x| x.is_some()).count());
            if senders_finished && seen >= admitted {
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        Ok(committed)
    })?;
    progress.finish_and_clear();

    let sent = sent_at.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut latencies: Vec<Duration> = sent
        .iter()
        .zip(&committed)
        .filter_map(|(s, c)| Some(c.as_ref()?.saturating_duration_since(*s.as_ref()?)))
        .collect();
    latencies.sort();
    let admitted = sent.iter().flatten().count();
    let done = sent
        .iter()
        .zip(&committed)
        .filter(|(s, c)| s.is_some() && c.is_some())
        .count();
    let first = sent.iter().flatten().min().copied().unwrap_or(started);
    let last = committed.iter().flatten().max().copied().unwrap_or(first);
    let histogram_after = latency_histogram(&watch_rpc);
    let pick = |p| histogram_percentile(&histogram_before, &histogram_after, p);
    let leader_latency = match (args.to_leader, pick(50.0), pick(90.0), pick(99.0)) {
        (true, Some(a), Some(b), Some(c)) => Some([a, b, c]),
        _ => None,
    };
    let busy = *busy.lock().unwrap_or_else(|e| e.into_inner());
    Ok(RunResult {
        admitted,
        rejected: rejected.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        busy,
        committed: done,
        elapsed: last.saturating_duration_since(first),
        latencies,
        leader_changes: leader_round(manifest).saturating_sub(round_before),
        leader_latency,
    })
}

fn max_height(manifest: &TestnetManifest, skip: usize) -> u64 {
    manifest
        .nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != skip)
        .filter_map(|(_, n)| {
            RpcClient::new(&n.rpc)
                .with_timeout(Duration::from_millis(200))
                .call("status", json!({}))
                .ok()?["height"]
                .as_u64()
        })
        .max()
        .unwrap_or(0)
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) -> anyhow::Result<()> {
    let started = Instant::now();
    while !done() {
        if started.elapsed() > timeout {
            bail!("{what}: not reached within {} s", timeout.as_secs());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

fn failover(bench: &Bench, trials: usize) -> anyhow::Result<()> {
    let manifest = &bench.manifest;
    let dir: &Path = &bench.dir;
    let mut times = Vec::new();
    let progress = indicatif::ProgressBar::new(trials as u64).with_message("failover trials");
    for _ in 0..trials {
        let leader = leader_index(manifest, None).context("no leader")?;
        let home = dir.join(&manifest.nodes[leader].home);
        let before = max_height(manifest, leader);
        procs::signal(&home, Signal::SIGKILL)?;
        let killed_at = Instant::now();
        wait_until(
            "a commit after the leader was killed",
            Duration::from_secs(30),
            || max_height(manifest, leader) > before,
        )?;
        times.push(killed_at.elapsed());
        progress.inc(1);
        // Bring the node back and let it catch up before the next trial.
        wait_until("the killed node exits", Duration::from_secs(10), || {
            procs::running_pid(&home).is_none()
        })?;
        procs::start(&home)?;
        let rpc = manifest.nodes[leader].rpc.clone();
        wait_until(
            "the restarted node catches up",
            Duration::from_secs(60),
            || {
                let target = max_height(manifest, leader);
                RpcClient::new(&rpc)
                    .with_timeout(Duration::from_millis(200))
                    .call("status", json!({}))
                    .ok()
                    .is_some_and(|s| {
                        s["height"].as_u64().unwrap_or(0) >= target
                            && s["peers"].as_u64().unwrap_or(0) + 1 >= manifest.nodes.len() as u64
                    })
            },
        )?;
        wait_until("a leader", Duration::from_secs(10), || {
            leader_index(manifest, None).is_some()
        })?;
    }
    progress.finish_and_clear();
    let mut sorted = times.clone();
    sorted.sort();
    let mut table = Table::new([
        "failover (SIGKILL leader -> next commit)",
        "p50",
        "p90",
        "max",
        "trials",
    ]);
    table.row([
        format!("{} validators", manifest.nodes.len()),
        ms(percentile(&sorted, 50.0)),
        ms(percentile(&sorted, 90.0)),
        ms(sorted.last().copied().unwrap_or_default()),
        trials.to_string(),
    ]);
    println!("{}", table.render());
    Ok(())
}
