//! Whom mined blocks pay. A block's `proposer` is a public key and the ledger credits the reward
//! and the fees to that key's address, so a payout is named by a public key (64 hex chars), or by
//! a key file whose public key is used. An arbitrary address cannot be paid, unlike bitcoind's
//! `generatetoaddress`: that would need a payout field in the header, a consensus change.

use std::path::Path;

use synod_chain::keyfile::read_key_file;
use synod_chain::keys::PublicKey;

/// Why a payout could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PayoutError {
    /// Neither a public key nor a readable key file.
    #[error(
        "{text:?} is neither a public key (64 hex chars) nor a readable key file: {reason} (blocks pay a public key's address; an arbitrary address cannot be paid)"
    )]
    Unreadable {
        /// What was given.
        text: String,
        /// Why the key file could not be read.
        reason: String,
    },
}

/// Reads `text` as a public key, or else as a key file (relative paths from `base`).
pub fn parse_payout(text: &str, base: &Path) -> Result<PublicKey, PayoutError> {
    let text = text.trim();
    if let Ok(key) = text.parse::<PublicKey>() {
        return Ok(key);
    }
    let path = base.join(text);
    read_key_file(&path)
        .map(|key| key.public())
        .map_err(|e| PayoutError::Unreadable {
            text: text.to_string(),
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use synod_chain::SecretKey;

    #[test]
    fn a_public_key_or_a_key_file() {
        let key = SecretKey::from_seed([3; 32]);
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            parse_payout(&key.public().to_string(), dir.path()).unwrap(),
            key.public()
        );
        synod_chain::keyfile::write_key_file(&dir.path().join("miner.key"), &key).unwrap();
        assert_eq!(parse_payout("miner.key", dir.path()).unwrap(), key.public());
        let error = parse_payout(&key.address().to_string(), dir.path()).unwrap_err();
        assert!(error.to_string().contains("arbitrary address"), "{error}");
    }
}
