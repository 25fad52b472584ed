//! PBFT as the node runs it: the genesis validators in genesis order (the order replicas are
//! numbered by), resumed from the persisted view, pre-prepares, prepared certificates and
//! checkpoint over the chain in the store. A replica catches up on blocks it missed by asking
//! peers (`RequestSync`), which the driver serves from their stores with each block's certificate.

use synod_consensus::pbft::{ByzantineBehaviour, PbftConfig, PbftEngine};
use synod_genesis::PbftParams;
use tracing::warn;

use super::{HostedEngine, engine_state_error, restored};
use crate::context::NodeContext;
use crate::error::NodeError;

/// PBFT neither mines nor learns peers from connections: its members are its validators.
impl HostedEngine for PbftEngine {}

/// A PBFT replica resumed from the store, with `behaviour` for a dev-chain experiment.
pub(super) fn build(
    ctx: &NodeContext,
    params: PbftParams,
    behaviour: Option<ByzantineBehaviour>,
) -> Result<PbftEngine, NodeError> {
    let validators = ctx.genesis.validator_keys();
    let mut config = PbftConfig::new(ctx.key.clone(), validators, params, rand::random());
    config.pool_capacity = ctx.mempool().capacity();
    if let Some(behaviour) = behaviour {
        warn!(%behaviour, "this replica runs with a deliberate Byzantine behaviour (dev chain experiment)");
        config.behaviour = Some(behaviour);
    }
    PbftEngine::new(config, ctx.ledger.clone(), restored(&ctx.store, 0)?)
        .map_err(|e| engine_state_error(&ctx.store, e))
}
