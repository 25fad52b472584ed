//! Fixed-size byte newtypes (hashes, keys, addresses, signatures) with one set of conversions.
//!
//! In human-readable formats (JSON, TOML) they are lowercase hex strings; in the canonical binary
//! encoding they are exactly `N` raw bytes with no length prefix, which is what keeps the block
//! header a fixed layout.

use std::fmt;

use serde::de::{self, SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserializer, Serializer};

/// Why a hex string could not become a fixed-size value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    /// The string had the wrong number of characters.
    #[error("expected {expected} hex chars, got {got}")]
    Length {
        /// Characters a value of this type takes.
        expected: usize,
        /// Characters given.
        got: usize,
    },
    /// The string held something other than hex digits.
    #[error("not hex: {0}")]
    NotHex(String),
}

/// Parses exactly `N` bytes from hex, accepting an optional `0x` prefix.
pub fn parse_hex<const N: usize>(text: &str) -> Result<[u8; N], HexError> {
    let text = text.trim();
    let text = text.strip_prefix("0x").unwrap_or(text);
    if text.len() != 2 * N {
        return Err(HexError::Length {
            expected: 2 * N,
            got: text.len(),
        });
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).map_err(|e| HexError::NotHex(e.to_string()))?;
    Ok(out)
}

/// Serializes `N` bytes: hex when human-readable, a bare tuple of bytes otherwise.
pub fn serialize<S: Serializer, const N: usize>(bytes: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
    if s.is_human_readable() {
        s.serialize_str(&hex::encode(bytes))
    } else {
        let mut tuple = s.serialize_tuple(N)?;
        for b in bytes {
            tuple.serialize_element(b)?;
        }
        tuple.end()
    }
}

/// Deserializes what [`serialize`] wrote.
pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(d: D) -> Result<[u8; N], D::Error> {
    struct HexVisitor<const N: usize>;
    impl<const N: usize> Visitor<'_> for HexVisitor<N> {
        type Value = [u8; N];
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "{} hex chars", 2 * N)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            parse_hex::<N>(v).map_err(E::custom)
        }
    }
    struct TupleVisitor<const N: usize>;
    impl<'de, const N: usize> Visitor<'de> for TupleVisitor<N> {
        type Value = [u8; N];
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "{N} bytes")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = [0u8; N];
            for (i, slot) in out.iter_mut().enumerate() {
                *slot = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(i, &self))?;
            }
            Ok(out)
        }
    }
    if d.is_human_readable() {
        d.deserialize_str(HexVisitor::<N>)
    } else {
        d.deserialize_tuple(N, TupleVisitor::<N>)
    }
}

/// Declares a `[u8; N]` newtype with hex `Display`/`FromStr`, the dual serde form and byte access.
macro_rules! fixed_bytes {
    ($(#[$meta:meta])* $name:ident, $len:expr) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// Length in bytes.
            pub const LEN: usize = $len;

            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// Parses hex (with or without `0x`).
            pub fn from_hex(text: &str) -> Result<Self, $crate::fixed_bytes::HexError> {
                $crate::fixed_bytes::parse_hex::<$len>(text).map(Self)
            }

            /// The first four bytes in hex, for logs and tables.
            pub fn short(&self) -> String {
                hex::encode(&self.0[..4])
            }
        }

        impl Default for $name {
            fn default() -> Self {
                $name([0u8; $len])
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::fixed_bytes::HexError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::from_hex(s)
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                $crate::fixed_bytes::serialize(&self.0, s)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $crate::fixed_bytes::deserialize(d).map(Self)
            }
        }
    };
}
pub(crate) use fixed_bytes;

#[cfg(test)]
mod tests {
    use super::*;

    fixed_bytes!(
        /// A test value.
        Four,
        4
    );

    #[test]
    fn hex_round_trip_and_errors() {
        let v = Four([1, 2, 0xab, 0xff]);
        assert_eq!(v.to_string(), "0102abff");
        assert_eq!(v.as_bytes().len(), Four::LEN);
        assert_eq!("0x0102abff".parse::<Four>().unwrap(), v);
        assert_eq!(
            "0102ab".parse::<Four>().unwrap_err(),
            HexError::Length {
                expected: 8,
                got: 6
            }
        );
        assert!(matches!(
            "0102abzz".parse::<Four>().unwrap_err(),
            HexError::NotHex(_)
        ));
    }

    #[test]
    fn json_is_hex_and_binary_is_raw() {
        let v = Four([9, 8, 7, 6]);
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"09080706\"");
        let bytes = crate::codec::encode(&v);
        assert_eq!(bytes, vec![9, 8, 7, 6]);
        let back: Four = crate::codec::decode(&bytes, 4).unwrap();
        assert_eq!(back, v);
    }
}
