//! How `synod node` was asked to run beyond what its home folder says: options for experiments
//! that must never reach a production chain, checked against the genesis before anything starts.

use synod_consensus::pbft::ByzantineBehaviour;
use synod_genesis::{EngineConfig, Genesis};

use crate::error::NodeError;

/// Options of one run of a node (none of them persisted).
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Run this PBFT replica with a deliberate fault (dev chains only).
    pub byzantine: Option<ByzantineBehaviour>,
}

impl RunOptions {
    /// Refuses options the chain does not allow: a Byzantine behaviour needs a dev chain run by
    /// PBFT and a node that runs the engine (a validator).
    pub fn check(&self, genesis: &Genesis, runs_engine: bool) -> Result<(), NodeError> {
        let Some(behaviour) = self.byzantine else {
            return Ok(());
        };
        if !genesis.dev {
            return Err(NodeError::Refused(format!(
                "--byzantine {behaviour} is refused: chain {:?} is not a dev chain (its genesis has \"dev\": false); Byzantine behaviours are for experiments on local testnets",
                genesis.chain_id
            )));
        }
        if !matches!(genesis.engine, EngineConfig::Pbft(_)) {
            return Err(NodeError::Refused(format!(
                "--byzantine {behaviour} is refused: Byzantine behaviours exist for the pbft engine only, this chain runs {}",
                genesis.engine.kind()
            )));
        }
        if !runs_engine {
            return Err(NodeError::Refused(format!(
                "--byzantine {behaviour} is refused: this node is an observer and runs no engine"
            )));
        }
        Ok(())
    }
}
