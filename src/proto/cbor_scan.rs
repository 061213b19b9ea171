//! A structural check of CBOR bytes that runs before any decoding.
//!
//! A CBOR header can claim a string of 2^64 bytes or a list of 2^64 items in nine bytes. A
//! decoder that trusts it allocates first and fails later. This scanner walks the item headers
//! without allocating, and refuses anything over the protocol limits, any length the input
//! cannot hold, invalid UTF-8 in text, and the CBOR features the protocol does not use
//! (indefinite lengths, tags, floats). Only bytes that pass are handed to `ciborium`.

use super::error::DecodeError;

/// Structural limits for one scan.
#[derive(Debug, Clone, Copy)]
pub struct ScanLimits {
    /// Deepest nesting of arrays and maps (a top-level map is depth 1).
    pub max_depth: usize,
    /// Longest text or byte string.
    pub max_string: usize,
    /// Most entries in one array or map.
    pub max_items: usize,
}

/// Checks that `bytes` hold exactly one CBOR item within `limits`.
pub fn scan(bytes: &[u8], limits: &ScanLimits) -> Result<(), DecodeError> {
    let mut cursor = Cursor { bytes, pos: 0 };
    cursor.item(limits, 1)?;
    if cursor.pos != bytes.len() {
        return Err(DecodeError::TrailingBytes);
    }
    Ok(())
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Truncated)?;
        let slice = self
            .bytes
            .get(self.pos..end)
            .ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(slice)
    }

    /// Reads one item head: major type, additional info, argument.
    fn head(&mut self) -> Result<(u8, u8, u64), DecodeError> {
        let first = self.take(1)?[0];
        let (major, info) = (first >> 5, first & 0x1f);
        let width = match info {
            0..=23 => return Ok((major, info, u64::from(info))),
            24 => 1,
            25 => 2,
            26 => 4,
            27 => 8,
            31 => return Err(DecodeError::UnsupportedCbor("indefinite length")),
            _ => {
                return Err(DecodeError::MalformedCbor(
                    "reserved additional information",
                ));
            }
        };
        let arg = self
            .take(width)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        Ok((major, info, arg))
    }

    fn item(&mut self, limits: &ScanLimits, depth: usize) -> Result<(), DecodeError> {
        let (major, info, arg) = self.head()?;
        match major {
            0 | 1 => Ok(()),
            2 | 3 => {
                let len = usize::try_from(arg).unwrap_or(usize::MAX);
                if len > limits.max_string {
                    return Err(DecodeError::StringTooLong {
                        len: arg,
                        max: limits.max_string,
                    });
                }
                let content = self.take(len)?;
                if major == 3 && std::str::from_utf8(content).is_err() {
                    return Err(DecodeError::InvalidUtf8);
                }
                Ok(())
            }
            4 | 5 => {
                if depth > limits.max_depth {
                    return Err(DecodeError::TooDeep {
                        max: limits.max_depth,
                    });
                }
                let len = usize::try_from(arg).unwrap_or(usize::MAX);
                if len > limits.max_items {
                    return Err(DecodeError::TooManyItems {
                        len: arg,
                        max: limits.max_items,
                    });
                }
                let children = if major == 5 { len * 2 } else { len };
                for _ in 0..children {
                    self.item(limits, depth + 1)?;
                }
                Ok(())
            }
            6 => Err(DecodeError::UnsupportedCbor("tag")),
            _ => match info {
                20..=22 => Ok(()),
                _ => Err(DecodeError::UnsupportedCbor("float or simple value")),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ScanLimits = ScanLimits {
        max_depth: 2,
        max_string: 8,
        max_items: 3,
    };

    #[test]
    fn accepts_small_map() {
        // {"a": [1, true]}
        scan(&[0xa1, 0x61, b'a', 0x82, 0x01, 0xf5], &LIMITS).unwrap();
    }

    #[test]
    fn refuses_huge_claimed_string_without_allocating() {
        let bytes = [0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            scan(&bytes, &LIMITS),
            Err(DecodeError::StringTooLong { .. })
        ));
    }

    #[test]
    fn refuses_string_longer_than_input() {
        assert_eq!(scan(&[0x45, 1, 2], &LIMITS), Err(DecodeError::Truncated));
    }

    #[test]
    fn refuses_too_many_items_and_depth() {
        assert!(matches!(
            scan(&[0x84, 1, 2, 3, 4], &LIMITS),
            Err(DecodeError::TooManyItems { .. })
        ));
        assert!(matches!(
            scan(&[0x81, 0x81, 0x81, 0x01], &LIMITS),
            Err(DecodeError::TooDeep { .. })
        ));
    }

    #[test]
    fn a_string_may_be_as_long_as_the_limit_and_no_longer() {
        let mut text = vec![0x68];
        text.extend_from_slice(b"12345678");
        scan(&text, &LIMITS).unwrap();
        let mut bytes = vec![0x49];
        bytes.extend_from_slice(b"123456789");
        assert!(matches!(
            scan(&bytes, &LIMITS),
            Err(DecodeError::StringTooLong { len: 9, max: 8 })
        ));
    }

    #[test]
    fn refuses_unsupported_features_and_garbage() {
        assert!(matches!(
            scan(&[0x9f, 0xff], &LIMITS),
            Err(DecodeError::UnsupportedCbor(_))
        ));
        // Tags, including those whose number a simple value would share (21: "true").
        for tag in [0xc1, 0xd5] {
            assert_eq!(
                scan(&[tag, 0x01], &LIMITS),
                Err(DecodeError::UnsupportedCbor("tag"))
            );
        }
        assert!(matches!(
            scan(&[0xf9, 0x3c, 0x00], &LIMITS),
            Err(DecodeError::UnsupportedCbor(_))
        ));
        assert_eq!(
            scan(&[0x62, 0xff, 0xfe], &LIMITS),
            Err(DecodeError::InvalidUtf8)
        );
        assert_eq!(
            scan(&[0x01, 0x01], &LIMITS),
            Err(DecodeError::TrailingBytes)
        );
        assert_eq!(scan(&[], &LIMITS), Err(DecodeError::Truncated));
    }
}
