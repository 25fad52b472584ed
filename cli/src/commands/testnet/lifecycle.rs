//! Starting and stopping a testnet's node processes: `up` (and its quiet form for commands that
//! measure), `down` and `reset`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use synod_genesis::TestnetManifest;
use synod_genesis::testnet;

use super::status::status_table;
use super::{InitArgs, load};
use crate::cluster::{Cluster, status_of};
use crate::commands::pow_flags::PowFlags;
use crate::procs;

/// Starts every stopped node of `dir` (creating a default testnet first if there is none) and
/// waits until all are connected and committing. `byzantine` names nodes to start with a
/// Byzantine behaviour (`node0=equivocate`).
pub fn up(dir: &Path, timeout: Duration, hints: bool, byzantine: &[String]) -> anyhow::Result<()> {
    if !dir.join(testnet::MANIFEST_FILE).exists() {
        let args = InitArgs {
            engine: "raft".into(),
            validators: 4,
            accounts: 4,
            balance: 1_000_000_000,
            dir: dir.to_path_buf(),
            chain_id: None,
            base_port: 0,
            random_keys: false,
            force: false,
            params: Vec::new(),
            pow: PowFlags::default(),
            first_account_key: None,
            max_pending_txs: synod_genesis::DEFAULT_MAX_PENDING_TXS,
        };
        testnet::init(&args.options()?)
            .with_context(|| format!("creating a testnet in {}", dir.display()))?;
        println!("created a 4-node raft testnet in {}", dir.display());
    }
    let manifest = load(dir)?;
    let behaviours = byzantine_nodes(dir, &manifest, byzantine)?;
    start_stopped(dir, &manifest, &behaviours, &mut |line| println!("{line}"))?;
    wait_ready(dir, &manifest, timeout, true)?;
    if !hints {
        return Ok(());
    }
    println!();
    println!("{}", status_table(dir, &manifest));
    let rpc = &manifest.nodes[0].rpc;
    println!("\ntry next:");
    if let Some(account) = manifest.accounts.first() {
        let to = manifest.accounts.get(1).unwrap_or(account);
        println!(
            "  synod tx send --dir {} --from {} --to {} --amount 100 --wait",
            dir.display(),
            dir.join(&account.key).display(),
            to.address
        );
    }
    println!("  synod status --rpc {rpc}");
    println!("  synod testnet status --dir {} --watch", dir.display());
    println!(
        "  synod testnet kill node1 --dir {}   # crash a node; `testnet start node1` brings it back",
        dir.display()
    );
    println!("  synod testnet down --dir {}", dir.display());
    Ok(())
}

/// Starts every stopped node of the testnet in `dir` without printing anything, and waits until
/// all are connected and committing (for commands that create testnets to measure them).
pub fn up_quiet(dir: &Path, timeout: Duration) -> anyhow::Result<TestnetManifest> {
    let manifest = load(dir)?;
    start_stopped(dir, &manifest, &BTreeMap::new(), &mut |_| {})?;
    wait_ready(dir, &manifest, timeout, false)?;
    Ok(manifest)
}

/// Reads `NODE=BEHAVIOUR` pairs into node index → behaviour, each checked as the node would.
fn byzantine_nodes(
    dir: &Path,
    manifest: &TestnetManifest,
    pairs: &[String],
) -> anyhow::Result<BTreeMap<usize, String>> {
    let mut out = BTreeMap::new();
    for pair in pairs {
        let (node, behaviour) = pair
            .split_once('=')
            .with_context(|| format!("--byzantine {pair:?}: expected NODE=BEHAVIOUR"))?;
        let i = manifest
            .node_index(node)
            .with_context(|| format!("--byzantine {pair:?}: the testnet has no node {node:?}"))?;
        super::check_behaviour(&dir.join(&manifest.nodes[i].home), behaviour)?;
        if out.insert(i, behaviour.to_string()).is_some() {
            bail!("--byzantine names {node} twice");
        }
        if let Some(pid) = procs::running_pid(&dir.join(&manifest.nodes[i].home)) {
            bail!(
                "{node} is already running (pid {pid}); restart it Byzantine with `synod testnet byzantine {node} {behaviour}`"
            );
        }
    }
    Ok(out)
}

fn start_stopped(
    dir: &Path,
    manifest: &TestnetManifest,
    byzantine: &BTreeMap<usize, String>,
    report: &mut dyn FnMut(String),
) -> anyhow::Result<()> {
    for (i, node) in manifest.nodes.iter().enumerate() {
        let home = dir.join(&node.home);
        let behaviour = byzantine.get(&i);
        match (procs::running_pid(&home), behaviour) {
            (Some(pid), _) => report(format!("{} already running (pid {pid})", node.name)),
            (None, Some(b)) => {
                let pid = procs::start_with(&home, &["--byzantine", b])?;
                report(format!(
                    "started {} with --byzantine {b} (pid {pid})",
                    node.name
                ));
            }
            (None, None) => {
                let pid = procs::start(&home)?;
                report(format!("started {} (pid {pid})", node.name));
            }
        }
    }
    Ok(())
}

/// Waits until every node answers, sees all its peers, and the chain has committed a block;
/// with `show`, a spinner tells how far they are.
fn wait_ready(
    dir: &Path,
    manifest: &TestnetManifest,
    timeout: Duration,
    show: bool,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let n = manifest.nodes.len();
    let spinner = if show {
        indicatif::ProgressBar::new_spinner()
    } else {
        indicatif::ProgressBar::hidden()
    };
    spinner.enable_steady_tick(Duration::from_millis(120));
    let cluster = Cluster::new(dir, manifest.clone());
    let mut last_nudge: Option<Instant> = None;
    loop {
        let mut ready = 0;
        let mut connected = 0;
        let mut notes = Vec::new();
        for node in &manifest.nodes {
            let home = dir.join(&node.home);
            if procs::running_pid(&home).is_none() {
                spinner.finish_and_clear();
                bail!(
                    "{} exited; the end of {}:\n{}",
                    node.name,
                    procs::log_path(&home).display(),
                    procs::log_tail(&home, 15)
                );
            }
            match status_of(&node.rpc, Duration::from_secs(2)) {
                Some(s) => {
                    let peers = s["peers"].as_u64().unwrap_or(0) as usize;
                    let height = s["height"].as_u64().unwrap_or(0);
                    if peers + 1 >= n {
                        connected += 1;
                    }
                    if peers + 1 >= n && height >= 1 {
                        ready += 1;
                    } else {
                        notes.push(format!("{}: {peers} peers, height {height}", node.name));
                    }
                }
                None => notes.push(format!("{}: starting", node.name)),
            }
        }
        spinner.set_message(format!(
            "{ready}/{n} nodes connected and committing  {}",
            notes.join(", ")
        ));
        if ready == n {
            spinner.finish_and_clear();
            if show {
                println!(
                    "{n}/{n} nodes connected and committing after {:.1} s",
                    started.elapsed().as_secs_f64()
                );
            }
            return Ok(());
        }
        if ready == 0 && connected == n && last_nudge.is_none_or(|at| at.elapsed() >= NUDGE_EVERY) {
            last_nudge = Some(Instant::now());
            nudge(&cluster);
        }
        if started.elapsed() > timeout {
            spinner.finish_and_clear();
            bail!(
                "not ready after {} s: {}",
                timeout.as_secs(),
                notes.join(", ")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// How often a connected testnet at height 0 is asked for its first block.
const NUDGE_EVERY: Duration = Duration::from_secs(2);

/// Asks the node that leads a connected, empty chain to commit a first (empty) block, which shows
/// the whole testnet commits. A new Raft leader commits one by itself; a PBFT primary proposes
/// only when transactions wait, so a fresh PBFT testnet needs the nudge. Best effort: no leader
/// yet, or a refusal, means another try on a later turn.
fn nudge(cluster: &Cluster) {
    if let Some(leader) = cluster.leader(None) {
        let _ = cluster.admin(leader).call("propose", serde_json::json!({}));
    }
}

pub fn down(dir: &Path) -> anyhow::Result<()> {
    let manifest = load(dir)?;
    for node in &manifest.nodes {
        if procs::stop(&dir.join(&node.home), Duration::from_secs(10))? {
            println!("stopped {}", node.name);
        } else {
            println!("{} was not running", node.name);
        }
    }
    Ok(())
}

pub fn reset(dir: &Path) -> anyhow::Result<()> {
    let manifest = load(dir)?;
    if let Some(node) = manifest
        .nodes
        .iter()
        .find(|n| procs::running_pid(&dir.join(&n.home)).is_some())
    {
        bail!(
            "{} is running; run `synod testnet down --dir {}` first",
            node.name,
            dir.display()
        );
    }
    for node in &manifest.nodes {
        let home = synod_genesis::Home::new(dir.join(&node.home));
        let config = home.load_config()?;
        let data = home.data_dir(&config);
        if data.exists() {
            std::fs::remove_dir_all(&data)
                .with_context(|| format!("removing {}", data.display()))?;
        }
        let _ = std::fs::remove_file(procs::log_path(&home.dir));
        let _ = std::fs::remove_file(procs::pid_path(&home.dir));
        println!("reset {}", node.name);
    }
    Ok(())
}
