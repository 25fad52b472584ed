//! The fault-injection methods (admin, dev chains only): `inject_fault` and `heal_faults`, and
//! the `faults` object that `status` shows.
//!
//! Peers are named as the genesis names its validators (`node2`) or by public key.
//!
//! | call | params |
//! | --- | --- |
//! | `inject_fault` | `{"kind": "partition", "peers": ["node2", ...]}`: drop everything to and from these peers (replaces the partition; `[]` lifts it) |
//! | `inject_fault` | `{"kind": "delay", "ms": 100, "jitter_ms": 20, "loss_pct": 5, "peers": [...]}`: delay and thin outbound consensus messages, toward `peers` only if given |
//! | `heal_faults` | `{}`: remove every fault |

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::{Value, json};
use synod_chain::keys::PublicKey;

use super::RpcError;
use crate::context::NodeContext;
use crate::faults::{FaultError, FaultSet, LinkDelay};

/// What `inject_fault` takes.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum Injection {
    Partition {
        peers: Vec<String>,
    },
    Delay {
        ms: u64,
        #[serde(default)]
        jitter_ms: u64,
        #[serde(default)]
        loss_pct: f64,
        #[serde(default)]
        peers: Vec<String>,
    },
}

fn refused(error: FaultError) -> RpcError {
    match error {
        FaultError::NotDev(_) => RpcError::command_rejected(error.to_string()),
        FaultError::Invalid(detail) => RpcError::invalid_params(detail),
    }
}

/// The keys of `names` (validator names of the genesis, or public keys), leaving out this node.
fn resolve(ctx: &NodeContext, names: &[String]) -> Result<BTreeSet<PublicKey>, RpcError> {
    names
        .iter()
        .map(|name| {
            ctx.genesis
                .validators
                .iter()
                .find(|v| v.name == *name)
                .map(|v| v.public_key)
                .or_else(|| name.parse().ok())
                .ok_or_else(|| {
                    RpcError::invalid_params(format!(
                        "peers: {name:?} is neither a validator name of the genesis nor a public key"
                    ))
                })
        })
        .filter(|key| key.as_ref().map_or(true, |k| *k != ctx.me))
        .collect()
}

/// `inject_fault`.
pub fn inject(ctx: &NodeContext, params: &Value) -> Result<Value, RpcError> {
    let injection: Injection = serde_json::from_value(params.clone())
        .map_err(|e| RpcError::invalid_params(format!("inject_fault: {e}")))?;
    let set = match injection {
        Injection::Partition { peers } => {
            let peers = resolve(ctx, &peers)?;
            tracing::warn!(peers = peers.len(), "fault injected: partition");
            ctx.faults.set_partition(peers)
        }
        Injection::Delay {
            ms,
            jitter_ms,
            loss_pct,
            peers,
        } => {
            let toward = resolve(ctx, &peers)?;
            tracing::warn!(
                ms,
                jitter_ms,
                loss_pct,
                peers = toward.len(),
                "fault injected: delay"
            );
            ctx.faults.set_delay(LinkDelay {
                ms,
                jitter_ms,
                loss_pct,
                toward,
            })
        }
    }
    .map_err(refused)?;
    Ok(json!({ "faults": describe(ctx, &set) }))
}

/// `heal_faults`.
pub fn heal(ctx: &NodeContext) -> Result<Value, RpcError> {
    let set = ctx.faults.heal().map_err(refused)?;
    tracing::info!("faults healed");
    Ok(json!({ "healed": true, "faults": describe(ctx, &set) }))
}

/// The `faults` object of `status`: what is in force, and what the faults dropped and delayed.
pub fn status(ctx: &NodeContext) -> Value {
    describe(ctx, &ctx.faults.current())
}

fn name_of(ctx: &NodeContext, key: &PublicKey) -> String {
    ctx.genesis
        .validators
        .iter()
        .find(|v| v.public_key == *key)
        .map_or_else(|| key.to_string(), |v| v.name.clone())
}

fn describe(ctx: &NodeContext, set: &FaultSet) -> Value {
    let names = |keys: &BTreeSet<PublicKey>| -> Vec<String> {
        keys.iter().map(|k| name_of(ctx, k)).collect()
    };
    let dropped: serde_json::Map<String, Value> = ctx
        .faults
        .dropped_counts()
        .into_iter()
        .map(|(fault, n)| (fault.to_string(), json!(n)))
        .collect();
    json!({
        "partition": names(&set.partition),
        "delay": set.delay.as_ref().map(|d| json!({
            "ms": d.ms,
            "jitter_ms": d.jitter_ms,
            "loss_pct": d.loss_pct,
            "toward": names(&d.toward),
        })),
        "dropped": dropped,
        "delayed": ctx.faults.delayed_count(),
        "byzantine": ctx.byzantine,
    })
}
