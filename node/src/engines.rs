//! Which engine a node runs, built from its genesis and restored from its store, and the driver
//! thread that runs it. One function per engine: the rest of the node knows no engine's types.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread::JoinHandle;

use synod_chain::Store;
use synod_consensus::engine::{ChainState, Engine, Restored};
use synod_consensus::pbft::{ByzantineBehaviour, PbftConfig, PbftEngine};
use synod_consensus::raft::{RaftConfig, RaftEngine};
use synod_genesis::{EngineConfig, PbftParams, RaftParams};
use tracing::{error, warn};

use crate::context::NodeContext;
use crate::driver::Driver;
use crate::error::NodeError;
use crate::inbox::DriverInbox;
use crate::options::RunOptions;

/// Where a driver reports how it ended.
pub type DriverDone = tokio::sync::oneshot::Sender<Result<(), NodeError>>;

/// Whether this build can run the genesis's engine (refused at start, with a message, if not).
pub fn runnable(engine: &EngineConfig) -> bool {
    matches!(engine, EngineConfig::Raft(_) | EngineConfig::Pbft(_))
}

/// Builds the genesis's engine from the store and starts its driver thread.
/// `options` were checked against the genesis before (see [`RunOptions::check`]).
pub fn start(
    ctx: Arc<NodeContext>,
    inbox: Arc<DriverInbox>,
    options: &RunOptions,
    done: DriverDone,
) -> Result<JoinHandle<()>, NodeError> {
    match ctx.genesis.engine.clone() {
        EngineConfig::Raft(params) => {
            let engine = raft(&ctx, params)?;
            spawn_driver(engine, ctx, inbox, done)
        }
        EngineConfig::Pbft(params) => {
            let engine = pbft(&ctx, params, options.byzantine)?;
            spawn_driver(engine, ctx, inbox, done)
        }
        other => Err(NodeError::EngineUnavailable(other.kind().to_string())),
    }
}

/// The genesis validators' keys, in genesis order (the order PBFT numbers its replicas by).
fn validators(ctx: &NodeContext) -> Vec<synod_chain::PublicKey> {
    ctx.genesis
        .validators
        .iter()
        .map(|v| v.public_key)
        .collect()
}

fn engine_state_error(ctx: &NodeContext, reason: impl ToString) -> NodeError {
    NodeError::EngineState {
        path: ctx.store.path().to_path_buf(),
        reason: reason.to_string(),
    }
}

fn raft(ctx: &NodeContext, params: RaftParams) -> Result<RaftEngine, NodeError> {
    let config = RaftConfig::new(ctx.key.clone(), validators(ctx), params, rand::random());
    RaftEngine::new(config, ctx.ledger.clone(), restored(&ctx.store)?)
        .map_err(|e| engine_state_error(ctx, e))
}

/// A PBFT replica resumed from its persisted view, pre-prepares, prepared certificates and
/// checkpoint, over the chain in the store. It catches up on blocks it missed by asking peers
/// (`RequestSync`), which the driver serves from their stores with each block's certificate.
fn pbft(
    ctx: &NodeContext,
    params: PbftParams,
    behaviour: Option<ByzantineBehaviour>,
) -> Result<PbftEngine, NodeError> {
    let mut config = PbftConfig::new(ctx.key.clone(), validators(ctx), params, rand::random());
    if let Some(behaviour) = behaviour {
        warn!(%behaviour, "this replica runs with a deliberate Byzantine behaviour (dev chain experiment)");
        config.behaviour = Some(behaviour);
    }
    PbftEngine::new(config, ctx.ledger.clone(), restored(&ctx.store)?)
        .map_err(|e| engine_state_error(ctx, e))
}

/// Reads what an engine needs to resume from the store.
pub fn restored(store: &Store) -> Result<Restored, NodeError> {
    let tip = store.tip();
    let header = store.header_at(tip.height)?.ok_or_else(|| {
        NodeError::Runtime(format!("the tip header at {} is missing", tip.height))
    })?;
    Ok(Restored {
        engine_state: store
            .engine_range(&[], &[0xff; 32])?
            .into_iter()
            .collect::<BTreeMap<_, _>>(),
        chain: ChainState {
            tip: header,
            accounts: store.accounts()?.into_iter().collect(),
        },
        // Raft and PBFT never rewind (their blocks are final), so they rebuild nothing from
        // recent blocks; a proof-of-work engine asks for `restore_depth` of them.
        recent: Vec::new(),
    })
}

/// Runs `engine` on its own thread; a panic in it ends the node with the reason, not half-alive.
fn spawn_driver<E: Engine + Send + 'static>(
    engine: E,
    ctx: Arc<NodeContext>,
    inbox: Arc<DriverInbox>,
    done: DriverDone,
) -> Result<JoinHandle<()>, NodeError> {
    std::thread::Builder::new()
        .name("engine-driver".into())
        .spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                Driver::new(engine, ctx).run(&inbox)
            }))
            .unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                Err(NodeError::Runtime(format!(
                    "the engine driver panicked: {what}"
                )))
            });
            if let Err(e) = &result {
                error!(error = %e, "engine driver failed");
            }
            let _ = done.send(result);
        })
        .map_err(|e| NodeError::Runtime(e.to_string()))
}
