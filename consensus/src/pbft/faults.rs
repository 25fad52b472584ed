//! Deliberately broken rules, to show that the simulator's checkers catch what they should.
//! The broken variants exist only with the `test-faults` cargo feature (which only the test crate
//! enables); without it [`PbftFault`] has one value, the correct rules, and no genesis or config
//! file can name anything else.

use super::PbftEngine;

/// Which rule to break.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PbftFault {
    /// The correct rules.
    #[default]
    None,
    /// Execute a block with one COMMIT short of a quorum (and accept such certificates).
    #[cfg(feature = "test-faults")]
    CommitQuorumShort,
    /// NEW-VIEW re-proposes nothing: prepared certificates are ignored.
    #[cfg(feature = "test-faults")]
    NewViewIgnoresPrepared,
}

impl PbftEngine {
    /// COMMITs that make a block committed (a quorum).
    pub(super) fn commit_quorum(&self) -> usize {
        match self.fault {
            #[cfg(feature = "test-faults")]
            PbftFault::CommitQuorumShort => self.replicas.quorum().saturating_sub(1).max(1),
            _ => self.replicas.quorum(),
        }
    }

    /// Whether NEW-VIEW skips prepared certificates.
    pub(super) fn ignores_prepared(&self) -> bool {
        match self.fault {
            #[cfg(feature = "test-faults")]
            PbftFault::NewViewIgnoresPrepared => true,
            _ => false,
        }
    }
}
