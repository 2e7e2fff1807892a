//! The stored (uncompressed) members of a zip archive held in memory, what `torch.save` writes.
//! Every offset and size read from the archive is checked against the bytes before it is used,
//! and nothing is allocated beyond one small entry per member listed in a central directory that
//! fits in the file.

use std::collections::HashMap;
use std::ops::Range;

const END: u32 = 0x0605_4b50;
const END_LEN: usize = 22;
const END64_LOCATOR: u32 = 0x0706_4b50;
const END64_LOCATOR_LEN: usize = 20;
const END64: u32 = 0x0606_4b50;
const END64_LEN: usize = 56;
const CENTRAL: u32 = 0x0201_4b50;
const CENTRAL_LEN: usize = 46;
const LOCAL: u32 = 0x0403_4b50;
const LOCAL_LEN: usize = 30;
const STORED: u16 = 0;

/// More members than any state_dict has (one per storage plus a few).
pub const MAX_MEMBERS: u64 = 1 << 20;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ZipError {
    #[error("not a zip archive: no end of central directory record")]
    NoEnd,
    #[error("zip archive: the {0} lies outside the file")]
    OutOfBounds(&'static str),
    #[error("zip archive: {0}")]
    Malformed(&'static str),
    #[error("zip archive lists {0} members, more than {MAX_MEMBERS}")]
    TooManyMembers(u64),
    #[error("zip archive: the name of member {0} is not UTF-8")]
    NameNotUtf8(u64),
    #[error("zip archive: no member '{0}'")]
    Missing(String),
    #[error("zip archive: member '{name}' is compressed (method {method}); only stored members are read")]
    Compressed { name: String, method: u16 },
    #[error("zip archive: member '{name}' {what}")]
    BadMember { name: String, what: &'static str },
}

type Result<T> = std::result::Result<T, ZipError>;

fn get<const N: usize>(b: &[u8], at: u64) -> Option<[u8; N]> {
    let at = usize::try_from(at).ok()?;
    b.get(at..at.checked_add(N)?)?.try_into().ok()
}
fn u16_at(b: &[u8], at: u64) -> Option<u16> {
    get(b, at).map(u16::from_le_bytes)
}
fn u32_at(b: &[u8], at: u64) -> Option<u32> {
    get(b, at).map(u32::from_le_bytes)
}
fn u64_at(b: &[u8], at: u64) -> Option<u64> {
    get(b, at).map(u64::from_le_bytes)
}

struct Entry {
    name: Range<usize>,
    method: u16,
    compressed: u64,
    size: u64,
    local: u64,
}

pub struct Archive<'a> {
    bytes: &'a [u8],
    entries: Vec<Entry>,
    /// The first entry of each name: a state_dict looks up one member a tensor.
    by_name: HashMap<&'a str, usize>,
    /// Where the central directory starts: member data lies before it.
    central: u64,
}

impl<'a> Archive<'a> {
    pub fn new(bytes: &'a [u8]) -> Result<Archive<'a>> {
        let oob = ZipError::OutOfBounds;
        let len = bytes.len() as u64;
        // The end record is the last 22 bytes but for a comment of at most 65535 bytes.
        let last = bytes.len().checked_sub(END_LEN).ok_or(ZipError::NoEnd)?;
        let first = last.saturating_sub(0xFFFF);
        let end = (first..=last)
            .rev()
            .find(|&i| {
                let i = i as u64;
                u32_at(bytes, i) == Some(END)
                    && u16_at(bytes, i + 20).is_some_and(|c| i + END_LEN as u64 + c as u64 <= len)
            })
            .ok_or(ZipError::NoEnd)? as u64;
        let r16 = |at| u16_at(bytes, at).ok_or(oob("end record"));
        let r32 = |at| u32_at(bytes, at).ok_or(oob("end record"));
        let mut count = r16(end + 10)? as u64;
        let mut cd_size = r32(end + 12)? as u64;
        let mut cd_offset = r32(end + 16)? as u64;
        let mut cd_limit = end;
        if count == 0xFFFF || cd_size == 0xFFFF_FFFF || cd_offset == 0xFFFF_FFFF {
            let loc = end
                .checked_sub(END64_LOCATOR_LEN as u64)
                .ok_or(oob("zip64 end locator"))?;
            if u32_at(bytes, loc) != Some(END64_LOCATOR) {
                return Err(ZipError::Malformed("no zip64 end locator"));
            }
            let at = u64_at(bytes, loc + 8).ok_or(oob("zip64 end locator"))?;
            if at.checked_add(END64_LEN as u64).is_none_or(|e| e > loc) {
                return Err(oob("zip64 end record"));
            }
            if u32_at(bytes, at) != Some(END64) {
                return Err(ZipError::Malformed("no zip64 end record"));
            }
            let r64 = |o| u64_at(bytes, at + o).ok_or(oob("zip64 end record"));
            count = r64(32)?;
            cd_size = r64(40)?;
            cd_offset = r64(48)?;
            cd_limit = at;
        }
        if cd_offset.checked_add(cd_size).is_none_or(|e| e > cd_limit) {
            return Err(oob("central directory"));
        }
        if count > MAX_MEMBERS {
            return Err(ZipError::TooManyMembers(count));
        }
        if count > cd_size / CENTRAL_LEN as u64 {
            return Err(ZipError::Malformed(
                "more members than the central directory holds",
            ));
        }
        let cd_end = cd_offset + cd_size;
        let mut entries = Vec::with_capacity(count as usize);
        let mut at = cd_offset;
        for index in 0..count {
            let oob = || oob("central directory entry");
            if at + CENTRAL_LEN as u64 > cd_end {
                return Err(oob());
            }
            if u32_at(bytes, at) != Some(CENTRAL) {
                return Err(ZipError::Malformed("bad central directory entry signature"));
            }
            let r16 = |o| u16_at(bytes, at + o).ok_or_else(oob);
            let r32 = |o| u32_at(bytes, at + o).ok_or_else(oob);
            let method = r16(10)?;
            let mut compressed = r32(20)? as u64;
            let mut size = r32(24)? as u64;
            let name_len = r16(28)? as u64;
            let extra_len = r16(30)? as u64;
            let comment_len = r16(32)? as u64;
            let mut local = r32(42)? as u64;
            let name_at = at + CENTRAL_LEN as u64;
            let extra_at = name_at + name_len;
            let next = extra_at + extra_len + comment_len;
            if next > cd_end {
                return Err(oob());
            }
            // In range of the bytes: cd_end is.
            let name = name_at as usize..extra_at as usize;
            if std::str::from_utf8(&bytes[name.clone()]).is_err() {
                return Err(ZipError::NameNotUtf8(index));
            }
            if size == 0xFFFF_FFFF || compressed == 0xFFFF_FFFF || local == 0xFFFF_FFFF {
                // The zip64 extra field holds, in this order, those of the three that overflowed.
                let mut e = extra_at;
                let extra_end = extra_at + extra_len;
                let mut found = false;
                while e + 4 <= extra_end {
                    let id = r16(e - at)?;
                    let n = r16(e - at + 2)? as u64;
                    let body = e + 4;
                    if body + n > extra_end {
                        return Err(oob());
                    }
                    if id == 1 {
                        let mut f = body;
                        let mut take = |v: &mut u64| -> Result<()> {
                            if *v == 0xFFFF_FFFF {
                                if f + 8 > body + n {
                                    return Err(ZipError::Malformed("short zip64 extra field"));
                                }
                                *v = u64_at(bytes, f).ok_or_else(oob)?;
                                f += 8;
                            }
                            Ok(())
                        };
                        take(&mut size)?;
                        take(&mut compressed)?;
                        take(&mut local)?;
                        found = true;
                        break;
                    }
                    e = body + n;
                }
                if !found {
                    return Err(ZipError::Malformed("no zip64 extra field"));
                }
            }
            entries.push(Entry {
                name,
                method,
                compressed,
                size,
                local,
            });
            at = next;
        }
        let mut by_name = HashMap::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            // Checked to be UTF-8 above.
            if let Ok(name) = std::str::from_utf8(&bytes[e.name.clone()]) {
                by_name.entry(name).or_insert(i);
            }
        }
        Ok(Archive {
            bytes,
            entries,
            by_name,
            central: cd_offset,
        })
    }

    /// The names of the members, in the order of the central directory.
    pub fn names(&self) -> impl Iterator<Item = &'a str> + '_ {
        // Checked to be UTF-8 in `new`.
        self.entries
            .iter()
            .filter_map(|e| std::str::from_utf8(&self.bytes[e.name.clone()]).ok())
    }

    /// Where the data of the stored member `name` lies in the archive's bytes.
    pub fn member(&self, name: &str) -> Result<Range<usize>> {
        let e = self
            .by_name
            .get(name)
            .map(|&i| &self.entries[i])
            .ok_or_else(|| ZipError::Missing(name.into()))?;
        let bad = |what| ZipError::BadMember {
            name: name.into(),
            what,
        };
        if e.method != STORED {
            return Err(ZipError::Compressed {
                name: name.into(),
                method: e.method,
            });
        }
        if e.compressed != e.size {
            return Err(bad("is stored but its two sizes differ"));
        }
        if u32_at(self.bytes, e.local) != Some(LOCAL) {
            return Err(bad("has no local header where the directory says"));
        }
        let n = u16_at(self.bytes, e.local + 26).ok_or(bad("has a truncated local header"))?;
        let m = u16_at(self.bytes, e.local + 28).ok_or(bad("has a truncated local header"))?;
        let start = e.local + LOCAL_LEN as u64 + n as u64 + m as u64;
        match start.checked_add(e.size) {
            // Both below `central`, itself within the bytes.
            Some(end) if end <= self.central => Ok(start as usize..end as usize),
            _ => Err(bad("runs past the start of the central directory")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An archive of two stored members written by the `zip` crate, and where its end record is.
    fn two_members() -> (Vec<u8>, usize) {
        use std::io::Write;
        let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let stored =
            zip::write::FileOptions::default().compression_method(zip::CompressionMethod::Stored);
        z.start_file("a/data.pkl", stored).unwrap();
        z.write_all(b"pickle").unwrap();
        z.start_file("a/data/0", stored).unwrap();
        z.write_all(&[7; 100]).unwrap();
        let bytes = z.finish().unwrap().into_inner();
        let end = bytes.len() - END_LEN;
        assert_eq!(u32_at(&bytes, end as u64), Some(END));
        (bytes, end)
    }

    fn read<'a>(a: &Archive<'a>, name: &str) -> Result<&'a [u8]> {
        a.member(name).map(|r| &a.bytes[r])
    }

    /// The same archive with its end record moved into zip64 records, `count` members claimed.
    fn as_zip64(bytes: &[u8], end: usize, count: u64) -> Vec<u8> {
        let cd_size = u32_at(bytes, end as u64 + 12).unwrap() as u64;
        let cd_offset = u32_at(bytes, end as u64 + 16).unwrap() as u64;
        let mut out = bytes[..end].to_vec();
        let at = out.len() as u64;
        out.extend(END64.to_le_bytes());
        out.extend(44u64.to_le_bytes());
        out.extend([45, 0, 45, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        for v in [count, count, cd_size, cd_offset] {
            out.extend(v.to_le_bytes());
        }
        out.extend(END64_LOCATOR.to_le_bytes());
        out.extend(0u32.to_le_bytes());
        out.extend(at.to_le_bytes());
        out.extend(1u32.to_le_bytes());
        out.extend(END.to_le_bytes());
        out.extend([0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
        out.extend([0xFF; 8]);
        out.extend([0, 0]);
        out
    }

    #[test]
    fn stored_members_read_through_either_end_record() {
        let (bytes, end) = two_members();
        let zip64 = as_zip64(&bytes, end, 2);
        for b in [&bytes, &zip64] {
            let a = Archive::new(b).unwrap();
            assert_eq!(a.names().collect::<Vec<_>>(), ["a/data.pkl", "a/data/0"]);
            assert_eq!(read(&a, "a/data.pkl").unwrap(), b"pickle");
            assert_eq!(read(&a, "a/data/0").unwrap(), [7; 100]);
            assert_eq!(
                read(&a, "a/x").unwrap_err(),
                ZipError::Missing("a/x".into())
            );
        }
    }

    #[test]
    fn forged_counts_and_offsets_are_refused() {
        let (bytes, end) = two_members();
        let patch = |at: usize, v: &[u8]| {
            let mut b = bytes.clone();
            b[at..at + v.len()].copy_from_slice(v);
            b
        };
        let err = |b: &[u8]| Archive::new(b).err().unwrap();
        assert_eq!(
            err(&patch(end + 16, &(bytes.len() as u32).to_le_bytes())),
            ZipError::OutOfBounds("central directory")
        );
        assert_eq!(
            err(&patch(end + 10, &0xFFFEu16.to_le_bytes())),
            ZipError::Malformed("more members than the central directory holds")
        );
        assert_eq!(
            err(&as_zip64(&bytes, end, 1 << 40)),
            ZipError::TooManyMembers(1 << 40)
        );
        assert_eq!(err(&bytes[..end + 21]), ZipError::NoEnd);
        // The first entry's local header offset, and then its method.
        let cd = u32_at(&bytes, end as u64 + 16).unwrap() as usize;
        let b = patch(cd + 42, &0x7FFF_FFFFu32.to_le_bytes());
        assert!(matches!(
            read(&Archive::new(&b).unwrap(), "a/data.pkl"),
            Err(ZipError::BadMember {
                what: "has no local header where the directory says",
                ..
            })
        ));
        let b = patch(cd + 10, &8u16.to_le_bytes());
        assert_eq!(
            read(&Archive::new(&b).unwrap(), "a/data.pkl").unwrap_err(),
            ZipError::Compressed {
                name: "a/data.pkl".into(),
                method: 8
            }
        );
        // A stored size that runs into the central directory.
        let b = patch(cd + 20, &[0xF0, 0xFF, 0, 0, 0xF0, 0xFF, 0, 0]);
        assert!(matches!(
            read(&Archive::new(&b).unwrap(), "a/data.pkl"),
            Err(ZipError::BadMember {
                what: "runs past the start of the central directory",
                ..
            })
        ));
    }
}
