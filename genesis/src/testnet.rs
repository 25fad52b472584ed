//! Local testnet folders: one genesis, one home per node, funded account keys, and a manifest
//! (`testnet.toml`) that the CLI reads to find the nodes.

use std::net::TcpListener;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use synod_chain::keyfile::write_key_file;
use synod_chain::keys::{Address, SecretKey};

use crate::dev_keys::{MAX_DEV_KEYS, dev_key};
use crate::error::GenesisError;
use crate::home::{GENESIS_FILE, Home, KEY_FILE, MiningConfig, NodeConfig};
use crate::params::{EngineConfig, PbftParams, PowParams, RaftParams};
use crate::spec::{Genesis, InitialAccount, Validator};

/// The manifest's file name at the top of a testnet folder.
pub const MANIFEST_FILE: &str = "testnet.toml";
/// The folder holding funded account keys.
pub const ACCOUNTS_DIR: &str = "accounts";

/// Which engine a new testnet runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// Crash-fault Raft.
    Raft,
    /// Byzantine-fault PBFT.
    Pbft,
    /// Proof of work.
    Pow,
}

impl std::str::FromStr for EngineKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "raft" => Ok(EngineKind::Raft),
            "pbft" => Ok(EngineKind::Pbft),
            "pow" => Ok(EngineKind::Pow),
            other => Err(format!("unknown engine {other:?} (raft, pbft or pow)")),
        }
    }
}

impl EngineKind {
    /// Default parameters for this engine.
    pub fn default_config(self) -> EngineConfig {
        match self {
            EngineKind::Raft => EngineConfig::Raft(RaftParams::default()),
            EngineKind::Pbft => EngineConfig::Pbft(PbftParams::default()),
            EngineKind::Pow => EngineConfig::Pow(PowParams::default()),
        }
    }

    /// Parameters for a local testnet: the defaults, except proof of work, which gets blocks a
    /// second apart at a difficulty this kind of machine mines in about that ([`PowParams::testnet`]).
    pub fn testnet_config(self) -> EngineConfig {
        match self {
            EngineKind::Pow => EngineConfig::Pow(PowParams::testnet()),
            other => other.default_config(),
        }
    }
}

/// What `synod testnet init` was asked for.
#[derive(Clone, Debug)]
pub struct TestnetOptions {
    /// The folder to write.
    pub dir: PathBuf,
    /// The engine.
    pub engine: EngineKind,
    /// Number of nodes (validators for raft/pbft, miners for pow).
    pub validators: usize,
    /// Number of funded accounts.
    pub accounts: usize,
    /// Balance of each funded account.
    pub balance: u64,
    /// Chain id (default `synod-<engine>-local`).
    pub chain_id: Option<String>,
    /// Use deterministic dev keys (and mark the chain `dev`); otherwise fresh random keys.
    pub dev: bool,
    /// First port; 0 asks the OS for free ports.
    pub base_port: u16,
    /// Replace an existing testnet in `dir`.
    pub force: bool,
    /// Genesis time, Unix milliseconds.
    pub genesis_time_ms: u64,
    /// Engine parameters to set instead of the defaults, by name (`snapshot_interval`, `50`).
    pub engine_params: Vec<(String, String)>,
    /// Dev key index of the first funded account; `None` puts the accounts right after the node
    /// keys. Testnets of different sizes on one chain id that set the same index fund the same
    /// accounts, so one signed workload is valid on all of them.
    pub first_account_key: Option<u32>,
    /// Each node's `max_pending_txs` (its mempool and engine pool size; backpressure starts at
    /// a fifth of it).
    pub max_pending_txs: usize,
}

/// One node of a testnet, as the manifest records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestnetNode {
    /// Its name (`node0`).
    pub name: String,
    /// Its home, relative to the testnet folder.
    pub home: PathBuf,
    /// Peer-to-peer address.
    pub listen: String,
    /// JSON-RPC address.
    pub rpc: String,
}

/// One funded account of a testnet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestnetAccount {
    /// Its key file, relative to the testnet folder.
    pub key: PathBuf,
    /// Its address.
    pub address: Address,
}

/// `testnet.toml`: what the CLI needs to drive a testnet folder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestnetManifest {
    /// The chain id.
    pub chain_id: String,
    /// The engine.
    pub engine: EngineKind,
    /// The nodes.
    pub nodes: Vec<TestnetNode>,
    /// The funded accounts.
    pub accounts: Vec<TestnetAccount>,
}

impl TestnetManifest {
    /// Reads `DIR/testnet.toml`.
    pub fn load(dir: &Path) -> Result<TestnetManifest, GenesisError> {
        let path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| GenesisError::Io {
            path: path.clone(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| GenesisError::Home(format!("{}: {e}", path.display())))
    }

    /// The home of node `i`.
    pub fn home(&self, dir: &Path, i: usize) -> Option<Home> {
        self.nodes.get(i).map(|n| Home::new(dir.join(&n.home)))
    }

    /// The node called `name` (or numbered `name`).
    pub fn node_index(&self, name: &str) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.name == name)
            .or_else(|| name.parse::<usize>().ok().filter(|i| *i < self.nodes.len()))
    }
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> GenesisError + '_ {
    move |source| GenesisError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Picks `count` distinct ports: from `base` upwards, or from the OS when `base` is 0.
fn pick_ports(base: u16, count: usize) -> Result<Vec<u16>, GenesisError> {
    if base != 0 {
        return (0..count)
            .map(|i| {
                base.checked_add(i as u16)
                    .filter(|_| i < u16::MAX as usize)
                    .ok_or_else(|| {
                        GenesisError::Home(format!(
                            "base port {base} leaves no room for {count} ports"
                        ))
                    })
            })
            .collect();
    }
    // Hold every listener until all ports are chosen, so the OS cannot hand one out twice.
    let listeners = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| GenesisError::Home(format!("cannot reserve a local port: {e}")))?;
    listeners
        .iter()
        .map(|l| {
            l.local_addr()
                .map(|a| a.port())
                .map_err(|e| GenesisError::Home(format!("cannot read a reserved port: {e}")))
        })
        .collect()
}

/// Makes `dir` ready for a new testnet: refuses a non-empty folder unless `force`, and with
/// `force` removes only what a testnet puts there.
fn prepare_dir(dir: &Path, force: bool) -> Result<(), GenesisError> {
    if dir.exists() {
        let entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(io_error(dir))?
            .collect::<Result<_, _>>()
            .map_err(io_error(dir))?;
        if !entries.is_empty() {
            if !force {
                return Err(GenesisError::Home(format!(
                    "{} already exists and is not empty; pass --force to replace the testnet in it",
                    dir.display()
                )));
            }
            if !dir.join(MANIFEST_FILE).is_file() {
                return Err(GenesisError::Home(format!(
                    "{} is not a synod testnet folder (no {MANIFEST_FILE}); refusing to delete anything in it",
                    dir.display()
                )));
            }
            for entry in entries {
                let name = entry.file_name().to_string_lossy().to_string();
                let ours = [MANIFEST_FILE, GENESIS_FILE, ACCOUNTS_DIR, "logs"]
                    .contains(&name.as_str())
                    || (name.starts_with("node") && name[4..].chars().all(|c| c.is_ascii_digit()));
                if !ours {
                    continue;
                }
                let path = entry.path();
                let result = if path.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
                result.map_err(io_error(&path))?;
            }
        }
    }
    std::fs::create_dir_all(dir).map_err(io_error(dir))
}

/// Writes a ready testnet folder and returns its manifest.
pub fn init(options: &TestnetOptions) -> Result<TestnetManifest, GenesisError> {
    let n = options.validators;
    if n == 0 {
        return Err(GenesisError::Home("a testnet needs at least 1 node".into()));
    }
    if options.engine == EngineKind::Pbft && n < 4 {
        return Err(GenesisError::Home(format!(
            "pbft needs at least 4 validators (3f+1 with f >= 1), asked for {n}"
        )));
    }
    if options.max_pending_txs < crate::home::MIN_MAX_PENDING_TXS {
        return Err(GenesisError::Home(format!(
            "max_pending_txs must be at least {}",
            crate::home::MIN_MAX_PENDING_TXS
        )));
    }
    let first_account = options.first_account_key.map_or(n, |k| k as usize);
    if first_account < n {
        return Err(GenesisError::Home(format!(
            "the first account key ({first_account}) would be a node key: it must be at least the number of nodes ({n})"
        )));
    }
    if options.dev && first_account + options.accounts > MAX_DEV_KEYS as usize {
        return Err(GenesisError::Home(format!(
            "a dev testnet has at most {MAX_DEV_KEYS} keys for nodes and accounts together"
        )));
    }
    let chain_id = options
        .chain_id
        .clone()
        .unwrap_or_else(|| format!("synod-{}-local", options.engine.default_config().kind()));
    let key = |i: usize| {
        if options.dev {
            dev_key(&chain_id, i as u32)
        } else {
            SecretKey::generate()
        }
    };
    let node_keys: Vec<SecretKey> = (0..n).map(key).collect();
    let account_keys: Vec<SecretKey> = (first_account..first_account + options.accounts)
        .map(key)
        .collect();
    let ports = pick_ports(options.base_port, 2 * n)?;
    let nodes: Vec<TestnetNode> = (0..n)
        .map(|i| TestnetNode {
            name: format!("node{i}"),
            home: PathBuf::from(format!("node{i}")),
            listen: format!("127.0.0.1:{}", ports[2 * i]),
            rpc: format!("127.0.0.1:{}", ports[2 * i + 1]),
        })
        .collect();
    let validators = if options.engine == EngineKind::Pow {
        Vec::new()
    } else {
        nodes
            .iter()
            .zip(&node_keys)
            .map(|(node, key)| Validator {
                name: node.name.clone(),
                public_key: key.public(),
                address: node.listen.clone(),
            })
            .collect()
    };
    let mut genesis = Genesis {
        chain_id: chain_id.clone(),
        genesis_time: String::new(),
        dev: options.dev,
        engine: options
            .engine
            .testnet_config()
            .with_params(&options.engine_params)?,
        validators,
        accounts: account_keys
            .iter()
            .map(|k| InitialAccount {
                address: k.address(),
                balance: options.balance,
            })
            .collect(),
    };
    genesis.set_genesis_time_ms(options.genesis_time_ms);
    genesis.validate()?;

    let dir = &options.dir;
    prepare_dir(dir, options.force)?;
    genesis.save(&dir.join(GENESIS_FILE))?;
    for (i, (node, key)) in nodes.iter().zip(&node_keys).enumerate() {
        let home = Home::new(dir.join(&node.home));
        std::fs::create_dir_all(&home.dir).map_err(io_error(&home.dir))?;
        let config = NodeConfig {
            moniker: node.name.clone(),
            listen: node.listen.clone(),
            rpc: node.rpc.clone(),
            peers: nodes
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, peer)| peer.listen.clone())
                .collect(),
            data_dir: PathBuf::from("data"),
            log_level: "info".into(),
            role: crate::home::NodeRole::Validator,
            rpc_token: None,
            min_fee: 1,
            max_pending_txs: options.max_pending_txs,
            // A proof-of-work testnet mines from the start, one thread per node, so a testnet
            // of four fits on two cores.
            mining: MiningConfig {
                threads: usize::from(options.engine == EngineKind::Pow),
                address: None,
            },
        };
        home.save_config(&config)?;
        write_key_file(&home.dir.join(KEY_FILE), key)
            .map_err(|e| GenesisError::Home(e.to_string()))?;
        genesis.save(&home.genesis_path())?;
    }
    let accounts_dir = dir.join(ACCOUNTS_DIR);
    std::fs::create_dir_all(&accounts_dir).map_err(io_error(&accounts_dir))?;
    let accounts = account_keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let rel = PathBuf::from(ACCOUNTS_DIR).join(format!("account{i}.key"));
            write_key_file(&dir.join(&rel), key).map_err(|e| GenesisError::Home(e.to_string()))?;
            Ok(TestnetAccount {
                key: rel,
                address: key.address(),
            })
        })
        .collect::<Result<Vec<_>, GenesisError>>()?;
    let manifest = TestnetManifest {
        chain_id,
        engine: options.engine,
        nodes,
        accounts,
    };
    let text = format!(
        "# synod testnet manifest (written by `synod testnet init`)\n{}",
        toml::to_string_pretty(&manifest).expect("a manifest always serializes to TOML")
    );
    let path = dir.join(MANIFEST_FILE);
    std::fs::write(&path, text).map_err(io_error(&path))?;
    Ok(manifest)
}
