//! Bitcoin's own history as the oracle for synod's proof-of-work arithmetic: every header meets
//! the target its bits declare, the bits round-trip through the compact encoding, each header's
//! bits are what the retarget rule computes from the headers before it, and chainwork sums.
//!
//! Data: `testdata/bitcoin/` (see its README): mainnet headers 0–9,999 and 30,000–39,999.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use synod_chain::hash::sha256d;
use synod_chain::pow::retarget::{BitcoinRetarget, next_bits_bitcoin};
use synod_chain::pow::uint256::U256;
use synod_chain::pow::work::{Chainwork, work};
use synod_chain::target::Target;

/// The fields of an 80-byte Bitcoin header that proof of work reads.
struct Header {
    bytes: Vec<u8>,
    timestamp: u64,
    bits: u32,
}

fn read_headers(file: &str, first_height: u64, has_height_line: bool) -> BTreeMap<u64, Header> {
    let path = format!("{}/../testdata/bitcoin/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    if has_height_line {
        assert_eq!(lines.next().unwrap().parse::<u64>().unwrap(), first_height);
    }
    lines
        .enumerate()
        .map(|(i, line)| {
            let bytes = hex::decode(line).unwrap();
            assert_eq!(bytes.len(), 80);
            let timestamp = u32::from_le_bytes(bytes[68..72].try_into().unwrap());
            let bits = u32::from_le_bytes(bytes[72..76].try_into().unwrap());
            let header = Header {
                bytes,
                timestamp: u64::from(timestamp),
                bits,
            };
            (first_height + i as u64, header)
        })
        .collect()
}

fn mainnet() -> BitcoinRetarget {
    BitcoinRetarget::new(600, 2016, 4, 0x1d00ffff).unwrap()
}

/// What [`check_history`] could check.
struct Checked {
    /// Headers whose bits were compared with the rule's.
    bits: usize,
    /// Retarget heights among them.
    retargets: Vec<u64>,
    /// Retarget heights skipped because the window's first header is in neither file.
    skipped: Vec<u64>,
}

/// Checks proof of work and compact round trip of every header, and the bits of every header
/// whose parent is known (at a retarget height the window's first header is needed as well).
fn check_history(headers: &BTreeMap<u64, Header>) -> Checked {
    let rule = mainnet();
    let mut checked = Checked {
        bits: 0,
        retargets: Vec::new(),
        skipped: Vec::new(),
    };
    for (&height, header) in headers {
        let target = Target::from_compact(header.bits).unwrap();
        assert_eq!(target.to_compact(), header.bits, "bits of {height}");
        assert!(target.is_met_by(&sha256d(&header.bytes)), "pow of {height}");
        let Some(parent) = height.checked_sub(1).and_then(|h| headers.get(&h)) else {
            continue;
        };
        let first_timestamp = match rule.window_first_height(height) {
            None => 0, // ignored off the retarget heights; any value must do
            Some(first) => match headers.get(&first) {
                Some(first) => {
                    checked.retargets.push(height);
                    first.timestamp
                }
                None => {
                    checked.skipped.push(height);
                    continue;
                }
            },
        };
        let expected = next_bits_bitcoin(
            &rule,
            height,
            first_timestamp,
            parent.timestamp,
            parent.bits,
        );
        assert_eq!(expected, Ok(header.bits), "retarget at {height}");
        checked.bits += 1;
    }
    checked
}

#[test]
fn headers_0_to_9999() {
    let headers = read_headers("btc_blockheaders_mainnet_0_10000.txt", 0, false);
    assert_eq!(headers.len(), 10_000);
    // Bitcoin's genesis id, to be sure the file is what it claims.
    let mut genesis_id = sha256d(&headers[&0].bytes).0;
    genesis_id.reverse();
    assert_eq!(
        hex::encode(genesis_id),
        "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
    );
    let checked = check_history(&headers);
    // Every header but genesis; the rule ran at every window boundary and, blocks being slow
    // then, was capped at the limit.
    assert_eq!(checked.bits, 9_999);
    assert_eq!(checked.retargets, [2016, 4032, 6048, 8064]);
    assert!(checked.skipped.is_empty());
    assert!(headers.values().all(|h| h.bits == 0x1d00ffff));
}

#[test]
fn headers_30000_to_39999_with_the_first_difficulty_changes() {
    let headers = read_headers("btc_blockheaders_mainnet_30000_40000", 30_000, true);
    assert_eq!(headers.len(), 10_000);
    let checked = check_history(&headers);
    // All but the first header (its parent is not in the file) and 30,240, whose window opens at
    // 28,224, in neither file (its bits stayed 1d00ffff).
    assert_eq!(checked.bits, 9_998);
    assert_eq!(checked.retargets, [32_256, 34_272, 36_288, 38_304]);
    assert_eq!(checked.skipped, [30_240]);
    assert_eq!(headers[&32_255].bits, 0x1d00ffff);
    assert_eq!(headers[&32_256].bits, 0x1d00d86a);
}

#[test]
fn chainwork_of_the_first_10000_headers() {
    let headers = read_headers("btc_blockheaders_mainnet_0_10000.txt", 0, false);
    let total: Chainwork = headers.values().map(|h| work(h.bits).unwrap()).sum();
    let per_block = 0x1_0001_0001u64;
    assert_eq!(
        work(0x1d00ffff).unwrap().as_u256(),
        U256::from_u64(per_block)
    );
    assert_eq!(total.as_u256(), U256::from_u64(10_000 * per_block));
}
