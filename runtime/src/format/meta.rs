//! Typed metadata: namespaced keys (`deberta.hidden_size`, `labels.id2label`, ...) with typed
//! values. Encoding (little-endian): `u32 count`, then per entry `u16 key_len, key, u8 type,
//! value`; see `docs/FORMAT.md` for the value encodings.

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    U64(u64),
    I64(i64),
    F64(f64),
    Bool(bool),
    Str(String),
    StrList(Vec<String>),
    I64List(Vec<i64>),
}

const T_U64: u8 = 1;
const T_I64: u8 = 2;
const T_F64: u8 = 3;
const T_BOOL: u8 = 4;
const T_STR: u8 = 5;
const T_STR_LIST: u8 = 6;
const T_I64_LIST: u8 = 7;

impl MetaValue {
    pub fn type_name(&self) -> &'static str {
        match self {
            MetaValue::U64(_) => "u64",
            MetaValue::I64(_) => "i64",
            MetaValue::F64(_) => "f64",
            MetaValue::Bool(_) => "bool",
            MetaValue::Str(_) => "string",
            MetaValue::StrList(_) => "string list",
            MetaValue::I64List(_) => "i64 list",
        }
    }
}

impl std::fmt::Display for MetaValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MetaValue::U64(v) => write!(f, "{v}"),
            MetaValue::I64(v) => write!(f, "{v}"),
            MetaValue::F64(v) => write!(f, "{v:e}"),
            MetaValue::Bool(v) => write!(f, "{v}"),
            MetaValue::Str(v) => write!(f, "{v:?}"),
            MetaValue::StrList(v) => write!(f, "{v:?}"),
            MetaValue::I64List(v) => write!(f, "{v:?}"),
        }
    }
}

/// Metadata entries in file order. Lookups are linear: there are a few dozen keys and they are
/// read once, when a model is opened.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metadata {
    entries: Vec<(String, MetaValue)>,
}

impl Metadata {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key`, replacing an earlier value.
    pub fn set(&mut self, key: &str, value: MetaValue) {
        match self.entries.iter_mut().find(|(k, _)| k == key) {
            Some(e) => e.1 = value,
            None => self.entries.push((key.to_string(), value)),
        }
    }

    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn entries(&self) -> &[(String, MetaValue)] {
        &self.entries
    }

    fn require(&self, key: &str) -> Result<&MetaValue> {
        self.get(key)
            .ok_or_else(|| Error::MissingMetadata { key: key.into() })
    }

    fn wrong(key: &str, v: &MetaValue, want: &str) -> Error {
        Error::BadMetadata {
            key: key.into(),
            reason: format!("expected {want}, found {}", v.type_name()),
        }
    }

    pub fn u64(&self, key: &str) -> Result<u64> {
        match self.require(key)? {
            MetaValue::U64(v) => Ok(*v),
            v => Err(Self::wrong(key, v, "u64")),
        }
    }

    /// A u64 that must fit in `usize` and lie in `range` (shapes, counts).
    pub fn usize_in(&self, key: &str, range: std::ops::RangeInclusive<u64>) -> Result<usize> {
        let v = self.u64(key)?;
        if !range.contains(&v) {
            return Err(Error::BadMetadata {
                key: key.into(),
                reason: format!("{v} is outside {range:?}"),
            });
        }
        usize::try_from(v).map_err(|_| Error::BadMetadata {
            key: key.into(),
            reason: format!("{v} does not fit in usize"),
        })
    }

    pub fn i64(&self, key: &str) -> Result<i64> {
        match self.require(key)? {
            MetaValue::I64(v) => Ok(*v),
            v => Err(Self::wrong(key, v, "i64")),
        }
    }

    pub fn f64(&self, key: &str) -> Result<f64> {
        match self.require(key)? {
            MetaValue::F64(v) => Ok(*v),
            v => Err(Self::wrong(key, v, "f64")),
        }
    }

    pub fn bool(&self, key: &str) -> Result<bool> {
        match self.require(key)? {
            MetaValue::Bool(v) => Ok(*v),
            v => Err(Self::wrong(key, v, "bool")),
        }
    }

    pub fn str(&self, key: &str) -> Result<&str> {
        match self.require(key)? {
            MetaValue::Str(v) => Ok(v),
            v => Err(Self::wrong(key, v, "string")),
        }
    }

    pub fn str_list(&self, key: &str) -> Result<&[String]> {
        match self.require(key)? {
            MetaValue::StrList(v) => Ok(v),
            v => Err(Self::wrong(key, v, "string list")),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        for (k, v) in &self.entries {
            out.extend_from_slice(&(k.len() as u16).to_le_bytes());
            out.extend_from_slice(k.as_bytes());
            match v {
                MetaValue::U64(x) => {
                    out.push(T_U64);
                    out.extend_from_slice(&x.to_le_bytes());
                }
                MetaValue::I64(x) => {
                    out.push(T_I64);
                    out.extend_from_slice(&x.to_le_bytes());
                }
                MetaValue::F64(x) => {
                    out.push(T_F64);
                    out.extend_from_slice(&x.to_le_bytes());
                }
                MetaValue::Bool(x) => {
                    out.push(T_BOOL);
                    out.push(*x as u8);
                }
                MetaValue::Str(s) => {
                    out.push(T_STR);
                    put_str(&mut out, s);
                }
                MetaValue::StrList(l) => {
                    out.push(T_STR_LIST);
                    out.extend_from_slice(&(l.len() as u32).to_le_bytes());
                    for s in l {
                        put_str(&mut out, s);
                    }
                }
                MetaValue::I64List(l) => {
                    out.push(T_I64_LIST);
                    out.extend_from_slice(&(l.len() as u32).to_le_bytes());
                    for x in l {
                        out.extend_from_slice(&x.to_le_bytes());
                    }
                }
            }
        }
        out
    }

    /// Decodes a metadata section. Every length is checked against the bytes left, so no input
    /// can make it read out of bounds or allocate more than the section's size.
    pub fn decode(bytes: &[u8]) -> Result<Metadata> {
        let mut r = Cursor { b: bytes, at: 0 };
        let count = r.u32()? as usize;
        // Each entry takes at least 4 bytes: a bound that stops a forged count from reserving.
        if count > bytes.len() / 4 {
            return Err(Error::CorruptMetadata(format!(
                "{count} entries in {} bytes",
                bytes.len()
            )));
        }
        let mut entries = Vec::with_capacity(count);
        for _ in 0..count {
            let klen = r.u16()? as usize;
            let key = r.str(klen)?;
            let ty = r.u8()?;
            let v = match ty {
                T_U64 => MetaValue::U64(r.u64()?),
                T_I64 => MetaValue::I64(r.u64()? as i64),
                T_F64 => MetaValue::F64(f64::from_bits(r.u64()?)),
                T_BOOL => match r.u8()? {
                    0 => MetaValue::Bool(false),
                    1 => MetaValue::Bool(true),
                    b => {
                        return Err(Error::CorruptMetadata(format!(
                            "bool value {b} for '{key}'"
                        )))
                    }
                },
                T_STR => {
                    let n = r.u32()? as usize;
                    MetaValue::Str(r.str(n)?)
                }
                T_STR_LIST => {
                    let n = r.u32()? as usize;
                    if n > r.left() / 4 {
                        return Err(Error::CorruptMetadata(format!("list of {n} for '{key}'")));
                    }
                    let mut l = Vec::with_capacity(n);
                    for _ in 0..n {
                        let len = r.u32()? as usize;
                        l.push(r.str(len)?);
                    }
                    MetaValue::StrList(l)
                }
                T_I64_LIST => {
                    let n = r.u32()? as usize;
                    if n > r.left() / 8 {
                        return Err(Error::CorruptMetadata(format!("list of {n} for '{key}'")));
                    }
                    let mut l = Vec::with_capacity(n);
                    for _ in 0..n {
                        l.push(r.u64()? as i64);
                    }
                    MetaValue::I64List(l)
                }
                t => {
                    return Err(Error::CorruptMetadata(format!(
                        "unknown value type {t} for '{key}'"
                    )))
                }
            };
            entries.push((key, v));
        }
        if r.left() != 0 {
            return Err(Error::CorruptMetadata(format!(
                "{} trailing bytes",
                r.left()
            )));
        }
        Ok(Metadata { entries })
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn left(&self) -> usize {
        self.b.len() - self.at
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.left() {
            return Err(Error::CorruptMetadata(format!(
                "a field of {n} bytes runs past the end of the section at {}",
                self.at
            )));
        }
        let s = &self.b[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn str(&mut self, n: usize) -> Result<String> {
        let b = self.take(n)?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| Error::CorruptMetadata("a string is not valid UTF-8".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let mut m = Metadata::new();
        m.set("a.u", MetaValue::U64(7));
        m.set("a.i", MetaValue::I64(-3));
        m.set("a.f", MetaValue::F64(1e-7));
        m.set("a.b", MetaValue::Bool(true));
        m.set("a.s", MetaValue::Str("héllo".into()));
        m.set("a.l", MetaValue::StrList(vec!["x".into(), "".into()]));
        m.set("a.n", MetaValue::I64List(vec![1, -2]));
        let enc = m.encode();
        assert_eq!(Metadata::decode(&enc).unwrap(), m);
        for cut in 0..enc.len() {
            assert!(
                Metadata::decode(&enc[..cut]).is_err(),
                "cut at {cut} decoded"
            );
        }
        assert_eq!(m.u64("a.u").unwrap(), 7);
        assert!(matches!(m.u64("a.i"), Err(Error::BadMetadata { .. })));
        assert!(matches!(m.u64("nope"), Err(Error::MissingMetadata { .. })));
    }
}
