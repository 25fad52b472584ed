//! The canonical binary encoding: bincode 2, little-endian, fixed-width integers.
//!
//! Every hash and signature in synod is taken over these bytes, so there is exactly one encoding of
//! each value. Decoding is strict: the input length is bounded before anything is read (so no
//! length field can make us allocate more than the caller allowed), and trailing bytes are an error.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Upper bound on any single decode, whatever the caller passes: 64 MiB.
pub const MAX_DECODE_BYTES: usize = 64 << 20;

type Config = bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Fixint,
    bincode::config::Limit<MAX_DECODE_BYTES>,
>;

const CONFIG: Config = bincode::config::standard()
    .with_little_endian()
    .with_fixed_int_encoding()
    .with_limit::<MAX_DECODE_BYTES>();

/// Why bytes did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The input is longer than this kind of value may ever be.
    #[error("{got} bytes exceeds the limit of {limit}")]
    TooLong {
        /// Bytes given.
        got: usize,
        /// Bytes allowed.
        limit: usize,
    },
    /// The bytes are not a valid encoding (truncated, bad tag, bad UTF-8, ...).
    #[error("malformed encoding: {0}")]
    Malformed(String),
    /// A valid value was followed by more bytes.
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
}

/// Encodes `value` canonically. Serialization of synod's own types cannot fail.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    bincode::serde::encode_to_vec(value, CONFIG)
        .expect("synod types have no fallible Serialize impls and stay under the 64 MiB limit")
}

/// Decodes exactly one value from `bytes`, refusing inputs longer than `limit` and trailing bytes.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], limit: usize) -> Result<T, CodecError> {
    let limit = limit.min(MAX_DECODE_BYTES);
    if bytes.len() > limit {
        return Err(CodecError::TooLong {
            got: bytes.len(),
            limit,
        });
    }
    let (value, read) = bincode::serde::decode_from_slice(bytes, CONFIG)
        .map_err(|e| CodecError::Malformed(e.to_string()))?;
    if read != bytes.len() {
        return Err(CodecError::TrailingBytes(bytes.len() - read));
    }
    Ok(value)
}

/// Deserializes a `Vec<T>` of at most `MAX` elements (for `#[serde(deserialize_with)]`): a length
/// prefix above the limit is refused before anything is allocated for it.
pub fn bounded_vec<'de, D, T, const MAX: usize>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    struct BoundedVisitor<T, const MAX: usize>(std::marker::PhantomData<T>);
    impl<'de, T: serde::Deserialize<'de>, const MAX: usize> serde::de::Visitor<'de>
        for BoundedVisitor<T, MAX>
    {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            write!(f, "at most {MAX} elements")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let claimed = seq.size_hint().unwrap_or(0);
            if claimed > MAX {
                return Err(serde::de::Error::invalid_length(claimed, &self));
            }
            let mut out = Vec::with_capacity(claimed);
            while let Some(item) = seq.next_element()? {
                if out.len() == MAX {
                    return Err(serde::de::Error::invalid_length(MAX + 1, &self));
                }
                out.push(item);
            }
            Ok(out)
        }
    }
    d.deserialize_seq(BoundedVisitor::<T, MAX>(std::marker::PhantomData))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_fixed_width_little_endian() {
        assert_eq!(encode(&1u64), vec![1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(encode(&0x0102u32), vec![2, 1, 0, 0]);
    }

    #[test]
    fn rejects_trailing_truncated_and_oversized() {
        let mut bytes = encode(&(7u64, String::from("abc")));
        let ok: (u64, String) = decode(&bytes, 100).unwrap();
        assert_eq!(ok, (7, "abc".into()));
        bytes.push(0);
        assert_eq!(
            decode::<(u64, String)>(&bytes, 100).unwrap_err(),
            CodecError::TrailingBytes(1)
        );
        bytes.truncate(bytes.len() - 3);
        assert!(matches!(
            decode::<(u64, String)>(&bytes, 100).unwrap_err(),
            CodecError::Malformed(_)
        ));
        assert!(matches!(
            decode::<(u64, String)>(&bytes, 4).unwrap_err(),
            CodecError::TooLong { .. }
        ));
    }

    #[test]
    fn bounded_sequences_refuse_long_prefixes() {
        #[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq)]
        struct Three {
            #[serde(deserialize_with = "super::bounded_vec::<_, _, 3>")]
            items: Vec<u32>,
        }
        let ok = Three {
            items: vec![1, 2, 3],
        };
        assert_eq!(decode::<Three>(&encode(&ok), 1024).unwrap(), ok);
        assert!(decode::<Three>(&encode(&(vec![1u32, 2, 3, 4],)), 1024).is_err());
        assert!(decode::<Three>(&u64::MAX.to_le_bytes(), 1024).is_err());
    }

    #[test]
    fn huge_length_prefix_does_not_allocate() {
        // A Vec<u64> claiming u64::MAX elements, followed by nothing.
        let bytes = u64::MAX.to_le_bytes();
        assert!(matches!(
            decode::<Vec<u64>>(&bytes, 1024).unwrap_err(),
            CodecError::Malformed(_)
        ));
        let bytes = (1u64 << 40).to_le_bytes();
        assert!(decode::<String>(&bytes, 1024).is_err());
    }
}
