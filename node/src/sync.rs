//! Block sync: any node serves ranges of committed blocks with their finality proofs; an
//! observer pulls them, verifies every block in full (signatures, state root) and stores it.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use synod_chain::{Block, Finality, TxVerifier, codec};
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use synod_consensus::engine::{NodeId, SyncedBlock as EngineSyncedBlock};

use crate::context::NodeContext;
use crate::inbox::ControlEvent;
use crate::net::NetCommand;
use crate::net::behaviour::{MAX_SYNC_REQUEST_BYTES, MAX_SYNC_RESPONSE_BYTES};

/// Most blocks per response.
const MAX_BLOCKS: u32 = 256;
/// Approximate byte budget of one response.
const RESPONSE_BUDGET: usize = 8 << 20;

/// Blocks from `from_height` on, at most `max_blocks`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SyncRequest {
    /// First height wanted.
    pub from_height: u64,
    /// Most blocks wanted.
    pub max_blocks: u32,
}

/// A block with its finality proof.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SyncedBlock {
    /// The block.
    pub block: Block,
    /// Its proof.
    pub proof: Vec<u8>,
}

/// The answer: the server's tip and consecutive blocks from the requested height.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SyncResponse {
    /// The server's committed height.
    pub tip: u64,
    /// The blocks.
    pub blocks: Vec<SyncedBlock>,
}

/// Answers a sync request from the store (bounded in count and bytes).
pub fn serve(ctx: &NodeContext, request: &[u8]) -> Vec<u8> {
    let tip = ctx.store.tip().height;
    let mut response = SyncResponse {
        tip,
        blocks: Vec::new(),
    };
    let Ok(request) = codec::decode::<SyncRequest>(request, MAX_SYNC_REQUEST_BYTES as usize) else {
        ctx.metrics.dropped("malformed_sync");
        return codec::encode(&response);
    };
    let Ok(reader) = ctx.store.reader() else {
        return codec::encode(&response);
    };
    let mut bytes = 0;
    let last = tip.min(
        request
            .from_height
            .saturating_add(request.max_blocks.min(MAX_BLOCKS) as u64),
    );
    for height in request.from_height.max(1)..=last {
        let Ok(Some(block)) = reader.block_at(height) else {
            break;
        };
        let proof = reader.proof(&block.hash()).unwrap_or_default();
        bytes += 256 + block.txs.len() * 200 + proof.len();
        if !response.blocks.is_empty() && bytes > RESPONSE_BUDGET {
            break;
        }
        response.blocks.push(SyncedBlock { block, proof });
    }
    codec::encode(&response)
}

/// Answers an engine's `RequestSync`: asks `from` for blocks from `height` on and hands what
/// comes back to the driver as `Input::Synced` (the engine verifies every block and proof). No
/// answer means nothing is handed back; the engine asks again.
pub fn fetch_for_engine(ctx: &Arc<NodeContext>, from: NodeId, height: u64) {
    let (Some(peer), Some(net)) = (crate::net::peer_id_of(&from), ctx.net.get()) else {
        return;
    };
    let (reply, answer) = oneshot::channel();
    net.send(NetCommand::Sync {
        to: peer,
        bytes: codec::encode(&SyncRequest {
            from_height: height,
            max_blocks: MAX_BLOCKS,
        }),
        reply,
    });
    let ctx = ctx.clone();
    ctx.runtime.clone().spawn(async move {
        let Ok(Some(bytes)) = answer.await else {
            return;
        };
        let Ok(response) = codec::decode::<SyncResponse>(&bytes, MAX_SYNC_RESPONSE_BYTES as usize)
        else {
            ctx.metrics.dropped("malformed_sync");
            return;
        };
        let blocks: Vec<EngineSyncedBlock> = response
            .blocks
            .into_iter()
            .map(|b| EngineSyncedBlock {
                block: b.block,
                proof: b.proof,
            })
            .collect();
        if !blocks.is_empty() && !ctx.to_driver(ControlEvent::Synced(blocks)) {
            ctx.metrics.dropped("driver_busy");
        }
    });
}

/// Fills history below an installed snapshot in the background: asks peers in turn for the
/// blocks below the lowest complete height and stores each one its child's hash pins (see
/// `Store::backfill`), until the store holds every block from genesis, so this node can serve any
/// block and observers can sync from it.
pub async fn backfill(ctx: Arc<NodeContext>, peers: Arc<std::sync::RwLock<Vec<libp2p::PeerId>>>) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut next_peer = 0usize;
    // How many blocks below the missing height to ask for: halved while answers (bounded in
    // bytes) stop short of it, grown again on progress, so full blocks still come one by one.
    let mut window = MAX_BLOCKS as u64;
    let validators = validator_peers(&ctx);
    loop {
        tick.tick().await;
        let base = ctx.store.base_height();
        if base == 0 {
            continue;
        }
        // History comes from validators only: a stranger could not forge the blocks (the chain
        // pins them) but could serve proofs that do not check.
        let candidates: Vec<libp2p::PeerId> = peers
            .read()
            .map(|p| p.clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|p| validators.contains(p))
            .collect();
        if candidates.is_empty() {
            continue;
        }
        next_peer = (next_peer + 1) % candidates.len();
        let peer = candidates[next_peer];
        let from_height = base.saturating_sub(window - 1).max(1);
        let (reply, answer) = oneshot::channel();
        let Some(net) = ctx.net.get() else {
            continue;
        };
        net.send(NetCommand::Sync {
            to: peer,
            bytes: codec::encode(&SyncRequest {
                from_height,
                max_blocks: window as u32,
            }),
            reply,
        });
        let Ok(Some(bytes)) = answer.await else {
            continue;
        };
        let Ok(response) = codec::decode::<SyncResponse>(&bytes, MAX_SYNC_RESPONSE_BYTES as usize)
        else {
            ctx.metrics.dropped("malformed_sync");
            continue;
        };
        let reached = response
            .blocks
            .last()
            .is_some_and(|b| b.block.header.height >= base);
        if !reached {
            window = (window / 2).max(1);
            tick.reset_immediately();
            continue;
        }
        let members: Vec<synod_chain::PublicKey> = ctx
            .members
            .read()
            .map(|m| m.iter().copied().collect())
            .unwrap_or_default();
        let mut blocks = Vec::with_capacity(response.blocks.len());
        let mut bad = false;
        for synced in response.blocks {
            if synod_consensus::finality::verify_finality(
                &ctx.genesis.engine,
                &ctx.genesis.chain_id,
                &members,
                &synced.block.header,
                &synced.proof,
            )
            .is_err()
            {
                bad = true;
                break;
            }
            blocks.push((synced.block, synced.proof));
        }
        if bad {
            warn!(peer = %peer, "a peer served history whose finality proofs do not check");
            ctx.metrics.dropped("bad_proof");
            net.send(NetCommand::Ban {
                peer,
                duration: BAD_PEER_BAN,
            });
            continue;
        }
        let store_ctx = ctx.clone();
        match tokio::task::spawn_blocking(move || store_ctx.store.backfill(&blocks)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(filled)) => {
                window = (window * 2).min(MAX_BLOCKS as u64);
                let base = ctx.store.base_height();
                if base == 0 {
                    info!(filled, "history below the snapshot is complete");
                } else {
                    debug!(filled, missing_at_or_below = base, "backfilled history");
                }
                // Keep going at once while peers have what is missing.
                tick.reset_immediately();
            }
            Ok(Err(e)) => {
                warn!(peer = %peer, error = %e, "a peer sent history that does not link");
                ctx.metrics.dropped("bad_history");
                net.send(NetCommand::Ban {
                    peer,
                    duration: BAD_PEER_BAN,
                });
            }
            Err(e) => warn!(error = %e, "backfill task failed"),
        }
    }
}

/// The peer ids of the genesis validators.
fn validator_peers(ctx: &NodeContext) -> Vec<libp2p::PeerId> {
    ctx.genesis
        .validators
        .iter()
        .filter_map(|v| crate::net::peer_id_of(&v.public_key))
        .collect()
}

/// Observers: pull blocks from connected peers and store every one that verifies.
pub async fn follow(ctx: Arc<NodeContext>, peers: Arc<std::sync::RwLock<Vec<libp2p::PeerId>>>) {
    let mut tick = tokio::time::interval(Duration::from_millis(300));
    let mut next_peer = 0usize;
    // On a permissioned chain, blocks come from validators only.
    let validators = validator_peers(&ctx);
    let permissioned = ctx.genesis.engine.is_permissioned();
    loop {
        tick.tick().await;
        let candidates: Vec<libp2p::PeerId> = peers
            .read()
            .map(|p| p.clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|p| !permissioned || validators.contains(p))
            .collect();
        if candidates.is_empty() {
            continue;
        }
        next_peer = (next_peer + 1) % candidates.len();
        let peer = candidates[next_peer];
        loop {
            let from_height = ctx.store.tip().height + 1;
            let (reply, answer) = oneshot::channel();
            let Some(net) = ctx.net.get() else {
                break;
            };
            net.send(NetCommand::Sync {
                to: peer,
                bytes: codec::encode(&SyncRequest {
                    from_height,
                    max_blocks: MAX_BLOCKS,
                }),
                reply,
            });
            let Ok(Some(bytes)) = answer.await else {
                break;
            };
            let Ok(response) =
                codec::decode::<SyncResponse>(&bytes, MAX_SYNC_RESPONSE_BYTES as usize)
            else {
                ctx.metrics.dropped("malformed_sync");
                break;
            };
            if response.blocks.is_empty() {
                break;
            }
            let ctx2 = ctx.clone();
            let outcome = tokio::task::spawn_blocking(move || apply(&ctx2, response.blocks))
                .await
                .unwrap_or(Applied {
                    stored: 0,
                    bad: false,
                });
            if outcome.bad {
                // A peer that serves a block that does not check is cut off for a while.
                net.send(NetCommand::Ban {
                    peer,
                    duration: BAD_PEER_BAN,
                });
                break;
            }
            if outcome.stored == 0 {
                break;
            }
        }
    }
}

/// How long a peer that served a bad block is refused.
const BAD_PEER_BAN: Duration = Duration::from_secs(600);

/// What applying a sync answer did.
struct Applied {
    /// Blocks stored.
    stored: usize,
    /// The peer served a block that does not check.
    bad: bool,
}

/// Verifies (finality proof first, then the whole block) and stores consecutive synced blocks.
fn apply(ctx: &NodeContext, blocks: Vec<SyncedBlock>) -> Applied {
    let mut verifier = TxVerifier::new(64 * 1024);
    let mut stored = 0;
    let validators: Vec<synod_chain::PublicKey> = ctx
        .members
        .read()
        .map(|m| m.iter().copied().collect())
        .unwrap_or_default();
    for synced in blocks {
        if let Err(e) = synod_consensus::finality::verify_finality(
            &ctx.genesis.engine,
            &ctx.genesis.chain_id,
            &validators,
            &synced.block.header,
            &synced.proof,
        ) {
            warn!(height = synced.block.header.height, error = %e, "a peer served a block whose finality proof does not check");
            ctx.metrics.dropped("bad_proof");
            return Applied { stored, bad: true };
        }
        let Ok(reader) = ctx.store.reader() else {
            break;
        };
        let tip = ctx.store.tip();
        let Ok(Some(parent)) = reader.header(&tip.hash) else {
            break;
        };
        let changes = match ctx
            .ledger
            .apply_block(&mut verifier, &reader, &parent, &synced.block)
        {
            Ok(changes) => changes,
            Err(e) => {
                warn!(height = synced.block.header.height, error = %e, "a peer sent a block that does not verify");
                ctx.metrics.dropped("invalid_block");
                return Applied { stored, bad: true };
            }
        };
        drop(reader);
        if let Err(e) =
            ctx.store
                .commit_block(&synced.block, &changes, &synced.proof, Finality::Final, &[])
        {
            warn!(error = %e, "cannot store a synced block");
            break;
        }
        stored += 1;
        ctx.metrics.commits.inc();
        ctx.metrics
            .committed_txs
            .inc_by(synced.block.txs.len() as u64);
        ctx.metrics.height.set(synced.block.header.height as i64);
        if let Ok(reader) = ctx.store.reader() {
            ctx.mempool()
                .on_commit(&synced.block, &reader, std::time::Instant::now());
        }
    }
    if stored > 0 {
        let tip = ctx.store.tip();
        ctx.update_status(|s| {
            s.height = tip.height;
            s.tip = tip.hash;
            s.last_height = tip.height;
        });
        info!(height = tip.height, blocks = stored, "synced");
    } else {
        debug!("nothing synced");
    }
    Applied { stored, bad: false }
}
