//! `synod inspect`: offline reads of a node's database (the node must not be running).

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use synod_chain::keys::Address;
use synod_chain::ledger::Ledger;
use synod_chain::{Block, Hash, Store};
use synod_genesis::{Genesis, Home};

use crate::table::{Table, key_values};

/// Arguments of `synod inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// The node's home folder.
    #[arg(long, value_name = "DIR")]
    home: PathBuf,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    what: InspectCommand,
}

#[derive(Subcommand, Debug)]
enum InspectCommand {
    /// Chain id, tip, finalized height.
    Status,
    /// One block, by height or by id (64 hex chars).
    Block {
        /// Height or block id.
        block: String,
    },
    /// One account's balance and nonce.
    Account {
        /// The address (40 hex chars).
        address: Address,
    },
    /// Walk the whole chain, check every index, and replay every block from genesis.
    Check,
    /// Check one block as a stranger would, from the genesis alone: its body against its header
    /// and its finality proof (a PBFT commit certificate, a Raft leader's signature, its work).
    Verify {
        /// Height or block id.
        block: String,
    },
}

fn open(home: &Home) -> anyhow::Result<(Store, Genesis)> {
    let config = home.load_config()?;
    let genesis = Genesis::load(&home.genesis_path())?;
    let path = home.db_path(&config);
    if !path.exists() {
        bail!("no database at {} (has this node run yet?)", path.display());
    }
    let store = Store::open_existing(&path)?;
    if store.genesis_hash() != genesis.hash() {
        bail!(
            "{} belongs to chain {:?} (genesis {}), but {} is for genesis {}",
            path.display(),
            store.chain_id(),
            store.genesis_hash(),
            home.genesis_path().display(),
            genesis.hash()
        );
    }
    Ok((store, genesis))
}

fn find_block(store: &Store, text: &str) -> anyhow::Result<Block> {
    let block = if let Ok(height) = text.parse::<u64>() {
        store.block_at(height)?
    } else {
        let hash: Hash = text
            .parse()
            .with_context(|| format!("{text:?} is neither a height nor a block id"))?;
        store.block(&hash)?
    };
    block.with_context(|| format!("no block {text}"))
}

pub fn run(args: InspectArgs) -> anyhow::Result<()> {
    let home = Home::new(&args.home);
    let (store, genesis) = open(&home)?;
    match args.what {
        InspectCommand::Status => {
            let tip = store.tip();
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "chain_id": store.chain_id(),
                        "genesis_hash": store.genesis_hash(),
                        "engine": genesis.engine.kind(),
                        "height": tip.height,
                        "tip": tip.hash,
                        "finalized_height": store.finalized_height(),
                    })
                );
            } else {
                println!(
                    "{}",
                    key_values([
                        ("chain id", store.chain_id()),
                        ("engine", genesis.engine.kind().to_string()),
                        ("genesis hash", store.genesis_hash().to_string()),
                        ("height", tip.height.to_string()),
                        ("tip", tip.hash.to_string()),
                        ("finalized height", store.finalized_height().to_string()),
                        ("database", store.path().display().to_string()),
                    ])
                );
            }
        }
        InspectCommand::Verify { block } => {
            let block = find_block(&store, &block)?;
            let proof = store.proof(&block.hash())?;
            super::verify::verify_and_report(
                &genesis,
                None,
                &block.header,
                &block.tx_ids(),
                &proof,
            )?;
        }
        InspectCommand::Block { block } => {
            let block = find_block(&store, &block)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&block)?);
            } else {
                print_block(&block);
            }
        }
        InspectCommand::Account { address } => {
            let account = store.account(&address)?;
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({ "address": address, "balance": account.balance, "nonce": account.nonce })
                );
            } else {
                println!(
                    "{}",
                    key_values([
                        ("address", address.to_string()),
                        ("balance", account.balance.to_string()),
                        ("nonce", account.nonce.to_string()),
                    ])
                );
            }
        }
        InspectCommand::Check => {
            let state = genesis.state();
            let ledger = Ledger::new(genesis.ledger_rules());
            let report = store
                .verify_chain(Some((&state, &ledger)))
                .context("the database is inconsistent")?;
            // The transaction index is derived: one the check could not use as it was is
            // reported, not refused (the node rebuilds it at start).
            let tx_index = match store.tx_index_renewed() {
                None => "whole".to_string(),
                Some(why) => format!(
                    "not usable ({why}); checked a copy rebuilt in memory, the node rebuilds the file at start"
                ),
            };
            if args.json {
                let mut value = serde_json::to_value(&report)?;
                value["tx_index"] = serde_json::Value::String(tx_index);
                println!("{value}");
            } else {
                println!(
                    "{}",
                    key_values([
                        (
                            "result",
                            "consistent: chain links, indexes and replayed state agree".to_string()
                        ),
                        ("height", report.height.to_string()),
                        ("transactions", report.transactions.to_string()),
                        ("accounts", report.accounts.to_string()),
                        ("total balance", report.total_balance.to_string()),
                        ("tx index file", tx_index),
                    ])
                );
            }
        }
    }
    Ok(())
}

fn print_block(block: &Block) {
    let h = &block.header;
    println!(
        "{}",
        key_values([
            ("height", h.height.to_string()),
            ("id", block.hash().to_string()),
            ("parent", h.parent.to_string()),
            (
                "time",
                synod_genesis::time::format_rfc3339_utc(h.timestamp_ms)
            ),
            ("proposer", h.proposer.to_string()),
            ("round", h.seal.round.to_string()),
            ("tx root", h.tx_root.to_string()),
            ("state root", h.state_root.to_string()),
            ("transactions", block.txs.len().to_string()),
        ])
    );
    if !block.txs.is_empty() {
        let mut table = Table::new(["#", "id", "from", "to", "amount", "fee", "nonce"]);
        for (i, tx) in block.txs.iter().enumerate() {
            table.row([
                i.to_string(),
                tx.id().short(),
                tx.sender().short(),
                tx.tx().to.short(),
                tx.tx().amount.to_string(),
                tx.tx().fee.to_string(),
                tx.tx().nonce.to_string(),
            ]);
        }
        println!("\n{}", table.render());
    }
}
