//! Signing a workload up front, on every core, so that signing never paces the load.

use synod_chain::keys::SecretKey;
use synod_chain::{Memo, SignedTransaction, Transaction};

/// Signs `count` transfers round-robin over `keys` (each to the next account, amount 1, fee 1),
/// continuing each account's nonces from `nonces`. The same inputs give the same transactions,
/// byte for byte.
pub fn sign_all(
    keys: &[SecretKey],
    nonces: &[u64],
    chain_id: &str,
    count: usize,
) -> Vec<SignedTransaction> {
    let progress = indicatif::ProgressBar::new(count as u64).with_message("signing");
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunks: Vec<Vec<SignedTransaction>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let progress = progress.clone();
                scope.spawn(move || {
                    (t..count)
                        .step_by(threads)
                        .map(|i| {
                            let a = i % keys.len();
                            let tx = Transaction {
                                chain_id: chain_id.to_string(),
                                from: keys[a].public(),
                                to: keys[(a + 1) % keys.len()].address(),
                                amount: 1,
                                fee: 1,
                                nonce: nonces[a] + (i / keys.len()) as u64,
                                memo: Memo::default(),
                            }
                            .sign(&keys[a]);
                            progress.inc(1);
                            tx
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    progress.finish_and_clear();
    // Restore the global order i = 0..count (thread t holds i = t, t + threads, ...).
    let mut out = Vec::with_capacity(count);
    let mut iters: Vec<_> = chunks.into_iter().map(Vec::into_iter).collect();
    for i in 0..count {
        if let Some(tx) = iters[i % threads].next() {
            out.push(tx);
        }
    }
    out
}

/// Each account's next nonce as the node behind `client` sees it (counting its pending ones).
pub fn next_nonces(
    client: &mut synod_node::rpc::client::RpcClient,
    keys: &[SecretKey],
) -> anyhow::Result<Vec<u64>> {
    keys.iter()
        .map(|k| {
            let account =
                client.call("get_account", serde_json::json!({ "address": k.address() }))?;
            Ok(account["next_nonce"].as_u64().unwrap_or(0))
        })
        .collect()
}
