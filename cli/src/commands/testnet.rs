//! `synod testnet`: local testnet folders and their node processes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use nix::sys::signal::Signal;
use serde_json::{Value, json};
use synod_genesis::TestnetManifest;
use synod_genesis::testnet::{self, EngineKind, TestnetOptions};
use synod_node::rpc::client::RpcClient;

use super::pow_flags::PowFlags;
use crate::procs;
use crate::table::Table;

/// `synod testnet ...`
#[derive(Subcommand, Debug)]
pub enum TestnetCommand {
    /// Write a ready testnet folder: genesis, one home per node, funded account keys.
    Init(InitArgs),
    /// Start every node of the folder (creating a default testnet if there is none) and wait
    /// until they are connected and committing.
    Up(UpArgs),
    /// A table of every node: height, role, peers, tx/s.
    Status(StatusArgs),
    /// Stop every node (SIGTERM, then SIGKILL after a grace period).
    Down(DirArgs),
    /// Wipe every node's chain data and logs, keeping keys and genesis.
    Reset(DirArgs),
    /// Kill one node (SIGKILL by default: a crash).
    Kill(NodeArgs),
    /// Start one node.
    Start(NodeArgs),
}

/// The testnet folder.
#[derive(Args, Debug)]
pub struct DirArgs {
    /// Testnet folder.
    #[arg(long, default_value = "testnet")]
    pub dir: PathBuf,
}

/// Arguments of `synod testnet up`.
#[derive(Args, Debug)]
pub struct UpArgs {
    /// Testnet folder.
    #[arg(long, default_value = "testnet")]
    pub dir: PathBuf,
    /// How long to wait for the nodes to connect and commit, in seconds.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
}

/// Arguments of `synod testnet status`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Testnet folder.
    #[arg(long, default_value = "testnet")]
    pub dir: PathBuf,
    /// Refresh every second until interrupted.
    #[arg(long)]
    pub watch: bool,
}

/// One node of a testnet.
#[derive(Args, Debug)]
pub struct NodeArgs {
    /// The node (name like node1, or index).
    pub node: String,
    /// Testnet folder.
    #[arg(long, default_value = "testnet")]
    pub dir: PathBuf,
    /// Signal for `kill`: kill (a crash) or term (an orderly stop).
    #[arg(long, default_value = "kill", value_parser = ["kill", "term"])]
    pub signal: String,
}

/// Arguments of `synod testnet init`.
#[derive(Args, Debug)]
pub struct InitArgs {
    /// Consensus engine.
    #[arg(long, default_value = "raft", value_parser = ["raft", "pbft", "pow"])]
    pub engine: String,
    /// Number of nodes (validators for raft and pbft, miners for pow).
    #[arg(long, default_value_t = 4)]
    pub validators: usize,
    /// Number of funded accounts.
    #[arg(long, default_value_t = 4)]
    pub accounts: usize,
    /// Balance of each funded account.
    #[arg(long, default_value_t = 1_000_000_000)]
    pub balance: u64,
    /// Testnet folder.
    #[arg(long, default_value = "testnet")]
    pub dir: PathBuf,
    /// Chain id (default synod-<engine>-local).
    #[arg(long)]
    pub chain_id: Option<String>,
    /// First port to use; 0 (the default) asks the OS for free ports.
    #[arg(long, default_value_t = 0)]
    pub base_port: u16,
    /// Generate random keys and a non-dev chain instead of deterministic dev keys.
    #[arg(long)]
    pub random_keys: bool,
    /// Replace the testnet already in the folder.
    #[arg(long)]
    pub force: bool,
    /// Set an engine parameter of the genesis, e.g. `--param snapshot_interval=50` (repeatable;
    /// the names are the genesis file's `engine` fields).
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = synod_genesis::overrides::parse_param)]
    pub params: Vec<(String, String)>,
    #[command(flatten)]
    pub pow: PowFlags,
}

impl InitArgs {
    /// The library's options for these arguments.
    pub fn options(&self) -> anyhow::Result<TestnetOptions> {
        let engine: EngineKind = self.engine.parse().map_err(anyhow::Error::msg)?;
        // The flags first, so that an explicit --param of the same name wins.
        let mut engine_params = self.pow.params(&self.engine)?;
        engine_params.extend(self.params.iter().cloned());
        Ok(TestnetOptions {
            dir: self.dir.clone(),
            engine,
            validators: self.validators,
            accounts: self.accounts,
            balance: self.balance,
            chain_id: self.chain_id.clone(),
            dev: !self.random_keys,
            base_port: self.base_port,
            force: self.force,
            genesis_time_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            engine_params,
        })
    }
}

pub fn run(cmd: TestnetCommand) -> anyhow::Result<()> {
    match cmd {
        TestnetCommand::Up(args) => up(&args.dir, Duration::from_secs(args.timeout), true),
        TestnetCommand::Status(args) => status(&args.dir, args.watch),
        TestnetCommand::Down(args) => down(&args.dir),
        TestnetCommand::Reset(args) => reset(&args.dir),
        TestnetCommand::Kill(args) => {
            let (manifest, i) = node(&args.dir, &args.node)?;
            let home = args.dir.join(&manifest.nodes[i].home);
            let signal = if args.signal == "term" {
                Signal::SIGTERM
            } else {
                Signal::SIGKILL
            };
            if !procs::signal(&home, signal)? {
                bail!("{} is not running", manifest.nodes[i].name);
            }
            println!("sent {signal} to {}", manifest.nodes[i].name);
            Ok(())
        }
        TestnetCommand::Start(args) => {
            let (manifest, i) = node(&args.dir, &args.node)?;
            let pid = procs::start(&args.dir.join(&manifest.nodes[i].home))?;
            println!(
                "started {} (pid {pid}), rpc {}",
                manifest.nodes[i].name, manifest.nodes[i].rpc
            );
            Ok(())
        }
        TestnetCommand::Init(args) => {
            let options = args.options()?;
            let manifest = testnet::init(&options)
                .with_context(|| format!("creating a testnet in {}", options.dir.display()))?;
            println!(
                "wrote a {} testnet for chain {} in {}\n",
                args.engine,
                manifest.chain_id,
                options.dir.display()
            );
            let mut nodes = Table::new(["node", "p2p", "rpc", "home"]);
            for node in &manifest.nodes {
                nodes.row([
                    node.name.clone(),
                    node.listen.clone(),
                    node.rpc.clone(),
                    options.dir.join(&node.home).display().to_string(),
                ]);
            }
            println!("{}\n", nodes.render());
            let mut accounts = Table::new(["account", "address", "key file"]);
            for (i, account) in manifest.accounts.iter().enumerate() {
                accounts.row([
                    i.to_string(),
                    account.address.to_string(),
                    options.dir.join(&account.key).display().to_string(),
                ]);
            }
            println!("{}", accounts.render());
            Ok(())
        }
    }
}

fn load(dir: &Path) -> anyhow::Result<TestnetManifest> {
    TestnetManifest::load(dir).with_context(|| {
        format!(
            "no testnet in {} (create one with `synod testnet init`)",
            dir.display()
        )
    })
}

fn node(dir: &Path, name: &str) -> anyhow::Result<(TestnetManifest, usize)> {
    let manifest = load(dir)?;
    let index = manifest
        .node_index(name)
        .with_context(|| format!("the testnet has no node {name:?}"))?;
    Ok((manifest, index))
}

/// A node's status over RPC, or `None` if it does not answer.
fn node_status(rpc: &str) -> Option<Value> {
    RpcClient::new(rpc)
        .with_timeout(Duration::from_secs(2))
        .call("status", json!({}))
        .ok()
}

/// Starts every stopped node of `dir` (creating a default testnet first if there is none) and
/// waits until all are connected and committing.
pub fn up(dir: &Path, timeout: Duration, hints: bool) -> anyhow::Result<()> {
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
        };
        testnet::init(&args.options()?)
            .with_context(|| format!("creating a testnet in {}", dir.display()))?;
        println!("created a 4-node raft testnet in {}", dir.display());
    }
    let manifest = load(dir)?;
    for node in &manifest.nodes {
        let home = dir.join(&node.home);
        match procs::running_pid(&home) {
            Some(pid) => println!("{} already running (pid {pid})", node.name),
            None => {
                let pid = procs::start(&home)?;
                println!("started {} (pid {pid})", node.name);
            }
        }
    }
    wait_ready(dir, &manifest, timeout)?;
    if !hints {
        return Ok(());
    }
    println!();
    print_status(dir, &manifest)?;
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

/// Waits until every node answers, sees all its peers, and the chain has committed a block.
fn wait_ready(dir: &Path, manifest: &TestnetManifest, timeout: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    let n = manifest.nodes.len();
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.enable_steady_tick(Duration::from_millis(120));
    loop {
        let mut ready = 0;
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
            match node_status(&node.rpc) {
                Some(s) => {
                    let peers = s["peers"].as_u64().unwrap_or(0) as usize;
                    let height = s["height"].as_u64().unwrap_or(0);
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
            println!(
                "{n}/{n} nodes connected and committing after {:.1} s",
                started.elapsed().as_secs_f64()
            );
            return Ok(());
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

/// Renders the status table, sampling committed transactions over one second for tx/s.
fn status_table(dir: &Path, manifest: &TestnetManifest) -> String {
    let first: Vec<Option<Value>> = manifest.nodes.iter().map(|n| node_status(&n.rpc)).collect();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    // Proof of work has no rounds; its nodes show their miners' hash rates instead.
    let pow = manifest.engine == EngineKind::Pow;
    let mut table = Table::new([
        "node",
        "pid",
        "role",
        if pow { "hash rate" } else { "round" },
        "height",
        "peers",
        "mempool",
        "tx/s",
        "rpc",
    ]);
    for (node, before) in manifest.nodes.iter().zip(first) {
        let pid = procs::running_pid(&dir.join(&node.home));
        let now = node_status(&node.rpc);
        let field = |s: &Option<Value>, k: &str| {
            s.as_ref().map_or("-".to_string(), |s| match &s[k] {
                Value::String(v) => v.clone(),
                Value::Null => "-".into(),
                v => v.to_string(),
            })
        };
        let rate = match (&before, &now) {
            (Some(a), Some(b)) => {
                let delta = b["committed_txs"]
                    .as_u64()
                    .unwrap_or(0)
                    .saturating_sub(a["committed_txs"].as_u64().unwrap_or(0));
                format!("{:.0}", delta as f64 / t0.elapsed().as_secs_f64())
            }
            _ => "-".into(),
        };
        table.row([
            node.name.clone(),
            pid.map_or("down".into(), |p| p.to_string()),
            field(&now, "role"),
            if pow {
                now.as_ref()
                    .and_then(|s| s["hash_rate"].as_f64())
                    .map_or("-".into(), super::mine::format_hash_rate)
            } else {
                field(&now, "round")
            },
            field(&now, "height"),
            field(&now, "peers"),
            field(&now, "mempool"),
            rate,
            node.rpc.clone(),
        ]);
    }
    table.render()
}

fn print_status(dir: &Path, manifest: &TestnetManifest) -> anyhow::Result<()> {
    println!("{}", status_table(dir, manifest));
    Ok(())
}

fn status(dir: &Path, watch: bool) -> anyhow::Result<()> {
    let manifest = load(dir)?;
    if !watch {
        return print_status(dir, &manifest);
    }
    loop {
        let table = status_table(dir, &manifest);
        // Clear the screen and redraw from the top.
        print!(
            "\x1b[2J\x1b[H{} ({}): refreshing every second, Ctrl-C to stop\n\n{table}\n",
            manifest.chain_id,
            dir.display()
        );
        std::io::stdout().flush()?;
    }
}

fn down(dir: &Path) -> anyhow::Result<()> {
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

fn reset(dir: &Path) -> anyhow::Result<()> {
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
