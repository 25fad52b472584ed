//! How `synod node` was asked to run beyond what its home folder says: options for experiments
//! that must never reach a production chain, checked against the genesis before anything starts.

use synod_consensus::pbft::ByzantineBehaviour;
use synod_consensus::raft::simulation::RaftBehaviour;
use synod_genesis::{EngineConfig, Genesis};

use crate::error::NodeError;

/// Options of one run of a node (none of them persisted).
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// A deliberate Byzantine behaviour by name (dev chains only), read by the chain's engine:
    /// PBFT's behaviours, or Raft's `equivocate`, `silent` and `replay`.
    pub byzantine: Option<String>,
}

/// A Byzantine behaviour an engine of this build can run live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// A PBFT replica's behaviour (the engine plays it itself).
    Pbft(ByzantineBehaviour),
    /// A Raft node's behaviour (its outgoing messages are rewritten, as in the simulator).
    Raft(RaftBehaviour),
}

impl RunOptions {
    /// The Byzantine behaviour to run, if any. Refuses what the chain does not allow: a
    /// behaviour needs a dev chain, an engine that has it, and a node that runs the engine (a
    /// validator).
    pub fn behaviour(
        &self,
        genesis: &Genesis,
        runs_engine: bool,
    ) -> Result<Option<Behaviour>, NodeError> {
        let Some(name) = self.byzantine.as_deref() else {
            return Ok(None);
        };
        if !genesis.dev {
            return Err(NodeError::Refused(format!(
                "--byzantine {name} is refused: chain {:?} is not a dev chain (its genesis has \"dev\": false); Byzantine behaviours are for experiments on local testnets",
                genesis.chain_id
            )));
        }
        if !runs_engine {
            return Err(NodeError::Refused(format!(
                "--byzantine {name} is refused: this node is an observer and runs no engine"
            )));
        }
        let refused = |e: &dyn std::fmt::Display| {
            NodeError::Refused(format!("--byzantine {name} is refused: {e}"))
        };
        match &genesis.engine {
            EngineConfig::Pbft(_) => name
                .parse()
                .map(|b| Some(Behaviour::Pbft(b)))
                .map_err(|e| refused(&e)),
            EngineConfig::Raft(_) => name
                .parse()
                .map(|b| Some(Behaviour::Raft(b)))
                .map_err(|e| refused(&e)),
            other => Err(refused(&format!(
                "Byzantine behaviours exist for the pbft and raft engines, this chain runs {}",
                other.kind()
            ))),
        }
    }

    /// Refuses options the chain does not allow (see [`RunOptions::behaviour`]).
    pub fn check(&self, genesis: &Genesis, runs_engine: bool) -> Result<(), NodeError> {
        self.behaviour(genesis, runs_engine).map(|_| ())
    }
}
