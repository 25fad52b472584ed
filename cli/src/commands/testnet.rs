//! `synod testnet`: local testnet folders.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use synod_genesis::testnet::{self, EngineKind, TestnetOptions};

use crate::table::Table;

/// `synod testnet ...`
#[derive(Subcommand, Debug)]
pub enum TestnetCommand {
    /// Write a ready testnet folder: genesis, one home per node, funded account keys.
    Init(InitArgs),
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
}

impl InitArgs {
    /// The library's options for these arguments.
    pub fn options(&self) -> anyhow::Result<TestnetOptions> {
        let engine: EngineKind = self.engine.parse().map_err(anyhow::Error::msg)?;
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
        })
    }
}

pub fn run(cmd: TestnetCommand) -> anyhow::Result<()> {
    match cmd {
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
        }
    }
    Ok(())
}
