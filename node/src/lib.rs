//! The synod node: a tokio runtime around one engine driver thread, a libp2p network task, the
//! mempool, block sync, and the JSON-RPC / metrics server.
//!
//! `run` refuses to start, with a message that says why, when the home is incomplete, the key is
//! not a validator of the genesis (for a validator), the database belongs to another chain, or a
//! port is taken.

pub mod context;
pub mod driver;
pub mod envelope;
pub mod error;
pub mod inbound;
pub mod mempool;
pub mod metrics;
pub mod net;
pub mod rpc;
pub mod status;
pub mod sync;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use synod_chain::Store;
use synod_chain::ledger::Ledger;
use synod_consensus::engine::{ChainState, Engine, Restored};
use synod_consensus::raft::{RaftConfig, RaftEngine};
use synod_genesis::{EngineConfig, Home, LoadedHome, NodeRole};
use tracing::{error, info};

use context::NodeContext;
use driver::{Driver, DriverEvent};
pub use error::NodeError;
use mempool::{Mempool, MempoolConfig};
use metrics::Metrics;
use status::NodeStatus;

/// Queued driver inputs before senders see "busy".
const DRIVER_QUEUE: usize = 65_536;

/// Runs the node whose home is `home` until SIGINT or SIGTERM.
pub fn run(home: &Path) -> Result<(), NodeError> {
    let loaded = Home::new(home).load()?;
    init_logging(&loaded.config.log_level);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| NodeError::Runtime(e.to_string()))?;
    runtime.block_on(run_loaded(loaded))
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .try_init();
}

fn parse_addr(what: &'static str, text: &str) -> Result<SocketAddr, NodeError> {
    use std::net::ToSocketAddrs;
    text.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| NodeError::Listen {
            what,
            addr: text.to_string(),
            reason: "not a host:port address".into(),
        })
}

/// Reads what an engine needs to resume from the store.
fn restored(store: &Store) -> Result<Restored, NodeError> {
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
        // The engines this node runs (Raft) never rewind, so they rebuild nothing from recent
        // blocks; a proof-of-work engine asks for `restore_depth` of them.
        recent: Vec::new(),
    })
}

async fn run_loaded(loaded: LoadedHome) -> Result<(), NodeError> {
    let LoadedHome {
        home,
        config,
        genesis,
        key,
    } = loaded;
    let me = key.public();
    let is_validator = genesis.validator_index(&me).is_some();
    if config.role == NodeRole::Validator && !is_validator {
        return Err(NodeError::NotAValidator {
            key: me.to_string(),
            chain_id: genesis.chain_id.clone(),
        });
    }
    let run_engine = config.role == NodeRole::Validator;
    if !matches!(genesis.engine, EngineConfig::Raft(_)) {
        return Err(NodeError::EngineUnavailable(
            genesis.engine.kind().to_string(),
        ));
    }

    let rpc_addr = parse_addr("rpc", &config.rpc)?;
    let p2p_addr = parse_addr("p2p", &config.listen)?;
    let rpc_listener =
        tokio::net::TcpListener::bind(rpc_addr)
            .await
            .map_err(|e| NodeError::Listen {
                what: "rpc",
                addr: config.rpc.clone(),
                reason: e.to_string(),
            })?;

    let state = genesis.state();
    let store = Store::open(&home.db_path(&config), &state)?;
    let tip = store.tip();
    let validators: Vec<_> = genesis.validators.iter().map(|v| v.public_key).collect();
    let ctx = Arc::new(NodeContext {
        genesis_hash: state.genesis_hash,
        ledger: Ledger::new(genesis.ledger_rules()),
        mempool: Mutex::new(Mempool::new(
            genesis.chain_id.clone(),
            MempoolConfig::default(),
        )),
        status: RwLock::new(NodeStatus::initial(
            tip.height,
            tip.hash,
            validators.clone(),
            if run_engine { "follower" } else { "observer" },
        )),
        metrics: Metrics::new(),
        members: RwLock::new(validators.iter().copied().collect::<HashSet<_>>()),
        net: OnceLock::new(),
        driver: OnceLock::new(),
        moniker: config.moniker.clone(),
        me,
        key: key.clone(),
        genesis: genesis.clone(),
        store,
    });
    info!(
        moniker = %config.moniker,
        chain = %genesis.chain_id,
        engine = genesis.engine.kind(),
        height = tip.height,
        role = if run_engine { "validator" } else { "observer" },
        "starting"
    );

    // The engine, restored from the store before the network can deliver anything.
    let (driver_tx, driver_rx) = std::sync::mpsc::sync_channel::<DriverEvent>(DRIVER_QUEUE);
    let engine = if run_engine {
        let EngineConfig::Raft(params) = &genesis.engine else {
            return Err(NodeError::EngineUnavailable(
                genesis.engine.kind().to_string(),
            ));
        };
        let raft = RaftConfig::new(me, validators.clone(), params.clone(), rand::random());
        let engine =
            RaftEngine::new(raft, ctx.ledger.clone(), restored(&ctx.store)?).map_err(|e| {
                NodeError::EngineState {
                    path: ctx.store.path().to_path_buf(),
                    reason: e.to_string(),
                }
            })?;
        let _ = ctx.driver.set(driver_tx.clone());
        Some(engine)
    } else {
        None
    };

    // The network.
    let keypair = libp2p::identity::Keypair::ed25519_from_bytes(key.seed())
        .map_err(|e| NodeError::Network(e.to_string()))?;
    let known: HashMap<_, _> = genesis
        .validators
        .iter()
        .filter(|v| v.public_key != me)
        .filter_map(|v| {
            Some((
                net::peer_id_of(&v.public_key)?,
                net::to_multiaddr(&v.address).ok()?,
            ))
        })
        .collect();
    let dial = config
        .peers
        .iter()
        .map(|p| net::to_multiaddr(p).map_err(NodeError::Network))
        .collect::<Result<Vec<_>, _>>()?;
    let peers = Arc::new(RwLock::new(Vec::new()));
    let (net_handle, net_task) = net::start(
        net::NetSetup {
            keypair,
            listen: p2p_addr,
            dial,
            known,
            tx_topic: format!("synod/{}/txs", ctx.genesis_hash.short()),
        },
        Arc::new(inbound::NodeInbound {
            ctx: ctx.clone(),
            peers: peers.clone(),
        }),
    )?;
    let _ = ctx.net.set(net_handle);
    tokio::spawn(net_task);

    // The driver thread.
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let driver_thread = match engine {
        Some(engine) => Some(spawn_driver(engine, ctx.clone(), driver_rx, done_tx)?),
        None => {
            tokio::spawn(sync::follow(ctx.clone(), peers));
            None
        }
    };

    // Housekeeping.
    let housekeeping = ctx.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(30));
        loop {
            tick.tick().await;
            housekeeping.mempool().expire(std::time::Instant::now());
        }
    });

    info!(rpc = %rpc_addr, p2p = %p2p_addr, "node is up");
    let rpc = tokio::spawn(rpc::serve(rpc_listener, ctx.clone()));
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| NodeError::Runtime(e.to_string()))?;
    let outcome = tokio::select! {
        _ = tokio::signal::ctrl_c() => { info!("interrupted, stopping"); Ok(()) }
        _ = sigterm.recv() => { info!("terminated, stopping"); Ok(()) }
        result = done_rx, if driver_thread.is_some() => match result {
            Ok(Err(e)) => Err(e),
            _ => Err(NodeError::Runtime("the engine driver stopped".into())),
        },
        result = rpc => Err(NodeError::Runtime(format!("the RPC server stopped: {result:?}"))),
    };
    let _ = driver_tx.try_send(DriverEvent::Shutdown);
    if let Some(thread) = driver_thread {
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
    if let Err(e) = &outcome {
        error!(error = %e, "node stopped");
    }
    outcome
}

fn spawn_driver<E: Engine + Send + 'static>(
    engine: E,
    ctx: Arc<NodeContext>,
    events: std::sync::mpsc::Receiver<DriverEvent>,
    done: tokio::sync::oneshot::Sender<Result<(), NodeError>>,
) -> Result<std::thread::JoinHandle<()>, NodeError> {
    std::thread::Builder::new()
        .name("engine-driver".into())
        .spawn(move || {
            let result = Driver::new(engine, ctx).run(events);
            if let Err(e) = &result {
                error!(error = %e, "engine driver failed");
            }
            let _ = done.send(result);
        })
        .map_err(|e| NodeError::Runtime(e.to_string()))
}
