//! Comparing a finished hash, still as SHA-256 state words, with a target.
//!
//! A kernel ends with the eight state words of the second SHA-256; the block id is those words in
//! big-endian byte order, and it is compared with the target as a little-endian number. Its most
//! significant 64 bits come from the last two words alone, so almost every nonce is rejected by
//! one comparison before the id is assembled.

use crate::pow::target::Target;
use crate::pow::uint256::U256;

/// A target prepared for comparison with state words.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Threshold {
    target: U256,
}

impl Threshold {
    pub(crate) fn new(target: &Target) -> Threshold {
        Threshold {
            target: target.as_u256(),
        }
    }

    /// The target's most significant 64 bits: a hash whose [`top_limb`] is above them fails.
    pub(crate) fn top(&self) -> u64 {
        self.target.limbs()[3]
    }

    /// Whether the hash with these state words is at most the target.
    pub(crate) fn is_met_by(&self, words: &[u32; 8]) -> bool {
        let mut limbs = [0u64; 4];
        for (j, limb) in limbs.iter_mut().enumerate() {
            *limb = limb_of(words[2 * j], words[2 * j + 1]);
        }
        U256::from_limbs(limbs) <= self.target
    }
}

/// The hash's most significant 64 bits as a number.
pub(crate) fn top_limb(words: &[u32; 8]) -> u64 {
    limb_of(words[6], words[7])
}

/// Bytes 8j..8j+8 of the id are words 2j and 2j+1 in big-endian order; read little-endian, the
/// byte order of each word reverses and the second word is the high half.
fn limb_of(low_word: u32, high_word: u32) -> u64 {
    (u64::from(high_word.swap_bytes()) << 32) | u64::from(low_word.swap_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pow::midstate::hash_of_words;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn agrees_with_target_is_met_by(words in any::<[u32; 8]>(), target in any::<[u64; 4]>(), equal in any::<bool>()) {
            let hash = hash_of_words(&words);
            let value = if equal { U256::from_le_bytes(hash.0) } else { U256::from_limbs(target) };
            prop_assume!(!value.is_zero());
            let target = Target::from_u256(value).unwrap();
            let threshold = Threshold::new(&target);
            prop_assert_eq!(threshold.is_met_by(&words), target.is_met_by(&hash));
            prop_assert_eq!(top_limb(&words), U256::from_le_bytes(hash.0).limbs()[3]);
            if top_limb(&words) > threshold.top() {
                prop_assert!(!target.is_met_by(&hash));
            }
        }
    }
}
