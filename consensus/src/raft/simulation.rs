//! Raft in the simulator: the engine factory with the knobs scenarios need, and the Byzantine
//! behaviours a Raft node can show there. Shared by the test suites and `synod simulate`.
//!
//! Raft tolerates crashes, not lies: its followers store whatever the leader appends and apply
//! it when the leader says so. The behaviours make that visible:
//!
//! | behaviour | what the node does |
//! | --- | --- |
//! | `equivocate` | as leader, appends one block to half of its followers and a different, equally signed block at the same height to the other half |
//! | `silent` | sends nothing at all (it still receives and follows the chain): a crash in all but name |
//! | `replay` | sends everything twice and replays each message once more, much later |

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use synod_chain::hash::Hash;
use synod_chain::keys::SecretKey;
use synod_genesis::RaftParams;

use super::messages::RaftMessage;
use super::{RaftConfig, RaftEngine, RaftFault, proof};
use crate::engine::NodeId;
use crate::sim::EngineFactory;
use crate::sim::adversary::{Adversary, Replayer, Rewriter, Silent};

/// How the simulated Raft engines are built.
#[derive(Clone, Debug, Default)]
pub struct RaftOptions {
    /// Engine parameters.
    pub params: RaftParams,
    /// Only the first `n` simulated nodes are genesis validators (the rest start as observers).
    pub genesis_validators: Option<usize>,
    /// A deliberately broken commit rule.
    pub fault: RaftFault,
}

/// A factory building Raft engines with `options`.
pub fn raft_factory(options: RaftOptions) -> EngineFactory<RaftEngine> {
    Box::new(move |setup, restored| {
        let validators = match options.genesis_validators {
            Some(n) => setup.validators[..n].to_vec(),
            None => setup.validators.clone(),
        };
        let mut config = RaftConfig::new(
            setup.key.clone(),
            validators,
            options.params.clone(),
            setup.seed,
        );
        config.fault = options.fault;
        RaftEngine::new(config, setup.ledger.clone(), restored).map_err(|e| e.to_string())
    })
}

/// A Byzantine behaviour of a simulated Raft node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RaftBehaviour {
    /// Different blocks at one height to different followers, as leader.
    Equivocate,
    /// Sends nothing.
    Silent,
    /// Duplicates and replays its messages.
    Replay,
}

impl RaftBehaviour {
    /// Every behaviour, by name.
    pub const ALL: [RaftBehaviour; 3] = [
        RaftBehaviour::Equivocate,
        RaftBehaviour::Silent,
        RaftBehaviour::Replay,
    ];
}

impl fmt::Display for RaftBehaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RaftBehaviour::Equivocate => "equivocate",
            RaftBehaviour::Silent => "silent",
            RaftBehaviour::Replay => "replay",
        })
    }
}

/// A behaviour name that is not one of [`RaftBehaviour::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown Raft behaviour {0:?}; expected equivocate, silent or replay")]
pub struct UnknownBehaviour(pub String);

impl FromStr for RaftBehaviour {
    type Err = UnknownBehaviour;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RaftBehaviour::ALL
            .into_iter()
            .find(|b| b.to_string() == s)
            .ok_or_else(|| UnknownBehaviour(s.to_string()))
    }
}

/// The adversary that gives the node holding `key`, among `validators`, the behaviour `b`.
pub fn adversary(
    b: RaftBehaviour,
    key: SecretKey,
    validators: &[NodeId],
    chain_id: &str,
) -> Box<dyn Adversary<RaftMessage>> {
    match b {
        RaftBehaviour::Silent => Box::new(Silent),
        RaftBehaviour::Replay => Box::new(Replayer {
            replay_after: 2_000,
        }),
        RaftBehaviour::Equivocate => equivocator(key, validators, chain_id.to_string()),
    }
}

/// Every other follower (in validator order) gets the twin chain: each block one millisecond
/// later, linked to the twin of its parent and signed by the leader for its term, so the twin
/// chain is as valid as the real one and the victims have no way to tell.
fn equivocator(
    key: SecretKey,
    validators: &[NodeId],
    chain_id: String,
) -> Box<dyn Adversary<RaftMessage>> {
    let me = key.public();
    let victims: Vec<NodeId> = validators
        .iter()
        .filter(|v| **v != me)
        .skip(1)
        .step_by(2)
        .copied()
        .collect();
    // The twin of each real block, by the real block's id.
    let mut twins: HashMap<Hash, Hash> = HashMap::new();
    Box::new(Rewriter {
        rewrite: Box::new(move |_, to, msg| {
            vec![match msg {
                RaftMessage::Append {
                    term,
                    prev_index,
                    prev_term,
                    mut entries,
                    commit,
                    overloaded,
                } if victims.contains(&to) => {
                    for entry in &mut entries {
                        let real = entry.block.hash();
                        let mut block = entry.block.clone();
                        block.header.timestamp_ms += 1;
                        if let Some(parent) = twins.get(&block.header.parent) {
                            block.header.parent = *parent;
                        }
                        let twin = block.hash();
                        twins.insert(real, twin);
                        entry.signature = proof::sign_block(&key, &chain_id, &twin, entry.term);
                        entry.block = block;
                    }
                    RaftMessage::Append {
                        term,
                        prev_index,
                        prev_term,
                        entries,
                        commit,
                        overloaded,
                    }
                }
                other => other,
            }]
        }),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn behaviours_parse_by_name() {
        for b in RaftBehaviour::ALL {
            assert_eq!(b.to_string().parse::<RaftBehaviour>().unwrap(), b);
        }
        assert!("censor".parse::<RaftBehaviour>().is_err());
    }
}
