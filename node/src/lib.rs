//! The synod node: a tokio runtime around one engine driver thread, a libp2p network task, the
//! mempool, block sync, and the JSON-RPC / metrics server.
//!
//! `run` refuses to start, with a message that says why, when the home is incomplete, the key is
//! not a validator of the genesis (for a validator), the database belongs to another chain, or a
//! port is taken.

pub mod admission;
pub mod admission_workers;
pub mod clock;
pub mod context;
pub mod driver;
pub mod engines;
pub mod envelope;
pub mod error;
pub mod faults;
pub mod health;
pub mod inbound;
pub mod inbox;
pub mod listen;
pub mod mempool;
pub mod metrics;
pub mod miner;
pub mod net;
pub mod options;
pub mod peer_score;
pub mod priority;
pub mod rpc;
pub mod status;
pub mod sync;
pub mod tx_indexer;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use synod_chain::Store;
use synod_chain::ledger::Ledger;
use synod_genesis::{EngineConfig, Home, LoadedHome, NodeRole};
use tracing::{error, info, warn};

use context::NodeContext;
pub use error::NodeError;
use inbox::DriverInbox;
use mempool::journal::Journal;
use mempool::{Mempool, MempoolConfig};
use metrics::Metrics;
pub use options::{Behaviour, RunOptions};
use status::NodeStatus;

/// Admission batches (an RPC call's or a gossip message's transactions) that may wait for an
/// admission thread; past this the node answers "busy".
const ADMISSION_QUEUE: usize = 64;

/// The mempool journal's file name in the data folder.
const JOURNAL_FILE: &str = "mempool.journal";

/// Runs the node whose home is `home` until SIGINT or SIGTERM, with `options` for this run.
pub fn run(home: &Path, options: RunOptions) -> Result<(), NodeError> {
    let loaded = Home::new(home).load()?;
    init_logging(&loaded.config.log_level);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| NodeError::Runtime(e.to_string()))?;
    runtime.block_on(run_loaded(loaded, options))
}

/// The miner's settings from the config: threads, and the payout key (the node's own unless
/// `address` names another public key or a key file).
fn mining_setup(
    config: &synod_genesis::MiningConfig,
    home: &Path,
    me: &synod_chain::PublicKey,
) -> Result<driver::MiningSetup, NodeError> {
    let payout = match &config.address {
        Some(text) => miner::payout::parse_payout(text, home)
            .map_err(|e| NodeError::Runtime(format!("config.toml: mining.address: {e}")))?,
        None => *me,
    };
    Ok(driver::MiningSetup {
        enabled: config.threads > 0,
        threads: config.threads,
        payout,
    })
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

async fn run_loaded(loaded: LoadedHome, options: RunOptions) -> Result<(), NodeError> {
    let LoadedHome {
        home,
        config,
        genesis,
        key,
    } = loaded;
    // An engine this build cannot run is the first thing to say: every other check (a PoW
    // genesis names no validators, say) would only hide it.
    if !engines::runnable(&genesis.engine) {
        return Err(NodeError::EngineUnavailable(
            genesis.engine.kind().to_string(),
        ));
    }
    let me = key.public();
    let is_validator = genesis.validator_index(&me).is_some();
    // A permissioned chain admits its validators only; on a proof-of-work chain every node runs
    // the engine (one that does not mine still validates, relays and serves).
    let permissioned = genesis.engine.is_permissioned();
    if permissioned && config.role == NodeRole::Validator && !is_validator {
        return Err(NodeError::NotAValidator {
            key: me.to_string(),
            chain_id: genesis.chain_id.clone(),
        });
    }
    let run_engine = config.role == NodeRole::Validator || !permissioned;
    options.check(&genesis, run_engine)?;
    let mining = mining_setup(&config.mining, &home.dir, &me)?;

    let rpc_addr = parse_addr("rpc", &config.rpc)?;
    let p2p_addr = parse_addr("p2p", &config.listen)?;
    let rpc_listener = tokio::task::spawn_blocking(move || listen::bind("rpc", rpc_addr))
        .await
        .map_err(|e| NodeError::Runtime(e.to_string()))??;
    let rpc_listener = rpc_listener
        .set_nonblocking(true)
        .and_then(|()| tokio::net::TcpListener::from_std(rpc_listener))
        .map_err(|e| NodeError::Listen {
            what: "rpc",
            addr: config.rpc.clone(),
            reason: e.to_string(),
        })?;

    let state = genesis.state();
    let store = Store::open(&home.db_path(&config), &state)?;
    if let Some(why) = store.tx_index_renewed() {
        warn!(
            file = %store.index_path().display(),
            reason = why,
            "the transaction index was started again; it is refilled from the blocks"
        );
    }
    let tip = store.tip();
    let validators = genesis.validator_keys();
    let journal_path = home.data_dir(&config).join(JOURNAL_FILE);
    let (journal, replay) = Journal::open(&journal_path).map_err(|e| {
        NodeError::Runtime(format!(
            "cannot open the mempool journal {}: {e}",
            journal_path.display()
        ))
    })?;
    if replay.cut_bytes > 0 {
        tracing::warn!(
            bytes = replay.cut_bytes,
            "cut a torn record off the end of the mempool journal"
        );
    }
    let inbox = run_engine.then(|| Arc::new(DriverInbox::new()));
    let metrics = Metrics::new();
    let mining_stats = Arc::new(miner::stats::MiningStats::new(
        metrics.hashes.clone(),
        metrics.blocks_mined.clone(),
    ));
    // A Raft validator hands its clients' transactions to the leader through its engine; every
    // other node spreads them by gossip. PBFT validators gossip too, although their engine also
    // forwards to the primary: a backup suspects the primary only for transactions it holds
    // itself (paper §4.4: the client multicasts to every replica), so a transaction known to one
    // backup alone could never gather the quorum of VIEW-CHANGEs that replaces a crashed, silent
    // or censoring primary.
    let gossip_local_txs = !(run_engine && matches!(genesis.engine, EngineConfig::Raft(_)));
    let faults = Arc::new(faults::Faults::new(
        &genesis.chain_id,
        genesis.dev,
        metrics.fault_dropped.clone(),
        metrics.fault_delayed.clone(),
    ));
    let admission = admission_workers::AdmissionWorkers::start(
        std::thread::available_parallelism().map_or(2, |n| n.get().min(4)),
        ADMISSION_QUEUE,
    )
    .map_err(|e| NodeError::Runtime(format!("cannot start the admission threads: {e}")))?;
    let ctx = Arc::new(NodeContext {
        admission,
        genesis_hash: state.genesis_hash,
        ledger: Ledger::new(genesis.ledger_rules()),
        mempool: Mutex::new(Mempool::new(
            genesis.chain_id.clone(),
            MempoolConfig::with_capacity(config.max_pending_txs, config.min_fee, run_engine),
        )),
        journal: Mutex::new(Some(journal)),
        status: RwLock::new(NodeStatus::initial(
            tip.height,
            tip.hash,
            validators.clone(),
            if run_engine { "follower" } else { "observer" },
        )),
        metrics,
        faults: faults.clone(),
        byzantine: options.byzantine.clone(),
        members: RwLock::new(validators.iter().copied().collect::<HashSet<_>>()),
        net: OnceLock::new(),
        inbox: inbox.clone(),
        gossip_local_txs,
        runtime: tokio::runtime::Handle::current(),
        driver_heartbeat: std::sync::atomic::AtomicU64::new(0),
        overloaded: std::sync::atomic::AtomicBool::new(false),
        health: health::Health::default(),
        mining: mining_stats,
        connected: RwLock::new((0, Vec::new())),
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
        role = if !permissioned {
            "peer"
        } else if run_engine {
            "validator"
        } else {
            "observer"
        },
        "starting"
    );
    let replay_ctx = ctx.clone();
    tokio::task::spawn_blocking(move || admission::replay_journal(&replay_ctx, replay.txs))
        .await
        .map_err(|e| NodeError::Runtime(e.to_string()))?
        .map_err(|e| NodeError::Runtime(format!("cannot rewrite the mempool journal: {e}")))?;

    // The network.
    let keypair = net::sender::keypair_of(&key)?;
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
            faults,
            open: !permissioned,
        },
        Arc::new(inbound::NodeInbound {
            ctx: ctx.clone(),
            peers: peers.clone(),
            admission: Arc::new(tokio::sync::Semaphore::new(inbound::MAX_GOSSIP_ADMISSIONS)),
        }),
    )?;
    let _ = ctx.net.set(net_handle);

    // Every long-running part; the node stops, with the reason, when any of them ends.
    let mut tasks: tokio::task::JoinSet<(&'static str, String)> = tokio::task::JoinSet::new();
    tasks.spawn(async move {
        net_task.await;
        ("network", "the network task ended".to_string())
    });
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let driver_thread = match &inbox {
        Some(inbox) => Some(engines::start(
            ctx.clone(),
            inbox.clone(),
            &options,
            mining,
            done_tx,
        )?),
        None => {
            let follower = ctx.clone();
            let follow_peers = peers.clone();
            tasks.spawn(async move {
                sync::follow(follower, follow_peers).await;
                ("sync", "the block sync task ended".to_string())
            });
            None
        }
    };
    let indexer = tx_indexer::TxIndexer::start(ctx.clone())
        .map_err(|e| NodeError::Runtime(format!("cannot start the tx-index thread: {e}")))?;
    let history = ctx.clone();
    let history_peers = peers.clone();
    tasks.spawn(async move {
        sync::backfill(history, history_peers).await;
        ("backfill", "the history backfill task ended".to_string())
    });
    let housekeeping = ctx.clone();
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(30));
        loop {
            tick.tick().await;
            let dropped = housekeeping.mempool().expire(std::time::Instant::now());
            if dropped > 0 {
                info!(dropped, "expired pending transactions");
                // The driver tells the engine to forget them.
                housekeeping.ring_driver();
            }
            let regossip = housekeeping.clone();
            let _ =
                tokio::task::spawn_blocking(move || admission::regossip_pending(&regossip)).await;
        }
    });
    let rpc_ctx = ctx.clone();
    let cookie = rpc::guard::write_cookie(&home.cookie_path()).map_err(|e| {
        NodeError::Runtime(format!(
            "cannot write the RPC cookie {}: {e}",
            home.cookie_path().display()
        ))
    })?;
    let bound = rpc_listener
        .local_addr()
        .map_err(|e| NodeError::Runtime(e.to_string()))?;
    if !bound.ip().is_loopback() {
        tracing::warn!(
            rpc = %bound,
            "the RPC listens beyond this machine: anyone who reaches it can read the chain and submit transactions (admin methods still need the credential)"
        );
    }
    let guard = rpc::guard::Guard::new(bound, cookie, config.rpc_token.clone());
    tasks.spawn(async move {
        match rpc::serve(rpc_listener, rpc_ctx, guard).await {
            Ok(()) => ("rpc", "the RPC server ended".to_string()),
            Err(e) => ("rpc", format!("the RPC server failed: {e}")),
        }
    });

    info!(rpc = %rpc_addr, p2p = %p2p_addr, "node is up");
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| NodeError::Runtime(e.to_string()))?;
    let outcome = tokio::select! {
        _ = tokio::signal::ctrl_c() => { info!("interrupted, stopping"); Ok(()) }
        _ = sigterm.recv() => { info!("terminated, stopping"); Ok(()) }
        result = done_rx, if driver_thread.is_some() => match result {
            Ok(Err(e)) => Err(e),
            _ => Err(NodeError::Runtime("the engine driver stopped".into())),
        },
        Some(ended) = tasks.join_next() => Err(NodeError::Runtime(match ended {
            Ok((task, reason)) => format!("{task}: {reason}"),
            Err(e) => format!("a task died: {e}"),
        })),
    };
    if let Some(inbox) = &inbox {
        inbox.shutdown();
    }
    if let Some(thread) = driver_thread {
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
    // Admissions under way finish (and reach the journal) before the node exits.
    let admitting = ctx.clone();
    let _ = tokio::task::spawn_blocking(move || admitting.admission.shutdown()).await;
    tasks.abort_all();
    drop(indexer);
    if let Err(e) = &outcome {
        error!(error = %e, "node stopped");
    }
    outcome
}
