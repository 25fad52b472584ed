//! Proof-of-work arithmetic and mining, free of I/O so the PoW engine and the miner threads can
//! share it and tests can replay Bitcoin's history through it.
//!
//! - [`uint256`]: the 256-bit integer behind targets and work.
//! - [`compact`]: Bitcoin's compact "bits" encoding, flags and rounding included.
//! - [`target`]: a usable target, decoded from bits and compared with block ids.
//! - [`work`]: a block's work and the cumulative [`work::Chainwork`] that picks the heaviest chain.
//! - [`retarget`]: Bitcoin's every-N-blocks retarget.
//! - [`asert`]: the per-block ASERT (aserti3-2d) rule.
//! - [`timestamp`]: median time past and the future-drift bound.
//! - [`midstate`]: hashing a header for any nonce from its constant prefix's SHA-256 state.
//! - [`kernel`]: scanning nonce ranges, portable or with SHA-NI.
//!
//! Difficulty functions take plain numbers (timestamps in any one unit, heights, bits), not the
//! genesis types, so this crate stays below `genesis` and the engine maps its parameters in.

pub mod asert;
pub mod compact;
pub mod kernel;
pub mod midstate;
pub mod retarget;
pub mod target;
pub mod timestamp;
pub mod uint256;
pub mod work;
