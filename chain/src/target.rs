//! Proof-of-work targets and their compact ("bits") encoding, as Bitcoin defines them.
//!
//! A target is a 256-bit number; a header meets it when its id, read as a little-endian number,
//! is at most the target. The compact form is `exponent(8 bits) | mantissa(24 bits)` meaning
//! `mantissa * 256^(exponent - 3)`; a mantissa with its top bit set would be negative and is
//! refused, as are zero and targets wider than 256 bits.

use crate::hash::Hash;

/// A 256-bit target, big-endian.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Target(pub [u8; 32]);

/// Why a compact target is not usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// The sign bit of the mantissa is set.
    #[error("compact target {0:08x} is negative")]
    Negative(u32),
    /// The target is zero: no hash could meet it.
    #[error("compact target {0:08x} is zero")]
    Zero(u32),
    /// The target does not fit in 256 bits.
    #[error("compact target {0:08x} overflows 256 bits")]
    Overflow(u32),
}

impl Target {
    /// Decodes compact bits.
    pub fn from_compact(bits: u32) -> Result<Target, TargetError> {
        let exponent = (bits >> 24) as usize;
        let mantissa = bits & 0x007f_ffff;
        if bits & 0x0080_0000 != 0 && mantissa != 0 {
            return Err(TargetError::Negative(bits));
        }
        if mantissa == 0 {
            return Err(TargetError::Zero(bits));
        }
        let mut out = [0u8; 32];
        let m = mantissa.to_be_bytes(); // [0, b2, b1, b0]
        for (i, byte) in m[1..].iter().enumerate() {
            // Byte i of the mantissa (most significant first) has weight 256^(exponent - 1 - i).
            let weight = exponent as i64 - 1 - i as i64;
            if weight < 0 {
                continue; // shifted out below the units
            }
            if weight >= 32 {
                if *byte != 0 {
                    return Err(TargetError::Overflow(bits));
                }
                continue;
            }
            out[31 - weight as usize] = *byte;
        }
        if out == [0u8; 32] {
            return Err(TargetError::Zero(bits));
        }
        Ok(Target(out))
    }

    /// The compact encoding (normalized as Bitcoin's `GetCompact` does).
    pub fn to_compact(&self) -> u32 {
        let Some(first) = self.0.iter().position(|b| *b != 0) else {
            return 0;
        };
        let mut size = 32 - first;
        let mut mantissa: u32 = 0;
        for i in 0..3 {
            mantissa <<= 8;
            if let Some(b) = self.0.get(first + i) {
                mantissa |= *b as u32;
            }
        }
        if size < 3 {
            mantissa >>= 8 * (3 - size);
        }
        if mantissa & 0x0080_0000 != 0 {
            mantissa >>= 8;
            size += 1;
        }
        ((size as u32) << 24) | mantissa
    }

    /// Whether block id `hash` (a little-endian number) is at most this target.
    pub fn is_met_by(&self, hash: &Hash) -> bool {
        let mut big_endian = hash.0;
        big_endian.reverse();
        big_endian <= self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::sha256d;

    #[test]
    fn bitcoin_limit_round_trips() {
        let t = Target::from_compact(0x1d00ffff).unwrap();
        assert_eq!(
            hex::encode(t.0),
            "00000000ffff0000000000000000000000000000000000000000000000000000"
        );
        assert_eq!(t.to_compact(), 0x1d00ffff);
        assert_eq!(
            Target::from_compact(0x1d00d86a).unwrap().to_compact(),
            0x1d00d86a
        );
        assert_eq!(
            Target::from_compact(0x03123456).unwrap().0[29..],
            [0x12, 0x34, 0x56]
        );
        assert_eq!(
            Target::from_compact(0x02123400).unwrap().0[30..],
            [0x12, 0x34]
        );
    }

    #[test]
    fn bad_compacts_are_refused() {
        assert_eq!(
            Target::from_compact(0x1d800001),
            Err(TargetError::Negative(0x1d800001))
        );
        assert_eq!(
            Target::from_compact(0x1d000000),
            Err(TargetError::Zero(0x1d000000))
        );
        assert_eq!(
            Target::from_compact(0x01003456),
            Err(TargetError::Zero(0x01003456))
        );
        assert_eq!(
            Target::from_compact(0x22010000),
            Err(TargetError::Overflow(0x22010000))
        );
        // 0x21 with a small mantissa still fits in 256 bits.
        assert!(Target::from_compact(0x2100ffff).is_ok());
    }

    /// Every one of Bitcoin's first 10,000 headers meets the target its own bits declare, and the
    /// bits round-trip through our compact encoding.
    #[test]
    fn bitcoin_mainnet_headers_meet_their_targets() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../testdata/bitcoin/btc_blockheaders_mainnet_0_10000.txt"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let mut count = 0;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let header = hex::decode(line.trim()).unwrap();
            assert_eq!(header.len(), 80);
            let bits = u32::from_le_bytes(header[72..76].try_into().unwrap());
            let target = Target::from_compact(bits).unwrap();
            assert_eq!(target.to_compact(), bits);
            assert!(target.is_met_by(&sha256d(&header)), "header {count}");
            count += 1;
        }
        assert_eq!(count, 10_000);
    }
}
