//! Every decoder that takes bytes from outside, behind one entry point per fuzz target: the
//! coverage-guided fuzzers in `fuzz/` call these with arbitrary bytes, and the regression test
//! replays the kept corpora and crash reproducers through the same functions on the stable
//! toolchain. Each must return (any error is fine) and never panic or allocate without bound.

use synod_chain::hash::Hash;
use synod_chain::keys::SecretKey;
use synod_chain::{Block, SignedTransaction, codec};
use synod_consensus::pbft::PbftMessage;
use synod_consensus::pow::PowMessage;
use synod_consensus::raft::RaftMessage;

/// Largest consensus payload the node decodes (as the driver does).
const MAX_MESSAGE_BYTES: usize = 16 << 20;

/// The fuzz targets, by name (the folder names under `fuzz/corpus/`).
pub const TARGETS: &[&str] = &[
    "envelope",
    "raft_message",
    "transaction",
    "block",
    "sync",
    "rpc_body",
    "genesis",
    "node_config",
    "journal",
    "finality_proof",
    "pbft_message",
    "pow_message",
    "pbft_certificate",
];

/// Feeds `data` to target `target`'s decoder. Unknown targets are a bug in the caller.
pub fn exercise(target: &str, data: &[u8]) {
    match target {
        "envelope" => envelope(data),
        "raft_message" => {
            let _ = codec::decode::<RaftMessage>(data, MAX_MESSAGE_BYTES);
        }
        "transaction" => {
            if let Ok(tx) = SignedTransaction::decode(data) {
                let _ = tx.check_stateless("synod-fuzz");
                assert_eq!(SignedTransaction::decode(&tx.encode()).ok(), Some(tx));
            }
        }
        "block" => {
            if let Ok(block) = Block::decode(data) {
                assert_eq!(Block::decode(&block.encode()).ok(), Some(block));
            }
        }
        "sync" => {
            let _ = codec::decode::<synod_node::sync::SyncRequest>(data, 1024);
            let _ = codec::decode::<synod_node::sync::SyncResponse>(data, 32 << 20);
        }
        "rpc_body" => {
            let _ = synod_node::rpc::request::parse_body(data);
        }
        "genesis" => {
            if let Ok(text) = std::str::from_utf8(data) {
                let _ = synod_genesis::Genesis::from_json(text);
            }
        }
        "node_config" => {
            if let Ok(text) = std::str::from_utf8(data) {
                let _ = synod_genesis::NodeConfig::parse(text);
            }
        }
        "journal" => {
            let _ = synod_node::mempool::journal::decode_records(data);
        }
        "finality_proof" => finality_proof(data),
        "pbft_message" => {
            if let Ok(message) = PbftMessage::decode(data) {
                assert_eq!(PbftMessage::decode(&message.encode()).ok(), Some(message));
            }
        }
        "pow_message" => {
            let _ = codec::decode::<PowMessage>(data, MAX_MESSAGE_BYTES);
        }
        "pbft_certificate" => pbft_certificate(data),
        other => panic!("no fuzz target {other:?}"),
    }
}

/// The fixed keys of the fuzzed world: the node that receives envelopes and a validator.
fn keys() -> &'static (SecretKey, SecretKey) {
    static KEYS: std::sync::OnceLock<(SecretKey, SecretKey)> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| (SecretKey::from_seed([1; 32]), SecretKey::from_seed([2; 32])))
}

fn envelope(data: &[u8]) {
    let (me, _) = keys();
    let chain = Hash([7; 32]);
    if let Ok(unverified) = synod_node::envelope::parse(data, &chain, &me.public()) {
        let _ = unverified.verify();
    }
}

/// The header whose finality proof the proof targets check, proposed by the fuzzed validator.
fn proven_header() -> &'static synod_chain::BlockHeader {
    static HEADER: std::sync::OnceLock<synod_chain::BlockHeader> = std::sync::OnceLock::new();
    HEADER.get_or_init(|| {
        let mut header = synod_chain::fixtures::Fixture::new("synod-fuzz", 1, 1, 0)
            .genesis
            .block
            .header;
        header.proposer = keys().1.public();
        header
    })
}

/// A stored finality proof checked as `engine` checks it, with the fuzzed validator as the set.
fn check_proof(engine: synod_genesis::EngineConfig, data: &[u8]) {
    let _ = synod_consensus::finality::verify_finality(
        &engine,
        "synod-fuzz",
        &[keys().1.public()],
        proven_header(),
        data,
    );
}

fn finality_proof(data: &[u8]) {
    check_proof(
        synod_genesis::EngineConfig::Raft(synod_genesis::RaftParams::default()),
        data,
    );
}

fn pbft_certificate(data: &[u8]) {
    check_proof(
        synod_genesis::EngineConfig::Pbft(synod_genesis::PbftParams::default()),
        data,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_takes_garbage() {
        for target in TARGETS {
            for data in [&b""[..], b"\x00", &[0xff; 300], b"{\"jsonrpc\":\"2.0\"}"] {
                exercise(target, data);
            }
        }
    }
}
