//! Strict base64url without padding (RFC 7515 §2, RFC 4648 §5).
//!
//! Strict means: only the 64 URL-safe characters, no `=` padding, no
//! whitespace, and the unused low bits of the last character must be zero,
//! so that every byte string has exactly one encoding (a token cannot be
//! altered without changing what the signature covers).

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Encodes `bytes` as base64url without padding.
pub(crate) fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let idx = (n >> (18 - 6 * i)) & 63;
            out.push(char::from(
                ALPHABET.get(idx as usize).copied().unwrap_or(b'A'),
            ));
        }
    }
    out
}

/// The value of each byte as a base64url digit; `INVALID` for the others.
const INVALID: u8 = 0xff;
#[allow(
    clippy::indexing_slicing,
    reason = "const evaluation: an out-of-range index fails the build"
)]
const TABLE: [u8; 256] = {
    let mut t = [INVALID; 256];
    let mut i = 0;
    while i < 64 {
        t[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    t
};

fn value(c: u8) -> Option<u32> {
    let v = TABLE.get(usize::from(c)).copied().unwrap_or(INVALID);
    (v != INVALID).then_some(u32::from(v))
}

/// Why a text is not strict base64url.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// A character outside the URL-safe alphabet (padding included), at
    /// this byte offset.
    Character(usize),
    /// A length no encoding has (4n + 1 characters).
    Length,
    /// The last character carries bits that are not zero.
    TrailingBits,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Character(at) => {
                write!(
                    f,
                    "character at offset {at} is not base64url (without padding)"
                )
            }
            DecodeError::Length => f.write_str("length is not that of any base64url text"),
            DecodeError::TrailingBits => {
                f.write_str("the last character has non-zero unused bits (non-canonical)")
            }
        }
    }
}

/// Decodes strict base64url without padding.
pub(crate) fn decode(text: &[u8]) -> Result<Vec<u8>, DecodeError> {
    if text.len() % 4 == 1 {
        return Err(DecodeError::Length);
    }
    let chunks = text.chunks_exact(4);
    let tail = chunks.remainder();
    // Whole groups decode into a buffer of exactly their size, in lockstep
    // (no per-group capacity checks); the tail is appended after.
    let mut out = vec![0u8; text.len() / 4 * 3];
    out.reserve_exact(2);
    let mut bad = 0u8;
    for (chunk, dst) in chunks.zip(out.chunks_exact_mut(3)) {
        let &[a, b, c, d] = chunk else {
            return Err(DecodeError::Length);
        };
        let [a, b, c, d] =
            [a, b, c, d].map(|x| TABLE.get(usize::from(x)).copied().unwrap_or(INVALID));
        // Valid digits are below 64; INVALID has the top bits set.
        bad |= a | b | c | d;
        let n = (u32::from(a) << 18) | (u32::from(b) << 12) | (u32::from(c) << 6) | u32::from(d);
        dst.copy_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8]);
    }
    if bad & 0xc0 != 0 {
        let at = text.iter().position(|&x| value(x).is_none()).unwrap_or(0);
        return Err(DecodeError::Character(at));
    }
    if !tail.is_empty() {
        let offset = text.len() - tail.len();
        let mut n = 0u32;
        for (i, &c) in tail.iter().enumerate() {
            let v = value(c).ok_or(DecodeError::Character(offset + i))?;
            n |= v << (18 - 6 * i);
        }
        let keep = tail.len() - 1;
        // Bits below the last full byte must be zero.
        if n & (0x00FF_FFFF >> (8 * keep)) != 0 {
            return Err(DecodeError::TrailingBits);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8];
        out.extend_from_slice(bytes.get(..keep).unwrap_or(&[]));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_length() {
        let data: Vec<u8> = (0..=255u8).collect();
        for n in 0..40 {
            let e = encode(&data[..n]);
            assert!(!e.contains('='));
            assert_eq!(decode(e.as_bytes()).unwrap(), &data[..n], "length {n}");
        }
    }

    #[test]
    fn known_vectors() {
        assert_eq!(encode(b""), "");
        assert_eq!(encode(b"f"), "Zg");
        assert_eq!(encode(b"fo"), "Zm8");
        assert_eq!(encode(b"foo"), "Zm9v");
        assert_eq!(encode(&[0xfb, 0xff]), "-_8");
        assert_eq!(decode(b"-_8").unwrap(), vec![0xfb, 0xff]);
    }

    #[test]
    fn refuses_padding_standard_alphabet_whitespace_and_loose_bits() {
        assert_eq!(decode(b"Zg=="), Err(DecodeError::Character(2)));
        assert_eq!(decode(b"+/8"), Err(DecodeError::Character(0)));
        assert_eq!(decode(b"Zm 9"), Err(DecodeError::Character(2)));
        assert_eq!(decode(b"Zm9vY"), Err(DecodeError::Length));
        assert_eq!(decode(b"Zh"), Err(DecodeError::TrailingBits));
        assert_eq!(decode(b"Zm9"), Err(DecodeError::TrailingBits));
    }
}
