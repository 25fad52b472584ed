//! `synod block verify` and `synod inspect verify`: check one block as a stranger would, holding
//! only the genesis (its engine and validators): the header is the block its id names, the body
//! is the one the header commits to, and the finality proof checks (a PBFT commit certificate, a
//! Raft leader's signature, proof-of-work). Online the block comes from a node's RPC; offline
//! from a node's database.

use anyhow::bail;
use synod_chain::BlockHeader;
use synod_chain::hash::Hash;
use synod_consensus::finality::verify_block;
use synod_genesis::Genesis;

use crate::table::key_values;

/// What the proof of `genesis`'s engine is, and what it does not show, in words.
fn proof_kind(genesis: &Genesis) -> &'static str {
    match genesis.engine.kind() {
        "pbft" => "PBFT commit certificate (2f+1 signed COMMITs of the genesis validators)",
        "raft" => {
            "a genesis validator's signature over the block and its term (who led that term is \
             not in the proof)"
        }
        _ => {
            "proof of work: the header meets the bits it declares (whether those bits are the \
             chain's difficulty at that height takes the chain's headers)"
        }
    }
}

/// Checks `header` (which `id` claims to name), its body's `tx_ids` and its finality `proof`
/// against `genesis`, prints the verdict, and fails if the block does not check.
pub fn verify_and_report(
    genesis: &Genesis,
    id: Option<Hash>,
    header: &BlockHeader,
    tx_ids: &[Hash],
    proof: &[u8],
) -> anyhow::Result<()> {
    let hash = header.hash();
    let mut fields = vec![
        ("block", format!("{} at height {}", hash, header.height)),
        ("chain", genesis.chain_id.clone()),
        ("proof", proof_kind(genesis).to_string()),
        ("validators", genesis.validators.len().to_string()),
    ];
    let verdict = if id.is_some_and(|id| id != hash) {
        Err(format!(
            "the header hashes to {hash}, not to the id {} it was served as",
            id.map(|i| i.to_string()).unwrap_or_default()
        ))
    } else if header.height == 0 {
        // Block 0 is computed from the genesis file: it must be exactly that block.
        if hash == genesis.state().block.hash() && tx_ids.is_empty() {
            Ok("the genesis block, as the genesis file makes it".to_string())
        } else {
            Err("a height-0 block that is not the one this genesis makes".to_string())
        }
    } else {
        verify_block(
            &genesis.engine,
            &genesis.chain_id,
            &genesis.validator_keys(),
            header,
            tx_ids,
            proof,
        )
        .map(|()| "verified: body matches the header, finality proof checks".to_string())
        .map_err(|e| e.to_string())
    };
    let failed = verdict.is_err();
    fields.push((
        "result",
        match &verdict {
            Ok(ok) => ok.clone(),
            Err(e) => format!("FAILED: {e}"),
        },
    ));
    println!("{}", key_values(fields));
    if failed {
        bail!("block {} does not verify", header.height);
    }
    Ok(())
}
