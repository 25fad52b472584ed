//! Every kernel against the reference: `sha2`'s SHA-256d of the encoded header.

use proptest::prelude::*;

use super::*;
use crate::block::{BlockHeader, HEADER_BYTES};
use crate::hash::sha256d;
use crate::pow::uint256::U256;

/// The kernels this CPU can run; the SHA-NI one must be among them when the CPU has the
/// extensions, so a broken detection cannot silently skip its tests.
fn kernels() -> Vec<Kernel> {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("sha") && is_x86_feature_detected!("sse4.1") {
        let fast = Kernel::sha_ni().unwrap();
        assert_eq!(fast.kind(), KernelKind::ShaNi);
        assert_eq!(Kernel::fastest().kind(), KernelKind::ShaNi);
        return vec![Kernel::portable(), fast];
    }
    eprintln!("this CPU has no SHA-NI: only the portable kernel is tested");
    vec![Kernel::portable()]
}

fn encoded(prefix: &[u8], nonce: u64) -> [u8; HEADER_BYTES] {
    let mut bytes = [0u8; HEADER_BYTES];
    bytes[..HEADER_BYTES - 8].copy_from_slice(prefix);
    bytes[HEADER_BYTES - 8..].copy_from_slice(&nonce.to_le_bytes());
    bytes
}

fn reference(prefix: &[u8], nonce: u64) -> Hash {
    sha256d(&encoded(prefix, nonce))
}

fn target_of(hash: &Hash) -> Target {
    Target::from_u256(U256::from_le_bytes(hash.0)).unwrap()
}

fn any_prefix() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), HEADER_BYTES - 8)
}

proptest! {
    /// With the easiest target the first nonce wins, so its hash is the kernel's hash of that
    /// header and nonce.
    #[test]
    fn kernel_hash_is_sha256d(prefix in any_prefix(), nonce in 0..u64::MAX) {
        let midstate = HeaderMidstate::from_encoded(&encoded(&prefix, 0));
        let easiest = Target::from_u256(U256::MAX).unwrap();
        for kernel in kernels() {
            let scan = kernel.scan(&midstate, &easiest, nonce..nonce + 1);
            let expected = Solution { nonce, hash: reference(&prefix, nonce) };
            prop_assert_eq!(scan, Scan { found: Some(expected), hashes: 1 }, "{:?}", kernel.kind());
        }
    }

    /// With the target set to the hash of a random nonce in the range, each kernel returns the
    /// first nonce at or below it (equality counts), from either lane of a pair.
    #[test]
    fn kernel_finds_the_first_solution(
        prefix in any_prefix(),
        start in 0..u64::MAX - 16,
        len in 1u64..12,
        pick in any::<proptest::sample::Index>(),
    ) {
        let nonces = start..start + len;
        let hashes: Vec<Hash> = nonces.clone().map(|n| reference(&prefix, n)).collect();
        let target = target_of(&hashes[pick.index(hashes.len())]);
        let first = hashes.iter().position(|h| target.is_met_by(h)).unwrap();
        let expected = Scan {
            found: Some(Solution { nonce: start + first as u64, hash: hashes[first] }),
            hashes: first as u64 + 1,
        };
        let midstate = HeaderMidstate::from_encoded(&encoded(&prefix, 0));
        for kernel in kernels() {
            prop_assert_eq!(kernel.scan(&midstate, &target, nonces.clone()), expected, "{:?}", kernel.kind());
        }
    }

    /// Below the smallest hash in the range nothing is found and every nonce is counted.
    #[test]
    fn kernel_reports_no_solution(prefix in any_prefix(), start in 0..u64::MAX - 16, len in 0u64..12) {
        let nonces = start..start + len;
        let smallest = nonces.clone().map(|n| U256::from_le_bytes(reference(&prefix, n).0)).min();
        let below = smallest.map_or(U256::ONE, |s| s >> 1);
        prop_assume!(!below.is_zero());
        let target = Target::from_u256(below).unwrap();
        let midstate = HeaderMidstate::from_encoded(&encoded(&prefix, 0));
        for kernel in kernels() {
            prop_assert_eq!(kernel.scan(&midstate, &target, nonces.clone()), Scan { found: None, hashes: len });
        }
    }
}

#[test]
fn mines_a_real_header_at_an_easy_target() {
    let fx = crate::fixtures::Fixture::new("kernel", 1, 0, 0);
    let mut header = BlockHeader {
        version: crate::block::HEADER_VERSION,
        parent: Hash([7; 32]),
        height: 12,
        timestamp_ms: 1_800_000_000_000,
        tx_root: Hash([1; 32]),
        state_root: Hash([2; 32]),
        proposer: fx.keys[0].public(),
        seal: crate::block::Seal {
            round: 0,
            bits: 0x1f0fffff, // about one hash in 4,096 meets it
            nonce: 0,
        },
    };
    let target = Target::from_compact(header.seal.bits).unwrap();
    let midstate = HeaderMidstate::new(&header);
    let mut answers = Vec::new();
    for kernel in kernels() {
        let scan = kernel.scan(&midstate, &target, 0..1_000_000);
        let solution = scan.found.unwrap();
        assert_eq!(scan.hashes, solution.nonce + 1);
        answers.push(scan);
        header.seal.nonce = solution.nonce;
        assert_eq!(header.hash(), solution.hash);
        assert!(target.is_met_by(&header.hash()));
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn ranges_at_the_top_of_the_nonce_space() {
    let prefix = [0xa5u8; HEADER_BYTES - 8];
    let midstate = HeaderMidstate::from_encoded(&encoded(&prefix, 0));
    let easiest = Target::from_u256(U256::MAX).unwrap();
    let impossible = Target::from_u256(U256::ONE).unwrap();
    for kernel in kernels() {
        let last = u64::MAX - 1;
        let scan = kernel.scan(&midstate, &easiest, last..u64::MAX);
        assert_eq!(scan.found.map(|s| s.nonce), Some(last));
        assert_eq!(scan.found.map(|s| s.hash), Some(reference(&prefix, last)));
        let none = kernel.scan(&midstate, &impossible, u64::MAX - 5..u64::MAX);
        assert_eq!(
            none,
            Scan {
                found: None,
                hashes: 5
            }
        );
        let empty = kernel.scan(&midstate, &easiest, 5..5);
        assert_eq!(
            empty,
            Scan {
                found: None,
                hashes: 0
            }
        );
    }
}
