//! `synod testnet`: local testnet folders, their node processes, and live faults on them.

pub mod faults;
mod lifecycle;
mod status;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use nix::sys::signal::Signal;
use synod_genesis::TestnetManifest;
use synod_genesis::testnet::{self, EngineKind, TestnetOptions};

use super::pow_flags::PowFlags;
use crate::cluster::Cluster;
use crate::procs;
use crate::table::Table;
use lifecycle::{down, reset};
pub use lifecycle::{up, up_quiet};
use status::status;

/// `synod testnet ...`
#[derive(Subcommand, Debug)]
pub enum TestnetCommand {
    /// Write a ready testnet folder: genesis, one home per node, funded account keys.
    Init(InitArgs),
    /// Start every node of the folder (creating a default testnet if there is none) and wait
    /// until they are connected and committing.
    Up(UpArgs),
    /// A table of every node: height, role, peers, tx/s, injected faults.
    Status(StatusArgs),
    /// Stop every node (SIGTERM, then SIGKILL after a grace period).
    Down(DirArgs),
    /// Wipe every node's chain data and logs, keeping keys and genesis.
    Reset(DirArgs),
    /// Kill one node (SIGKILL by default: a crash).
    Kill(NodeArgs),
    /// Start one node.
    Start(StartArgs),
    /// Restart one node with a deliberate Byzantine behaviour (dev chains; see `synod node
    /// --byzantine`); `testnet start` after a `kill` brings it back honest.
    Byzantine(ByzantineArgs),
    /// Split the running testnet into groups that cannot reach each other (dev chains): every
    /// message between groups is dropped, both ways.
    Partition(faults::PartitionArgs),
    /// Remove every injected fault from every node.
    Heal(DirArgs),
    /// Delay (with jitter) and drop outbound consensus messages on every link, or on one node's
    /// links (dev chains).
    Delay(faults::DelayArgs),
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
    /// Start a node with a Byzantine behaviour, `NODE=BEHAVIOUR` (repeatable; dev chains only;
    /// see `synod node --byzantine`), e.g. `--byzantine node0=equivocate`.
    #[arg(long, value_name = "NODE=BEHAVIOUR")]
    pub byzantine: Vec<String>,
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

/// Arguments of `synod testnet start`.
#[derive(Args, Debug)]
pub struct StartArgs {
    /// The node (name like node1, or index).
    pub node: String,
    /// Testnet folder.
    #[arg(long, default_value = "testnet")]
    pub dir: PathBuf,
    /// Start it with a Byzantine behaviour (dev chains only; see `synod node --byzantine`).
    #[arg(long, value_name = "BEHAVIOUR")]
    pub byzantine: Option<String>,
}

/// Arguments of `synod testnet byzantine`.
#[derive(Args, Debug)]
pub struct ByzantineArgs {
    /// The node (name like node1, or index).
    pub node: String,
    /// The behaviour. PBFT: equivocate, silent, censor, censor=<address>, bad-block,
    /// bad-new-view, double-vote, amnesia. Raft: equivocate, silent, replay (duplicates at once).
    pub behaviour: String,
    /// Testnet folder.
    #[arg(long, default_value = "testnet")]
    pub dir: PathBuf,
}

/// Refuses `behaviour` for the node on `home` the way the node itself would (an unknown name,
/// a chain that is not a dev chain, an engine without Byzantine modes).
pub fn check_behaviour(home: &Path, behaviour: &str) -> anyhow::Result<()> {
    let genesis = synod_genesis::Genesis::load(&synod_genesis::Home::new(home).genesis_path())?;
    synod_node::RunOptions {
        byzantine: Some(behaviour.to_string()),
    }
    .behaviour(&genesis, true)?;
    Ok(())
}

/// How long a restarted node may take to answer on its RPC address.
const RESTART_TIMEOUT: Duration = Duration::from_secs(20);

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
    /// Dev key index of the first funded account (default: right after the node keys). Testnets
    /// of different sizes with the same chain id and this index fund the same accounts.
    #[arg(long, value_name = "INDEX")]
    pub first_account_key: Option<u32>,
    /// Each node's `max_pending_txs`: its mempool and engine pool size; clients are answered
    /// "busy" once a fifth of it is in blocks in flight or could go into the next ones (at
    /// least 1,000).
    #[arg(long, default_value_t = synod_genesis::DEFAULT_MAX_PENDING_TXS)]
    pub max_pending_txs: usize,
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
            first_account_key: self.first_account_key,
            max_pending_txs: self.max_pending_txs,
        })
    }
}

/// Runs a `synod testnet` subcommand.
pub fn run(cmd: TestnetCommand) -> anyhow::Result<()> {
    match cmd {
        TestnetCommand::Partition(args) => {
            let cluster = Cluster::new(&args.dir, load(&args.dir)?);
            let groups = faults::parse_groups(&cluster, &args.groups)?;
            faults::report(&cluster, faults::partition(&cluster, &groups)?)
        }
        TestnetCommand::Heal(args) => {
            let cluster = Cluster::new(&args.dir, load(&args.dir)?);
            faults::report(&cluster, faults::heal(&cluster))
        }
        TestnetCommand::Delay(args) => {
            let cluster = Cluster::new(&args.dir, load(&args.dir)?);
            faults::report(&cluster, faults::delay(&cluster, &args)?)
        }
        TestnetCommand::Up(args) => up(
            &args.dir,
            Duration::from_secs(args.timeout),
            true,
            &args.byzantine,
        ),
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
            let Some(pid) = procs::running_pid(&home) else {
                bail!("{} is not running", manifest.nodes[i].name);
            };
            procs::signal(&home, signal)?;
            // Gone before this returns: a `start` right after must not meet the old process
            // still holding the ports and the database (a process stuck in a disk write dies
            // only once the write ends).
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while procs::running_pid(&home).is_some() || procs::exiting(pid) {
                if std::time::Instant::now() > deadline {
                    // Delivered; an orderly stop may take longer, a kill waits for a disk write.
                    println!(
                        "sent {signal} to {}; it has not exited yet after 10 s",
                        manifest.nodes[i].name
                    );
                    return Ok(());
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            println!("sent {signal} to {}; it has exited", manifest.nodes[i].name);
            Ok(())
        }
        TestnetCommand::Start(args) => {
            let (manifest, i) = node(&args.dir, &args.node)?;
            let home = args.dir.join(&manifest.nodes[i].home);
            let pid = match &args.byzantine {
                Some(behaviour) => procs::start_with(&home, &["--byzantine", behaviour])?,
                None => procs::start(&home)?,
            };
            let how = args
                .byzantine
                .as_ref()
                .map(|b| format!(" with --byzantine {b}"))
                .unwrap_or_default();
            println!(
                "started {}{how} (pid {pid}), rpc {}",
                manifest.nodes[i].name, manifest.nodes[i].rpc
            );
            Ok(())
        }
        TestnetCommand::Byzantine(args) => {
            let (manifest, i) = node(&args.dir, &args.node)?;
            let name = &manifest.nodes[i].name;
            let home = args.dir.join(&manifest.nodes[i].home);
            // Refuse what the node would refuse before stopping it, so a typo costs nothing.
            check_behaviour(&home, &args.behaviour)?;
            procs::stop(&home, Duration::from_secs(5))?;
            let pid = procs::start_with(&home, &["--byzantine", &args.behaviour])?;
            // A refused behaviour ends the process at once: say why instead of "started".
            let deadline = std::time::Instant::now() + RESTART_TIMEOUT;
            while crate::cluster::status_of(&manifest.nodes[i].rpc, Duration::from_millis(500))
                .is_none()
            {
                if procs::running_pid(&home).is_none() || std::time::Instant::now() > deadline {
                    bail!(
                        "{name} did not come up with --byzantine {}:\n{}",
                        args.behaviour,
                        procs::log_tail(&home, 5)
                    );
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            println!(
                "restarted {name} with --byzantine {} (pid {pid}), rpc {}",
                args.behaviour, manifest.nodes[i].rpc
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

pub(crate) fn load(dir: &Path) -> anyhow::Result<TestnetManifest> {
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
