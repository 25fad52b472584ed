//! `synod node`: run one node in the foreground.

use std::path::PathBuf;

use clap::Args;

/// Arguments of `synod node`.
#[derive(Args, Debug)]
pub struct NodeArgs {
    /// The node's home folder (config.toml, node_key, genesis.json, data/).
    #[arg(long, value_name = "DIR")]
    home: PathBuf,
}

pub fn run(args: NodeArgs) -> anyhow::Result<()> {
    synod_node::run(&args.home)?;
    Ok(())
}
