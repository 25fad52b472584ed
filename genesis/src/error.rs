//! Genesis errors. Every problem names the field it is about, in the path form a user can find in
//! the file: `validators[2].public_key: expected 64 hex chars, got 63`.

use std::fmt;
use std::path::PathBuf;

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Path to the field (`engine.heartbeat_interval_ms`, `validators[1].name`).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

/// Why a genesis file (or a home built from one) is unusable.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file is not well-formed JSON of the right shape.
    #[error("{0}")]
    Parse(FieldError),
    /// The file parsed but breaks one or more rules.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<FieldError>),
    /// A key that is only allowed on dev chains was used on a non-dev chain.
    #[error(
        "{what} is the dev key #{index} of chain {chain_id:?}; dev keys are only accepted when the genesis sets \"dev\": true"
    )]
    DevKeyOnNonDevChain {
        /// Which key.
        what: String,
        /// Its dev index.
        index: u32,
        /// The chain.
        chain_id: String,
    },
    /// Something else about a node home or testnet folder.
    #[error("{0}")]
    Home(String),
}

impl GenesisError {
    /// The field errors, if this is a validation failure.
    pub fn fields(&self) -> &[FieldError] {
        match self {
            GenesisError::Invalid(errors) => errors,
            GenesisError::Parse(error) => std::slice::from_ref(error),
            _ => &[],
        }
    }
}
