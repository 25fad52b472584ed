//! The JSON-RPC methods.

use std::sync::Arc;

use serde_json::{Value, json};
use synod_chain::hash::Hash;
use synod_chain::keys::{Address, PublicKey};
use synod_chain::{Block, SignedTransaction};
use synod_consensus::engine::Command;
use tokio::sync::oneshot;

use super::RpcError;
use crate::admission::admit_local;
use crate::admission_workers::NotRun;
use crate::context::NodeContext;
use crate::inbox::ControlEvent;
use crate::mempool::TxStatus;

/// Most transactions in one `send_transactions` call.
pub const MAX_BATCH_TXS: usize = 10_000;

fn param<'a>(params: &'a Value, name: &str) -> Option<&'a Value> {
    params.get(name)
}

fn parse<T: serde::de::DeserializeOwned>(value: &Value, what: &str) -> Result<T, RpcError> {
    serde_json::from_value(value.clone())
        .map_err(|e| RpcError::invalid_params(format!("{what}: {e}")))
}

/// The parameter `name`, which must be there.
pub(super) fn required<T: serde::de::DeserializeOwned>(
    params: &Value,
    name: &str,
) -> Result<T, RpcError> {
    match param(params, name) {
        Some(v) => parse(v, name),
        None => Err(RpcError::invalid_params(format!(
            "missing parameter {name:?}"
        ))),
    }
}

/// The parameter `name`, if given (and not null).
pub(super) fn optional<T: serde::de::DeserializeOwned>(
    params: &Value,
    name: &str,
) -> Result<Option<T>, RpcError> {
    match param(params, name) {
        Some(Value::Null) | None => Ok(None),
        Some(v) => parse(v, name).map(Some),
    }
}

/// Calls `method` with `params`.
pub async fn call(ctx: &Arc<NodeContext>, method: &str, params: &Value) -> Result<Value, RpcError> {
    match method {
        "status" => Ok(status(ctx)),
        "send_transaction" => {
            let tx = transaction_param(params)?;
            let mut results = submit(ctx, vec![tx]).await?;
            match results.pop() {
                Some(Ok(id)) => Ok(json!({ "id": id })),
                Some(Err(Refusal {
                    reason,
                    retry_after: Some(after),
                    ..
                })) => Err(RpcError::busy_because(reason, after)),
                Some(Err(refusal)) => Err(RpcError::rejected(refusal.reason, refusal.label)),
                None => Err(RpcError::internal("no result")),
            }
        }
        "send_transactions" => {
            let txs = transactions_param(params)?;
            let results = submit(ctx, txs).await?;
            Ok(Value::Array(
                results
                    .into_iter()
                    .map(|r| match r {
                        Ok(id) => json!({ "id": id }),
                        Err(refusal) => json!({
                            "error": refusal.reason,
                            "reason": refusal.label,
                            "retry": refusal.retry_after.is_some(),
                            "retry_after_ms": refusal.retry_after.map(|d| d.as_millis() as u64),
                        }),
                    })
                    .collect(),
            ))
        }
        "get_block" => get_block(ctx, params).await,
        "get_transaction" => {
            let id: Hash = required(params, "id")?;
            let ctx = ctx.clone();
            blocking(move || match ctx.store.transaction(&id) {
                Ok(Some((tx, location))) => Ok(json!({
                    "id": id,
                    "status": "committed",
                    "block": location.block,
                    "height": location.height,
                    "index": location.index,
                    "tx": tx,
                })),
                Ok(None) => uncommitted_status(&ctx, id),
                Err(e) => Err(RpcError::internal(e.to_string())),
            })
            .await
        }
        "get_account" => {
            let address: Address = required(params, "address")?;
            let account = ctx
                .store
                .account(&address)
                .map_err(|e| RpcError::internal(e.to_string()))?;
            let next_nonce = ctx.mempool().next_nonce(&address, account.nonce);
            Ok(json!({
                "address": address,
                "balance": account.balance,
                "nonce": account.nonce,
                "next_nonce": next_nonce,
            }))
        }
        "propose" => command(ctx, Command::Propose).await,
        "transfer_leadership" => {
            let to: PublicKey = required(params, "to")?;
            command(ctx, Command::TransferLeadership(to)).await
        }
        "add_validator" => {
            let key: PublicKey = required(params, "key")?;
            let allow: bool = match param(params, "allow_non_genesis") {
                Some(v) => parse(v, "allow_non_genesis")?,
                None => false,
            };
            // A key no genesis names is more often a typo or an attack than a plan.
            if !allow && ctx.genesis.validator_index(&key).is_none() {
                return Err(RpcError::command_rejected(format!(
                    "{key} is not a validator of the genesis; pass \"allow_non_genesis\": true to add it anyway"
                )));
            }
            command(ctx, Command::AddValidator(key)).await
        }
        "inject_fault" => super::faults::inject(ctx, params),
        "heal_faults" => super::faults::heal(ctx),
        "remove_validator" => {
            let key: PublicKey = required(params, "key")?;
            command(ctx, Command::RemoveValidator(key)).await
        }
        "get_mining_info" => super::mining::mining_info(ctx),
        "mine" => super::mining::mine(ctx, params).await,
        "set_mining" => super::mining::set_mining(ctx, params).await,
        other => Err(RpcError::method_not_found(other)),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, RpcError> + Send + 'static,
) -> Result<T, RpcError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| RpcError::internal(e.to_string()))?
}

fn status(ctx: &NodeContext) -> Value {
    let s = ctx.status();
    let mut value = json!({
        "chain_id": ctx.genesis.chain_id,
        "genesis_hash": ctx.genesis_hash,
        "engine": ctx.genesis.engine.kind(),
        "node_id": ctx.me,
        "moniker": ctx.moniker,
        "role": s.role,
        "round": s.round,
        "leader": s.leader,
        "height": s.height,
        "tip": s.tip,
        "last_height": s.last_height,
        "finalized_height": ctx.store.finalized_height(),
        // Blocks below this height came with a snapshot and are still being backfilled.
        "history_from": ctx.store.base_height(),
        "peers": s.peers,
        "validators": s.validators,
        "mempool": s.mempool,
        "mempool_queued": s.mempool_queued,
        "engine_pending": s.engine_pending,
        "overloaded": s.overloaded,
        "committed_txs": ctx.metrics.committed_txs.get(),
        "faults": super::faults::status(ctx),
        "version": env!("CARGO_PKG_VERSION"),
    });
    if let Some(pow) = &s.pow {
        value["mining"] = json!(pow.mining);
        value["hash_rate"] = json!(ctx.mining.hash_rate());
        value["chainwork"] = json!(pow.chainwork);
    }
    value
}

fn decode_raw(text: &str) -> Result<SignedTransaction, RpcError> {
    let bytes = hex::decode(text.trim_start_matches("0x"))
        .map_err(|e| RpcError::invalid_params(format!("raw: not hex: {e}")))?;
    SignedTransaction::decode(&bytes).map_err(|e| RpcError::invalid_params(format!("raw: {e}")))
}

fn transaction_param(params: &Value) -> Result<SignedTransaction, RpcError> {
    if let Some(raw) = param(params, "raw") {
        let text: String = parse(raw, "raw")?;
        return decode_raw(&text);
    }
    required(params, "tx")
}

fn transactions_param(params: &Value) -> Result<Vec<SignedTransaction>, RpcError> {
    let txs: Vec<SignedTransaction> = if let Some(raw) = param(params, "raw") {
        let texts: Vec<String> = parse(raw, "raw")?;
        if texts.len() > MAX_BATCH_TXS {
            return Err(RpcError::invalid_params(format!(
                "at most {MAX_BATCH_TXS} transactions per call"
            )));
        }
        texts
            .iter()
            .map(|t| decode_raw(t))
            .collect::<Result<_, _>>()?
    } else {
        let list = param(params, "txs")
            .and_then(Value::as_array)
            .ok_or_else(|| RpcError::invalid_params("expected \"txs\": [...] or \"raw\": [...]"))?;
        if list.len() > MAX_BATCH_TXS {
            return Err(RpcError::invalid_params(format!(
                "at most {MAX_BATCH_TXS} transactions per call"
            )));
        }
        list.iter()
            .map(|v| parse(v, "txs[]"))
            .collect::<Result<_, _>>()?
    };
    Ok(txs)
}

/// Why a submitted transaction was not admitted.
struct Refusal {
    reason: String,
    label: &'static str,
    /// The refusal clears by itself: the same transaction may be sent again after this long.
    retry_after: Option<std::time::Duration>,
}

type Submitted = Result<Hash, Refusal>;

/// Admits locally submitted transactions (journaled before the answer), for the engine and, where
/// the engine wants it, gossip.
async fn submit(
    ctx: &Arc<NodeContext>,
    txs: Vec<SignedTransaction>,
) -> Result<Vec<Submitted>, RpcError> {
    let worker = ctx.clone();
    let outcomes = ctx
        .admission
        .run(move || admit_local(&worker, txs))
        .await
        .map_err(|why| match why {
            NotRun::Busy => RpcError::busy_because(
                "every admission thread is busy and their queue is full".into(),
                std::time::Duration::from_millis(100),
            ),
            NotRun::Lost => RpcError::internal(
                "admission failed midway; the outcome is unknown: ask get_transaction, or resend the same transaction",
            ),
        })?;
    Ok(outcomes
        .into_iter()
        .map(|(_, outcome)| {
            outcome.map_err(|e| Refusal {
                reason: e.to_string(),
                label: e.label(),
                retry_after: e.retry_after(),
            })
        })
        .collect())
}

async fn command(ctx: &Arc<NodeContext>, command: Command) -> Result<Value, RpcError> {
    let (reply, answer) = oneshot::channel();
    if ctx.inbox.is_none() {
        return Err(RpcError::command_rejected(
            "this node is an observer and runs no engine".into(),
        ));
    }
    if !ctx.to_driver(ControlEvent::Command { command, reply }) {
        return Err(RpcError::busy());
    }
    match answer.await {
        Ok(Ok(())) => Ok(json!({ "accepted": true })),
        Ok(Err(reason)) => Err(RpcError::command_rejected(reason)),
        Err(_) => Err(RpcError::internal("the engine stopped")),
    }
}

fn block_json(block: &Block, proof: &[u8], txs: &str, finalized: u64) -> Value {
    let h = &block.header;
    let mut value = json!({
        "hash": block.hash(),
        "height": h.height,
        "parent": h.parent,
        "timestamp_ms": h.timestamp_ms,
        "tx_root": h.tx_root,
        "state_root": h.state_root,
        "proposer": h.proposer,
        "round": h.seal.round,
        "bits": h.seal.bits,
        "nonce": h.seal.nonce,
        "tx_count": block.txs.len(),
        "proof": hex::encode(proof),
        "header": hex::encode(h.encode()),
        "final": h.height <= finalized,
    });
    match txs {
        "ids" => value["tx_ids"] = json!(block.tx_ids()),
        "none" => {}
        _ => value["txs"] = json!(block.txs),
    }
    value
}

/// Whether the stored block checks as a stranger would check it (body against header, finality
/// proof against the current validators): `{"verified": true}` or the reason it does not.
fn finality_json(ctx: &NodeContext, block: &Block, proof: &[u8]) -> Value {
    if block.header.height == 0 {
        // The genesis block has no proof: it is the genesis file's, which every node starts from.
        return json!({ "verified": true, "genesis": true });
    }
    // Every validator the chain has had that this node knows of: the genesis set and the
    // current members (a block by a since-removed or a newly added validator still checks).
    let mut validators: Vec<PublicKey> = ctx.genesis.validator_keys();
    if let Ok(members) = ctx.members.read() {
        let added: Vec<PublicKey> = members
            .iter()
            .filter(|m| !validators.contains(m))
            .copied()
            .collect();
        validators.extend(added);
    }
    match synod_consensus::finality::verify_block(
        &ctx.genesis.engine,
        &ctx.genesis.chain_id,
        &validators,
        &block.header,
        &block.tx_ids(),
        proof,
    ) {
        Ok(()) => json!({ "verified": true }),
        Err(e) => json!({ "verified": false, "error": e.to_string() }),
    }
}

async fn get_block(ctx: &Arc<NodeContext>, params: &Value) -> Result<Value, RpcError> {
    let txs: String = match param(params, "txs") {
        Some(v) => parse(v, "txs")?,
        None => "full".into(),
    };
    if !["full", "ids", "none"].contains(&txs.as_str()) {
        return Err(RpcError::invalid_params(
            "txs: expected \"full\", \"ids\" or \"none\"",
        ));
    }
    let height: Option<u64> = param(params, "height")
        .map(|v| parse(v, "height"))
        .transpose()?;
    let hash: Option<Hash> = param(params, "hash")
        .map(|v| parse(v, "hash"))
        .transpose()?;
    if height.is_none() == hash.is_none() {
        return Err(RpcError::invalid_params(
            "give exactly one of \"height\" and \"hash\"",
        ));
    }
    let ctx = ctx.clone();
    blocking(move || {
        let reader = ctx
            .store
            .reader()
            .map_err(|e| RpcError::internal(e.to_string()))?;
        let block = match (height, hash) {
            (Some(h), _) => reader.block_at(h),
            (_, Some(hash)) => reader.block(&hash),
            _ => Ok(None),
        }
        .map_err(|e| RpcError::internal(e.to_string()))?
        .ok_or_else(|| RpcError::not_found("no such block".to_string()))?;
        let proof = reader
            .proof(&block.hash())
            .map_err(|e| RpcError::internal(e.to_string()))?;
        let mut value = block_json(&block, &proof, &txs, ctx.store.finalized_height());
        value["finality"] = finality_json(&ctx, &block, &proof);
        super::mining::add_pow_fields(&ctx, &reader, &block, &proof, &mut value)?;
        Ok(value)
    })
    .await
}

/// What this node knows of a transaction that is not in its chain: pending (and whether it
/// waits behind a gap in its sender's nonces), dropped with a reason, or settled by a snapshot.
fn uncommitted_status(ctx: &NodeContext, id: Hash) -> Result<Value, RpcError> {
    let (status, waits_for_nonce) = {
        let pool = ctx.mempool();
        (
            pool.status(&id, std::time::Instant::now()),
            pool.waits_for_nonce(&id),
        )
    };
    match (status, waits_for_nonce) {
        (TxStatus::Pending(age), waits_for_nonce) => Ok(json!({
            "id": id,
            "status": "pending",
            "pending_ms": age.as_millis() as u64,
            // Set when it waits behind a gap in its sender's nonces here.
            "waits_for_nonce": waits_for_nonce,
        })),
        (TxStatus::Dropped(reason), _) => Ok(json!({
            "id": id,
            "status": "dropped",
            "reason": reason,
        })),
        (TxStatus::Settled(reason), _) => Ok(json!({
            "id": id,
            "status": "settled",
            "reason": reason,
        })),
        (TxStatus::Unknown, _) => Err(RpcError::not_found(format!(
            "no transaction {id} is committed, pending or recently dropped here"
        ))),
    }
}
