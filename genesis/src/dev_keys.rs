//! Deterministic development keys: anyone can derive key `i` of chain `c`, which makes dev chains
//! reproducible (the same addresses on every machine) and any real chain that used them insecure.
//! Hence a genesis without `"dev": true` refuses them, and so does a node at start-up.

use std::collections::HashMap;

use synod_chain::hash::TaggedHasher;
use synod_chain::keys::{PublicKey, SecretKey};

/// Dev keys are derived for indices below this bound; validation checks all of them.
pub const MAX_DEV_KEYS: u32 = 1024;

/// Dev key number `index` of chain `chain_id`.
pub fn dev_key(chain_id: &str, index: u32) -> SecretKey {
    let seed = TaggedHasher::new(b"synod/dev-key")
        .update(chain_id.as_bytes())
        .update_u64(index as u64)
        .finish();
    SecretKey::from_seed(seed.0)
}

/// The public keys of every dev key of one chain, for lookups.
pub struct DevKeys(HashMap<PublicKey, u32>);

impl DevKeys {
    /// Derives all [`MAX_DEV_KEYS`] dev keys of `chain_id`.
    pub fn new(chain_id: &str) -> Self {
        DevKeys(
            (0..MAX_DEV_KEYS)
                .map(|i| (dev_key(chain_id, i).public(), i))
                .collect(),
        )
    }

    /// The dev index of `key`, if it is a dev key of this chain.
    pub fn index_of(&self, key: &PublicKey) -> Option<u32> {
        self.0.get(key).copied()
    }
}
