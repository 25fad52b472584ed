//! `synod mine`: mine N blocks on a running node now (as `bitcoin-cli generatetoaddress`), with
//! a live line of hash rate, difficulty, height and blocks found; or, with `--bench`, measure the
//! mining kernel against the portable baseline on this machine (no node needed).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Value, json};
use synod_chain::pow::kernel::Kernel;
use synod_node::miner::{bench, kernel_name, payout::parse_payout};

use super::target::Target;
use crate::table::Table;

/// Arguments of `synod mine`.
#[derive(Args, Debug)]
pub struct MineArgs {
    /// Blocks to mine (the command returns once the chain has committed them).
    #[arg(long, required_unless_present = "bench")]
    blocks: Option<u64>,
    /// Who the blocks pay: a public key (64 hex chars) or a key file. A block names its miner by
    /// public key and the ledger pays that key's address, so a bare address cannot be paid.
    /// Default: the node's payout key.
    #[arg(long, value_name = "KEY")]
    to: Option<String>,
    /// Miner threads (default: the node's configured threads, at least one; with --bench, every
    /// CPU of this machine).
    #[arg(long)]
    threads: Option<usize>,
    /// Measure the kernel's hash rate, with 1 and --threads threads, against the portable
    /// baseline; no node is needed.
    #[arg(long, conflicts_with_all = ["blocks", "to"])]
    bench: bool,
    /// Seconds per measurement with --bench.
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    #[command(flatten)]
    target: Target,
}

/// A hash rate for people: `21.3 MH/s`.
pub fn format_hash_rate(rate: f64) -> String {
    let (value, unit) = if rate >= 1e9 {
        (rate / 1e9, "GH/s")
    } else if rate >= 1e6 {
        (rate / 1e6, "MH/s")
    } else if rate >= 1e3 {
        (rate / 1e3, "kH/s")
    } else {
        (rate, "H/s")
    };
    format!("{value:.1} {unit}")
}

pub fn run(args: MineArgs) -> anyhow::Result<()> {
    if args.bench {
        return run_bench(&args);
    }
    let blocks = args.blocks.context("--blocks is required")?;
    let payout = args
        .to
        .as_deref()
        .map(|text| parse_payout(text, std::path::Path::new(".")))
        .transpose()?;
    let mut client = args.target.client()?;
    let info = client
        .call("get_mining_info", json!({}))
        .with_context(|| format!("{} cannot mine", client.addr()))?;
    let start_found = info["blocks_found"].as_u64().unwrap_or(0);
    let addr = client.addr().to_string();
    let token_client = args.target.client()?;
    let threads = args.threads;
    // The call returns when the chain has the blocks: it runs on its own thread while this one
    // shows progress.
    let call = std::thread::spawn(move || {
        let mut client = token_client.with_timeout(Duration::from_secs(24 * 3600));
        client.call(
            "mine",
            json!({ "blocks": blocks, "to": payout, "threads": threads }),
        )
    });
    let started = Instant::now();
    let line = indicatif::ProgressBar::new_spinner();
    line.enable_steady_tick(Duration::from_millis(120));
    while !call.is_finished() {
        if let Ok(info) = client.call("get_mining_info", json!({})) {
            line.set_message(live_line(&info, start_found, blocks));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    line.finish_and_clear();
    let ids = match call.join() {
        Ok(result) => result.with_context(|| format!("mining on {addr}"))?,
        Err(_) => bail!("the mining call panicked"),
    };
    let ids: Vec<String> = ids
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    println!(
        "mined {} block(s) on {addr} in {:.1} s",
        ids.len(),
        started.elapsed().as_secs_f64()
    );
    for id in ids {
        println!("{id}");
    }
    Ok(())
}

/// `hash rate | difficulty | height | found k/N`.
fn live_line(info: &Value, start_found: u64, wanted: u64) -> String {
    let found = info["mine_request"]["found"].as_u64().unwrap_or_else(|| {
        info["blocks_found"]
            .as_u64()
            .unwrap_or(0)
            .saturating_sub(start_found)
    });
    format!(
        "{}  difficulty {:.1}  height {}  found {found}/{wanted}",
        format_hash_rate(info["hash_rate"].as_f64().unwrap_or(0.0)),
        info["difficulty"].as_f64().unwrap_or(0.0),
        info["height"],
    )
}

fn run_bench(args: &MineArgs) -> anyhow::Result<()> {
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let duration = Duration::from_secs(args.seconds.max(1));
    let mut counts = vec![1];
    if threads > 1 {
        counts.push(threads);
    }
    let fastest = Kernel::fastest();
    let portable = Kernel::portable();
    let mut headers = vec!["kernel".to_string()];
    headers.extend(counts.iter().map(|t| format!("{t} thread(s)")));
    let mut table = Table::new(headers);
    let mut rates = Vec::new();
    for kernel in [fastest, portable] {
        let mut row = vec![kernel_name(&kernel).to_string()];
        let mut measured = Vec::new();
        for &count in &counts {
            let line = indicatif::ProgressBar::new_spinner().with_message(format!(
                "{} kernel, {count} thread(s), {} s",
                kernel_name(&kernel),
                duration.as_secs()
            ));
            line.enable_steady_tick(Duration::from_millis(120));
            let rate = bench::hash_rate(kernel, count, duration);
            line.finish_and_clear();
            row.push(format_hash_rate(rate));
            measured.push(rate);
        }
        table.row(row);
        rates.push(measured);
    }
    if fastest.kind() != portable.kind() {
        let mut row = vec!["speed-up".to_string()];
        row.extend(
            rates[0]
                .iter()
                .zip(&rates[1])
                .map(|(f, p)| format!("{:.2}x", f / p.max(1e-9))),
        );
        table.row(row);
    } else {
        println!("this CPU has no SHA extensions: the portable kernel is the fastest here\n");
    }
    println!("{}", table.render());
    println!(
        "\nsha256d of a 168-byte header from its midstate; each figure is the real miner's threads \
         for {} s (shared machines vary)",
        duration.as_secs()
    );
    Ok(())
}
