//! Which node an RPC command talks to: `--rpc ADDR`, or a node of a testnet folder.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use synod_genesis::{Home, TestnetManifest};
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
    /// The node's RPC credential for admin methods, when --rpc names a node whose home this
    /// command cannot read (otherwise the `.cookie` in the node's home is used).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "SYNOD_RPC_TOKEN",
        global = true,
        hide_env_values = true
    )]
    pub rpc_token: Option<String>,
    /// A node home whose `.cookie` to use with --rpc.
    #[arg(long, value_name = "HOME", global = true)]
    pub home: Option<PathBuf>,
}

impl Target {
    /// A client for the selected node.
    pub fn client(&self) -> anyhow::Result<RpcClient> {
        if let Some(rpc) = &self.rpc {
            let token = self
                .rpc_token
                .clone()
                .or_else(|| self.home.as_ref().and_then(|h| Home::new(h).read_cookie()));
            return Ok(RpcClient::new(rpc).with_token(token));
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
        let home = Home::new(self.dir.join(&manifest.nodes[index].home));
        let token = self.rpc_token.clone().or_else(|| home.read_cookie());
        Ok(RpcClient::new(&manifest.nodes[index].rpc).with_token(token))
    }
}
