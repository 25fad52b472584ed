//! Raft as the node runs it: the genesis validators, the store's log and chain.

use synod_consensus::raft::{RaftConfig, RaftEngine};
use synod_genesis::RaftParams;

use super::{HostedEngine, engine_state_error, restored};
use crate::context::NodeContext;
use crate::error::NodeError;

/// Raft neither mines nor learns peers from connections: its members are its validators.
impl HostedEngine for RaftEngine {}

/// A Raft engine resumed from the store (Raft never rewinds, so it needs no recent blocks).
pub(super) fn build(ctx: &NodeContext, params: RaftParams) -> Result<RaftEngine, NodeError> {
    let validators = ctx.genesis.validator_keys();
    let mut config = RaftConfig::new(ctx.key.clone(), validators, params, rand::random());
    config.pool_capacity = ctx.mempool().capacity();
    RaftEngine::new(config, ctx.ledger.clone(), restored(&ctx.store, 0)?)
        .map_err(|e| engine_state_error(&ctx.store, e))
}
