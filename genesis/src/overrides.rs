//! Engine parameters set by name, as `testnet init --param name=value` takes them: each value is
//! read as JSON when it parses (numbers, booleans) and as a string otherwise, and the result goes
//! through the same parsing and validation as a genesis file, so an unknown name or a bad value
//! gets the same clear error.

use crate::error::{FieldError, GenesisError};
use crate::params::EngineConfig;

/// Parses `name=value`.
pub fn parse_param(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("expected name=value, got {text:?}"))?;
    if name.is_empty() || name == "kind" {
        return Err(format!("{name:?} is not an engine parameter"));
    }
    Ok((name.trim().to_string(), value.trim().to_string()))
}

impl EngineConfig {
    /// This configuration with each `(name, value)` set, validated.
    pub fn with_params(&self, params: &[(String, String)]) -> Result<EngineConfig, GenesisError> {
        if params.is_empty() {
            return Ok(self.clone());
        }
        let mut value =
            serde_json::to_value(self).expect("engine parameters always serialize to JSON");
        let object = value
            .as_object_mut()
            .expect("engine parameters serialize to a JSON object");
        for (name, text) in params {
            let parsed = serde_json::from_str(text)
                .unwrap_or_else(|_| serde_json::Value::String(text.clone()));
            object.insert(name.clone(), parsed);
        }
        let config: EngineConfig = serde_json::from_value(value)
            .map_err(|e| GenesisError::Parse(FieldError::new("engine", e.to_string())))?;
        let mut errors = Vec::new();
        config.validate(&mut errors);
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(GenesisError::Invalid(errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::RaftParams;

    #[test]
    fn sets_known_parameters_and_refuses_the_rest() {
        let raft = EngineConfig::Raft(RaftParams::default());
        let params = [parse_param("snapshot_interval=50").unwrap()];
        let EngineConfig::Raft(p) = raft.with_params(&params).unwrap() else {
            panic!("still raft");
        };
        assert_eq!(p.snapshot_interval, 50);
        let unknown = [parse_param("snapshot_intervall=50").unwrap()];
        assert!(
            raft.with_params(&unknown)
                .unwrap_err()
                .to_string()
                .contains("snapshot_intervall")
        );
        let invalid = [parse_param("heartbeat_interval_ms=5000").unwrap()];
        assert!(
            raft.with_params(&invalid)
                .unwrap_err()
                .to_string()
                .contains("heartbeat_interval_ms")
        );
        assert!(parse_param("kind=pbft").is_err());
        assert!(parse_param("nothing").is_err());
    }
}
