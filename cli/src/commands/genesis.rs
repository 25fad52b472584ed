//! `synod genesis`: write a new genesis file, validate one, print its hash.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use synod_chain::keys::{Address, PublicKey};
use synod_genesis::testnet::EngineKind;
use synod_genesis::{Genesis, GenesisError, InitialAccount, Validator};

use super::pow_flags::PowFlags;
use crate::table::key_values;

/// `synod genesis ...`
#[derive(Subcommand, Debug)]
pub enum GenesisCommand {
    /// Write a new genesis file with the engine's default parameters.
    New(Box<NewArgs>),
    /// Check a genesis file and list every problem, each naming its field.
    Validate {
        /// The genesis file.
        #[arg(default_value = "genesis.json")]
        file: PathBuf,
    },
    /// Print the genesis hash (hash of the canonical encoding; formatting does not change it).
    Hash {
        /// The genesis file.
        #[arg(default_value = "genesis.json")]
        file: PathBuf,
    },
}

/// Arguments of `synod genesis new`.
#[derive(Args, Debug)]
pub struct NewArgs {
    /// Consensus engine.
    #[arg(long, value_parser = ["raft", "pbft", "pow"])]
    engine: String,
    /// Chain id (letters, digits, '-', '_', '.').
    #[arg(long)]
    chain_id: String,
    /// A validator, as NAME=PUBLIC_KEY@HOST:PORT (repeat for each).
    #[arg(long = "validator", value_name = "NAME=KEY@HOST:PORT")]
    validators: Vec<String>,
    /// A funded account, as ADDRESS=BALANCE (repeat for each).
    #[arg(long = "account", value_name = "ADDRESS=BALANCE")]
    accounts: Vec<String>,
    /// Genesis time, RFC 3339 UTC (default: now).
    #[arg(long)]
    genesis_time: Option<String>,
    /// Mark the chain as a development chain (deterministic dev keys allowed).
    #[arg(long)]
    dev: bool,
    /// Where to write (refuses to overwrite without --force).
    #[arg(long, default_value = "genesis.json")]
    out: PathBuf,
    /// Overwrite an existing file.
    #[arg(long)]
    force: bool,
    /// Set an engine parameter, e.g. `--param max_reorg_depth=2000` (repeatable; the names are
    /// the genesis file's `engine` fields).
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = synod_genesis::overrides::parse_param)]
    params: Vec<(String, String)>,
    #[command(flatten)]
    pow: PowFlags,
}

fn parse_validator(text: &str) -> anyhow::Result<Validator> {
    let (name, rest) = text
        .split_once('=')
        .with_context(|| format!("--validator {text:?}: expected NAME=KEY@HOST:PORT"))?;
    let (key, address) = rest
        .split_once('@')
        .with_context(|| format!("--validator {text:?}: expected NAME=KEY@HOST:PORT"))?;
    Ok(Validator {
        name: name.to_string(),
        public_key: key
            .parse::<PublicKey>()
            .with_context(|| format!("--validator {text:?}: public key"))?,
        address: address.to_string(),
    })
}

fn parse_account(text: &str) -> anyhow::Result<InitialAccount> {
    let (address, balance) = text
        .split_once('=')
        .with_context(|| format!("--account {text:?}: expected ADDRESS=BALANCE"))?;
    Ok(InitialAccount {
        address: address
            .parse::<Address>()
            .with_context(|| format!("--account {text:?}: address"))?,
        balance: balance
            .parse()
            .with_context(|| format!("--account {text:?}: balance"))?,
    })
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn load(file: &std::path::Path) -> anyhow::Result<Genesis> {
    Genesis::load(file).map_err(|e| match e {
        GenesisError::Invalid(errors) => anyhow::anyhow!(
            "{} has {} problem(s):\n  {}",
            file.display(),
            errors.len(),
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n  ")
        ),
        other => anyhow::Error::new(other).context(format!("{}", file.display())),
    })
}

pub fn run(cmd: GenesisCommand) -> anyhow::Result<()> {
    match cmd {
        GenesisCommand::New(args) => {
            if args.out.exists() && !args.force {
                bail!(
                    "{} exists; pass --force to overwrite it",
                    args.out.display()
                );
            }
            let engine: EngineKind = args.engine.parse().map_err(anyhow::Error::msg)?;
            let mut params = args.pow.params(&args.engine)?;
            params.extend(args.params.iter().cloned());
            let engine_config = engine
                .default_config()
                .with_params(&params)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut genesis = Genesis {
                chain_id: args.chain_id,
                genesis_time: args.genesis_time.unwrap_or_default(),
                dev: args.dev,
                engine: engine_config,
                validators: args
                    .validators
                    .iter()
                    .map(|v| parse_validator(v))
                    .collect::<anyhow::Result<_>>()?,
                accounts: args
                    .accounts
                    .iter()
                    .map(|a| parse_account(a))
                    .collect::<anyhow::Result<_>>()?,
            };
            if genesis.genesis_time.is_empty() {
                genesis.set_genesis_time_ms(now_ms());
            }
            genesis.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
            genesis.save(&args.out)?;
            println!(
                "wrote {} (genesis hash {})",
                args.out.display(),
                genesis.hash()
            );
        }
        GenesisCommand::Validate { file } => {
            let genesis = load(&file)?;
            println!(
                "{}",
                key_values([
                    ("file", format!("{} is valid", file.display())),
                    ("chain id", genesis.chain_id.clone()),
                    ("engine", genesis.engine.kind().to_string()),
                    ("validators", genesis.validators.len().to_string()),
                    ("accounts", genesis.accounts.len().to_string()),
                    ("dev", genesis.dev.to_string()),
                    ("genesis hash", genesis.hash().to_string()),
                ])
            );
        }
        GenesisCommand::Hash { file } => println!("{}", load(&file)?.hash()),
    }
    Ok(())
}
