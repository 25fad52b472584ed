//! Mining kernels: scan a range of nonces for a header whose id meets a target.
//!
//! A miner thread prepares a [`HeaderMidstate`] once per block template, then calls
//! [`Kernel::scan`] on successive slices of the nonce space (a few million at a time, checking
//! between calls whether the template went stale), and splits the space between threads by giving
//! each its own ranges. [`Kernel::fastest`] picks, at run time, the SHA-NI kernel on x86_64 CPUs
//! that have the SHA extensions, and the portable one elsewhere; both return exactly the same
//! answers.

mod portable;
#[cfg(target_arch = "x86_64")]
mod sha_ni;
mod threshold;

use std::ops::Range;

use self::threshold::Threshold;
use crate::hash::Hash;
use crate::pow::midstate::{HeaderMidstate, hash_of_words};
use crate::pow::target::Target;

/// Which implementation a [`Kernel`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelKind {
    /// `sha2`'s compression function, one nonce at a time; runs on any CPU.
    Portable,
    /// x86 SHA extensions, two nonces interleaved.
    ShaNi,
}

/// A mining kernel. Cheap to copy; one per miner thread or shared, as convenient.
#[derive(Clone, Copy, Debug)]
pub struct Kernel {
    path: Path,
}

#[derive(Clone, Copy, Debug)]
enum Path {
    Portable,
    #[cfg(target_arch = "x86_64")]
    ShaNi(sha_ni::ShaNi),
}

/// A nonce that solves the template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Solution {
    /// The nonce to put in the header's seal.
    pub nonce: u64,
    /// The resulting block id.
    pub hash: Hash,
}

/// The outcome of one [`Kernel::scan`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scan {
    /// The first nonce in the range that meets the target, if any.
    pub found: Option<Solution>,
    /// Nonces tried: up to and including the solution, or the whole range. This is what a
    /// hash-rate meter should count. (The SHA-NI kernel works in pairs and may have hashed one
    /// nonce past the solution; that one is not counted, so both kernels report the same number.)
    pub hashes: u64,
}

impl Kernel {
    /// The fastest kernel this CPU supports.
    pub fn fastest() -> Kernel {
        Kernel::sha_ni().unwrap_or_else(Kernel::portable)
    }

    /// The portable kernel.
    pub fn portable() -> Kernel {
        Kernel {
            path: Path::Portable,
        }
    }

    /// The SHA-NI kernel, if this is an x86_64 CPU with the SHA and SSE4.1 extensions.
    pub fn sha_ni() -> Option<Kernel> {
        #[cfg(target_arch = "x86_64")]
        {
            sha_ni::ShaNi::detect().map(|token| Kernel {
                path: Path::ShaNi(token),
            })
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            None
        }
    }

    /// Which implementation this is.
    pub fn kind(&self) -> KernelKind {
        match self.path {
            Path::Portable => KernelKind::Portable,
            #[cfg(target_arch = "x86_64")]
            Path::ShaNi(_) => KernelKind::ShaNi,
        }
    }

    /// Hashes the template with each nonce of `nonces` in order and stops at the first whose block
    /// id meets `target`. (A `Range` cannot include `u64::MAX`; a miner never gets that far.)
    pub fn scan(&self, midstate: &HeaderMidstate, target: &Target, nonces: Range<u64>) -> Scan {
        let threshold = Threshold::new(target);
        let start = nonces.start;
        let total = nonces.end.saturating_sub(nonces.start);
        let found = match self.path {
            Path::Portable => portable::scan(midstate, &threshold, nonces),
            #[cfg(target_arch = "x86_64")]
            Path::ShaNi(token) => token.scan(midstate, &threshold, nonces),
        };
        match found {
            Some((nonce, words)) => Scan {
                found: Some(Solution {
                    nonce,
                    hash: hash_of_words(&words),
                }),
                hashes: nonce - start + 1,
            },
            None => Scan {
                found: None,
                hashes: total,
            },
        }
    }
}

#[cfg(test)]
mod tests;
