//! `synod node`: run one node in the foreground.

use std::path::PathBuf;

use clap::Args;

/// Arguments of `synod node`.
#[derive(Args, Debug)]
pub struct NodeArgs {
    /// The node's home folder (config.toml, node_key, genesis.json, data/).
    #[arg(long, value_name = "DIR")]
    home: PathBuf,
    /// Run this validator with a deliberate Byzantine fault, for experiments on dev chains
    /// (refused elsewhere). PBFT: equivocate, silent, censor, censor=<address>, bad-block,
    /// bad-new-view, double-vote, amnesia. Raft: equivocate, silent, replay (duplicates at once).
    #[arg(long, value_name = "BEHAVIOUR")]
    byzantine: Option<String>,
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
