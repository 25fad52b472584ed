//! The genesis file itself: its shape, parsing, validation, canonical hash and what it gives the
//! chain (block 0, the initial accounts, the ledger rules).

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};
use synod_chain::block::Seal;
use synod_chain::hash::TaggedHasher;
use synod_chain::keys::{Address, PublicKey, SecretKey};
use synod_chain::ledger::{Account, LedgerRules};
use synod_chain::limits::MAX_CHAIN_ID_BYTES;
use synod_chain::{GenesisState, Hash, codec};

use crate::dev_keys;
use crate::error::{FieldError, GenesisError};
use crate::params::EngineConfig;
use crate::time::{format_rfc3339_utc, parse_rfc3339_utc};

/// A genesis file is small; anything larger than this is refused before parsing.
pub const MAX_GENESIS_BYTES: u64 = 16 << 20;

/// Most validators a genesis may list.
pub const MAX_VALIDATORS: usize = 1024;

/// A validator of a permissioned chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Validator {
    /// A human name (`node0`), unique in the file.
    pub name: String,
    /// Its ed25519 key: it signs consensus messages and is its libp2p identity.
    pub public_key: PublicKey,
    /// Where it listens for peers (`host:port`).
    pub address: String,
}

/// An account funded at genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitialAccount {
    /// The account.
    pub address: Address,
    /// Its starting balance.
    pub balance: u64,
}

/// The contents of `genesis.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// Chain id; every transaction carries it and is void on any other chain.
    pub chain_id: String,
    /// Time of block 0, RFC 3339 UTC (`2026-11-23T09:00:00Z`).
    pub genesis_time: String,
    /// A development chain: deterministic dev keys are accepted only when this is true.
    #[serde(default)]
    pub dev: bool,
    /// The consensus engine and its parameters.
    pub engine: EngineConfig,
    /// The validator set (empty for proof of work).
    #[serde(default)]
    pub validators: Vec<Validator>,
    /// Initial balances.
    #[serde(default)]
    pub accounts: Vec<InitialAccount>,
}

fn parse_error(path: String, message: String) -> GenesisError {
    GenesisError::Parse(FieldError::new(path, message))
}

impl Genesis {
    /// Parses JSON text and validates it.
    pub fn from_json(text: &str) -> Result<Genesis, GenesisError> {
        let mut de = serde_json::Deserializer::from_str(text);
        let genesis: Genesis = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            if path == "engine"
                && let Some(detail) = engine_error_detail(text)
            {
                return GenesisError::Parse(detail);
            }
            let path = if path == "." { String::new() } else { path };
            parse_error(path, e.into_inner().to_string())
        })?;
        de.end()
            .map_err(|e| parse_error(String::new(), e.to_string()))?;
        genesis.validate()?;
        Ok(genesis)
    }

    /// Reads, parses and validates a genesis file.
    pub fn load(path: &Path) -> Result<Genesis, GenesisError> {
        let io = |source| GenesisError::Io {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        if meta.len() > MAX_GENESIS_BYTES {
            return Err(parse_error(
                String::new(),
                format!(
                    "{} is {} bytes; a genesis file is at most {MAX_GENESIS_BYTES}",
                    path.display(),
                    meta.len()
                ),
            ));
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        Genesis::from_json(&text)
    }

    /// Pretty JSON, as written to `genesis.json`.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a genesis always serializes to JSON")
    }

    /// Writes `genesis.json` to `path`.
    pub fn save(&self, path: &Path) -> Result<(), GenesisError> {
        std::fs::write(path, self.to_json() + "\n").map_err(|source| GenesisError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Checks every rule; returns all problems at once, each naming its field.
    pub fn validate(&self) -> Result<(), GenesisError> {
        let mut errors = Vec::new();
        self.validate_chain_id(&mut errors);
        if let Err(message) = parse_rfc3339_utc(&self.genesis_time) {
            errors.push(FieldError::new("genesis_time", message));
        }
        self.engine.validate(&mut errors);
        self.validate_validators(&mut errors);
        self.validate_accounts(&mut errors);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(GenesisError::Invalid(errors))
        }
    }

    fn validate_chain_id(&self, errors: &mut Vec<FieldError>) {
        let id = &self.chain_id;
        if id.is_empty() || id.len() > MAX_CHAIN_ID_BYTES {
            errors.push(FieldError::new(
                "chain_id",
                format!(
                    "must be 1 to {MAX_CHAIN_ID_BYTES} characters, got {}",
                    id.len()
                ),
            ));
        } else if !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            errors.push(FieldError::new(
                "chain_id",
                format!("{id:?} may hold only letters, digits, '-', '_' and '.'"),
            ));
        }
    }

    fn validate_validators(&self, errors: &mut Vec<FieldError>) {
        let n = self.validators.len();
        match &self.engine {
            EngineConfig::Raft(_) if n == 0 => errors.push(FieldError::new(
                "validators",
                "raft needs at least 1 validator",
            )),
            EngineConfig::Pbft(_) if n < 4 => errors.push(FieldError::new(
                "validators",
                format!("pbft needs at least 4 validators (3f+1 with f >= 1), got {n}"),
            )),
            _ => {}
        }
        if n > MAX_VALIDATORS {
            errors.push(FieldError::new(
                "validators",
                format!("at most {MAX_VALIDATORS} validators, got {n}"),
            ));
        }
        let dev_keys = (!self.dev && !self.validators.is_empty())
            .then(|| dev_keys::DevKeys::new(&self.chain_id));
        let mut names = HashSet::new();
        let mut keys = HashSet::new();
        let mut addresses = HashSet::new();
        for (i, v) in self.validators.iter().enumerate() {
            let field = |name: &str| format!("validators[{i}].{name}");
            if v.name.trim().is_empty() || v.name.len() > 64 {
                errors.push(FieldError::new(field("name"), "must be 1 to 64 characters"));
            } else if !names.insert(v.name.as_str()) {
                errors.push(FieldError::new(
                    field("name"),
                    format!("duplicate validator name {:?}", v.name),
                ));
            }
            if let Err(e) = synod_chain::verify::check_public_key(&v.public_key) {
                errors.push(FieldError::new(field("public_key"), e.to_string()));
            } else if !keys.insert(v.public_key) {
                errors.push(FieldError::new(
                    field("public_key"),
                    format!("duplicate validator key {}", v.public_key),
                ));
            } else if let Some(index) = dev_keys.as_ref().and_then(|d| d.index_of(&v.public_key)) {
                errors.push(FieldError::new(
                    field("public_key"),
                    format!("is dev key #{index} of this chain; dev keys need \"dev\": true"),
                ));
            }
            match parse_host_port(&v.address) {
                Err(message) => errors.push(FieldError::new(field("address"), message)),
                Ok(_) if !addresses.insert(v.address.as_str()) => errors.push(FieldError::new(
                    field("address"),
                    format!("duplicate validator address {}", v.address),
                )),
                Ok(_) => {}
            }
        }
    }

    fn validate_accounts(&self, errors: &mut Vec<FieldError>) {
        let mut seen = HashSet::new();
        let mut total: u64 = 0;
        let mut overflowed = false;
        for (i, account) in self.accounts.iter().enumerate() {
            if !seen.insert(account.address) {
                errors.push(FieldError::new(
                    format!("accounts[{i}].address"),
                    format!("duplicate account {}", account.address),
                ));
            }
            match total.checked_add(account.balance) {
                Some(t) => total = t,
                None if !overflowed => {
                    overflowed = true;
                    errors.push(FieldError::new(
                        format!("accounts[{i}].balance"),
                        "the total of all balances overflows a u64",
                    ));
                }
                None => {}
            }
        }
    }

    /// Unix milliseconds of block 0. Only valid after [`Genesis::validate`].
    pub fn genesis_time_ms(&self) -> u64 {
        parse_rfc3339_utc(&self.genesis_time).unwrap_or(0)
    }

    /// Sets the genesis time from Unix milliseconds.
    pub fn set_genesis_time_ms(&mut self, millis: u64) {
        self.genesis_time = format_rfc3339_utc(millis);
    }

    /// The genesis hash: SHA-256 of the canonical (bincode) encoding of the parsed file, so that
    /// formatting, key order and whitespace in the JSON do not change it.
    pub fn hash(&self) -> Hash {
        TaggedHasher::new(b"synod/genesis/v1")
            .update(&codec::encode(self))
            .finish()
    }

    /// The ledger rules this genesis sets.
    pub fn ledger_rules(&self) -> LedgerRules {
        LedgerRules {
            chain_id: self.chain_id.clone(),
            block_reward: match &self.engine {
                EngineConfig::Pow(p) => p.block_reward,
                _ => 0,
            },
        }
    }

    /// Block 0 and the initial accounts, for the store and the engines.
    pub fn state(&self) -> GenesisState {
        let accounts: BTreeMap<Address, Account> = self
            .accounts
            .iter()
            .map(|a| {
                (
                    a.address,
                    Account {
                        balance: a.balance,
                        nonce: 0,
                    },
                )
            })
            .collect();
        let seal = match &self.engine {
            EngineConfig::Pow(p) => Seal {
                round: 0,
                bits: p.initial_bits,
                nonce: 0,
            },
            _ => Seal::default(),
        };
        GenesisState::new(
            self.chain_id.clone(),
            self.hash(),
            self.genesis_time_ms(),
            seal,
            accounts,
        )
    }

    /// The validators' public keys, in genesis order (the order engines number them by).
    pub fn validator_keys(&self) -> Vec<PublicKey> {
        self.validators.iter().map(|v| v.public_key).collect()
    }

    /// The index of `key` in the validator set, if it is a validator.
    pub fn validator_index(&self, key: &PublicKey) -> Option<usize> {
        self.validators.iter().position(|v| v.public_key == *key)
    }

    /// Refuses a dev key on a non-dev chain (a node calls this with its own key at start-up).
    pub fn check_key_allowed(&self, key: &SecretKey, what: &str) -> Result<(), GenesisError> {
        if self.dev {
            return Ok(());
        }
        match dev_keys::DevKeys::new(&self.chain_id).index_of(&key.public()) {
            Some(index) => Err(GenesisError::DevKeyOnNonDevChain {
                what: what.to_string(),
                index,
                chain_id: self.chain_id.clone(),
            }),
            None => Ok(()),
        }
    }
}

/// serde buffers an internally tagged enum, so an error inside the engine parameters arrives
/// with the path `engine` only. Parse the parameters again on their own to name the field.
fn engine_error_detail(text: &str) -> Option<FieldError> {
    use crate::params::{PbftParams, PowParams, RaftParams};
    fn inner<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Option<FieldError> {
        serde_path_to_error::deserialize::<_, T>(value)
            .err()
            .map(|e| FieldError::new(format!("engine.{}", e.path()), e.into_inner().to_string()))
    }
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let mut engine = value.get("engine")?.as_object()?.clone();
    let kind = engine.remove("kind")?;
    let params = serde_json::Value::Object(engine);
    match kind.as_str()? {
        "raft" => inner::<RaftParams>(params),
        "pbft" => inner::<PbftParams>(params),
        "pow" => inner::<PowParams>(params),
        _ => None,
    }
}

/// Checks a `host:port` peer address (a port that can be dialed, so not 0).
pub fn parse_host_port(text: &str) -> Result<(String, u16), String> {
    let (host, port) = split_host_port(text)?;
    if port == 0 {
        return Err(format!("{text:?}: port 0 cannot be dialed"));
    }
    Ok((host, port))
}

/// Splits `host:port`, checking the host's characters and the port's range (0 allowed: a listen
/// address may ask the OS for a port).
pub fn split_host_port(text: &str) -> Result<(String, u16), String> {
    let form = || format!("expected host:port, got {text:?}");
    let (host, port) = text.rsplit_once(':').ok_or_else(form)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty()
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
    {
        return Err(form());
    }
    let port: u16 = port.parse().map_err(|_| form())?;
    Ok((host.to_string(), port))
}
