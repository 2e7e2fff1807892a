//! The manifest of an artifact directory: which `.dbrt` file the graphs were exported from,
//! the encoder's shape, and one graph per sequence-length bucket with its size and checksum.
//!
//! A text file, `manifest.txt`, one `key value...` line each (the runtime has no JSON parser,
//! and needs none for this):
//!
//! ```text
//! dbrt-encoder-artifacts 1
//! model 84754496 1a2b3c4d 5e6f7a8b
//! layers 12
//! hidden_size 384
//! precision f32
//! graph 64 encoder-64.onnx 85123456 0badc0de
//! graph 128 encoder-128.onnx 85130000 12345678
//! ```
//!
//! `model` is the source file's length and the CRC-32s of its data and tables (its header's
//! `data_crc32` and `tables_crc32`): the tables hold every tensor's checksum, the config and
//! the tokenizer, so another model (or the same model converted to another dtype) differs.
//! `graph` is the bucket (sequence length), a file name in the same directory, its length in
//! bytes and its CRC-32. Lines starting with `#` are comments.
//!
//! An export for Huawei's Ascend (`--target ascend`) holds one graph with a dynamic sequence
//! dimension instead of one per bucket; its `graph` line's bucket is the longest sequence the
//! graph's constants cover, and three more lines say how ATC compiles it and what it made:
//!
//! ```text
//! target ascend
//! gears 64 128 256 512
//! graph 512 encoder-ascend.onnx 85123456 0badc0de
//! om encoder.om 61234567 89abcdef Ascend310B1
//! ```
//!
//! `gears` are the sequence lengths ATC compiles (`--dynamic_dims`), ascending, the last the
//! graph's bucket. `om` (written by `dbrt-convert register-om` after ATC ran, absent before)
//! is the compiled offline model: file name, length, CRC-32, and the `--soc_version` it was
//! compiled for.

use std::fmt::Write as _;

use crate::error::{Error, Result};
use crate::format::Header;

/// The manifest's file name in an artifact directory.
pub const MANIFEST_FILE: &str = "manifest.txt";

/// The first line's tag; the number after it is the version.
const TAG: &str = "dbrt-encoder-artifacts";
const VERSION: u32 = 1;

/// The largest manifest read (a handful of lines are expected).
pub const MAX_MANIFEST_BYTES: u64 = 64 * 1024;
/// The most graphs one manifest lists.
pub const MAX_GRAPHS: usize = 64;
/// The largest graph file read (protobuf's own limit is 2 GiB).
pub const MAX_GRAPH_BYTES: u64 = 2 << 30;

/// Which `.dbrt` file artifacts belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelIdentity {
    pub file_len: u64,
    pub data_crc32: u32,
    pub tables_crc32: u32,
}

impl ModelIdentity {
    pub fn of(header: &Header) -> ModelIdentity {
        ModelIdentity {
            file_len: header.file_len,
            data_crc32: header.data_crc32,
            tables_crc32: header.tables_crc32,
        }
    }
}

/// The weights' precision in the graphs (inputs and outputs are f32 either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    F32,
    F16,
}

impl Precision {
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
        }
    }

    pub fn parse(s: &str) -> Option<Precision> {
        match s {
            "f32" => Some(Precision::F32),
            "f16" => Some(Precision::F16),
            _ => None,
        }
    }
}

/// One bucket's graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Graph {
    /// The sequence length the graph takes (`hidden [1, bucket, H]`, `mask [1, bucket]`).
    pub bucket: usize,
    /// A file name in the artifact directory (no directory part).
    pub file: String,
    pub bytes: u64,
    pub crc32: u32,
}

/// The offline model ATC compiled from an Ascend export's graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineModel {
    /// A file name in the artifact directory (no directory part).
    pub file: String,
    pub bytes: u64,
    pub crc32: u32,
    /// The `--soc_version` it was compiled for (`Ascend310B1`, `Ascend310P3`, ...).
    pub soc_version: String,
}

/// What an Ascend export adds: the gears ATC compiles and, once compiled, the offline model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AscendPart {
    /// Ascending, the last equal to the one graph's bucket.
    pub gears: Vec<usize>,
    pub om: Option<OfflineModel>,
}

/// The tensor holding an offline model embedded in a `.dbrt` file (`dbrt-convert embed-om`;
/// docs/FORMAT.md, "Optional parts"), and the metadata key of its gears.
pub const OM_TENSOR: &str = "ascend.om";
pub const OM_GEARS: &str = "ascend.gears";

/// The most gears ATC takes.
pub const MAX_GEARS: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub model: ModelIdentity,
    pub layers: usize,
    pub hidden_size: usize,
    pub precision: Precision,
    /// By bucket, ascending, no two alike. An Ascend export has one.
    pub graphs: Vec<Graph>,
    /// `Some` for an Ascend export (`target ascend`).
    pub ascend: Option<AscendPart>,
}

fn bad(line: usize, what: impl std::fmt::Display) -> Error {
    Error::InvalidArtifacts(format!("{MANIFEST_FILE} line {line}: {what}"))
}

fn number<T: std::str::FromStr>(line: usize, field: &str, s: Option<&str>) -> Result<T> {
    s.and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(line, format_args!("{field} is not a number")))
}

fn hex32(line: usize, field: &str, s: Option<&str>) -> Result<u32> {
    s.filter(|s| s.len() == 8)
        .and_then(|s| u32::from_str_radix(s, 16).ok())
        .ok_or_else(|| bad(line, format_args!("{field} is not 8 hex digits")))
}

/// A graph's file name: a plain name, so that a manifest cannot point outside its directory.
fn valid_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
}

impl Manifest {
    /// Parses a manifest's text, checking every field (a typed error names the line).
    pub fn parse(text: &str) -> Result<Manifest> {
        if text.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(Error::InvalidArtifacts(format!(
                "{MANIFEST_FILE} is larger than {MAX_MANIFEST_BYTES} bytes"
            )));
        }
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
        match lines.next() {
            Some((_, first)) if first == format!("{TAG} {VERSION}") => {}
            Some((n, first)) if first.starts_with(TAG) => {
                return Err(bad(n, format_args!("version other than {VERSION}")))
            }
            _ => {
                return Err(Error::InvalidArtifacts(format!(
                    "{MANIFEST_FILE} does not start with '{TAG} {VERSION}'"
                )))
            }
        }
        let (mut model, mut layers, mut hidden, mut precision) = (None, None, None, None);
        let mut graphs: Vec<Graph> = Vec::new();
        let (mut target, mut gears, mut om) = (None, None::<Vec<usize>>, None);
        for (n, line) in lines {
            let mut f = line.split_ascii_whitespace();
            let key = f.next().unwrap_or_default();
            let once = |seen: bool| match seen {
                true => Err(bad(n, format_args!("'{key}' given twice"))),
                false => Ok(()),
            };
            match key {
                "model" => {
                    once(model.is_some())?;
                    model = Some(ModelIdentity {
                        file_len: number(n, "the model's length", f.next())?,
                        data_crc32: hex32(n, "the data checksum", f.next())?,
                        tables_crc32: hex32(n, "the tables checksum", f.next())?,
                    });
                }
                "layers" => {
                    once(layers.is_some())?;
                    layers = Some(number::<usize>(n, "layers", f.next())?);
                }
                "hidden_size" => {
                    once(hidden.is_some())?;
                    hidden = Some(number::<usize>(n, "hidden_size", f.next())?);
                }
                "precision" => {
                    once(precision.is_some())?;
                    let p = f.next().unwrap_or_default();
                    precision = Some(
                        Precision::parse(p)
                            .ok_or_else(|| bad(n, "precision is neither f32 nor f16"))?,
                    );
                }
                "graph" => {
                    if graphs.len() == MAX_GRAPHS {
                        return Err(bad(n, format_args!("more than {MAX_GRAPHS} graphs")));
                    }
                    let bucket: usize = number(n, "the bucket", f.next())?;
                    let file = f.next().unwrap_or_default();
                    if !valid_file_name(file) {
                        return Err(bad(n, "the graph's file is not a plain file name"));
                    }
                    let bytes: u64 = number(n, "the graph's length", f.next())?;
                    let crc32 = hex32(n, "the graph's checksum", f.next())?;
                    if bucket == 0 || bucket > 1 << 16 {
                        return Err(bad(n, "the bucket must be in 1..=65536"));
                    }
                    if bytes == 0 || bytes > MAX_GRAPH_BYTES {
                        return Err(bad(
                            n,
                            format_args!("graph length not in 1..={MAX_GRAPH_BYTES}"),
                        ));
                    }
                    if graphs.last().is_some_and(|g| g.bucket >= bucket) {
                        return Err(bad(n, "buckets must be listed in ascending order"));
                    }
                    graphs.push(Graph {
                        bucket,
                        file: file.to_owned(),
                        bytes,
                        crc32,
                    });
                }
                "target" => {
                    once(target.is_some())?;
                    match f.next().unwrap_or_default() {
                        "ascend" => target = Some(()),
                        _ => return Err(bad(n, "the only target is 'ascend'")),
                    }
                }
                "gears" => {
                    once(gears.is_some())?;
                    let mut g: Vec<usize> = Vec::new();
                    for v in f.by_ref() {
                        if g.len() == MAX_GEARS {
                            return Err(bad(n, format_args!("more than {MAX_GEARS} gears")));
                        }
                        let v: usize = number(n, "a gear", Some(v))?;
                        if v == 0 || v > 1 << 16 || g.last().is_some_and(|&l| l >= v) {
                            return Err(bad(n, "gears must ascend, in 1..=65536"));
                        }
                        g.push(v);
                    }
                    if g.is_empty() {
                        return Err(bad(n, "no gears"));
                    }
                    gears = Some(g);
                }
                "om" => {
                    once(om.is_some())?;
                    let file = f.next().unwrap_or_default();
                    if !valid_file_name(file) {
                        return Err(bad(n, "the offline model is not a plain file name"));
                    }
                    let bytes: u64 = number(n, "the offline model's length", f.next())?;
                    let crc32 = hex32(n, "the offline model's checksum", f.next())?;
                    if bytes == 0 || bytes > MAX_GRAPH_BYTES {
                        return Err(bad(
                            n,
                            format_args!("offline model length not in 1..={MAX_GRAPH_BYTES}"),
                        ));
                    }
                    let soc = f.next().unwrap_or_default();
                    if soc.is_empty() || !valid_file_name(soc) || soc.len() > 64 {
                        return Err(bad(n, "no SoC version after the offline model"));
                    }
                    om = Some(OfflineModel {
                        file: file.to_owned(),
                        bytes,
                        crc32,
                        soc_version: soc.to_owned(),
                    });
                }
                _ => return Err(bad(n, format_args!("unknown key '{key}'"))),
            }
            if f.next().is_some() {
                return Err(bad(n, "extra fields"));
            }
        }
        let missing = |what| Error::InvalidArtifacts(format!("{MANIFEST_FILE} has no '{what}'"));
        if graphs.is_empty() {
            return Err(missing("graph"));
        }
        let ascend = match (target, gears) {
            (None, None) if om.is_none() => None,
            (None, _) => {
                return Err(Error::InvalidArtifacts(format!(
                    "{MANIFEST_FILE} has 'gears' or 'om' without 'target ascend'"
                )))
            }
            (Some(()), None) => return Err(missing("gears")),
            (Some(()), Some(gears)) => {
                if graphs.len() != 1 || gears.last() != Some(&graphs[0].bucket) {
                    return Err(Error::InvalidArtifacts(format!(
                        "{MANIFEST_FILE}: an Ascend export has one graph, whose bucket is the \
                         largest gear"
                    )));
                }
                Some(AscendPart { gears, om })
            }
        };
        Ok(Manifest {
            model: model.ok_or_else(|| missing("model"))?,
            layers: layers.ok_or_else(|| missing("layers"))?,
            hidden_size: hidden.ok_or_else(|| missing("hidden_size"))?,
            precision: precision.ok_or_else(|| missing("precision"))?,
            graphs,
            ascend,
        })
    }

    /// The manifest's text ([`Manifest::parse`] reads it back).
    pub fn to_text(&self) -> String {
        let m = &self.model;
        let mut s = format!("{TAG} {VERSION}\n");
        let _ = writeln!(
            s,
            "model {} {:08x} {:08x}",
            m.file_len, m.data_crc32, m.tables_crc32
        );
        let _ = writeln!(s, "layers {}", self.layers);
        let _ = writeln!(s, "hidden_size {}", self.hidden_size);
        let _ = writeln!(s, "precision {}", self.precision.as_str());
        if let Some(a) = &self.ascend {
            s.push_str("target ascend\ngears");
            for g in &a.gears {
                let _ = write!(s, " {g}");
            }
            s.push('\n');
        }
        for g in &self.graphs {
            let _ = writeln!(
                s,
                "graph {} {} {} {:08x}",
                g.bucket, g.file, g.bytes, g.crc32
            );
        }
        if let Some(om) = self.ascend.as_ref().and_then(|a| a.om.as_ref()) {
            let _ = writeln!(
                s,
                "om {} {} {:08x} {}",
                om.file, om.bytes, om.crc32, om.soc_version
            );
        }
        s
    }

    /// Refuses a manifest exported from another file than the one `header` heads.
    pub fn check_model(&self, header: &Header) -> Result<()> {
        let have = ModelIdentity::of(header);
        if self.model != have {
            return Err(Error::InvalidArtifacts(format!(
                "exported from another model (length {}, checksums {:08x} {:08x}; this one: \
                 {}, {:08x} {:08x})",
                self.model.file_len,
                self.model.data_crc32,
                self.model.tables_crc32,
                have.file_len,
                have.data_crc32,
                have.tables_crc32
            )));
        }
        Ok(())
    }

    /// The smallest bucket that holds `len` tokens.
    pub fn bucket_for(&self, len: usize) -> Option<&Graph> {
        self.graphs.iter().find(|g| g.bucket >= len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            model: ModelIdentity {
                file_len: 84754496,
                data_crc32: 0x1a2b3c4d,
                tables_crc32: 0xdeadbeef,
            },
            layers: 12,
            hidden_size: 384,
            precision: Precision::F16,
            graphs: vec![
                Graph {
                    bucket: 64,
                    file: "encoder-64.onnx".into(),
                    bytes: 1000,
                    crc32: 7,
                },
                Graph {
                    bucket: 128,
                    file: "encoder-128.onnx".into(),
                    bytes: 2000,
                    crc32: 0xffffffff,
                },
            ],
            ascend: None,
        }
    }

    fn ascend_sample() -> Manifest {
        let mut m = sample();
        m.graphs.truncate(1);
        m.graphs[0].bucket = 512;
        m.ascend = Some(AscendPart {
            gears: vec![64, 128, 512],
            om: Some(OfflineModel {
                file: "encoder.om".into(),
                bytes: 4096,
                crc32: 0x12345678,
                soc_version: "Ascend310B1".into(),
            }),
        });
        m
    }

    #[test]
    fn an_ascend_export_round_trips_and_is_checked() {
        let m = ascend_sample();
        assert_eq!(Manifest::parse(&m.to_text()).unwrap(), m);
        let mut uncompiled = m.clone();
        uncompiled.ascend.as_mut().unwrap().om = None;
        assert_eq!(Manifest::parse(&uncompiled.to_text()).unwrap(), uncompiled);
        let good = m.to_text();
        let cases = [
            (
                good.replace("gears 64 128 512", "gears 64 128 256"),
                "largest gear",
            ),
            (
                good.replace("gears 64 128 512", "gears 128 64 512"),
                "ascend",
            ),
            (good.replace("gears 64 128 512", "gears"), "no gears"),
            (good.replace("gears 64 128 512\n", ""), "no 'gears'"),
            (
                good.replace("target ascend\n", ""),
                "without 'target ascend'",
            ),
            (good.replace("target ascend", "target gpu"), "only target"),
            (good.replace(" Ascend310B1", ""), "SoC version"),
            (
                good.replace("encoder.om", "../encoder.om"),
                "plain file name",
            ),
            (
                good.clone() + "graph 1024 encoder-1024.onnx 10 00000001\n",
                "one graph",
            ),
        ];
        for (text, want) in cases {
            let e = Manifest::parse(&text).unwrap_err().to_string();
            assert!(e.contains(want), "{e:?} should say {want:?}");
        }
    }

    #[test]
    fn round_trips() {
        let m = sample();
        assert_eq!(Manifest::parse(&m.to_text()).unwrap(), m);
        assert_eq!(m.bucket_for(64).unwrap().bucket, 64);
        assert_eq!(m.bucket_for(65).unwrap().bucket, 128);
        assert!(m.bucket_for(129).is_none());
    }

    #[test]
    fn refuses_what_is_wrong_by_line() {
        let good = sample().to_text();
        let cases = [
            (
                good.replace("dbrt-encoder-artifacts 1", "dbrt-encoder-artifacts 2"),
                "version",
            ),
            (
                good.replace("dbrt-encoder-artifacts 1\n", ""),
                "does not start",
            ),
            (
                good.replace("encoder-64.onnx", "../x.onnx"),
                "plain file name",
            ),
            (
                good.replace("encoder-64.onnx", "/etc/passwd"),
                "plain file name",
            ),
            (good.replace("graph 64", "graph 256"), "ascending"),
            (good.replace("graph 64", "graph 0"), "1..=65536"),
            (good.replace("precision f16", "precision int4"), "precision"),
            (good.replace("layers 12", "layers 12 13"), "extra fields"),
            (good.replace("layers 12", "layers x"), "not a number"),
            (good.replace("1a2b3c4d", "1a2b3c4"), "8 hex digits"),
            (good.replace("layers 12\n", ""), "no 'layers'"),
            (good.clone() + "layers 3\n", "twice"),
            (good.clone() + "colour blue\n", "unknown key"),
            (good.replace(" 1000 ", " 0 "), "graph length"),
            ("x".repeat(70_000), "larger than"),
        ];
        for (text, want) in cases {
            let e = Manifest::parse(&text).unwrap_err().to_string();
            assert!(e.contains(want), "{e:?} should say {want:?}");
        }
    }
}
