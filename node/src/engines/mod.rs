//! Which engine a node runs, built from its genesis and restored from its store, and the driver
//! thread that runs it. One function per engine: the rest of the node knows no engine's types.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread::JoinHandle;

use synod_chain::Store;
use synod_consensus::engine::{ChainState, Engine, Restored};
use synod_consensus::raft::{RaftConfig, RaftEngine};
use synod_genesis::{EngineConfig, RaftParams};
use tracing::error;

use crate::context::NodeContext;
use crate::driver::Driver;
use crate::error::NodeError;
use crate::inbox::DriverInbox;

/// Where a driver reports how it ended.
pub type DriverDone = tokio::sync::oneshot::Sender<Result<(), NodeError>>;

/// Whether this build can run the genesis's engine (refused at start, with a message, if not).
pub fn runnable(engine: &EngineConfig) -> bool {
    matches!(engine, EngineConfig::Raft(_))
}

/// Builds the genesis's engine from the store and starts its driver thread.
pub fn start(
    ctx: Arc<NodeContext>,
    inbox: Arc<DriverInbox>,
    done: DriverDone,
) -> Result<JoinHandle<()>, NodeError> {
    match ctx.genesis.engine.clone() {
        EngineConfig::Raft(params) => {
            let engine = raft(&ctx, params)?;
            spawn_driver(engine, ctx, inbox, done)
        }
        other => Err(NodeError::EngineUnavailable(other.kind().to_string())),
    }
}

fn raft(ctx: &NodeContext, params: RaftParams) -> Result<RaftEngine, NodeError> {
    let validators = ctx
        .genesis
        .validators
        .iter()
        .map(|v| v.public_key)
        .collect();
    let config = RaftConfig::new(ctx.key.clone(), validators, params, rand::random());
    RaftEngine::new(config, ctx.ledger.clone(), restored(&ctx.store)?).map_err(|e| {
        NodeError::EngineState {
            path: ctx.store.path().to_path_buf(),
            reason: e.to_string(),
        }
    })
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
        // Raft never rewinds, so it rebuilds nothing from recent blocks; a proof-of-work engine
        // asks for `restore_depth` of them.
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
