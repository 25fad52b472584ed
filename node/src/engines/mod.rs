//! Which engine a node runs, built from its genesis and restored from its store, and the driver
//! thread that runs it. One function per engine ([`raft`], [`pow`]): the rest of the node knows
//! no engine's types. What the node asks of an engine beyond the contract (mining, connected
//! peers, proof-of-work figures for the RPC) goes through [`HostedEngine`], whose defaults suit
//! an engine that has none of it.

mod pbft;
mod pow;
mod raft;
mod raft_byzantine;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread::JoinHandle;

use synod_chain::Store;
use synod_consensus::engine::{Action, ChainState, Engine, Millis, NodeId, Restored};
use synod_genesis::EngineConfig;
use tracing::{error, warn};

use crate::context::NodeContext;
use crate::driver::{Driver, MiningSetup};
use crate::error::NodeError;
use crate::inbox::DriverInbox;
use crate::options::{Behaviour, RunOptions};
use crate::status::PowView;

/// Where a driver reports how it ended.
pub type DriverDone = tokio::sync::oneshot::Sender<Result<(), NodeError>>;

/// An engine as the node hosts it: the contract, plus the node's controls outside it.
pub trait HostedEngine: Engine + Send + 'static {
    /// Turns mining on or off, paying `payout`; the actions go to the driver like any others.
    /// Engines that do not mine refuse, with the reason.
    fn set_mining(
        &mut self,
        _now: Millis,
        _enabled: bool,
        _payout: NodeId,
        _out: &mut Vec<Action<Self::Message>>,
    ) -> Result<(), String> {
        Err("this chain's engine does not mine; only proof-of-work chains do".into())
    }

    /// The peers the node is connected to now (an open network learns its peers this way).
    fn connected(&mut self, _peers: &[NodeId]) {}

    /// Proof-of-work figures for `status` and `get_mining_info`.
    fn pow_view(&self) -> Option<PowView> {
        None
    }
}

/// Whether this build can run the genesis's engine (refused at start, with a message, if not).
pub fn runnable(engine: &EngineConfig) -> bool {
    matches!(
        engine,
        EngineConfig::Raft(_) | EngineConfig::Pbft(_) | EngineConfig::Pow(_)
    )
}

/// Builds the genesis's engine from the store and starts its driver thread.
pub fn start(
    ctx: Arc<NodeContext>,
    inbox: Arc<DriverInbox>,
    options: &RunOptions,
    mining: MiningSetup,
    done: DriverDone,
) -> Result<JoinHandle<()>, NodeError> {
    let behaviour = options.behaviour(&ctx.genesis, true)?;
    match ctx.genesis.engine.clone() {
        EngineConfig::Raft(params) => {
            let engine = raft::build(&ctx, params)?;
            match behaviour {
                Some(Behaviour::Raft(behaviour)) => {
                    warn!(%behaviour, "this node runs with a deliberate Byzantine behaviour (dev chain experiment)");
                    let engine = raft_byzantine::ByzantineRaft::new(engine, &ctx, behaviour);
                    spawn_driver(engine, ctx, inbox, mining, done)
                }
                _ => spawn_driver(engine, ctx, inbox, mining, done),
            }
        }
        EngineConfig::Pbft(params) => {
            let behaviour = match behaviour {
                Some(Behaviour::Pbft(behaviour)) => Some(behaviour),
                _ => None,
            };
            let engine = pbft::build(&ctx, params, behaviour)?;
            spawn_driver(engine, ctx, inbox, mining, done)
        }
        EngineConfig::Pow(params) => {
            let engine = pow::build(&ctx, params, &mining)?;
            spawn_driver(engine, ctx, inbox, mining, done)
        }
    }
}

/// Reads what an engine needs to resume from the store, with the last `recent` canonical blocks
/// (their proofs and undo data) for an engine that rebuilds its recent past from them.
pub fn restored(store: &Store, recent: u64) -> Result<Restored, NodeError> {
    let tip = store.tip();
    let header = store.header_at(tip.height)?.ok_or_else(|| {
        NodeError::Runtime(format!("the tip header at {} is missing", tip.height))
    })?;
    let recent = if recent == 0 {
        Vec::new()
    } else {
        store.recent_blocks(recent)?
    };
    Ok(Restored {
        engine_state: store
            .engine_range(&[], &[0xff; 32])?
            .into_iter()
            .collect::<BTreeMap<_, _>>(),
        chain: ChainState {
            tip: header,
            accounts: store.accounts()?.into_iter().collect(),
        },
        recent,
    })
}

/// The error for engine state the store holds but the engine cannot use.
fn engine_state_error(store: &Store, reason: impl std::fmt::Display) -> NodeError {
    NodeError::EngineState {
        path: store.path().to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Runs `engine` on its own thread; a panic in it ends the node with the reason, not half-alive.
fn spawn_driver<E: HostedEngine>(
    engine: E,
    ctx: Arc<NodeContext>,
    inbox: Arc<DriverInbox>,
    mining: MiningSetup,
    done: DriverDone,
) -> Result<JoinHandle<()>, NodeError> {
    std::thread::Builder::new()
        .name("engine-driver".into())
        .spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                Driver::new(engine, ctx, inbox.clone(), mining).run(&inbox)
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
