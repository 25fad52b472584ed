//! The subcommands and their dispatch.

mod genesis;
mod inspect;
mod keygen;
mod testnet;

use clap::{Parser, Subcommand};

/// A Byzantine-tolerant blockchain node with pluggable consensus: PBFT, Raft and proof of work.
#[derive(Parser, Debug)]
#[command(name = "synod", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Generate an ed25519 key file (mode 0600) and print its public key and address.
    Keygen(keygen::KeygenArgs),
    /// Create, validate or hash a genesis file.
    #[command(subcommand)]
    Genesis(genesis::GenesisCommand),
    /// Create local testnet folders.
    #[command(subcommand)]
    Testnet(testnet::TestnetCommand),
    /// Read a node's database offline: status, blocks, accounts, a full consistency check.
    Inspect(inspect::InspectArgs),
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Keygen(args) => keygen::run(args),
        Command::Genesis(cmd) => genesis::run(cmd),
        Command::Testnet(cmd) => testnet::run(cmd),
        Command::Inspect(args) => inspect::run(args),
    }
}
