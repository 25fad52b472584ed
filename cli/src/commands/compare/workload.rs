//! The one signed workload every engine gets: the same accounts on every testnet (one chain id,
//! accounts at the same dev key indices whatever the validator count), so the very same signed
//! transactions, byte for byte, are valid on each fresh testnet.

use synod_chain::hash::Hash;
use synod_genesis::dev_keys::dev_key;

use crate::load::sign::sign_all;

/// The chain id of every comparison testnet (transactions are signed for it).
pub const CHAIN_ID: &str = "synod-compare";
/// Dev key index of the first funded account: above any validator count `compare` runs, so
/// every size funds the same accounts.
pub const FIRST_ACCOUNT_KEY: u32 = 128;
/// Most validators a comparison testnet may have (node keys stay below the accounts').
pub const MAX_VALIDATORS: usize = FIRST_ACCOUNT_KEY as usize;

/// The signed transactions, hex-encoded for `send_transactions`, and their ids.
#[derive(Clone, Debug)]
pub struct Workload {
    /// Hex of each transaction's canonical bytes.
    pub raw: Vec<String>,
    /// Each transaction's id.
    pub ids: Vec<Hash>,
}

/// Signs `txs` transfers round-robin over `accounts` accounts, from nonce 0 (fresh testnets).
pub fn sign(accounts: usize, txs: usize) -> Workload {
    let keys: Vec<_> = (0..accounts as u32)
        .map(|j| dev_key(CHAIN_ID, FIRST_ACCOUNT_KEY + j))
        .collect();
    let nonces = vec![0; keys.len()];
    let signed = sign_all(&keys, &nonces, CHAIN_ID, txs);
    Workload {
        ids: signed.iter().map(|t| t.id()).collect(),
        raw: signed.iter().map(|t| hex::encode(t.encode())).collect(),
    }
}
