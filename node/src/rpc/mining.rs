//! The mining methods: `get_mining_info` (open), `mine` and `set_mining` (admin), and the
//! proof-of-work fields `get_block` adds (`chainwork`, `confirmations`).

use std::sync::Arc;

use serde_json::{Value, json};
use synod_chain::Block;
use synod_chain::hash::Hash;
use synod_chain::keys::PublicKey;
use synod_chain::pow::uint256::U256;
use synod_chain::store::StoreReader;
use synod_chain::target::Target;
use synod_consensus::pow::chainwork_from_proof;
use synod_genesis::EngineConfig;
use tokio::sync::oneshot;

use super::RpcError;
use super::methods::{optional, required};
use crate::context::NodeContext;
use crate::driver::MiningRequest;
use crate::inbox::ControlEvent;

/// Most blocks one `mine` call asks for.
pub const MAX_MINE_BLOCKS: u64 = 10_000;
/// Most miner threads a call may ask for.
pub const MAX_THREADS: usize = 256;

/// The chain's proof-of-work limit bits, or an error for a chain of another engine.
fn pow_limit_bits(ctx: &NodeContext) -> Result<u32, RpcError> {
    match &ctx.genesis.engine {
        EngineConfig::Pow(params) => Ok(params.pow_limit_bits),
        other => Err(RpcError::command_rejected(format!(
            "this is a {} chain; only proof-of-work chains mine",
            other.kind()
        ))),
    }
}

/// A 256-bit number as a float (for difficulty ratios).
fn to_f64(value: U256) -> f64 {
    value
        .to_be_bytes()
        .iter()
        .fold(0.0, |acc, byte| acc * 256.0 + f64::from(*byte))
}

/// `get_mining_info`: what the miner does and what the next block must meet.
pub fn mining_info(ctx: &NodeContext) -> Result<Value, RpcError> {
    let limit_bits = pow_limit_bits(ctx)?;
    let status = ctx.status();
    let pow = status
        .pow
        .ok_or_else(|| RpcError::internal("the engine has not reported yet"))?;
    let (bits, target, difficulty) = match pow.next_bits.map(Target::from_compact) {
        Some(Ok(target)) => {
            let limit = Target::from_compact(limit_bits)
                .map_err(|e| RpcError::internal(format!("pow limit: {e}")))?;
            (
                json!(format!("{:08x}", target.to_compact())),
                json!(target.as_u256().to_string()),
                json!(to_f64(limit.as_u256()) / to_f64(target.as_u256())),
            )
        }
        _ => (Value::Null, Value::Null, Value::Null),
    };
    let mining = &ctx.mining;
    Ok(json!({
        "mining": pow.mining,
        "threads": mining.threads(),
        "active": mining.is_active(),
        "kernel": crate::miner::kernel_name(&synod_chain::pow::kernel::Kernel::fastest()),
        "hash_rate": mining.hash_rate(),
        "hashes": mining.hashes.get(),
        "blocks_found": mining.blocks_found.get(),
        "payout": pow.payout,
        "height": status.height,
        "tip": status.tip,
        "bits": bits,
        "target": target,
        "difficulty": difficulty,
        "chainwork": pow.chainwork,
        "finalized_height": pow.finalized,
        "mine_request": status.mine_request.map(|(found, wanted)| json!({
            "found": found,
            "wanted": wanted,
        })),
    }))
}

fn threads_param(params: &Value) -> Result<Option<usize>, RpcError> {
    let threads: Option<usize> = optional(params, "threads")?;
    match threads {
        Some(t) if t > MAX_THREADS => Err(RpcError::invalid_params(format!(
            "threads: at most {MAX_THREADS}"
        ))),
        other => Ok(other),
    }
}

async fn ask<T>(
    ctx: &NodeContext,
    request: MiningRequest,
    answer: oneshot::Receiver<Result<T, String>>,
) -> Result<T, RpcError> {
    if ctx.inbox.is_none() {
        return Err(RpcError::command_rejected(
            "this node is an observer and runs no engine".into(),
        ));
    }
    if !ctx.to_driver(ControlEvent::Mining(request)) {
        return Err(RpcError::busy());
    }
    match answer.await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(reason)) => Err(RpcError::command_rejected(reason)),
        Err(_) => Err(RpcError::internal("the engine stopped")),
    }
}

/// `mine`: `{"blocks": N, "to": key?, "threads": T?}` mines N blocks now and answers with their
/// ids once the chain has committed them (as bitcoind's `generatetoaddress`).
pub async fn mine(ctx: &Arc<NodeContext>, params: &Value) -> Result<Value, RpcError> {
    pow_limit_bits(ctx)?;
    let count: u64 = required(params, "blocks")?;
    if count > MAX_MINE_BLOCKS {
        return Err(RpcError::invalid_params(format!(
            "blocks: at most {MAX_MINE_BLOCKS} per call"
        )));
    }
    let payout: Option<PublicKey> = optional(params, "to")?;
    let threads = threads_param(params)?;
    let (reply, answer) = oneshot::channel();
    let ids = ask(
        ctx,
        MiningRequest::Blocks {
            count,
            payout,
            threads,
            reply,
        },
        answer,
    )
    .await?;
    Ok(json!(ids))
}

/// `set_mining`: `{"enabled": bool?, "threads": T?, "to": key?}`; answers with the settings.
pub async fn set_mining(ctx: &Arc<NodeContext>, params: &Value) -> Result<Value, RpcError> {
    pow_limit_bits(ctx)?;
    let enabled: Option<bool> = optional(params, "enabled")?;
    let payout: Option<PublicKey> = optional(params, "to")?;
    let threads = threads_param(params)?;
    let (reply, answer) = oneshot::channel();
    let state = ask(
        ctx,
        MiningRequest::Set {
            enabled,
            threads,
            payout,
            reply,
        },
        answer,
    )
    .await?;
    Ok(json!(state))
}

/// Adds a proof-of-work block's `chainwork` (from its proof) and `confirmations` (blocks on top
/// of it in the canonical chain, itself included; -1 off the canonical chain, as bitcoind), and
/// shows its `bits` in hex.
pub fn add_pow_fields(
    ctx: &NodeContext,
    reader: &StoreReader,
    block: &Block,
    proof: &[u8],
    value: &mut Value,
) -> Result<(), RpcError> {
    if !matches!(ctx.genesis.engine, EngineConfig::Pow(_)) {
        return Ok(());
    }
    let height = block.header.height;
    let hash: Hash = block.hash();
    let canonical = reader
        .hash_at(height)
        .map_err(|e| RpcError::internal(e.to_string()))?
        == Some(hash);
    let tip = reader
        .tip()
        .map_err(|e| RpcError::internal(e.to_string()))?;
    // Compact bits in hex, as bitcoind shows them.
    value["bits"] = json!(format!("{:08x}", block.header.seal.bits));
    value["confirmations"] = if canonical {
        json!(tip.height.saturating_sub(height) + 1)
    } else {
        json!(-1)
    };
    // Block 0 carries no proof.
    value["chainwork"] = json!(chainwork_from_proof(proof).map(|work| work.to_string()));
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn big_numbers_become_floats() {
        assert_eq!(to_f64(U256::from_u64(1)), 1.0);
        assert_eq!(to_f64(U256::from_u64(1 << 40)), (1u64 << 40) as f64);
        let limit = Target::from_compact(0x207f_ffff).unwrap().as_u256();
        let harder = Target::from_compact(0x1f7f_ffff).unwrap().as_u256();
        assert!((to_f64(limit) / to_f64(harder) - 256.0).abs() < 1e-9);
    }
}
