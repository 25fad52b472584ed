//! The portable mining kernel: one nonce at a time through `sha2`'s compression function.
//!
//! It runs everywhere and is the reference the fast kernels are tested against. (On x86_64 `sha2`
//! itself uses SHA-NI for each compression when the CPU has it, one block at a time; the dedicated
//! kernel is faster because it hashes two nonces at once and skips the constant first rounds.)

use std::ops::Range;

use super::threshold::{Threshold, top_limb};
use crate::pow::midstate::HeaderMidstate;

/// The first nonce in `nonces` whose hash meets `threshold`, with its state words.
pub(super) fn scan(
    midstate: &HeaderMidstate,
    threshold: &Threshold,
    nonces: Range<u64>,
) -> Option<(u64, [u32; 8])> {
    let top = threshold.top();
    nonces.into_iter().find_map(|nonce| {
        let words = midstate.hash_words(nonce);
        (top_limb(&words) <= top && threshold.is_met_by(&words)).then_some((nonce, words))
    })
}
