//! `synod node`: run one node in the foreground.

use std::path::PathBuf;

use clap::Args;
use synod_consensus::pbft::ByzantineBehaviour;

/// Arguments of `synod node`.
#[derive(Args, Debug)]
pub struct NodeArgs {
    /// The node's home folder (config.toml, node_key, genesis.json, data/).
    #[arg(long, value_name = "DIR")]
    home: PathBuf,
    /// Run this PBFT replica with a deliberate Byzantine fault, for experiments on dev chains
    /// (refused elsewhere): equivocate, silent, censor, censor=<address>, bad-block,
    /// bad-new-view, double-vote, amnesia.
    #[arg(long, value_name = "BEHAVIOUR")]
    byzantine: Option<ByzantineBehaviour>,
}

pub fn run(args: NodeArgs) -> anyhow::Result<()> {
    synod_node::run(
        &args.home,
        synod_node::RunOptions {
            byzantine: args.byzantine,
        },
    )?;
    Ok(())
}
