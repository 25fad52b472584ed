//! Which node an RPC command talks to: `--rpc ADDR`, or a node of a testnet folder.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use synod_genesis::TestnetManifest;
use synod_node::rpc::client::RpcClient;

/// Selects the node to talk to.
#[derive(Args, Debug, Clone)]
pub struct Target {
    /// The node's RPC address (`127.0.0.1:PORT` or `http://...`); overrides --dir/--node.
    #[arg(long, value_name = "ADDR", global = true)]
    pub rpc: Option<String>,
    /// Testnet folder whose node to use when --rpc is not given.
    #[arg(long, value_name = "DIR", default_value = "testnet", global = true)]
    pub dir: PathBuf,
    /// Which node of the testnet (name like node2, or index).
    #[arg(long, value_name = "NODE", default_value = "node0", global = true)]
    pub node: String,
}

impl Target {
    /// A client for the selected node.
    pub fn client(&self) -> anyhow::Result<RpcClient> {
        if let Some(rpc) = &self.rpc {
            return Ok(RpcClient::new(rpc));
        }
        let manifest = TestnetManifest::load(&self.dir).with_context(|| {
            format!(
                "no --rpc given and no testnet at {} (run `synod testnet up` or pass --rpc)",
                self.dir.display()
            )
        })?;
        let index = manifest
            .node_index(&self.node)
            .with_context(|| format!("the testnet has no node {:?}", self.node))?;
        Ok(RpcClient::new(&manifest.nodes[index].rpc))
    }
}
