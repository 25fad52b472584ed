//! The subcommands and their dispatch.

mod bench;
mod chain;
mod compare;
mod genesis;
mod inspect;
mod keygen;
mod mine;
mod node;
mod pow_flags;
mod simulate;
mod target;
pub mod testnet;
mod verify;

use clap::{Parser, Subcommand};

/// A Byzantine-tolerant blockchain node with pluggable consensus: PBFT, Raft and proof of work.
#[derive(Parser, Debug)]
#[command(name = "synod", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
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
    /// Run a node in the foreground.
    Node(node::NodeArgs),
    /// Submit transactions to a running node.
    #[command(subcommand)]
    Tx(chain::TxCommand),
    /// A running node's status.
    Status(chain::TargetOnly),
    /// A block from a running node, by height or id.
    Block(chain::BlockArgs),
    /// An account's balance and nonce from a running node.
    Account(chain::AccountArgs),
    /// Ask the leader to cut a block now.
    Propose(chain::TargetOnly),
    /// Drive signed transactions into a live testnet and measure throughput and latency.
    Bench(bench::BenchArgs),
    /// Run the same workload and the same faults against each engine on real testnets, and
    /// write a table, report.json and a self-contained report.html with charts.
    Compare(compare::CompareArgs),
    /// Run the deterministic simulator over many seeds (faults, Byzantine nodes) and report
    /// every violation with the seed that replays it.
    Simulate(simulate::SimulateArgs),
    /// Mine blocks on a proof-of-work node now, or measure the mining kernel (`--bench`).
    Mine(mine::MineArgs),
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Keygen(args) => keygen::run(args),
        Command::Genesis(cmd) => genesis::run(cmd),
        Command::Testnet(cmd) => testnet::run(cmd),
        Command::Inspect(args) => inspect::run(args),
        Command::Node(args) => node::run(args),
        Command::Tx(cmd) => chain::tx(cmd),
        Command::Status(args) => chain::status(args),
        Command::Block(args) => chain::block(args),
        Command::Account(args) => chain::account(args),
        Command::Propose(args) => chain::propose(args),
        Command::Bench(args) => bench::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Simulate(args) => simulate::run(args),
        Command::Mine(args) => mine::run(args),
    }
}
