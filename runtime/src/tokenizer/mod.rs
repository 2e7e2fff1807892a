//! Text → token ids with the tokenizer compiled into the `.dbrt` file: the DeBERTa-v3 pipeline
//! of Hugging Face `tokenizers` (added tokens, Strip, SentencePiece's precompiled charsmap, space
//! collapsing, Metaspace, Unigram Viterbi, the `[CLS] A [SEP] B [SEP]` template, longest-first
//! truncation), reproduced id for id, walking tables in the mapping and allocating nothing per
//! call: all scratch memory comes from a [`TokenizerScratch`].
//!
//! Text is processed as a stream of words, each segmented as soon as it is complete, so memory
//! is bounded by the longest word, not by the text: a megabyte of text needs no more scratch
//! than a sentence. As in tokenizers, a text is tokenized only up to the word that brings it to
//! the maximum length, and truncation works from that capped length (see `Sink`).

mod charsmap;
mod trie;

pub use trie::MAX_PIECE_BYTES;

use unicode_segmentation::UnicodeSegmentation;

use crate::error::{Error, Result};
use crate::format::{MetaValue, ModelFile};
use crate::memory::Buffers;
use charsmap::CharsMap;
use trie::PieceTrie;

/// SentencePiece's word-boundary mark.
const METASPACE: char = '\u{2581}';
const METASPACE_UTF8: &[u8] = "\u{2581}".as_bytes();
/// `K_UNK_PENALTY` of tokenizers' Unigram: unknown characters score `min_score - 10`.
const UNK_PENALTY: f64 = 10.0;
/// Longest added token, in bytes (they are matched with a fixed-size window).
const MAX_ADDED_TOKEN_BYTES: usize = 64;
/// Special tokens around one text (`[CLS] a [SEP]`) and around a pair (`[CLS] a [SEP] b [SEP]`).
const SINGLE_SPECIAL_TOKENS: usize = 2;
const PAIR_SPECIAL_TOKENS: usize = 3;

/// Which of the pair to cut when it is too long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Truncation {
    /// Cut the longer one first (tokenizers' `longest_first`).
    #[default]
    LongestFirst,
    OnlyFirst,
    OnlySecond,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prepend {
    Always,
    First,
    Never,
}

#[derive(Debug, Clone, Copy)]
struct Normalizers {
    strip_left: bool,
    strip_right: bool,
    precompiled: bool,
    collapse_spaces: bool,
}

/// The added tokens (`[CLS]`, `[MASK]`, ...) of one kind, matched in the raw or the normalized
/// text before the model runs, as a byte trie: the longest one at a position costs at most its
/// length to find, however many there are.
#[derive(Debug, Clone)]
struct AddedTokens {
    nodes: Vec<AddedNode>,
    /// The first bytes of the tokens, to skip the positions no token starts at.
    first: [bool; 256],
}

#[derive(Debug, Clone, Default)]
struct AddedNode {
    /// Sorted by byte.
    edges: Vec<(u8, u32)>,
    /// The token ending here.
    id: Option<u32>,
}

impl AddedTokens {
    fn new() -> AddedTokens {
        AddedTokens {
            nodes: vec![AddedNode::default()],
            first: [false; 256],
        }
    }

    /// Adds a non-empty token; of equal ones, the first added is matched.
    fn insert(&mut self, content: &[u8], id: u32) {
        self.first[content[0] as usize] = true;
        let mut node = 0;
        for &b in content {
            let edges = &self.nodes[node].edges;
            node = match edges.binary_search_by_key(&b, |e| e.0) {
                Ok(i) => edges[i].1 as usize,
                Err(i) => {
                    let child = self.nodes.len();
                    self.nodes.push(AddedNode::default());
                    self.nodes[node].edges.insert(i, (b, child as u32));
                    child
                }
            };
        }
        self.nodes[node].id.get_or_insert(id);
    }

    /// Leftmost-longest match in `hay`: (start, end, id).
    fn find(&self, hay: &[u8]) -> Option<(usize, usize, u32)> {
        for (start, &b) in hay.iter().enumerate() {
            if !self.first[b as usize] {
                continue;
            }
            let (mut node, mut best) = (0, None);
            for (i, &b) in hay[start..].iter().enumerate() {
                let edges = &self.nodes[node].edges;
                match edges.binary_search_by_key(&b, |e| e.0) {
                    Ok(j) => node = edges[j].1 as usize,
                    Err(_) => break,
                }
                if let Some(id) = self.nodes[node].id {
                    best = Some((start, start + i + 1, id));
                }
            }
            if best.is_some() {
                return best;
            }
        }
        None
    }
}

/// Where the tokenizer's tables sit in the file: handles, resolved at open.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    scores: (usize, usize),
    edge_start: (usize, usize),
    labels: (usize, usize),
    targets: (usize, usize),
    values: (usize, usize),
    charsmap: Option<(usize, usize)>,
    normalizers: Normalizers,
    prepend: Prepend,
    split_words: bool,
    unk_id: Option<u32>,
    fuse_unk: bool,
    min_score: f64,
    /// The raw (`[0]`) and the normalized (`[1]`) added tokens.
    added: [AddedTokens; 2],
    cls_id: u32,
    sep_id: u32,
    max_len: usize,
}

/// Token ids of one encoded text or pair.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Encoding {
    pub ids: Vec<u32>,
    pub type_ids: Vec<u32>,
}

/// Per-session scratch memory of the tokenizer.
pub struct TokenizerScratch {
    /// The word being assembled, with room for a prepended `▁` in front.
    word: Vec<u8>,
    lattice: Vec<LatticeNode>,
    ids_a: Vec<u32>,
    ids_b: Vec<u32>,
    max_word_bytes: usize,
}

#[derive(Debug, Clone, Copy, Default, bytemuck::Zeroable)]
struct LatticeNode {
    score: f64,
    start: u32,
    id: u32,
}

const NO_START: u32 = u32::MAX;

impl TokenizerScratch {
    /// Scratch for words of up to `max_word_bytes` (normalized UTF-8) and up to `max_tokens`
    /// kept ids per text; a size that cannot be allocated is an [`Error::OutOfMemory`].
    pub fn new(max_word_bytes: usize, max_tokens: usize) -> Result<TokenizerScratch> {
        Self::from_buffers(max_word_bytes, max_tokens, &mut Buffers::allocating())
    }

    /// [`TokenizerScratch::new`] from `buf` (a dry run counts the bytes a session needs).
    pub(crate) fn from_buffers(
        max_word_bytes: usize,
        max_tokens: usize,
        buf: &mut Buffers,
    ) -> Result<TokenizerScratch> {
        // Lattice positions are u32, and NO_START is taken.
        if max_word_bytes > (u32::MAX - 1) as usize - PRE {
            return Err(Error::InvalidArgument(format!(
                "max_word_bytes {max_word_bytes} (at most {})",
                (u32::MAX - 1) as usize - PRE
            )));
        }
        // In range: max_word_bytes is bounded above.
        let word_len = max_word_bytes + PRE;
        Ok(TokenizerScratch {
            word: buf.zeroed(word_len, "tokenizer word buffer")?,
            lattice: buf.zeroed(word_len + 1, "tokenizer lattice")?,
            ids_a: buf.zeroed(max_tokens, "tokenizer ids")?,
            ids_b: buf.zeroed(max_tokens, "tokenizer ids")?,
            max_word_bytes,
        })
    }
}

/// Collects the ids of one text as tokenizers (0.23) does when it truncates: its model
/// tokenizes word after word (added tokens come tokenized) and stops after the first word that
/// brings the count to `limit`, dropping the rest of the text *before* the truncation rule
/// sees the lengths. So `count` is that capped length, not the text's; the first `buf.len()`
/// ids are kept.
struct Sink<'a> {
    buf: &'a mut [u32],
    count: usize,
    limit: usize,
    done: bool,
}

impl<'a> Sink<'a> {
    fn new(buf: &'a mut [u32], limit: usize) -> Self {
        Sink {
            buf,
            count: 0,
            limit,
            done: false,
        }
    }

    #[inline]
    fn push(&mut self, id: u32) {
        if self.done {
            return;
        }
        if let Some(slot) = self.buf.get_mut(self.count) {
            *slot = id;
        }
        self.count += 1;
    }

    /// A word (a model split) ends: stop here if the limit is reached.
    #[inline]
    fn end_word(&mut self) {
        self.done |= self.count >= self.limit;
    }
}

/// The tables of one tokenizer viewed in the file's bytes.
struct Tables<'a> {
    t: &'a Tokenizer,
    scores: &'a [f64],
    trie: PieceTrie<'a>,
    charsmap: Option<CharsMap<'a>>,
}

/// A table in `bytes`; `None` when it is not there (bytes of another file than the one the
/// tokenizer was opened from).
fn view<T: bytemuck::AnyBitPattern>(bytes: &[u8], (off, n): (usize, usize)) -> Result<&[T]> {
    n.checked_mul(std::mem::size_of::<T>())
        .and_then(|len| bytes.get(off..off.checked_add(len)?))
        .and_then(|b| bytemuck::try_cast_slice(b).ok())
        .ok_or_else(|| Error::Tokenizer("tables outside the bytes given".into()))
}

impl Tokenizer {
    /// Reads the `tokenizer.*` metadata and tables of `file`; `None` when it carries none.
    /// `vocab` is the model's vocabulary size: every id the tokenizer can emit (the special
    /// tokens, the added tokens, the unknown token and every piece) must lie below it, since
    /// the ids index the embedding without a further check.
    pub fn from_file(file: &ModelFile, max_len: usize, vocab: usize) -> Result<Option<Tokenizer>> {
        let m = file.metadata();
        let kind = match m.get("tokenizer.kind") {
            None => return Ok(None),
            Some(_) => m.str("tokenizer.kind")?,
        };
        if kind != "unigram" {
            return Err(Error::Unsupported(format!(
                "tokenizer kind '{kind}' (re-convert the model with this dbrt-convert)"
            )));
        }
        let table = |name: &str, dtype: crate::format::DType| -> Result<(usize, usize)> {
            let v = file.tensor(name)?;
            if v.record.dtype != dtype
                || v.record.shape.len() != 1
                || v.record.layout != crate::format::Layout::RowMajor
            {
                return Err(Error::TensorDtype {
                    name: name.into(),
                    dtype: v.record.dtype.name(),
                });
            }
            Ok((v.record.offset as usize, v.record.shape[0] as usize))
        };
        use crate::format::DType::*;
        let mut normalizers = Normalizers {
            strip_left: false,
            strip_right: false,
            precompiled: false,
            collapse_spaces: false,
        };
        for n in m.str_list("tokenizer.normalizers")? {
            match n.as_str() {
                "strip" => (normalizers.strip_left, normalizers.strip_right) = (true, true),
                "strip_left" => normalizers.strip_left = true,
                "strip_right" => normalizers.strip_right = true,
                "precompiled" => normalizers.precompiled = true,
                "collapse_spaces" => normalizers.collapse_spaces = true,
                other => {
                    return Err(Error::Unsupported(format!(
                        "tokenizer normalizer '{other}'"
                    )))
                }
            }
        }
        let prepend = match m.str("tokenizer.metaspace.prepend")? {
            "always" => Prepend::Always,
            "first" => Prepend::First,
            "never" => Prepend::Never,
            s => {
                return Err(Error::Unsupported(format!(
                    "metaspace prepend scheme '{s}'"
                )))
            }
        };
        let list = |key: &str| -> Result<Vec<i64>> {
            match m.get(key) {
                Some(MetaValue::I64List(v)) => Ok(v.clone()),
                _ => Err(Error::MissingMetadata { key: key.into() }),
            }
        };
        let contents = m.str_list("tokenizer.added.tokens")?;
        let ids = list("tokenizer.added.ids")?;
        let normalized = list("tokenizer.added.normalized")?;
        if ids.len() != contents.len() || normalized.len() != contents.len() {
            return Err(Error::BadMetadata {
                key: "tokenizer.added".into(),
                reason: "list lengths differ".into(),
            });
        }
        // An id indexes the embedding matrix: it must lie in the model's vocabulary.
        let id_ok = |key: &str, id: i64| -> Result<u32> {
            match u32::try_from(id) {
                Ok(v) if (v as usize) < vocab => Ok(v),
                _ => Err(Error::BadMetadata {
                    key: key.into(),
                    reason: format!("token id {id} is outside the vocabulary of {vocab}"),
                }),
            }
        };
        let mut added = [AddedTokens::new(), AddedTokens::new()];
        for ((c, &id), &norm) in contents.iter().zip(&ids).zip(&normalized) {
            if c.is_empty() || c.len() > MAX_ADDED_TOKEN_BYTES {
                return Err(Error::BadMetadata {
                    key: "tokenizer.added.tokens".into(),
                    reason: format!("token '{c}'"),
                });
            }
            // Normalized added tokens are matched within words: one spanning words would
            // be matched by tokenizers and missed here.
            if norm != 0 && c.contains([' ', METASPACE]) {
                return Err(Error::Unsupported(format!(
                    "tokenizer.added.tokens: normalized token '{c}' spans words"
                )));
            }
            added[(norm != 0) as usize].insert(c.as_bytes(), id_ok("tokenizer.added.ids", id)?);
        }
        let unk = m.i64("tokenizer.unk_id")?;
        // Without an unknown token, unknown characters get id 0, below `vocab` as `cls_id` is.
        let unk_id = match unk {
            -1 => None,
            _ => Some(id_ok("tokenizer.unk_id", unk)?),
        };
        let special = |key: &str| -> Result<u32> {
            let id = m.u64(key)?;
            id_ok(key, i64::try_from(id).unwrap_or(i64::MAX))
        };
        let tok = Tokenizer {
            scores: table("tokenizer.scores", F64)?,
            edge_start: table("tokenizer.trie.edge_start", I32)?,
            labels: table("tokenizer.trie.labels", U8)?,
            targets: table("tokenizer.trie.targets", I32)?,
            values: table("tokenizer.trie.values", I32)?,
            charsmap: if normalizers.precompiled {
                Some(table("tokenizer.charsmap", U8)?)
            } else {
                None
            },
            normalizers,
            prepend,
            split_words: m.bool("tokenizer.metaspace.split")?,
            unk_id,
            fuse_unk: m.bool("tokenizer.fuse_unk")?,
            min_score: m.f64("tokenizer.min_score")?,
            added,
            cls_id: special("tokenizer.cls_id")?,
            sep_id: special("tokenizer.sep_id")?,
            max_len,
        };
        // The trie's values are checked against the pieces, the pieces here against the model.
        if tok.scores.1 > vocab {
            return Err(Error::BadMetadata {
                key: "tokenizer.scores".into(),
                reason: format!("{} pieces for a vocabulary of {vocab}", tok.scores.1),
            });
        }
        // Validate every table once, so that encoding can index without checks failing.
        tok.tables(file.bytes(), true)?;
        Ok(Some(tok))
    }

    /// Views the tables; with `check`, validates them (once, at open).
    fn tables<'a>(&'a self, bytes: &'a [u8], check: bool) -> Result<Tables<'a>> {
        let parts = (
            view(bytes, self.edge_start)?,
            view(bytes, self.labels)?,
            view(bytes, self.targets)?,
            view(bytes, self.values)?,
        );
        let trie = if check {
            PieceTrie::validate(parts.0, parts.1, parts.2, parts.3, self.scores.1)?
        } else {
            PieceTrie::view(parts.0, parts.1, parts.2, parts.3)
        };
        let charsmap = match self.charsmap {
            Some(c) => Some(CharsMap::parse(view(bytes, c)?, check)?),
            None => None,
        };
        Ok(Tables {
            t: self,
            scores: view(bytes, self.scores)?,
            trie,
            charsmap,
        })
    }

    /// The longest encoding this tokenizer produces (the model's maximum).
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// The smallest maximum length at which every text call can be encoded: room for the
    /// special tokens of a pair, `[CLS] [SEP] [SEP]`. Below it a pair is refused whatever its
    /// texts (tokenizers underflows there). At it, every text and pair encodes to its special
    /// tokens alone, with every truncation strategy (tokenizers empties both texts when no
    /// room is left) except `only_second` on a single text that has more than one token. Above
    /// it, `only_first`/`only_second` refuse, as tokenizers does, a pair whose other text alone
    /// fills the room; `longest_first` never refuses.
    pub fn min_sequence_length(&self) -> usize {
        PAIR_SPECIAL_TOKENS
    }

    /// Encodes `[CLS] a [SEP]`, or `[CLS] a [SEP] b [SEP]`, truncated to `max_len` tokens, into
    /// `ids` (and `type_ids`: 0 for the first text, 1 for the second); returns the length.
    /// Allocates nothing: `scratch` holds every intermediate.
    #[allow(clippy::too_many_arguments)]
    pub fn encode_into(
        &self,
        bytes: &[u8],
        a: &str,
        b: Option<&str>,
        max_len: usize,
        truncation: Truncation,
        scratch: &mut TokenizerScratch,
        ids: &mut [u32],
        type_ids: &mut [u32],
    ) -> Result<usize> {
        // Validated at open; with the bytes of another file the walk stays in bounds.
        let tables = self.tables(bytes, false)?;
        let TokenizerScratch {
            word,
            lattice,
            ids_a,
            ids_b,
            max_word_bytes,
        } = scratch;
        let mut ws = WordScratch {
            word,
            lattice,
            max_word_bytes: *max_word_bytes,
        };
        let special = match b {
            Some(_) => PAIR_SPECIAL_TOKENS,
            None => SINGLE_SPECIAL_TOKENS,
        };
        if max_len < special {
            return Err(Error::InvalidArgument(format!(
                "max_len {max_len} leaves no room for the {special} special tokens"
            )));
        }
        // Kept ids are collected in the scratch: it must hold as many as the output.
        let room = ids
            .len()
            .min(type_ids.len())
            .min(ids_a.len())
            .min(ids_b.len());
        if max_len > room {
            return Err(Error::InvalidArgument(format!(
                "max_len {max_len} for output and scratch buffers of {room} ids"
            )));
        }
        // tokenizers caps each text at the whole maximum length (special tokens included),
        // except the first one under `only_second`.
        let limit_a = match truncation {
            Truncation::OnlySecond => usize::MAX,
            _ => max_len,
        };
        let mut sink_a = Sink::new(&mut ids_a[..], limit_a);
        tables.encode_text(a, &mut ws, &mut sink_a)?;
        let n1 = sink_a.count;
        let n2 = match b {
            Some(b) => {
                let mut sink_b = Sink::new(&mut ids_b[..], max_len);
                tables.encode_text(b, &mut ws, &mut sink_b)?;
                sink_b.count
            }
            None => 0,
        };
        let (k1, k2) = truncate(n1, b.map(|_| n2), max_len - special, truncation)?;
        // `truncate` keeps k1 + k2 <= max_len - special, within every buffer checked above;
        // the `min`s keep a slip there from turning into a panic.
        let (k1, k2) = (k1.min(ids_a.len()), k2.min(ids_b.len()));
        let mut at = 0;
        let mut put = |id: u32, ty: u32| {
            ids[at] = id;
            type_ids[at] = ty;
            at += 1;
        };
        put(self.cls_id, 0);
        ids_a[..k1].iter().for_each(|&id| put(id, 0));
        put(self.sep_id, 0);
        if b.is_some() {
            ids_b[..k2].iter().for_each(|&id| put(id, 1));
            put(self.sep_id, 1);
        }
        Ok(at)
    }

    /// Allocating convenience over [`Tokenizer::encode_into`], with `longest_first` truncation
    /// at the model's maximum and a session's default longest word
    /// ([`crate::session::DEFAULT_MAX_WORD_BYTES`]); `file_bytes` are the bytes of the file the
    /// tokenizer came from.
    pub fn encode(&self, file_bytes: &[u8], a: &str, b: Option<&str>) -> Result<Encoding> {
        let max = self.max_len;
        // A character normalizes to at most a few dozen bytes (ligatures, ﷺ): 20x is ample
        // for the words of a short text; a long text is bounded by the longest word.
        let text = a.len().saturating_add(b.map_or(0, str::len));
        let word = text
            .saturating_mul(20)
            .saturating_add(64)
            .min(crate::session::DEFAULT_MAX_WORD_BYTES);
        let mut scratch = TokenizerScratch::new(word, max)?;
        let mut buf = Buffers::allocating();
        let (mut ids, mut types) = (
            buf.zeroed(max, "token ids")?,
            buf.zeroed(max, "token type ids")?,
        );
        let n = self.encode_into(
            file_bytes,
            a,
            b,
            max,
            Truncation::LongestFirst,
            &mut scratch,
            &mut ids,
            &mut types,
        )?;
        ids.truncate(n);
        types.truncate(n);
        Ok(Encoding {
            ids,
            type_ids: types,
        })
    }
}

/// tokenizers' `truncate_encodings` (as of 0.23) on lengths: how many ids of each text to keep
/// when `max` ids are left for the texts after the special tokens. Its rule, error cases
/// included: a room of 0 empties both texts whatever the strategy; `only_second` cannot cut a
/// single text; `only_first`/`only_second` refuse a pair whose other text alone fills the room.
fn truncate(
    n1: usize,
    n2: Option<usize>,
    max: usize,
    strategy: Truncation,
) -> Result<(usize, usize)> {
    if max == 0 {
        return Ok((0, 0));
    }
    let total = n1 + n2.unwrap_or(0);
    if total <= max {
        return Ok((n1, n2.unwrap_or(0)));
    }
    let remove = total - max;
    match (strategy, n2) {
        (Truncation::LongestFirst, None) => Ok((max, 0)),
        (Truncation::LongestFirst, Some(n2)) => {
            // With `a` the shorter: cut only the longer when the shorter leaves it room, else
            // both, to halves, the longer keeping the odd one.
            let (mut a, mut b) = (n1, n2);
            let swap = a > b;
            if swap {
                std::mem::swap(&mut a, &mut b);
            }
            b = if a > max { a } else { a.max(max - a) };
            if a + b > max {
                a = max / 2;
                b = a + max % 2;
            }
            if swap {
                std::mem::swap(&mut a, &mut b);
            }
            Ok((a.min(n1), b.min(n2)))
        }
        (Truncation::OnlyFirst, _) if n1 > remove => Ok((n1 - remove, n2.unwrap_or(0))),
        (Truncation::OnlySecond, Some(n2)) if n2 > remove => Ok((n1, n2 - remove)),
        (Truncation::OnlySecond, None) => Err(Error::InvalidArgument(format!(
            "only_second truncation of a single text of {n1} tokens (room for {max}): \
             there is no second text to cut"
        ))),
        (Truncation::OnlyFirst, _) => Err(too_short("first", n1, remove, max)),
        (Truncation::OnlySecond, Some(n2)) => Err(too_short("second", n2, remove, max)),
    }
}

fn too_short(which: &str, len: usize, remove: usize, max: usize) -> Error {
    Error::InvalidArgument(format!(
        "only_{which} truncation: the {which} text has {len} tokens but {remove} must go \
         to fit the room for {max}"
    ))
}

struct WordScratch<'s> {
    word: &'s mut Vec<u8>,
    lattice: &'s mut Vec<LatticeNode>,
    max_word_bytes: usize,
}

/// State of the word being assembled from normalized characters.
struct WordState {
    /// Bytes of the word in `word[PRE..PRE + len]`.
    len: usize,
    /// The word's leading `▁` is to be synthesized (Metaspace's prepend), not in the text.
    prepend: bool,
    /// The last normalized character was a space (for collapsing runs).
    prev_space: bool,
    /// No character of the current split has arrived yet.
    split_start: bool,
    /// This split starts the text (for the `first` prepend scheme).
    first_split: bool,
}

/// Room kept in front of a word for a synthesized `▁`.
const PRE: usize = 3;

impl<'a> Tables<'a> {
    /// Splits raw text at non-normalized added tokens and encodes each segment.
    fn encode_text(&self, text: &str, ws: &mut WordScratch<'_>, sink: &mut Sink<'_>) -> Result<()> {
        let mut rest = text;
        let mut first = true;
        while !rest.is_empty() && !sink.done {
            match self.find_added(rest, false) {
                Some((s, e, id)) => {
                    self.encode_segment(&rest[..s], ws, sink, first)?;
                    sink.push(id);
                    rest = &rest[e..];
                }
                None => {
                    self.encode_segment(rest, ws, sink, first)?;
                    break;
                }
            }
            first = false;
        }
        Ok(())
    }

    /// Leftmost-longest match of an added token (raw or normalized set) in `s`. The scan
    /// stops at the match and the callers go on after it, so a text is read once: a text of
    /// many added tokens takes linear time.
    fn find_added(&self, s: &str, normalized: bool) -> Option<(usize, usize, u32)> {
        self.t.added[normalized as usize].find(s.as_bytes())
    }

    /// One segment between raw added tokens: normalize as a stream and segment word by word.
    fn encode_segment(
        &self,
        raw: &str,
        ws: &mut WordScratch<'_>,
        sink: &mut Sink<'_>,
        first: bool,
    ) -> Result<()> {
        let n = self.t.normalizers;
        let mut seg = raw;
        if n.strip_left {
            seg = seg.trim_start_matches(char::is_whitespace);
        }
        if n.strip_right {
            seg = seg.trim_end_matches(char::is_whitespace);
        }
        let mut st = WordState {
            len: 0,
            prepend: false,
            prev_space: false,
            split_start: true,
            first_split: first,
        };
        match (&self.charsmap, n.precompiled) {
            (Some(map), true) => {
                for g in seg.graphemes(true) {
                    if sink.done {
                        return Ok(());
                    }
                    // Precompiled::normalize: the whole grapheme if it is short and mapped,
                    // else each character on its own.
                    if g.len() < 6 {
                        if let Some(norm) = map.transform(g) {
                            for c in norm.chars() {
                                self.push_char(c, &mut st, ws, sink)?;
                            }
                            continue;
                        }
                    }
                    for (i, c) in g.char_indices() {
                        match map.transform(&g[i..i + c.len_utf8()]) {
                            Some(norm) => {
                                for c in norm.chars() {
                                    self.push_char(c, &mut st, ws, sink)?;
                                }
                            }
                            None => self.push_char(c, &mut st, ws, sink)?,
                        }
                    }
                }
            }
            _ => {
                for c in seg.chars() {
                    if sink.done {
                        return Ok(());
                    }
                    self.push_char(c, &mut st, ws, sink)?;
                }
            }
        }
        self.flush(&mut st, ws, sink)
    }

    /// Feeds one normalized character: collapses spaces, maps them to `▁`, cuts words.
    #[inline]
    fn push_char(
        &self,
        c: char,
        st: &mut WordState,
        ws: &mut WordScratch<'_>,
        sink: &mut Sink<'_>,
    ) -> Result<()> {
        if self.t.normalizers.collapse_spaces {
            let space = c == ' ';
            if space && st.prev_space {
                return Ok(());
            }
            st.prev_space = space;
        }
        let c = if c == ' ' { METASPACE } else { c };
        if st.split_start {
            // Metaspace prepends `▁` to a split that does not start with one.
            st.split_start = false;
            st.prepend = c != METASPACE && self.prepends(st.first_split);
        }
        if c == METASPACE && self.t.split_words {
            // MergedWithNext: a `▁` ends the word before it and starts the next one.
            self.flush(st, ws, sink)?;
            st.prepend = false;
        }
        self.append(c, st, ws)
    }

    fn prepends(&self, first_split: bool) -> bool {
        match self.t.prepend {
            Prepend::Always => true,
            Prepend::First => first_split,
            Prepend::Never => false,
        }
    }

    #[inline]
    fn append(&self, c: char, st: &mut WordState, ws: &mut WordScratch<'_>) -> Result<()> {
        let n = c.len_utf8();
        if st.len + n > ws.max_word_bytes {
            return Err(Error::WordTooLong {
                max: ws.max_word_bytes,
            });
        }
        c.encode_utf8(&mut ws.word[PRE + st.len..PRE + st.len + n]);
        st.len += n;
        Ok(())
    }

    /// Ends the current word: splits it at normalized added tokens, segments the pieces.
    fn flush(
        &self,
        st: &mut WordState,
        ws: &mut WordScratch<'_>,
        sink: &mut Sink<'_>,
    ) -> Result<()> {
        if st.len == 0 {
            return Ok(());
        }
        let (mut start, end) = (PRE, PRE + st.len);
        let mut prepend = st.prepend;
        st.len = 0;
        loop {
            // The word is valid UTF-8: it was built from chars.
            let part = std::str::from_utf8(&ws.word[start..end]).map_err(|_| Error::InvalidUtf8)?;
            match self.find_added(part, true) {
                Some((s, e, id)) => {
                    self.segment(start, start + s, prepend, ws, sink);
                    sink.push(id);
                    start += e;
                    // What follows an added token is a new split.
                    prepend = self.prepends(false);
                }
                None => {
                    self.segment(start, end, prepend, ws, sink);
                    return Ok(());
                }
            }
        }
    }

    /// Unigram Viterbi over `word[start..end]` (with a `▁` in front if `prepend`), as
    /// tokenizers' `Unigram::encode_optimized`, then fuses unknowns and emits ids.
    fn segment(
        &self,
        start: usize,
        end: usize,
        prepend: bool,
        ws: &mut WordScratch<'_>,
        sink: &mut Sink<'_>,
    ) {
        if start == end {
            return;
        }
        let prepend = prepend && !ws.word[start..end].starts_with(METASPACE_UTF8);
        let start = if prepend {
            ws.word[start - PRE..start].copy_from_slice(METASPACE_UTF8);
            start - PRE
        } else {
            start
        };
        let w = &ws.word[start..end];
        let size = w.len();
        let lattice = &mut ws.lattice[..size + 1];
        lattice.fill(LatticeNode {
            score: 0.0,
            start: NO_START,
            id: 0,
        });
        let unk_score = self.t.min_score - UNK_PENALTY;
        let unk = self.t.unk_id.unwrap_or(0);
        let mut pos = 0;
        while pos < size {
            let here = lattice[pos].score;
            let mblen = utf8_len(w[pos]);
            let mut single = false;
            self.trie.common_prefixes(&w[pos..], |len, id| {
                let target = &mut lattice[pos + len];
                let score = self.scores.get(id as usize).copied().unwrap_or(f64::MIN);
                let cand = score + here;
                if target.start == NO_START || cand > target.score {
                    *target = LatticeNode {
                        score: cand,
                        start: pos as u32,
                        id,
                    };
                }
                single |= len == mblen;
            });
            if !single {
                let target = &mut lattice[(pos + mblen).min(size)];
                let cand = unk_score + here;
                if target.start == NO_START || cand > target.score {
                    *target = LatticeNode {
                        score: cand,
                        start: pos as u32,
                        id: unk,
                    };
                }
            }
            pos += mblen;
        }
        // Backtrack, storing the path in the lattice itself from the top down: the k-th token
        // from the end goes to slot `size - k`, above every slot still to be read. A stored
        // node keeps its span's end in `score` and `u32::MAX` as the id of a fused unknown.
        let mut n = 0;
        let mut e = size;
        while e > 0 {
            let node = lattice[e];
            let s = node.start as usize;
            let is_unk = self.t.fuse_unk && self.t.unk_id == Some(node.id);
            if is_unk && n > 0 && lattice[size + 1 - n].id == u32::MAX {
                // Consecutive unknowns fuse into one span.
                lattice[size + 1 - n].start = s as u32;
            } else {
                lattice[size - n] = LatticeNode {
                    score: e as f64,
                    start: s as u32,
                    id: if is_unk { u32::MAX } else { node.id },
                };
                n += 1;
            }
            e = s;
        }
        for node in &lattice[size + 1 - n..=size] {
            let id = if node.id == u32::MAX {
                // A fused unknown span is looked up as a string, as tokenizers does.
                let span = &w[node.start as usize..node.score as usize];
                self.trie.exact(span).unwrap_or(unk)
            } else {
                node.id
            };
            sink.push(id);
        }
        sink.end_word();
    }
}

/// Length of the UTF-8 sequence a leading byte starts.
#[inline]
fn utf8_len(b: u8) -> usize {
    match b {
        0x00..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_follows_tokenizers() {
        // Fits: untouched.
        assert_eq!(
            truncate(3, Some(4), 10, Truncation::LongestFirst).unwrap(),
            (3, 4)
        );
        // Only the longer one is cut.
        assert_eq!(
            truncate(3, Some(20), 10, Truncation::LongestFirst).unwrap(),
            (3, 7)
        );
        assert_eq!(
            truncate(20, Some(3), 10, Truncation::LongestFirst).unwrap(),
            (7, 3)
        );
        // Both are cut to halves; the second gets the odd one.
        assert_eq!(
            truncate(20, Some(30), 11, Truncation::LongestFirst).unwrap(),
            (5, 6)
        );
        assert_eq!(
            truncate(30, Some(20), 11, Truncation::LongestFirst).unwrap(),
            (6, 5)
        );
        assert_eq!(
            truncate(30, None, 11, Truncation::LongestFirst).unwrap(),
            (11, 0)
        );
        assert_eq!(
            truncate(8, Some(5), 10, Truncation::OnlyFirst).unwrap(),
            (5, 5)
        );
        assert_eq!(
            truncate(8, Some(5), 10, Truncation::OnlySecond).unwrap(),
            (8, 2)
        );
        assert!(truncate(2, Some(20), 10, Truncation::OnlyFirst).is_err());
    }

    /// tokenizers' `truncate_encodings` (0.23.2, `utils/truncation.rs`) transcribed line for
    /// line on lengths, with `Encoding::truncate(k)` as `len.min(k)`. `Err` carries its error.
    fn tokenizers_rule(
        len1: usize,
        len2: Option<usize>,
        max_length: usize,
        strategy: Truncation,
    ) -> std::result::Result<(usize, Option<usize>), &'static str> {
        let (mut encoding, mut pair_encoding) = (len1, len2);
        if max_length == 0 {
            encoding = 0;
            if let Some(other) = pair_encoding.as_mut() {
                *other = 0;
            }
            return Ok((encoding, pair_encoding));
        }
        let total_length = encoding + pair_encoding.unwrap_or(0);
        let to_remove = if total_length > max_length {
            total_length - max_length
        } else {
            return Ok((encoding, pair_encoding));
        };
        match strategy {
            Truncation::LongestFirst => {
                if let Some(other) = pair_encoding.as_mut() {
                    let mut n1 = encoding;
                    let mut n2 = *other;
                    let mut swap = false;
                    if n1 > n2 {
                        swap = true;
                        std::mem::swap(&mut n1, &mut n2);
                    }
                    if n1 > max_length {
                        n2 = n1;
                    } else {
                        n2 = std::cmp::max(n1, max_length - n1);
                    }
                    if n1 + n2 > max_length {
                        n1 = max_length / 2;
                        n2 = n1 + max_length % 2;
                    }
                    if swap {
                        std::mem::swap(&mut n1, &mut n2);
                    }
                    encoding = encoding.min(n1);
                    *other = (*other).min(n2);
                } else {
                    encoding = encoding.min(total_length - to_remove);
                }
            }
            Truncation::OnlyFirst | Truncation::OnlySecond => {
                let target = if strategy == Truncation::OnlyFirst {
                    &mut encoding
                } else if let Some(other) = pair_encoding.as_mut() {
                    other
                } else {
                    return Err("SecondSequenceNotProvided");
                };
                if *target > to_remove {
                    *target -= to_remove;
                } else {
                    return Err("SequenceTooShort");
                }
            }
        }
        Ok((encoding, pair_encoding))
    }

    #[test]
    fn truncation_is_tokenizers_rule_for_every_small_case() {
        let strategies = [
            Truncation::LongestFirst,
            Truncation::OnlyFirst,
            Truncation::OnlySecond,
        ];
        let mut cases = 0;
        for strategy in strategies {
            for max in 0..=16 {
                for n1 in 0..=20 {
                    for n2 in std::iter::once(None).chain((0..=20).map(Some)) {
                        let ours = truncate(n1, n2, max, strategy);
                        let theirs = tokenizers_rule(n1, n2, max, strategy);
                        match (&ours, theirs) {
                            (Ok(k), Ok((k1, k2))) => {
                                assert_eq!(
                                    *k,
                                    (k1, k2.unwrap_or(0)),
                                    "{n1} {n2:?} {max} {strategy:?}"
                                );
                                assert!(k.0 + k.1 <= max, "{n1} {n2:?} {max} {strategy:?}");
                            }
                            (Err(Error::InvalidArgument(_)), Err(_)) => {}
                            _ => panic!("{n1} {n2:?} {max} {strategy:?}: {ours:?} vs {theirs:?}"),
                        }
                        cases += 1;
                    }
                }
            }
        }
        assert_eq!(cases, 3 * 17 * 21 * 22);
    }
}
