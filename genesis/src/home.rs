//! A node's home folder: `config.toml`, `node_key` (0600), `genesis.json` and `data/`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use synod_chain::keyfile::{KeyFileError, read_key_file};
use synod_chain::keys::SecretKey;

use crate::error::GenesisError;
use crate::spec::{Genesis, parse_host_port, split_host_port};

/// The config file's name in a home.
pub const CONFIG_FILE: &str = "config.toml";
/// The node key's file name in a home.
pub const KEY_FILE: &str = "node_key";
/// The genesis file's name in a home (and at the top of a testnet folder).
pub const GENESIS_FILE: &str = "genesis.json";
/// The database's file name inside the data folder.
pub const DB_FILE: &str = "chain.redb";
/// The RPC credential a running node writes in its home (mode 0600), as bitcoind's `.cookie`:
/// whoever can read the home may change the node; nobody else can.
pub const COOKIE_FILE: &str = ".cookie";
/// The shortest `rpc_token` accepted.
pub const MIN_RPC_TOKEN_CHARS: usize = 16;
/// The user name that goes with the cookie in HTTP basic authentication.
pub const COOKIE_USER: &str = "__cookie__";

/// The contents of `config.toml`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// A name for logs and tables.
    pub moniker: String,
    /// Peer-to-peer listen address, `host:port`.
    pub listen: String,
    /// JSON-RPC and metrics address, `host:port` (loopback by default).
    pub rpc: String,
    /// Peers to dial at start-up, `host:port`.
    #[serde(default)]
    pub peers: Vec<String>,
    /// Data folder, relative to the home unless absolute.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Log filter (`info`, `synod=debug`, ...).
    #[serde(default = "default_log_level")]
    pub log_level: String,
    /// `validator` (the key must be a genesis validator) or `observer` (follows the chain
    /// without voting).
    #[serde(default)]
    pub role: NodeRole,
    /// A fixed credential for the RPC's admin methods, accepted besides the `.cookie` (for
    /// tools that cannot read the node's home).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpc_token: Option<String>,
    /// The lowest fee the mempool admits (a zero-fee transaction from an unfunded key costs a
    /// spammer nothing; default 1).
    #[serde(default = "default_min_fee")]
    pub min_fee: u64,
    /// Most transactions the node's mempool holds pending, and as many its engine's pool
    /// (default 200,000). Once a fifth of that many are in blocks not yet committed or could
    /// go into the next ones, the engine reports
    /// itself overloaded and clients are answered "busy, retry later" until a tenth is left;
    /// with Raft every node goes by the leader's report. A lower limit keeps queues (and
    /// latency) short under overload; one below five blocks' worth caps the block size.
    #[serde(
        default = "default_max_pending_txs",
        skip_serializing_if = "is_default_max_pending_txs"
    )]
    pub max_pending_txs: usize,
    /// Continuous mining, on a proof-of-work chain: `mining = { threads = 1 }` (off when absent
    /// or with 0 threads).
    #[serde(default, skip_serializing_if = "MiningConfig::is_off")]
    pub mining: MiningConfig,
}

/// `mining = { threads, address }` in `config.toml`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MiningConfig {
    /// Miner threads; 0 (the default) mines nothing until an operator asks (`set_mining`,
    /// `synod mine`).
    #[serde(default)]
    pub threads: usize,
    /// Whom the mined blocks pay: a public key (64 hex chars) or a key file (relative to the
    /// home). A block names its miner by public key and the ledger pays that key's address, so
    /// a bare address cannot be given. Default: the node's own key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

impl MiningConfig {
    /// Whether nothing is configured (the section is then left out of a written config).
    pub fn is_off(&self) -> bool {
        self.threads == 0 && self.address.is_none()
    }
}

fn default_min_fee() -> u64 {
    1
}

/// [`NodeConfig::max_pending_txs`] when the file does not say.
pub const DEFAULT_MAX_PENDING_TXS: usize = 200_000;

fn default_max_pending_txs() -> usize {
    DEFAULT_MAX_PENDING_TXS
}

fn is_default_max_pending_txs(value: &usize) -> bool {
    *value == DEFAULT_MAX_PENDING_TXS
}

/// How a node takes part.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeRole {
    /// Votes; its key must be a validator of the genesis.
    #[default]
    Validator,
    /// Follows the chain by syncing blocks; never votes.
    Observer,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}

fn default_log_level() -> String {
    "info".into()
}

/// Largest config file accepted.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

impl NodeConfig {
    /// Parses and checks the text of a `config.toml`.
    pub fn parse(text: &str) -> Result<NodeConfig, GenesisError> {
        let config: NodeConfig =
            toml::from_str(text).map_err(|e| GenesisError::Home(format!("{CONFIG_FILE}: {e}")))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the addresses, the RPC token and the pending limit.
    pub fn validate(&self) -> Result<(), GenesisError> {
        let bad =
            |field: &str, e: String| GenesisError::Home(format!("{CONFIG_FILE}: {field}: {e}"));
        parse_listen(&self.listen).map_err(|e| bad("listen", e))?;
        parse_listen(&self.rpc).map_err(|e| bad("rpc", e))?;
        if self.max_pending_txs < MIN_MAX_PENDING_TXS {
            return Err(bad(
                "max_pending_txs",
                format!("must be at least {MIN_MAX_PENDING_TXS}"),
            ));
        }
        for (i, peer) in self.peers.iter().enumerate() {
            parse_host_port(peer).map_err(|e| bad(&format!("peers[{i}]"), e))?;
        }
        if let Some(token) = &self.rpc_token
            && token.len() < MIN_RPC_TOKEN_CHARS
        {
            return Err(bad(
                "rpc_token",
                format!(
                    "must be at least {MIN_RPC_TOKEN_CHARS} characters (it guards the admin methods)"
                ),
            ));
        }
        Ok(())
    }
}

/// The least [`NodeConfig::max_pending_txs`] accepted.
pub(crate) const MIN_MAX_PENDING_TXS: usize = 1_000;

/// A listen address may use port 0 (the OS picks one), unlike a peer address.
fn parse_listen(text: &str) -> Result<(), String> {
    split_host_port(text).map(|_| ())
}

/// A node's home folder and what it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Home {
    /// The folder.
    pub dir: PathBuf,
}

/// Everything a node needs from its home, loaded and checked.
#[derive(Debug)]
pub struct LoadedHome {
    /// The home.
    pub home: Home,
    /// `config.toml`.
    pub config: NodeConfig,
    /// `genesis.json`.
    pub genesis: Genesis,
    /// `node_key`.
    pub key: SecretKey,
}

impl Home {
    /// The home at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Home { dir: dir.into() }
    }

    /// `config.toml`.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join(CONFIG_FILE)
    }

    /// `node_key`.
    pub fn key_path(&self) -> PathBuf {
        self.dir.join(KEY_FILE)
    }

    /// `genesis.json`.
    pub fn genesis_path(&self) -> PathBuf {
        self.dir.join(GENESIS_FILE)
    }

    /// The data folder named by `config`.
    pub fn data_dir(&self, config: &NodeConfig) -> PathBuf {
        if config.data_dir.is_absolute() {
            config.data_dir.clone()
        } else {
            self.dir.join(&config.data_dir)
        }
    }

    /// The RPC cookie a running node writes.
    pub fn cookie_path(&self) -> PathBuf {
        self.dir.join(COOKIE_FILE)
    }

    /// The RPC cookie's secret, if a node has written one.
    pub fn read_cookie(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.cookie_path()).ok()?;
        let (user, secret) = text.trim().split_once(':')?;
        (user == COOKIE_USER && !secret.is_empty()).then(|| secret.to_string())
    }

    /// The database file named by `config`.
    pub fn db_path(&self, config: &NodeConfig) -> PathBuf {
        self.data_dir(config).join(DB_FILE)
    }

    /// Reads `config.toml`.
    pub fn load_config(&self) -> Result<NodeConfig, GenesisError> {
        let path = self.config_path();
        let io = |source| GenesisError::Io {
            path: path.clone(),
            source,
        };
        let meta = std::fs::metadata(&path).map_err(io)?;
        if meta.len() > MAX_CONFIG_BYTES {
            return Err(GenesisError::Home(format!(
                "{} is {} bytes, larger than any config",
                path.display(),
                meta.len()
            )));
        }
        let text = std::fs::read_to_string(&path).map_err(io)?;
        NodeConfig::parse(&text).map_err(|e| match e {
            GenesisError::Home(message) => GenesisError::Home(format!(
                "{}{}",
                path.display(),
                message.trim_start_matches(CONFIG_FILE)
            )),
            other => other,
        })
    }

    /// Writes `config.toml`.
    pub fn save_config(&self, config: &NodeConfig) -> Result<(), GenesisError> {
        let text = format!(
            "# synod node configuration\n{}",
            toml::to_string_pretty(config).expect("a node config always serializes to TOML")
        );
        std::fs::write(self.config_path(), text).map_err(|source| GenesisError::Io {
            path: self.config_path(),
            source,
        })
    }

    /// Loads config, genesis and key, and checks that they fit together: the key is allowed on
    /// this chain (no dev key on a non-dev chain).
    pub fn load(&self) -> Result<LoadedHome, GenesisError> {
        if !self.dir.is_dir() {
            return Err(GenesisError::Home(format!(
                "{} is not a node home (no such folder)",
                self.dir.display()
            )));
        }
        let config = self.load_config()?;
        let genesis = Genesis::load(&self.genesis_path())?;
        let key = read_key_file(&self.key_path())
            .map_err(|e: KeyFileError| GenesisError::Home(e.to_string()))?;
        genesis.check_key_allowed(&key, &self.key_path().display().to_string())?;
        Ok(LoadedHome {
            home: self.clone(),
            config,
            genesis,
            key,
        })
    }
}

/// Whether `path` looks like a node home (has a config file).
pub fn is_home(path: &Path) -> bool {
    path.join(CONFIG_FILE).is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "moniker = \"n\"\nlisten = \"127.0.0.1:0\"\nrpc = \"127.0.0.1:0\"\n";

    #[test]
    fn the_pending_limit_defaults_and_is_bounded_below() {
        let config = NodeConfig::parse(MINIMAL).unwrap();
        assert_eq!(config.max_pending_txs, DEFAULT_MAX_PENDING_TXS);
        let written = toml::to_string(&config).unwrap();
        assert!(!written.contains("max_pending_txs"), "{written}");

        let small = NodeConfig::parse(&format!("{MINIMAL}max_pending_txs = 5000\n")).unwrap();
        assert_eq!(small.max_pending_txs, 5_000);
        let error = NodeConfig::parse(&format!("{MINIMAL}max_pending_txs = 10\n")).unwrap_err();
        assert!(error.to_string().contains("max_pending_txs"), "{error}");
    }
}
