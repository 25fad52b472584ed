//! Proof of work as the node runs it. Every node of a proof-of-work chain runs the engine: one
//! that does not mine validates, relays and serves like the others, with mining off. The node's
//! key is the engine's identity; mined blocks pay the configured payout key (the node's own by
//! default). A restart rebuilds the engine's recent past from the store's last
//! `restore_depth` canonical blocks.

use synod_consensus::engine::{Action, Millis, NodeId};
use synod_consensus::pow::{PowConfig, PowEngine, PowMessage};
use synod_genesis::PowParams;

use super::{HostedEngine, engine_state_error, restored};
use crate::context::NodeContext;
use crate::driver::MiningSetup;
use crate::error::NodeError;
use crate::status::PowView;

impl HostedEngine for PowEngine {
    fn set_mining(
        &mut self,
        now: Millis,
        enabled: bool,
        payout: NodeId,
        out: &mut Vec<Action<PowMessage>>,
    ) -> Result<(), String> {
        PowEngine::set_mining(self, now, enabled, payout, out);
        Ok(())
    }

    fn connected(&mut self, peers: &[NodeId]) {
        self.set_peers(peers.iter().copied());
    }

    fn pow_view(&self) -> Option<PowView> {
        Some(PowView {
            mining: self.is_mining(),
            payout: self.payout(),
            next_bits: self.next_bits(),
            chainwork: self.tip_chainwork().to_string(),
            finalized: self.finalized_height(),
        })
    }
}

/// A proof-of-work engine resumed from the store, mining as `mining` says.
pub(super) fn build(
    ctx: &NodeContext,
    params: PowParams,
    mining: &MiningSetup,
) -> Result<PowEngine, NodeError> {
    let genesis_time_ms = ctx.genesis.genesis_time_ms();
    let depth = PowEngine::restore_depth(&params, genesis_time_ms)
        .map_err(|e| engine_state_error(&ctx.store, e))?;
    // A genesis may name miners as validators; any other peer is learned once connected.
    let peers = ctx.genesis.validator_keys();
    let mut config = PowConfig::new(ctx.me, peers, params, genesis_time_ms, rand::random());
    config.mining = mining.enabled;
    config.pool_capacity = ctx.mempool().capacity();
    config.payout = mining.payout;
    PowEngine::new(config, ctx.ledger.clone(), restored(&ctx.store, depth)?)
        .map_err(|e| engine_state_error(&ctx.store, e))
}
