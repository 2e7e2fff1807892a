//! SentencePiece's precompiled character map (`nmt_nfkc` and friends), walked in place.
//!
//! The blob is the one SentencePiece and `tokenizers` use: a little-endian `u32` byte size of a
//! darts-clone double-array trie, the trie's `u32` units, then NUL-terminated replacement
//! strings. A trie leaf's value is the byte offset of the replacement. Nothing is decoded at
//! open except a check of the strings; lookups read the units through the mapping.

use crate::error::{Error, Result};

/// Longest replacement string the map may hold, in bytes. SentencePiece's longest is 33 (ﷺ);
/// the bound keeps a forged map from making each character of a text cost megabytes of work.
pub(crate) const MAX_REPLACEMENT_BYTES: usize = 256;

#[derive(Debug, Clone, Copy)]
pub(crate) struct CharsMap<'a> {
    units: &'a [u32],
    strings: &'a [u8],
}

impl<'a> CharsMap<'a> {
    /// Splits the blob; with `check`, also validates the replacement strings (done at open).
    pub fn parse(blob: &'a [u8], check: bool) -> Result<CharsMap<'a>> {
        let bad = |m: &str| Error::Tokenizer(format!("charsmap: {m}"));
        let size = blob
            .get(..4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
            .ok_or_else(|| bad("too short"))?;
        let end = 4usize
            .checked_add(size)
            .filter(|&e| size % 4 == 0 && e <= blob.len())
            .ok_or_else(|| bad("trie size"))?;
        let units: &[u32] =
            bytemuck::try_cast_slice(&blob[4..end]).map_err(|_| bad("trie not aligned"))?;
        let strings = &blob[end..];
        if check {
            // Replacements are handed out as &str: check the whole blob once. A replacement
            // runs from a leaf's offset to the next NUL: bounding every run bounds them all.
            std::str::from_utf8(strings).map_err(|_| bad("replacement strings are not UTF-8"))?;
            if strings
                .split(|&b| b == 0)
                .any(|run| run.len() > MAX_REPLACEMENT_BYTES)
            {
                return Err(bad(&format!(
                    "a replacement string longer than {MAX_REPLACEMENT_BYTES} bytes"
                )));
            }
        }
        Ok(CharsMap { units, strings })
    }

    /// The replacement for `chunk`, as `Precompiled::transform` computes it: the value of the
    /// *shortest* key that is a prefix of `chunk` (yes, a prefix: that is what it does).
    pub fn transform(&self, chunk: &str) -> Option<&'a str> {
        let units = self.units;
        let unit = |p: usize| units.get(p).copied();
        let offset = |u: u32| ((u >> 10) << ((u & (1 << 9)) >> 6)) as usize;
        let label = |u: u32| u & ((1 << 31) | 0xFF);
        let has_leaf = |u: u32| (u >> 8) & 1 == 1;
        let mut pos = offset(unit(0)?);
        for &c in chunk.as_bytes() {
            if c == 0 {
                return None;
            }
            pos ^= c as usize;
            let u = unit(pos)?;
            if label(u) != c as u32 {
                return None;
            }
            pos ^= offset(u);
            if has_leaf(u) {
                let start = (unit(pos)? & ((1u32 << 31) - 1)) as usize;
                let rest = self.strings.get(start..)?;
                // Validated at open: a NUL comes within the bound, or the strings end.
                let rest = &rest[..rest.len().min(MAX_REPLACEMENT_BYTES + 1)];
                let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
                // The blob is UTF-8 as a whole, but an offset may point inside a character.
                return std::str::from_utf8(&rest[..end]).ok();
            }
        }
        None
    }
}
