//! The bounds the converter holds its inputs to, checked before anything is allocated or
//! computed from them, and the checks that keep the `tokenizers` crate (which panics or aborts on
//! some malformed input) from ever seeing such input.

use std::path::Path;

use dbrt::format::Metadata;
use dbrt::Config;

use crate::error::{parse_err, ConvertError, Result};

/// Longest vocabulary piece accepted, in bytes: the runtime's bound, checked here before the
/// `tokenizers` crate sees a piece. Its Unigram model keeps pieces in a trie of nested maps that
/// is dropped recursively, one stack frame per byte: a 1 MB piece overflows the stack.
pub use dbrt::tokenizer::MAX_PIECE_BYTES;

/// Fewest positions a model may have: room for `[CLS]`, one token and `[SEP]`. Fewer, and every
/// text call fails.
pub const MIN_POSITIONS: usize = 3;

/// Largest tensor the converter computes (the relative-position projections), in bytes.
pub const MAX_DERIVED_BYTES: usize = 1 << 32;

/// Checks a config against the bounds the runtime opens files with (its metadata read back as
/// the runtime reads it) and the converter's own: `source` is the file it came from.
pub fn check_config(c: &Config, source: &Path) -> Result<()> {
    let mut m = Metadata::new();
    c.to_metadata(&mut m);
    Config::from_metadata(&m).map_err(|e| match e {
        dbrt::Error::BadMetadata { key, reason } => {
            parse_err(source, format!("{}: {reason}", field_name(&key)))
        }
        dbrt::Error::Unsupported(m) => parse_err(source, m),
        other => parse_err(source, other),
    })?;
    if c.max_position_embeddings < MIN_POSITIONS {
        return Err(parse_err(
            source,
            format!(
                "max_position_embeddings: {} is below {MIN_POSITIONS} ([CLS], a token and [SEP])",
                c.max_position_embeddings
            ),
        ));
    }
    Ok(())
}

/// `deberta.max_position_embeddings` → `max_position_embeddings`, as config.json names it.
fn field_name(key: &str) -> &str {
    key.strip_prefix("deberta.").unwrap_or(key)
}

/// The largest weight magnitude the converter writes. Trained DeBERTa weights stay far below
/// it (the real model's largest weight is 16.1); above it, a model of the sizes the runtime
/// takes can overflow f32 in its activations and answer NaN for every input.
pub const MAX_WEIGHT: f32 = 1e6;

/// The first value of a tensor that is not finite or whose magnitude exceeds [`MAX_WEIGHT`],
/// as an error naming it.
pub fn check_weights(input: &Path, tensor: &str, data: &[f32], hint: &'static str) -> Result<()> {
    let Some(index) = data
        .iter()
        .position(|v| !v.is_finite() || v.abs() > MAX_WEIGHT)
    else {
        return Ok(());
    };
    let (input, tensor, value) = (input.to_path_buf(), tensor.to_string(), data[index]);
    Err(match value.is_finite() {
        false => ConvertError::NonFinite {
            input,
            tensor,
            value,
            index,
            hint,
        },
        true => ConvertError::WeightTooLarge {
            input,
            tensor,
            value,
            index,
            hint,
        },
    })
}

/// Checks a vocabulary piece's length against [`MAX_PIECE_BYTES`].
pub fn check_piece(index: usize, piece: &str) -> std::result::Result<(), String> {
    if piece.len() > MAX_PIECE_BYTES {
        return Err(format!(
            "vocabulary piece {index} has {} bytes, more than {MAX_PIECE_BYTES}",
            piece.len()
        ));
    }
    Ok(())
}

/// Checks a SentencePiece precompiled charsmap so that no lookup `spm_precompiled` (inside
/// `tokenizers`) or the runtime makes can go wrong: a `u32` trie size that is a multiple of 4
/// and fits the blob (`spm_precompiled` allocates what it says before reading), replacement
/// strings in UTF-8, and, for every position a lookup can reach from the root on any bytes,
/// a unit inside the trie and a replacement offset on a character boundary of the strings
/// (`spm_precompiled` indexes both without a check). Visits each reachable unit once.
pub fn check_charsmap(blob: &[u8]) -> std::result::Result<(), String> {
    let size = blob
        .get(..4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or("shorter than its 4-byte trie size")?;
    let rest = blob.len() - 4;
    if size % 4 != 0 || size > rest {
        return Err(format!(
            "trie size {size} is not a multiple of 4 within the {rest} bytes that follow"
        ));
    }
    let units: Vec<u32> = blob[4..4 + size]
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let strings = std::str::from_utf8(&blob[4 + size..])
        .map_err(|_| "replacement strings are not UTF-8".to_string())?;
    // darts-clone's unit encoding, as spm_precompiled decodes it.
    let offset = |u: u32| ((u >> 10) << ((u & (1 << 9)) >> 6)) as usize;
    let label = |u: u32| u & ((1 << 31) | 0xFF);
    let has_leaf = |u: u32| (u >> 8) & 1 == 1;
    let root = *units.first().ok_or("empty trie")?;
    let mut seen = std::collections::HashSet::new();
    let mut todo = vec![offset(root)];
    while let Some(node) = todo.pop() {
        // A lookup steps from `node` on every byte but NUL, which ends it.
        for c in 1..=255u32 {
            let at = node ^ c as usize;
            let u = *units
                .get(at)
                .ok_or_else(|| format!("a lookup reaches unit {at} of {}", units.len()))?;
            if label(u) != c {
                continue;
            }
            let next = at ^ offset(u);
            if has_leaf(u) {
                let value = units
                    .get(next)
                    .ok_or_else(|| format!("a leaf at unit {next} of {}", units.len()))?
                    & ((1 << 31) - 1);
                if !strings.is_char_boundary(value as usize) {
                    return Err(format!(
                        "replacement offset {value} is not a character boundary of the {} bytes of strings",
                        strings.len()
                    ));
                }
            }
            // Each unit matches one byte, so each is stepped on from one node only.
            if seen.insert(next) {
                todo.push(next);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A charsmap blob: the trie's byte size, its units, the replacement strings.
    fn blob(units: &[u32], strings: &[u8]) -> Vec<u8> {
        let mut b = ((units.len() * 4) as u32).to_le_bytes().to_vec();
        for u in units {
            b.extend_from_slice(&u.to_le_bytes());
        }
        b.extend_from_slice(strings);
        b
    }

    #[test]
    fn charsmap_bounds() {
        assert!(check_charsmap(&[1, 0]).is_err());
        // A size beyond the blob: spm_precompiled would reserve 2^30 units first.
        let mut b = blob(&[0; 4], b"");
        b[..4].copy_from_slice(&0xFFFF_FFFCu32.to_le_bytes());
        assert!(check_charsmap(&b).unwrap_err().contains("trie size"));
        assert!(check_charsmap(&blob(&[], b""))
            .unwrap_err()
            .contains("empty"));
        // Root offset 0 over 4 units: byte 4 already steps outside.
        assert!(check_charsmap(&blob(&[0; 4], b""))
            .unwrap_err()
            .contains("reaches unit"));
        // 256 units, none matching: every lookup ends at once.
        assert_eq!(check_charsmap(&blob(&[0; 256], b"x\0")), Ok(()));
        assert!(check_charsmap(&blob(&[0; 256], b"\xff"))
            .unwrap_err()
            .contains("UTF-8"));
    }

    #[test]
    fn charsmap_leaves_point_at_character_boundaries() {
        // Root at 0 with offset 0; unit 'a' (97) labelled 'a' with a leaf and offset 0, so its
        // value is read from unit 97 ^ 0 = 97 itself: the value is the unit's low 31 bits.
        let leaf = |value_bits: u32| {
            let mut units = vec![0u32; 256];
            units[97] = value_bits;
            units
        };
        // Label 'a' (97) | has_leaf (1 << 8): as a value, 97 + 256 = 353.
        let unit = 97 | 1 << 8;
        assert!(check_charsmap(&blob(&leaf(unit), "é".repeat(200).as_bytes())).is_err());
        let s = "ab".repeat(200);
        assert_eq!(check_charsmap(&blob(&leaf(unit), s.as_bytes())), Ok(()));
        assert!(check_charsmap(&blob(&leaf(unit), b"short"))
            .unwrap_err()
            .contains("offset 353"));
    }
}
