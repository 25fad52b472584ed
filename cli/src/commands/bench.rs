//! `synod bench`: drives signed transactions into a live testnet and reports committed tx/s and
//! commit latency percentiles; with `--failover`, kills the leader repeatedly and times how long
//! the chain stands still.
//!
//! Latency is measured by the client: from the moment a transaction's batch was sent to the
//! moment the client saw it in a committed block. It watches the leader, where a commit is
//! decided (followers learn of it with the next append), polling its height every millisecond
//! and reading each new block's transaction ids.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use nix::sys::signal::Signal;
use serde_json::json;
use synod_genesis::{Genesis, Home};
use synod_node::rpc::client::RpcClient;

use super::testnet::InitArgs;
use crate::cluster::metric_sum;
use crate::load::flood::Flood;
use crate::load::sign::{next_nonces, sign_all};
use crate::load::stats::{ms, percentile};
use crate::load::{Offer, Watch, drive, lanes_by_account};
use crate::procs;
use crate::scratch::Scratch;
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
    /// Strangers (fresh keys, no validator) that flood every node during the runs with forged,
    /// malformed and oversized envelopes and bad sync requests; 0: none.
    #[arg(long, default_value_t = 0)]
    flood: usize,
    /// Messages per second the flood sends in all (the strangers run in this process and share
    /// its CPU with the nodes).
    #[arg(long, default_value_t = 2_000)]
    flood_rate: u64,
    /// Width in seconds of the windows a long run is cut into (a row each: committed tx/s and
    /// latency as the chain grows); runs shorter than three windows print none.
    #[arg(long, default_value_t = 10)]
    window: u64,
    /// An engine parameter for the testnet the benchmark creates (`--param name=value`, as for
    /// `testnet init`).
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = synod_genesis::overrides::parse_param)]
    params: Vec<(String, String)>,
    /// Each node's `max_pending_txs` in the testnet the benchmark creates: a lower one turns
    /// clients away sooner and keeps the queues, and so latency, short under overload.
    #[arg(long, default_value_t = synod_genesis::DEFAULT_MAX_PENDING_TXS)]
    max_pending_txs: usize,
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
    /// Consensus messages and bytes all nodes sent per block committed during the run.
    per_block: Option<(f64, f64)>,
    /// The largest node's resident memory before and after the run, in bytes.
    rss: Option<(u64, u64)>,
    /// Per window of `--window` seconds: transactions committed and their latencies (sorted).
    windows: Vec<(usize, Vec<Duration>)>,
}

/// The resident memory of the largest running node of the testnet, in bytes.
fn largest_rss(bench: &Scratch) -> Option<u64> {
    (0..bench.cluster.len())
        .filter_map(|i| procs::running_pid(&bench.cluster.home(i)))
        .filter_map(procs::rss_bytes)
        .max()
}

/// Prints a run's windows, when it lasted at least three.
fn print_windows(run: usize, width: u64, windows: &[(usize, Vec<Duration>)]) {
    if windows.len() < 3 {
        return;
    }
    let mut table = Table::new(["from (s)", "committed", "tx/s", "p50", "p99"]);
    for (i, (committed, latencies)) in windows.iter().enumerate() {
        table.row([
            (i as u64 * width).to_string(),
            committed.to_string(),
            format!("{:.0}", *committed as f64 / width.max(1) as f64),
            ms(percentile(latencies, 50.0)),
            ms(percentile(latencies, 99.0)),
        ]);
    }
    println!(
        "
run {run}, per {width} s window (by commit time):
{}",
        table.render()
    );
}

fn setup(args: &BenchArgs) -> anyhow::Result<Scratch> {
    match &args.dir {
        Some(dir) => Scratch::adopt(dir),
        None => Scratch::create(
            &InitArgs {
                engine: args.engine.clone(),
                validators: args.validators,
                accounts: args.accounts,
                balance: 1_000_000_000_000,
                dir: std::env::temp_dir().join(format!("synod-bench-{}", std::process::id())),
                chain_id: Some(format!("synod-bench-{}", args.engine)),
                base_port: 0,
                random_keys: false,
                force: true,
                params: args.params.clone(),
                pow: Default::default(),
                first_account_key: None,
                max_pending_txs: args.max_pending_txs,
            },
            args.keep,
        ),
    }
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let bench = setup(&args)?;
    if args.failover {
        failover(&bench, args.trials)
    } else {
        throughput(&bench, &args)
    }
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

fn throughput(bench: &Scratch, args: &BenchArgs) -> anyhow::Result<()> {
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
        "msgs/block",
        "kB/block",
        "node RSS MB",
    ]);
    let dropped_before = dropped_at_edge(bench);
    let flood = match args.flood {
        0 => None,
        strangers => Some(start_flood(bench, strangers, args.flood_rate)?),
    };
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
            result
                .per_block
                .map_or("-".into(), |(m, _)| format!("{m:.0}")),
            result
                .per_block
                .map_or("-".into(), |(_, b)| format!("{:.1}", b / 1000.0)),
            result.rss.map_or("-".into(), |(before, after)| {
                format!("{} -> {}", before >> 20, after >> 20)
            }),
        ]);
        results.push(result);
    }
    println!(
        "{}",
        key_values([
            (
                "testnet",
                format!(
                    "{} ({} validators, {})",
                    bench.dir().display(),
                    bench.cluster.len(),
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
    let flooded = flood.map(|flood| flood.stop());
    println!("\n{}", table.render());
    for (run, result) in results.iter().enumerate() {
        print_windows(run + 1, args.window, &result.windows);
    }
    if let Some(report) = flooded {
        let dropped = dropped_at_edge(bench).saturating_sub(dropped_before);
        println!(
            "\nflood: {} strangers sent {} messages in {:.1} s ({:.0}/s; {} refused by their own queues); the nodes dropped {dropped} inbound messages",
            report.strangers,
            report.sent,
            report.elapsed.as_secs_f64(),
            report.sent as f64 / report.elapsed.as_secs_f64().max(1e-9),
            report.refused,
        );
    }
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

/// Starts `strangers` flooding every node of the testnet at `rate` messages per second.
fn start_flood(bench: &Scratch, strangers: usize, rate: u64) -> anyhow::Result<Flood> {
    let genesis = Genesis::load(&Home::new(bench.cluster.home(0)).genesis_path())?;
    let targets: Vec<_> = genesis
        .validators
        .iter()
        .map(|v| (v.public_key, v.address.clone()))
        .collect();
    Flood::start(strangers, rate, genesis.hash(), &targets)
}

/// Inbound messages every node dropped so far, summed over the nodes and the reasons.
fn dropped_at_edge(bench: &Scratch) -> u64 {
    (0..bench.cluster.len())
        .filter_map(|i| RpcClient::new(bench.cluster.rpc(i)).metrics().ok())
        .map(|text| metric_sum(&text, "synod_messages_dropped_total"))
        .sum::<f64>() as u64
}

fn throughput_run(bench: &Scratch, args: &BenchArgs) -> anyhow::Result<RunResult> {
    let cluster = &bench.cluster;
    let keys = cluster.account_keys()?;
    let leader = cluster.leader(None).unwrap_or(0);
    let mut client = RpcClient::new(cluster.rpc(leader));
    let status = client.call("status", json!({}))?;
    let chain_id = status["chain_id"].as_str().unwrap_or_default().to_string();
    // Proof-of-work commits are tentative: count what the watched node's branch holds at the end.
    let tentative = status["engine"].as_str() == Some("pow");
    let nonces = next_nonces(&mut client, &keys)?;
    let txs = sign_all(&keys, &nonces, &chain_id, args.txs);
    let ids: Vec<_> = txs.iter().map(|t| t.id()).collect();
    let raw: Vec<String> = txs.iter().map(|t| hex::encode(t.encode())).collect();

    let targets: Vec<String> = if args.to_leader {
        vec![cluster.rpc(leader).to_string()]
    } else {
        (0..cluster.len())
            .map(|i| cluster.rpc(i).to_string())
            .collect()
    };
    let watch_rpc = cluster.rpc(leader).to_string();
    let start_height = RpcClient::new(&watch_rpc).call("status", json!({}))?["height"]
        .as_u64()
        .unwrap_or(0);
    let round_before = cluster.max_round();
    let rss_before = largest_rss(bench);
    let traffic_before = cluster.traffic();
    let histogram_before = latency_histogram(&watch_rpc);
    let progress = indicatif::ProgressBar::new(txs.len() as u64);
    progress.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} committed  {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let watch = Watch::new(
        (0..cluster.len())
            .map(|i| cluster.rpc(i).to_string())
            .collect(),
        leader,
        start_height,
    )
    .following_reorgs(tentative);
    let offer = Offer {
        rate: args.rate,
        batch: args.batch,
        slack: Duration::from_secs(90),
    };
    let last = std::sync::Mutex::new((Instant::now(), 0usize));
    // Each account's transactions go to one node, in nonce order, as a client's do: dealt out
    // by batch, an account's nonces would reach the leader through different followers out of
    // order and wait there for each other.
    let lanes = lanes_by_account(raw.len(), keys.len(), targets.len());
    if keys.len() < targets.len() {
        println!(
            "note     {} accounts for {} nodes: each account sticks to one node, so some get no load",
            keys.len(),
            targets.len()
        );
    }
    let trace = drive(
        &raw,
        &ids,
        &targets,
        &lanes,
        &offer,
        &watch,
        &|seen, height| {
            progress.set_position(seen as u64);
            let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
            let rate = (seen - last.1) as f64 / last.0.elapsed().as_secs_f64().max(1e-9);
            progress.set_message(format!("{rate:.0} tx/s, height {height}"));
            *last = (Instant::now(), seen);
        },
    );
    progress.finish_and_clear();

    let latencies = trace.latencies(trace.started, Instant::now());
    let first = trace.first_sent();
    let end = trace.last_commit().unwrap_or(first);
    let histogram_after = latency_histogram(&watch_rpc);
    let traffic_after = cluster.traffic();
    let blocks = RpcClient::new(&watch_rpc).call("status", json!({}))?["height"]
        .as_u64()
        .unwrap_or(0)
        .saturating_sub(start_height);
    let per_block = match (traffic_before, traffic_after) {
        (Some(before), Some(after)) if blocks > 0 => Some((
            (after.0 - before.0) / blocks as f64,
            (after.1 - before.1) / blocks as f64,
        )),
        _ => None,
    };
    let pick = |p| histogram_percentile(&histogram_before, &histogram_after, p);
    let leader_latency = match (args.to_leader, pick(50.0), pick(90.0), pick(99.0)) {
        (true, Some(a), Some(b), Some(c)) => Some([a, b, c]),
        _ => None,
    };
    let windows = trace.windows(Duration::from_secs(args.window.max(1)));
    Ok(RunResult {
        admitted: trace.admitted(),
        committed: trace.done(),
        rejected: trace.rejected,
        busy: trace.busy,
        elapsed: end.saturating_duration_since(first),
        latencies,
        leader_changes: cluster.max_round().saturating_sub(round_before),
        leader_latency,
        per_block,
        rss: rss_before.zip(largest_rss(bench)),
        windows,
    })
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

fn failover(bench: &Scratch, trials: usize) -> anyhow::Result<()> {
    let cluster = &bench.cluster;
    let keys = cluster.account_keys()?;
    let key = keys.first().context("the testnet has no funded account")?;
    let mut times = Vec::new();
    let progress = indicatif::ProgressBar::new(trials as u64).with_message("failover trials");
    for _ in 0..trials {
        let leader = cluster.leader(None).context("no leader")?;
        let home = cluster.home(leader);
        let before = cluster.max_height(Some(leader));
        let survivor = (leader + 1) % cluster.len();
        let mut client = RpcClient::new(cluster.rpc(survivor));
        let status = client.call("status", json!({}))?;
        let chain_id = status["chain_id"].as_str().unwrap_or_default().to_string();
        let nonces = next_nonces(&mut client, std::slice::from_ref(key))?;
        let transfer = sign_all(std::slice::from_ref(key), &nonces, &chain_id, 1);
        let raw: Vec<String> = transfer.iter().map(|t| hex::encode(t.encode())).collect();
        procs::signal(&home, Signal::SIGKILL)?;
        let killed_at = Instant::now();
        // A client's transfer, handed to a surviving node right after the crash: PBFT changes
        // view only while work is pending, and Raft's next commit carries it.
        client.call("send_transactions", json!({ "raw": raw }))?;
        wait_until(
            "a commit after the leader was killed",
            Duration::from_secs(30),
            || cluster.max_height(Some(leader)) > before,
        )?;
        times.push(killed_at.elapsed());
        progress.inc(1);
        // Bring the node back and let it catch up before the next trial.
        wait_until("the killed node exits", Duration::from_secs(10), || {
            procs::running_pid(&home).is_none()
        })?;
        procs::start(&home)?;
        wait_until(
            "the restarted node catches up",
            Duration::from_secs(60),
            || {
                let target = cluster.max_height(Some(leader));
                cluster.status(leader).is_some_and(|s| {
                    s["height"].as_u64().unwrap_or(0) >= target
                        && s["peers"].as_u64().unwrap_or(0) + 1 >= cluster.len() as u64
                })
            },
        )?;
        wait_until("a leader", Duration::from_secs(10), || {
            cluster.leader(None).is_some()
        })?;
    }
    progress.finish_and_clear();
    let mut sorted = times.clone();
    sorted.sort();
    let mut table = Table::new([
        "failover (SIGKILL leader, send a transfer -> next commit)",
        "p50",
        "p90",
        "max",
        "trials",
    ]);
    table.row([
        format!("{} validators", cluster.len()),
        ms(percentile(&sorted, 50.0)),
        ms(percentile(&sorted, 90.0)),
        ms(sorted.last().copied().unwrap_or_default()),
        trials.to_string(),
    ]);
    println!("{}", table.render());
    Ok(())
}
