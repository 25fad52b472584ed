//! Admitting transactions, from this node's clients and from peers: the mempool's checks, the
//! journal for what a client is told was admitted, the doorbell that wakes the driver, gossip,
//! and the metrics. Also the replay of the journal when a node starts.

use std::time::Instant;

use synod_chain::SignedTransaction;
use synod_chain::hash::Hash;
use tracing::{info, warn};

use crate::context::NodeContext;
use crate::inbound::MAX_GOSSIP_TXS;
use crate::mempool::{self, AdmitError};
use crate::net::NetCommand;

/// Rewrite the journal once it holds this many more records than there are local transactions
/// pending (plus a floor, so a small pool is not rewritten on every call).
const JOURNAL_SLACK: u64 = 50_000;

/// One result per transaction: its id, or why it was refused.
pub type Admitted = Vec<(SignedTransaction, Result<Hash, AdmitError>)>;

fn count(ctx: &NodeContext, results: &Admitted) {
    for (_, result) in results {
        match result {
            Ok(_) => {
                ctx.metrics.txs_admitted.inc();
            }
            Err(e) => {
                ctx.metrics
                    .txs_rejected
                    .get_or_create(&crate::metrics::ReasonLabel {
                        reason: e.label().to_string(),
                    })
                    .inc();
            }
        }
    }
}

fn admit(ctx: &NodeContext, txs: Vec<SignedTransaction>, local: bool) -> Admitted {
    let results = mempool::admit(&ctx.mempool, txs.clone(), || ctx.store.reader(), local);
    txs.into_iter().zip(results).collect()
}

/// Admits transactions a client of this node submitted. Those admitted are on disk (journaled)
/// before this returns, handed to the engine, and gossiped where the engine wants them gossiped.
/// While the engine reports backpressure, all are refused at once, before any check: the chain
/// would only queue them.
pub fn admit_local(ctx: &NodeContext, txs: Vec<SignedTransaction>) -> Admitted {
    if ctx.overloaded.load(std::sync::atomic::Ordering::Relaxed) {
        let results: Admitted = txs
            .into_iter()
            .map(|tx| (tx, Err(AdmitError::Overloaded)))
            .collect();
        count(ctx, &results);
        return results;
    }
    let mut results = admit(ctx, txs, true);
    let admitted: Vec<SignedTransaction> = results
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(tx, _)| tx.clone())
        .collect();
    if admitted.is_empty() {
        count(ctx, &results);
        return results;
    }
    // The engine may start on them while the journal write runs: only the client's answer has
    // to wait for the disk.
    ctx.ring_driver();
    if let Err(e) = journal(ctx, &admitted) {
        warn!(error = %e, "cannot journal admitted transactions; refusing them");
        ctx.health.report("journal", e.clone());
        let mut mempool = ctx.mempool();
        for (tx, result) in &mut results {
            // One that already left the pool committed meanwhile (the engine had it): its id
            // stands.
            if result.is_ok() && mempool.drop_tx(&tx.id(), format!("not acknowledged: {e}")) {
                *result = Err(AdmitError::Journal(e.clone()));
            }
        }
        count(ctx, &results);
        return results;
    }
    count(ctx, &results);
    if ctx.gossip_local_txs {
        gossip(ctx, &admitted);
    }
    results
}

/// What became of a gossiped batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerBatch {
    /// Admitted.
    pub admitted: usize,
    /// Invalid in themselves (bad signature, wrong chain, malformed): whoever relayed them did
    /// not check them.
    pub invalid: usize,
}

/// Admits transactions a peer gossiped.
pub fn admit_from_peer_checked(ctx: &NodeContext, txs: Vec<SignedTransaction>) -> PeerBatch {
    let results = admit(ctx, txs, false);
    count(ctx, &results);
    let admitted = results.iter().filter(|(_, r)| r.is_ok()).count();
    let invalid = results
        .iter()
        .filter(|(_, r)| {
            matches!(
                r,
                Err(AdmitError::Invalid(
                    synod_chain::TxError::BadSignature(_)
                        | synod_chain::TxError::WrongChain { .. }
                        | synod_chain::TxError::Encoding(_)
                ))
            )
        })
        .count();
    if admitted > 0 {
        ctx.ring_driver();
    }
    PeerBatch { admitted, invalid }
}

/// Gossips again what this node's clients submitted and is still pending after a while: the
/// first gossip may have been lost (no peers yet, a full queue, a restart that replayed the
/// journal). Only on nodes that spread their clients' transactions by gossip.
pub fn regossip_pending(ctx: &NodeContext) {
    if !ctx.gossip_local_txs {
        return;
    }
    let txs =
        ctx.mempool()
            .local_older_than(std::time::Instant::now(), REGOSSIP_AFTER, MAX_REGOSSIP);
    if !txs.is_empty() {
        gossip(ctx, &txs);
    }
}

/// A pending transaction is gossiped again after this long.
const REGOSSIP_AFTER: std::time::Duration = std::time::Duration::from_secs(20);
/// Most transactions gossiped again at once.
const MAX_REGOSSIP: usize = 10_000;

fn gossip(ctx: &NodeContext, txs: &[SignedTransaction]) {
    if let Some(net) = ctx.net.get() {
        for chunk in txs.chunks(MAX_GOSSIP_TXS) {
            net.send(NetCommand::GossipTxs(synod_chain::codec::encode(chunk)));
        }
    }
}

/// Appends to the journal, rewriting it when it has grown well past what is pending.
fn journal(ctx: &NodeContext, txs: &[SignedTransaction]) -> Result<(), String> {
    let mut guard = ctx
        .journal
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(journal) = guard.as_mut() else {
        return Ok(());
    };
    if journal.is_broken() {
        // A clean file first: what is pending, then the new ones.
        let pending: Vec<SignedTransaction> = ctx.mempool().local_pending().cloned().collect();
        journal.rewrite(&pending).map_err(|e| e.to_string())?;
    }
    journal.append(txs).map_err(|e| e.to_string())?;
    // The transactions are durable now; a failed compaction is the journal's problem to report,
    // not a reason to refuse them.
    let live = ctx.mempool().local_count() as u64;
    if journal.records() > 2 * live + JOURNAL_SLACK {
        let pending: Vec<SignedTransaction> = ctx.mempool().local_pending().cloned().collect();
        if let Err(e) = journal.rewrite(&pending) {
            ctx.health
                .report("journal", format!("cannot compact the journal: {e}"));
            return Ok(());
        }
    }
    ctx.health.clear("journal");
    Ok(())
}

/// Admits again what the journal holds (what clients were told was admitted before this node
/// last stopped), then rewrites it with what is still pending. Returns how many are pending.
pub fn replay_journal(ctx: &NodeContext, txs: Vec<SignedTransaction>) -> Result<usize, String> {
    let started = Instant::now();
    let total = txs.len();
    let results: Admitted = {
        let results = mempool::admit_acknowledged(&ctx.mempool, txs.clone(), || ctx.store.reader());
        txs.into_iter().zip(results).collect()
    };
    let pending = results.iter().filter(|(_, r)| r.is_ok()).count();
    // What no longer admits and is not in the chain was dropped while the node was down (or by
    // the chain that got there first): say so to whoever asks.
    for (tx, result) in &results {
        if let Err(e) = result
            && !matches!(ctx.store.is_committed(&tx.id()), Ok(true))
        {
            ctx.mempool()
                .record_drop(tx.id(), format!("dropped at restart: {e}"));
        }
    }
    let mut guard = ctx
        .journal
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(journal) = guard.as_mut() {
        let live: Vec<SignedTransaction> = ctx.mempool().local_pending().cloned().collect();
        journal.rewrite(&live).map_err(|e| e.to_string())?;
    }
    if total > 0 {
        info!(
            journaled = total,
            pending,
            settled = total - pending,
            ms = started.elapsed().as_millis() as u64,
            "mempool journal replayed"
        );
    }
    Ok(pending)
}
